/**
 * The `oidc` sign-in source end to end against a real oidc-provider IdP on loopback: the browser is played
 * by fetch following redirects (authorize → login form → callback), the callback's query goes to
 * `complete`. Faults are served by the IdP itself (test/peers/oidc-idp.ts).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/errors.js";
import { oidcConfigSchema, type OidcConfig } from "../../src/sources/oidc/config.js";
import { openOidcSignIn } from "../../src/sources/oidc/sign-in.js";
import { openSignIn } from "../../src/sources/registry.js";
import type {
  RedirectSignIn,
  RedirectStart,
  SignInContext,
  SignInOutcome,
} from "../../src/sources/sign-in.js";
import { startOidcIdp, type OidcIdp, type OidcIdpUser } from "../peers/oidc-idp.js";

const CALLBACK = "http://127.0.0.1:9/login/callback/corp-oidc";
const CLIENT_ID = "idbridge";
const CLIENT_SECRET = randomBytes(24).toString("base64url");

const users: OidcIdpUser[] = [
  {
    username: "alice",
    password: randomBytes(12).toString("base64url"),
    claims: {
      sub: "a1b2-alice",
      email: "alice@corp.example.test",
      email_verified: true,
      name: "Alice Wang",
      preferred_username: "alice@corp.example.test",
      employee_id: "E1001",
    },
  },
  {
    username: "bob",
    password: randomBytes(12).toString("base64url"),
    claims: { sub: "c3d4-bob", email: "bob@corp.example.test", email_verified: false, name: "Bob Li" },
  },
  {
    username: "carol",
    password: randomBytes(12).toString("base64url"),
    claims: { sub: "e5f6-carol", email: "carol@elsewhere.example.test", email_verified: true, name: "Carol" },
  },
];
const alice = users[0]!;

function contextFor(timeoutMs = 5_000): SignInContext {
  return {
    sourceId: "corp-oidc",
    now: () => new Date(),
    timeoutMs,
    publicUrl: "http://127.0.0.1:9",
    once: () => Promise.resolve(true),
  };
}

function connect(issuer: string, extra: Partial<Record<keyof OidcConfig, unknown>> = {}, timeoutMs?: number) {
  const config = oidcConfigSchema.parse({
    issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    allowInsecureHttp: true,
    ...extra,
  });
  const web = openOidcSignIn(contextFor(timeoutMs), config).web;
  if (web === undefined) throw new Error("the oidc connector has no web flow");
  return web;
}

/** A browser: keeps cookies, follows redirects until one leaves for our callback URL. */
class Browser {
  readonly #cookies = new Map<string, string>();

  async get(url: string): Promise<Response> {
    return this.#send(url, { method: "GET" });
  }

  async post(url: string, form: Record<string, string>): Promise<Response> {
    return this.#send(url, {
      method: "POST",
      body: new URLSearchParams(form),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
  }

  /** Follows redirects from `url`; returns the callback's query, or the page that stopped the chain. */
  async follow(first: Promise<Response>, base: string): Promise<Record<string, string> | Response> {
    let response = await first;
    let current = base;
    for (let hops = 0; hops < 10; hops++) {
      const location = response.headers.get("location");
      if (response.status < 300 || response.status >= 400 || location === null) return response;
      const next = new URL(location, current).href;
      if (next.startsWith(CALLBACK)) return Object.fromEntries(new URL(next).searchParams);
      current = next;
      response = await this.get(next);
    }
    throw new Error("too many redirects");
  }

  async #send(url: string, init: RequestInit): Promise<Response> {
    const cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string>), ...(cookie === "" ? {} : { cookie }) },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const at = pair!.indexOf("=");
      this.#cookies.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
    return response;
  }
}

/** Goes to the IdP, signs in with the form (or cancels), returns the callback's query. */
async function authorize(
  authorizeUrl: string,
  user: OidcIdpUser | "cancel",
): Promise<Record<string, string>> {
  const browser = new Browser();
  const form = await browser.follow(browser.get(authorizeUrl), authorizeUrl);
  if (!(form instanceof Response)) return form; // the IdP answered straight away (an error)
  expect(form.status).toBe(200);
  const html = await form.text();
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no login form: ${html.slice(0, 200)}`);
  const target = new URL(action, form.url || authorizeUrl).href;
  const fields: Record<string, string> =
    user === "cancel" ? { cancel: "1" } : { username: user.username, password: user.password, login: "1" };
  const callback = await browser.follow(browser.post(target, fields), target);
  if (callback instanceof Response) {
    throw new Error(`the IdP did not come back: ${callback.status} ${(await callback.text()).slice(0, 200)}`);
  }
  return callback;
}

interface Attempt {
  readonly start: RedirectStart;
  readonly state: string;
  readonly params: Record<string, string>;
}

async function attempt(flow: RedirectSignIn, user: OidcIdpUser | "cancel" = alice): Promise<Attempt> {
  const state = randomBytes(16).toString("base64url");
  const start = await flow.begin({ callbackUrl: CALLBACK, state });
  return { start, state, params: await authorize(start.url, user) };
}

function complete(
  flow: RedirectSignIn,
  a: Attempt,
  change: Partial<{ state: string; keep: Record<string, string> }> = {},
) {
  return flow.complete({
    callbackUrl: CALLBACK,
    state: change.state ?? a.state,
    params: a.params,
    keep: change.keep ?? a.start.keep,
  });
}

function refusal(outcome: SignInOutcome) {
  if (outcome.ok) throw new Error(`expected a refusal, got a sign-in as ${outcome.identity.subject}`);
  return outcome;
}

function identity(outcome: SignInOutcome) {
  if (!outcome.ok) throw new Error(`expected a sign-in, got ${outcome.code}: ${outcome.reason}`);
  return outcome.identity;
}

describe("OIDC sign-in against a real oidc-provider IdP", () => {
  let idp: OidcIdp;
  let other: OidcIdp;
  const clients = [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [CALLBACK] }];

  beforeAll(async () => {
    idp = await startOidcIdp({ users, clients });
    other = await startOidcIdp({ users, clients });
  });
  afterAll(async () => {
    await idp?.stop();
    await other?.stop();
  });

  it("signs in with PKCE S256, state and nonce and keeps a verified email", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const url = new URL(a.start.url);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("state")).toBe(a.state);
    expect(url.searchParams.get("nonce")).toBe(a.start.keep["nonce"]);
    expect(a.params["iss"]).toBe(idp.issuer);
    const who = identity(await complete(flow, a));
    expect(who).toMatchObject({ sourceId: "corp-oidc", subject: "a1b2-alice" });
    expect(who.person).toMatchObject({
      subject: "a1b2-alice",
      username: "alice@corp.example.test",
      name: "Alice Wang",
      email: "alice@corp.example.test",
      employeeNo: "E1001",
      status: "active",
    });
  });

  it("is opened through the source registry for type oidc", async () => {
    const config = oidcConfigSchema.parse({
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      allowInsecureHttp: true,
    });
    const connector = await openSignIn({ id: "corp-oidc", type: "oidc", config }, contextFor());
    expect(connector.sourceId).toBe("corp-oidc");
    const flow = connector.web!;
    expect(identity(await complete(flow, await attempt(flow))).subject).toBe("a1b2-alice");
    await connector.close();
  });

  it("reports SOURCE_UNAVAILABLE when the IdP refuses our client secret", async () => {
    const flow = connect(idp.issuer, { clientSecret: "not-the-secret" });
    const outcome = refusal(await complete(flow, await attempt(flow)));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(outcome.reason).toContain("invalid_client");
    expect(outcome.reason).not.toContain("not-the-secret");
  });

  it("drops an email the IdP does not call verified", async () => {
    const flow = connect(idp.issuer);
    const who = identity(await complete(flow, await attempt(flow, users[1]!)));
    expect(who.subject).toBe("c3d4-bob");
    expect(who.person.name).toBe("Bob Li");
    expect(who.person.email).toBeUndefined();
  });

  it("drops a verified email outside emailDomains", async () => {
    const flow = connect(idp.issuer, { emailDomains: ["corp.example.test"] });
    const who = identity(await complete(flow, await attempt(flow, users[2]!)));
    expect(who.subject).toBe("e5f6-carol");
    expect(who.person.email).toBeUndefined();
  });

  it("works as a public client with PKCE alone", async () => {
    const publicIdp = await startOidcIdp({
      users,
      clients: [{ clientId: "idbridge-public", redirectUris: [CALLBACK] }],
    });
    try {
      const flow = connect(publicIdp.issuer, { clientId: "idbridge-public", clientSecret: undefined });
      expect(identity(await complete(flow, await attempt(flow))).subject).toBe("a1b2-alice");
    } finally {
      await publicIdp.stop();
    }
  });

  it("is refused by the IdP without a PKCE challenge", async () => {
    const flow = connect(idp.issuer);
    const state = randomBytes(16).toString("base64url");
    const start = await flow.begin({ callbackUrl: CALLBACK, state });
    const url = new URL(start.url);
    url.searchParams.delete("code_challenge");
    url.searchParams.delete("code_challenge_method");
    const params = await authorize(url.href, alice);
    expect(params["error"]).toBe("invalid_request");
    const outcome = refusal(await complete(flow, { start, state, params }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
  });

  it("refuses a code redeemed with another PKCE verifier", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const outcome = refusal(
      await complete(flow, a, { keep: { ...a.start.keep, codeVerifier: "x".repeat(64) } }),
    );
    expect(outcome).toMatchObject({ code: "INVALID_RESPONSE" });
    expect(outcome.reason).toContain("invalid_grant");
  });

  it("refuses a response whose state is not this attempt's", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const outcome = refusal(await complete(flow, a, { state: randomBytes(16).toString("base64url") }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    expect(outcome.reason).toContain('"state"');
  });

  it("refuses an ID token whose nonce is not this attempt's", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const outcome = refusal(await complete(flow, a, { keep: { ...a.start.keep, nonce: "another-nonce" } }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    expect(outcome.reason).toContain("OAUTH_JWT_CLAIM_COMPARISON_FAILED");
  });

  it("refuses a response no sign-in asked for", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const outcome = refusal(
      await flow.complete({ callbackUrl: CALLBACK, state: a.state, params: a.params, keep: null }),
    );
    expect(outcome.code).toBe("INVALID_RESPONSE");
  });

  it("refuses a code used a second time", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    identity(await complete(flow, a));
    const outcome = refusal(await complete(flow, a));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    expect(outcome.reason).toContain("invalid_grant");
  });

  it("refuses an ID token with a flipped signature byte from the token endpoint", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    idp.faults.tamperIdTokenSignature = true;
    try {
      const outcome = refusal(await complete(flow, a));
      expect(outcome.code).toBe("INVALID_RESPONSE");
      expect(outcome.reason).toMatch(/signature/i);
    } finally {
      idp.faults.tamperIdTokenSignature = false;
    }
  });

  it("refuses an ID token issued by another issuer than the configured one", async () => {
    // The alias's discovery names itself issuer, its tokens carry the IdP's real issuer, and it does not
    // advertise RFC 9207, so the token's `iss` is the only thing left to catch it.
    const flow = connect(idp.misnamedIssuer);
    const a = await attempt(flow);
    const params = { ...a.params };
    delete params["iss"];
    const outcome = refusal(await complete(flow, { ...a, params }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    expect(outcome.reason).toContain("OAUTH_JWT_CLAIM_COMPARISON_FAILED");
  });

  it("refuses an authorization response from another IdP (RFC 9207 iss mismatch)", async () => {
    const flow = connect(idp.issuer);
    const state = randomBytes(16).toString("base64url");
    const start = await flow.begin({ callbackUrl: CALLBACK, state });
    // Mix-up: the browser is sent to the other IdP with the same request.
    const misdirected = new URL(start.url);
    const otherUrl = new URL(other.issuer);
    misdirected.host = otherUrl.host;
    const params = await authorize(misdirected.href, alice);
    expect(params["iss"]).toBe(other.issuer);
    const outcome = refusal(await complete(flow, { start, state, params }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    expect(outcome.reason).toContain("iss");
  });

  it("requires the iss parameter when the IdP advertises it", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow);
    const params = { ...a.params };
    delete params["iss"];
    const outcome = refusal(await complete(flow, { ...a, params }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
  });

  it("still signs in after the IdP rotates its signing key, fetching the JWKS again", async () => {
    const flow = connect(idp.issuer);
    identity(await complete(flow, await attempt(flow)));
    const before = idp.signingKid();
    const jwksFetches = idp.requests.get("/jwks") ?? 0;
    await idp.rotateKeys();
    expect(idp.signingKid()).not.toBe(before);
    const who = identity(await complete(flow, await attempt(flow)));
    expect(who.subject).toBe("a1b2-alice");
    expect(idp.requests.get("/jwks") ?? 0).toBeGreaterThan(jwksFetches);
  });

  it("reports CANCELLED when the user cancels at the IdP (access_denied)", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow, "cancel");
    expect(a.params["error"]).toBe("access_denied");
    expect(refusal(await complete(flow, a)).code).toBe("CANCELLED");
  });

  it("keeps at most 100 printable ASCII characters of an attacker-chosen 16 KB error parameter", async () => {
    const flow = connect(idp.issuer);
    const a = await attempt(flow, "cancel");
    const error = "x\r\n\u001b[31m" + "é".repeat(50) + "y".repeat(16 * 1024);
    const outcome = refusal(await complete(flow, { ...a, params: { ...a.params, error } }));
    expect(outcome.code).toBe("INVALID_RESPONSE");
    const echoed = outcome.reason.slice(outcome.reason.indexOf("the IdP answered ") + 17);
    expect(echoed).toBe("x???[31m" + "?".repeat(50) + "y".repeat(42));
    expect(outcome.reason).toMatch(/^[\x20-\x7E]+$/);
  });

  it("reports SOURCE_UNAVAILABLE within the timeout when the token endpoint hangs", async () => {
    const flow = connect(idp.issuer, {}, 800);
    const a = await attempt(flow);
    idp.faults.hang = true;
    const started = Date.now();
    try {
      const outcome = refusal(await complete(flow, a));
      expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
      expect(outcome.reason).toContain("800 ms");
    } finally {
      idp.faults.hang = false;
    }
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("fails to begin with SOURCE_UNAVAILABLE while the IdP hangs, and discovers again once it answers", async () => {
    const flow = connect(idp.issuer, {}, 800);
    idp.faults.hang = true;
    const started = Date.now();
    try {
      const error = await flow.begin({ callbackUrl: CALLBACK, state: "s" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe("SOURCE_UNAVAILABLE");
    } finally {
      idp.faults.hang = false;
    }
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(identity(await complete(flow, await attempt(flow))).subject).toBe("a1b2-alice");
  });

  it("reports SOURCE_UNAVAILABLE when the IdP is down", async () => {
    const gone = await startOidcIdp({ users, clients });
    const flow = connect(gone.issuer);
    const a = await attempt(flow);
    await gone.stop();
    const outcome = refusal(await complete(flow, a));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(outcome.reason).toContain("not reachable");
    expect(outcome.reason).not.toContain(a.params["code"]!);
  });
});

describe("oidc config", () => {
  it("refuses an http issuer unless allowInsecureHttp is set for a loopback IdP", () => {
    const base = { clientId: "x" };
    expect(oidcConfigSchema.safeParse({ ...base, issuer: "http://idp.example.test" }).success).toBe(false);
    expect(
      oidcConfigSchema.safeParse({ ...base, issuer: "http://idp.example.test", allowInsecureHttp: true })
        .success,
    ).toBe(false);
    expect(
      oidcConfigSchema.safeParse({ ...base, issuer: "http://127.0.0.1:8080", allowInsecureHttp: true })
        .success,
    ).toBe(true);
    expect(oidcConfigSchema.parse({ ...base, issuer: "https://idp.example.test" }).scopes).toEqual([
      "openid",
      "profile",
      "email",
    ]);
  });
});
