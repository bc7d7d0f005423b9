/**
 * SAML 2.0 Web Browser SSO with idbridge as the SP: HTTP-Redirect AuthnRequest out, HTTP-POST Response
 * back. node-saml checks the signatures, the Audience, the status and the timestamps; this module adds
 * what it leaves off (Destination, Recipient, Issuer, InResponseTo from the broker's store, one assertion
 * only, assertion-id replay) and turns every failure into a result.
 */
import {
  generateServiceProviderMetadata,
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
  type CacheItem,
  type CacheProvider,
  type Profile,
} from "@node-saml/node-saml";
import xpath from "xpath";
import { AppError } from "../../domain/errors.js";
import type { SourcePerson } from "../snapshot.js";
import type {
  FlowInput,
  FlowState,
  RedirectSignIn,
  SignInConnector,
  SignInContext,
  SignInOutcome,
} from "../sign-in.js";
import type { SamlConfig } from "./config.js";
import { idpLookup, type IdpSettings } from "./idp.js";
import { parseXml } from "./xml.js";

const NS = {
  samlp: "urn:oasis:names:tc:SAML:2.0:protocol",
  saml: "urn:oasis:names:tc:SAML:2.0:assertion",
};
const select = xpath.useNamespaces(NS);
const BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/** A Response with one signed assertion is a few kilobytes; refuse what no IdP sends before parsing it. */
const MAX_RESPONSE_CHARS = 512 * 1024;
/** Replay records outlive the assertion by the clock skew; never kept longer than a day. */
const MAX_REPLAY_TTL_SECONDS = 24 * 60 * 60;

/** Opens the SAML sign-in connector of one source. */
export function openSamlSignIn(context: SignInContext, config: SamlConfig): SignInConnector {
  const spEntityId = config.spEntityId ?? `${context.publicUrl}/saml/${context.sourceId}/metadata`;
  const lookup = idpLookup(context, config);
  const skewMs = config.clockSkewSeconds * 1000;

  function samlFor(idp: IdpSettings, callbackUrl: string, cache: CacheProvider, solicited: boolean): SAML {
    return new SAML({
      entryPoint: idp.ssoUrl,
      idpCert: [...idp.certs],
      idpIssuer: idp.entityId,
      issuer: spEntityId,
      audience: spEntityId,
      callbackUrl,
      identifierFormat: config.nameIdFormat,
      // Both always: an unsigned assertion inside a signed response (or the reverse) is refused.
      wantAuthnResponseSigned: true,
      wantAssertionsSigned: true,
      // Unsolicited responses have no request of ours; one that names a request anyway is refused.
      validateInResponseTo: solicited ? ValidateInResponseTo.always : ValidateInResponseTo.ifPresent,
      cacheProvider: cache,
      acceptedClockSkewMs: skewMs,
      // The default PasswordProtectedTransport context makes ADFS refuse Windows integrated sign-in.
      disableRequestedAuthnContext: true,
    });
  }

  const web: RedirectSignIn = {
    kind: "redirect",
    async begin(input) {
      const found = await lookup();
      // begin has no outcome to return: the broker shows SOURCE_UNAVAILABLE for this error, like OIDC's.
      if (!found.ok) throw new AppError("SOURCE_UNAVAILABLE", `${context.sourceId}: ${found.reason}`);
      const cache = captureCache();
      const url = await samlFor(found.idp, input.callbackUrl, cache, true).getAuthorizeUrlAsync(
        input.state,
        undefined,
        {},
      );
      if (cache.saved === undefined) throw new Error("node-saml made an AuthnRequest without saving its id");
      return { url, keep: { requestId: cache.saved.id, requestedAt: cache.saved.at } };
    },

    complete: (input) => completeSignIn(input),
  };

  async function completeSignIn(
    input: FlowInput & { readonly params: Readonly<Record<string, string>>; readonly keep: FlowState | null },
  ): Promise<SignInOutcome> {
    if (input.keep !== null && !input.keep.requestId) {
      return invalid("the kept flow state holds no request id");
    }
    const requestId = input.keep?.requestId ?? null;
    if (requestId === null && !config.allowUnsolicited) {
      return invalid("an unsolicited (IdP-initiated) response was refused; allowUnsolicited is off");
    }
    if (requestId !== null && input.params.RelayState !== input.state) {
      return invalid("RelayState does not match the sign-in attempt");
    }
    const encoded = input.params.SAMLResponse;
    if (encoded === undefined || encoded === "") return invalid("the callback carries no SAMLResponse");
    if (encoded.length > MAX_RESPONSE_CHARS) return invalid("the SAMLResponse is larger than 512 KB");

    const found = await lookup();
    if (!found.ok) return { ok: false, code: "SOURCE_UNAVAILABLE", reason: found.reason };
    const idp = found.idp;

    let profile: Profile;
    try {
      const validated = await samlFor(
        idp,
        input.callbackUrl,
        fixedCache(requestId, input.keep?.requestedAt ?? ""),
        requestId !== null,
      ).validatePostResponseAsync({ SAMLResponse: encoded });
      if (validated.profile === null) return invalid("the response holds no assertion");
      profile = validated.profile;
    } catch (err) {
      if (err instanceof SamlStatusError) {
        return invalid(`the IdP did not sign the person in: ${short(err.message)}`);
      }
      return invalid(`node-saml refused the response: ${short((err as Error).message)}`);
    }

    // node-saml verified the signatures over this very document; the checks below read it again for what
    // node-saml does not compare.
    let checked: { readonly assertionId: string; readonly notOnOrAfter: number };
    try {
      const doc = parseXml(Buffer.from(encoded, "base64").toString("utf8"));
      const problem = checkResponse(doc, { idp, callbackUrl: input.callbackUrl, requestId });
      if (typeof problem === "string") return invalid(problem);
      checked = problem;
    } catch (err) {
      return invalid(`the response is not valid XML: ${short((err as Error).message)}`);
    }

    // SAML core 8.3.1: a NameID without Format is of the unspecified format.
    const format = profile.nameIDFormat || "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
    if (format !== config.nameIdFormat) {
      return invalid(`the NameID format is ${format}, configured is ${config.nameIdFormat}`);
    }
    if (!profile.nameID) return invalid("the assertion has no NameID");

    const ttl = Math.min(
      MAX_REPLAY_TTL_SECONDS,
      Math.max(1, Math.ceil((checked.notOnOrAfter + skewMs - context.now().getTime()) / 1000)),
    );
    if (!(await context.once(`saml:${idp.entityId}:${checked.assertionId}`, ttl))) {
      return invalid(`assertion ${checked.assertionId} was used before (replay)`);
    }
    return {
      ok: true,
      identity: { sourceId: context.sourceId, subject: profile.nameID, person: personOf(profile) },
    };

    function checkResponse(
      doc: Document,
      expect: { readonly idp: IdpSettings; readonly callbackUrl: string; readonly requestId: string | null },
    ): string | { readonly assertionId: string; readonly notOnOrAfter: number } {
      const now = context.now().getTime();
      const response = doc.documentElement;
      if (response.localName !== "Response" || response.namespaceURI !== NS.samlp) {
        return "the document is not a samlp:Response";
      }
      // One assertion in the whole document: a second one anywhere is how signature wrapping hides.
      const assertions = select("//saml:Assertion | //saml:EncryptedAssertion", doc) as Element[];
      const [assertion] = assertions;
      if (assertion === undefined || assertions.length !== 1 || assertion.parentNode !== response) {
        return `the response holds ${assertions.length} assertions where exactly one is allowed`;
      }
      // SAML bindings 3.5.5.2: a signed POST response carries Destination, which must be our ACS URL.
      const destination = response.getAttribute("Destination");
      if (destination !== expect.callbackUrl) {
        return `Destination ${destination ?? "(none)"} is not this callback ${expect.callbackUrl}`;
      }
      // SAML core 3.2.2: the Response Issuer is optional, the Assertion Issuer is not (2.3.3).
      const responseIssuers = select("samlp:Response/saml:Issuer", doc) as Element[];
      if (responseIssuers.some((i) => i.textContent?.trim() !== expect.idp.entityId)) {
        return `the response Issuer is not the IdP ${expect.idp.entityId}`;
      }
      const issuer = select("string(saml:Issuer)", assertion) as string;
      if (issuer.trim() !== expect.idp.entityId) {
        return `the assertion Issuer ${issuer.trim() || "(none)"} is not the IdP ${expect.idp.entityId}`;
      }
      const inResponseTo = response.getAttribute("InResponseTo") || null;
      if (expect.requestId !== null && inResponseTo !== expect.requestId) {
        return "InResponseTo does not name the request of this sign-in";
      }
      const assertionId = assertion.getAttribute("ID");
      if (!assertionId) return "the assertion has no ID";

      // SAML profiles 4.1.4.2: a bearer SubjectConfirmation for our ACS, in time, for our request.
      const confirmations = select(
        `saml:Subject/saml:SubjectConfirmation[@Method='${BEARER}']/saml:SubjectConfirmationData`,
        assertion,
      ) as Element[];
      if (confirmations.length === 0) return "the assertion has no bearer SubjectConfirmation";
      let lastProblem = "";
      let notOnOrAfter = Number.NaN;
      for (const data of confirmations) {
        const recipient = data.getAttribute("Recipient");
        const until = Date.parse(data.getAttribute("NotOnOrAfter") ?? "");
        const from = Date.parse(data.getAttribute("NotBefore") ?? "");
        if (recipient !== expect.callbackUrl) {
          lastProblem = `SubjectConfirmation Recipient ${recipient ?? "(none)"} is not this callback ${expect.callbackUrl}`;
        } else if (Number.isNaN(until)) {
          lastProblem = "SubjectConfirmationData has no NotOnOrAfter";
        } else if (now - skewMs >= until) {
          lastProblem = `the assertion expired at ${new Date(until).toISOString()}`;
        } else if (!Number.isNaN(from)) {
          lastProblem = "a bearer SubjectConfirmationData must not carry NotBefore";
        } else if ((data.getAttribute("InResponseTo") || null) !== inResponseTo) {
          lastProblem = "SubjectConfirmationData InResponseTo differs from the response's";
        } else {
          notOnOrAfter = until;
          lastProblem = "";
          break;
        }
      }
      if (lastProblem !== "") return lastProblem;

      const conditions = select("saml:Conditions", assertion) as Element[];
      for (const c of conditions) {
        const from = Date.parse(c.getAttribute("NotBefore") ?? "");
        const until = Date.parse(c.getAttribute("NotOnOrAfter") ?? "");
        if (!Number.isNaN(from) && now + skewMs < from) {
          return `the assertion is not valid before ${new Date(from).toISOString()}`;
        }
        if (!Number.isNaN(until)) {
          if (now - skewMs >= until) return `the assertion expired at ${new Date(until).toISOString()}`;
          notOnOrAfter = Math.max(notOnOrAfter, until);
        }
      }
      return { assertionId, notOnOrAfter };
    }
  }

  function personOf(profile: Profile): SourcePerson {
    const attrs = (profile.attributes ?? {}) as Record<string, unknown>;
    const one = (name: string | undefined): string | undefined => {
      if (name === undefined) return undefined;
      const value = attrs[name];
      const first = Array.isArray(value) ? (value[0] as unknown) : value;
      return typeof first === "string" && first !== "" ? first : undefined;
    };
    // node-saml collapses a single value to a string.
    const rawGroups = attrs[config.attributes.groups];
    const groups = (Array.isArray(rawGroups) ? rawGroups : rawGroups === undefined ? [] : [rawGroups]).filter(
      (g): g is string => typeof g === "string" && g !== "",
    );
    const username = one(config.attributes.username);
    const name = one(config.attributes.name);
    const email = one(config.attributes.email);
    const employeeNo = one(config.attributes.employeeNo);
    return {
      subject: profile.nameID,
      ...(username === undefined ? {} : { username }),
      ...(name === undefined ? {} : { name }),
      ...(email === undefined ? {} : { email }),
      ...(employeeNo === undefined ? {} : { employeeNo }),
      departments: [],
      managers: [],
      // The IdP signed the person in just now, which it does only for active accounts.
      status: "active",
      attributes: { groups },
    };
  }

  return {
    sourceId: context.sourceId,
    web,
    metadata: ({ callbackUrl }) =>
      generateServiceProviderMetadata({
        issuer: spEntityId,
        callbackUrl,
        identifierFormat: config.nameIdFormat,
        wantAssertionsSigned: true,
      }),
    close: async () => undefined,
  };
}

function invalid(reason: string): SignInOutcome {
  return { ok: false, code: "INVALID_RESPONSE", reason };
}

/** node-saml messages can quote response values; keep them to one short line. */
function short(message: string): string {
  const line = message.split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * A cache that only records the id node-saml generates for the AuthnRequest and its instant, for the
 * broker to keep.
 */
function captureCache(): CacheProvider & { saved?: { readonly id: string; readonly at: string } } {
  const cache: CacheProvider & { saved?: { readonly id: string; readonly at: string } } = {
    async saveAsync(key: string, value: string): Promise<CacheItem> {
      cache.saved = { id: key, at: value };
      return { value, createdAt: Date.now() };
    },
    getAsync: async () => null,
    removeAsync: async () => null,
  };
  return cache;
}

/**
 * The one request id the broker kept for this attempt, with its instant (node-saml ages requests by it);
 * nothing else is ever valid.
 */
function fixedCache(requestId: string | null, requestedAt: string): CacheProvider {
  return {
    saveAsync: async () => null,
    getAsync: async (key) => (requestId !== null && key === requestId ? requestedAt : null),
    removeAsync: async () => null,
  };
}
