/** The IdP's settings: from its metadata URL (fetched with a bound, cached for an hour) or from the config. */
import { readFile } from "node:fs/promises";
import xpath from "xpath";
import { plainHttpProblem } from "../http/plain-http.js";
import type { SignInContext } from "../sign-in.js";
import type { SamlConfig } from "./config.js";
import { parseXml } from "./xml.js";

/** What idbridge needs to know of the IdP. */
export interface IdpSettings {
  /** Entity id: the Issuer of every response and assertion. */
  readonly entityId: string;
  /** SingleSignOnService URL for the HTTP-Redirect binding. */
  readonly ssoUrl: string;
  /** Signing certificates (bare base64 or PEM); a signature by any of them is accepted (key rollover). */
  readonly certs: readonly string[];
}

/** The IdP's settings, or why they cannot be had (English, for the audit log). */
export type IdpLookup =
  { readonly ok: true; readonly idp: IdpSettings } | { readonly ok: false; readonly reason: string };

const MD = "urn:oasis:names:tc:SAML:2.0:metadata";
const REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
const METADATA_TTL_MS = 60 * 60 * 1000;
/** Metadata of a big federation is megabytes; one IdP's is a few kilobytes. */
const MAX_METADATA_BYTES = 1024 * 1024;

const select = xpath.useNamespaces({ md: MD, ds: "http://www.w3.org/2000/09/xmldsig#" });

/** Returns a lookup that asks the metadata URL at most once an hour (failures are not cached). */
export function idpLookup(context: SignInContext, config: SamlConfig): () => Promise<IdpLookup> {
  let cached: { readonly idp: IdpSettings; readonly until: number } | undefined;
  return async () => {
    if (cached !== undefined && context.now().getTime() < cached.until) return { ok: true, idp: cached.idp };
    const found =
      config.idpMetadataUrl === undefined
        ? await fromConfig(config)
        : await fromMetadata(context, config, config.idpMetadataUrl);
    if (found.ok) cached = { idp: found.idp, until: context.now().getTime() + METADATA_TTL_MS };
    return found;
  };
}

async function fromConfig(config: SamlConfig): Promise<IdpLookup> {
  let cert = config.idpCert;
  if (cert === undefined && config.idpCertFile !== undefined) {
    try {
      cert = await readFile(config.idpCertFile, "utf8");
    } catch (err) {
      return {
        ok: false,
        reason: `cannot read idpCertFile ${config.idpCertFile}: ${(err as Error).message}`,
      };
    }
  }
  // The schema requires all three without a metadata URL.
  return { ok: true, idp: { entityId: config.idpEntityId!, ssoUrl: config.idpSsoUrl!, certs: [cert!] } };
}

async function fromMetadata(context: SignInContext, config: SamlConfig, url: string): Promise<IdpLookup> {
  let text: string;
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(context.timeoutMs),
      headers: { accept: "application/samlmetadata+xml, application/xml, text/xml" },
      // The metadata carries the certificates we trust: a redirect could lead off https or to another host.
      redirect: "error",
    });
    if (!res.ok) return { ok: false, reason: `IdP metadata ${url} answered HTTP ${res.status}` };
    text = await res.text();
  } catch (err) {
    const why =
      (err as Error).name === "TimeoutError"
        ? `no answer within ${context.timeoutMs} ms`
        : String((err as Error).cause ?? (err as Error).message);
    return { ok: false, reason: `IdP metadata ${url} is not reachable: ${why}` };
  }
  if (text.length > MAX_METADATA_BYTES)
    return { ok: false, reason: `IdP metadata ${url} is larger than 1 MB` };
  let found: IdpLookup;
  try {
    found = parseMetadata(text, config.idpEntityId, url);
  } catch (err) {
    return { ok: false, reason: `IdP metadata ${url} is not valid XML: ${(err as Error).message}` };
  }
  if (found.ok) {
    // People type their IdP password on the page behind it.
    const sso = found.idp.ssoUrl;
    const problem = /^https?:\/\//i.test(sso)
      ? plainHttpProblem(sso, config.allowInsecureHttp)?.message
      : "must be an https URL";
    if (problem !== undefined) {
      return { ok: false, reason: `IdP metadata ${url} names SingleSignOnService ${sso}: ${problem}` };
    }
  }
  return found;
}

/** Picks the IdP's EntityDescriptor (by `entityId` when the document holds several). */
export function parseMetadata(text: string, entityId: string | undefined, url: string): IdpLookup {
  const doc = parseXml(text);
  const entities = (select("//md:EntityDescriptor[md:IDPSSODescriptor]", doc) as Element[]).filter(
    (e) => entityId === undefined || e.getAttribute("entityID") === entityId,
  );
  const [entity] = entities;
  if (entity === undefined || entities.length > 1) {
    return {
      ok: false,
      reason: `IdP metadata ${url} holds ${entities.length} IdP entities${entityId === undefined ? "" : ` with entityID ${entityId}`}; expected exactly one`,
    };
  }
  const sso = select(
    `string(md:IDPSSODescriptor/md:SingleSignOnService[@Binding='${REDIRECT_BINDING}']/@Location)`,
    entity,
  ) as string;
  // SAML metadata 2.4.1.1: a KeyDescriptor without `use` serves signing and encryption alike.
  const certs = (
    select(
      "md:IDPSSODescriptor/md:KeyDescriptor[not(@use) or @use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate",
      entity,
    ) as Node[]
  )
    .map((n) => (n.textContent ?? "").replace(/\s+/g, ""))
    .filter((c) => c !== "");
  if (sso === "")
    return { ok: false, reason: `IdP metadata ${url} has no HTTP-Redirect SingleSignOnService` };
  if (certs.length === 0) return { ok: false, reason: `IdP metadata ${url} has no signing certificate` };
  return { ok: true, idp: { entityId: entity.getAttribute("entityID") ?? "", ssoUrl: sso, certs } };
}
