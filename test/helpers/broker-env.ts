/**
 * The sign-in broker under test: idbridge started in-process with AD password sign-in on the run's Samba
 * AD DC, users of its own in an OU, a browser made of fetch and a cookie jar, and an openid-client v6
 * relying party.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Attribute, Change, Client } from "ldapts";
import * as oidc from "openid-client";
import { pino } from "pino";
import type { PersonClaims, PersonDirectory, ResolveOutcome } from "../../src/broker/contracts.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { startService, type RunningService, type ServiceOverrides } from "../../src/cli/serve.js";
import type { SignInIdentity } from "../../src/sources/sign-in.js";
import { openStore, type AuditRecord } from "../../src/store/index.js";
import { AD_BASE } from "../fixtures/ldap/ad-directory.js";
import type { SambaInfo } from "../peers/index.js";

/** Passwords made up per run; they meet AD's default complexity rules. */
export const makePassword = (): string => `Pw1!${randomBytes(9).toString("base64url")}`;

/** AD users of one test file, in an OU of their own. */
export interface AdUsers {
  readonly ou: string;
  readonly password: Record<string, string>;
  remove(): Promise<void>;
}

/** Creates `names` (sAMAccountName `<prefix>-<name>`) under a fresh OU; names starting `disabled` are disabled. */
export async function createAdUsers(
  info: SambaInfo,
  prefix: string,
  names: readonly string[],
): Promise<AdUsers> {
  const ou = `OU=${prefix},${AD_BASE}`;
  const admin = new Client({ url: info.url, tlsOptions: { ca: readFileSync(info.caFile) } });
  await admin.bind(info.bindDn, info.bindPassword);
  await admin.add(ou, { objectClass: ["top", "organizationalUnit"], ou: prefix });
  const password: Record<string, string> = {};
  for (const name of names) {
    const sam = `${prefix}-${name}`.slice(0, 20);
    const dn = `CN=${sam},${ou}`;
    password[name] = makePassword();
    await admin.add(dn, {
      objectClass: ["top", "person", "organizationalPerson", "user"],
      cn: sam,
      sAMAccountName: sam,
      userPrincipalName: `${sam}@corp.example.test`,
      displayName: `Test ${name}`,
      mail: `${sam}@corp.example.test`,
      userAccountControl: "514",
    });
    await admin.modify(dn, [
      new Change({
        operation: "replace",
        modification: new Attribute({
          type: "unicodePwd",
          values: [Buffer.from(`"${password[name]}"`, "utf16le")],
        }),
      }),
      new Change({
        operation: "replace",
        modification: new Attribute({
          type: "userAccountControl",
          values: [name.startsWith("disabled") ? "514" : "512"],
        }),
      }),
    ]);
  }
  return {
    ou,
    password,
    async remove() {
      for (const name of names)
        await admin.del(`CN=${`${prefix}-${name}`.slice(0, 20)},${ou}`).catch(() => undefined);
      await admin.del(ou).catch(() => undefined);
      await admin.unbind();
    },
  };
}

/**
 * A PersonDirectory that knows people by source subject, with claims the test sets. For what the real
 * directory cannot set up cheaply: a resolution that throws, a refusal on demand, fixed claims without a
 * policy; a test that only needs a person uses the real one (`signIn.justInTime`).
 */
export class FakePeople implements PersonDirectory {
  readonly bySubject = new Map<string, string>();
  readonly claimsOf = new Map<string, PersonClaims | null>();
  readonly resolveFailure = new Map<string, ResolveOutcome>();
  /** Usernames whose resolution throws (a broken policy, a store that is down). */
  readonly throwFor = new Set<string>();
  resolved: SignInIdentity[] = [];

  async resolve(identity: SignInIdentity): Promise<ResolveOutcome> {
    this.resolved.push(identity);
    if (this.throwFor.has(identity.person.username ?? "")) throw new Error("store unreachable (test)");
    const failure = this.resolveFailure.get(identity.person.username ?? "");
    if (failure !== undefined) return failure;
    let personId = this.bySubject.get(identity.subject);
    if (personId === undefined) {
      personId = `p_${randomBytes(10).toString("hex")}`;
      this.bySubject.set(identity.subject, personId);
      this.claimsOf.set(personId, {
        name: identity.person.name ?? identity.subject,
        ...(identity.person.email === undefined ? {} : { email: identity.person.email }),
        employee_no: "E-1",
        departments: ["财务部"],
        roles: ["报销提交人"],
      });
    }
    return { ok: true, personId, via: "link" };
  }

  async claims(personId: string, targetId: string | undefined): Promise<PersonClaims | null> {
    const claims = this.claimsOf.get(personId);
    if (claims === undefined || claims === null) return null;
    return targetId === undefined ? { ...claims, roles: [] } : claims;
  }
}

/** Writes a config file and loads it. */
export function writeConfig(dir: string, yaml: string): Config {
  const file = join(dir, "idbridge.yaml");
  writeFileSync(file, yaml);
  return loadConfig({ file, env: {}, cwd: dir });
}

/** Where a test's idbridge listens, keeps its store and keys; defaults under `dir`. */
export interface ServiceYamlOptions {
  /** The store URL (default SQLite `idbridge.db` in `dir`). */
  readonly storeUrl?: string;
  /** The keys directory (default `keys` in `dir`). */
  readonly keysDir?: string;
  /** A public URL in front of the service (a reverse proxy it trusts). */
  readonly publicUrl?: string;
}

/** The config lines every broker test starts with: a loopback server, its store and keys, a silent log. */
export function serviceYaml(dir: string, options: ServiceYamlOptions = {}): string {
  const proxy =
    options.publicUrl === undefined ? "" : `, publicUrl: "${options.publicUrl}", trustProxy: true`;
  return `
server: { host: 127.0.0.1, port: 0${proxy} }
store: { url: "${options.storeUrl ?? `sqlite:${dir}/idbridge.db`}" }
keys: { dir: "${options.keysDir ?? `${dir}/keys`}" }
log: { level: silent }
`;
}

/** The `corp-ad` LDAP source on the run's Samba AD DC, reading the users of `ou` only. */
export function adSourceYaml(info: SambaInfo, ou: string): string {
  return `
sources:
  - id: corp-ad
    type: ldap
    config:
      url: "${info.url}"
      flavor: ad
      caFile: "${info.caFile}"
      bindDn: "${info.bindDn}"
      bindPassword: "${info.bindPassword}"
      users: { baseDns: ["${ou}"] }
      groups: { baseDns: [] }
`;
}

/** The 合思 target `hesi-main` (never called: sign-in only reads its policy) and a sync that never runs. */
export const HESI_TARGET_YAML = `
targets:
  - id: hesi-main
    type: hesi
    config: { baseUrl: "https://hesi.example.test", appKey: k, appSecurity: "s-0123456789abcdef" }
sync: { fullEveryMinutes: 0, incrementalEveryMinutes: 0 }
`;

/** A temp directory removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-broker-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts idbridge quietly. */
export function start(config: Config, overrides: ServiceOverrides = {}): Promise<RunningService> {
  return startService(config, pino({ level: "silent" }), overrides);
}

/** Cookies of one browser: name → value, as sent back (paths are ignored: tests run one flow at a time). */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /expires=Thu, 01 Jan 1970/i.test(a)) || value === "";
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** Where a navigation ended: a page of ours, or a redirect to somewhere else. */
export type Landing =
  | { readonly kind: "page"; readonly url: URL; readonly status: number; readonly html: string }
  | { readonly kind: "away"; readonly url: URL };

/** A browser: follows redirects on `origin`, stops at the first one leaving it. */
export class Browser {
  readonly jar = new CookieJar();
  /** Where requests to `origin` really go (an instance behind a shared public URL); `origin` itself by default. */
  via: string | undefined;

  constructor(
    readonly origin: string,
    readonly userAgent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120 test",
    readonly language = "zh-CN,zh;q=0.9",
  ) {}

  async go(
    url: string | URL,
    init: { method?: string; form?: Record<string, string> } = {},
  ): Promise<Landing> {
    let next = new URL(url, this.origin);
    let method = init.method ?? (init.form ? "POST" : "GET");
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 20; hops++) {
      if (next.origin !== new URL(this.origin).origin) return { kind: "away", url: next };
      const target = this.via === undefined ? next : new URL(`${next.pathname}${next.search}`, this.via);
      const response = await fetch(target, {
        method,
        redirect: "manual",
        headers: {
          cookie: this.jar.header(),
          "user-agent": this.userAgent,
          "accept-language": this.language,
          // Behind the shared public URL, as a reverse proxy would say (the service trusts it then).
          ...(this.via === undefined ? {} : { "x-forwarded-host": next.host, "x-forwarded-proto": "http" }),
          ...(body === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
        },
        ...(body === undefined ? {} : { body }),
      });
      this.jar.take(response);
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        next = new URL(location, next);
        method = "GET";
        body = undefined;
        continue;
      }
      return { kind: "page", url: next, status: response.status, html: await response.text() };
    }
    throw new Error("too many redirects");
  }
}

/** An authorization request of `rp`, sent from `browser`. */
export type AuthorizationRequest = Awaited<ReturnType<RelyingParty["authorizationRequest"]>>;

/** What a token request returns (ID token claims via `claims()`). */
export type Tokens = Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;

/** A fresh authorization request of `rp` in `browser`, up to idbridge's password form. */
export async function openPasswordForm(
  browser: Browser,
  rp: RelyingParty,
  extra?: Record<string, string>,
): Promise<{ request: AuthorizationRequest; form: { action: string; csrf: string } }> {
  const request = await rp.authorizationRequest(extra);
  const page = await browser.go(request.url);
  if (page.kind !== "page") throw new Error(`expected the login page, went to ${page.url.href}`);
  return { request, form: passwordForm(page.html) };
}

/** A password sign-in from a fresh authorization request: where the browser lands after the form. */
export async function signInWithPassword(
  browser: Browser,
  rp: RelyingParty,
  login: string,
  password: string,
  extra?: Record<string, string>,
): Promise<{ request: AuthorizationRequest; done: Landing }> {
  const { request, form } = await openPasswordForm(browser, rp, extra);
  const done = await browser.go(form.action, { form: { csrf: form.csrf, login, password } });
  return { request, done };
}

/** Redeems the code the browser brought back to the client, checking PKCE, state and nonce. */
export async function redeemCode(
  rp: RelyingParty,
  landing: Landing,
  request: AuthorizationRequest,
): Promise<Tokens> {
  if (landing.kind !== "away")
    throw new Error(`expected a redirect to the client, got a page:\n${landing.html}`);
  return oidc.authorizationCodeGrant(rp.config, landing.url, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
  });
}

/** The last `count` audit entries of the store at `url`, oldest first. */
export async function recentAudit(url: string, count = 500): Promise<AuditRecord[]> {
  const store = await openStore({ url });
  try {
    const head = await store.auditHead();
    return await store.readAudit(Math.max(0, head.seq - count), head.seq, count);
  } finally {
    await store.close();
  }
}

/** The first password form of a login page: its action and CSRF token. */
export function passwordForm(html: string): { action: string; csrf: string } {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (action === undefined || csrf === undefined) throw new Error(`no password form on the page:\n${html}`);
  return { action: action.replace(/&amp;/g, "&"), csrf };
}

/** The error sentence of a page, if any. */
export function errorSentence(html: string): string | undefined {
  return /class="error" role="alert">([^<]*)</.exec(html)?.[1];
}

/** An openid-client relying party registered as `clientId`. */
export interface RelyingParty {
  readonly config: oidc.Configuration;
  readonly redirectUri: string;
  /** A fresh authorization request (PKCE S256, state, nonce). */
  authorizationRequest(extra?: Record<string, string>): Promise<{
    url: URL;
    verifier: string;
    state: string;
    nonce: string;
  }>;
}

/** The public client `portal` the broker tests register, as its relying party knows it. */
export const PORTAL = { clientId: "portal", redirectUri: "https://portal.example.test/cb" } as const;

/** Discovers idbridge and returns a relying party for one client. */
export async function relyingParty(
  issuer: string,
  client: { clientId: string; clientSecret?: string; redirectUri: string },
  /** Rewrites the provider's URLs to where it really listens (a shared public URL). */
  route?: () => string,
): Promise<RelyingParty> {
  const routed: oidc.CustomFetch | undefined =
    route === undefined
      ? undefined
      : (url, options) => {
          const u = new URL(url);
          const headers = new Headers((options as RequestInit).headers);
          headers.set("x-forwarded-host", u.host);
          headers.set("x-forwarded-proto", "http");
          return fetch(new URL(`${u.pathname}${u.search}`, route()), {
            ...(options as RequestInit),
            headers,
          });
        };
  const config = await oidc.discovery(
    new URL(issuer),
    client.clientId,
    client.clientSecret === undefined ? {} : { client_secret: client.clientSecret },
    client.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(client.clientSecret),
    {
      execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
      ...(routed === undefined ? {} : { [oidc.customFetch]: routed }),
    },
  );
  if (routed !== undefined) config[oidc.customFetch] = routed;
  return {
    config,
    redirectUri: client.redirectUri,
    async authorizationRequest(extra = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: client.redirectUri,
        scope: "openid profile email roles",
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
        state,
        nonce,
        ...extra,
      });
      return { url, verifier, state, nonce };
    },
  };
}
