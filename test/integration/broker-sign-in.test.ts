/**
 * The sign-in broker end to end: idbridge as OpenID Provider with AD password sign-in on the run's Samba
 * AD DC, driven by an openid-client v6 relying party and a fetch-and-cookie-jar browser.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config/load.js";
import type { RunningService } from "../../src/cli/serve.js";
import {
  adSourceYaml,
  Browser,
  createAdUsers,
  errorSentence,
  FakePeople,
  HESI_TARGET_YAML,
  openPasswordForm,
  recentAudit,
  redeemCode,
  relyingParty,
  serviceYaml,
  signInWithPassword,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type RelyingParty,
} from "../helpers/broker-env.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const SECRET = "portal-secret-0123456789abcdef0123456789";

/** A loopback endpoint that records back-channel logout tokens. */
async function logoutReceiver(): Promise<{ url: string; tokens: string[]; server: Server }> {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      const token = new URLSearchParams(body).get("logout_token");
      if (token !== null) tokens.push(token);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bc`, tokens, server };
}

describe.skipIf(samba === null)("sign-in broker with AD password sign-in", () => {
  const info = samba!;
  const tmp = tempDir();
  let users: AdUsers;
  let receiver: Awaited<ReturnType<typeof logoutReceiver>>;
  let config: Config;
  let service: RunningService;
  const people = new FakePeople();
  let portal: RelyingParty;
  let second: RelyingParty;
  let issuer: string;

  function yaml(extra = ""): string {
    return `${serviceYaml(tmp.dir)}${adSourceYaml(info, users.ou)}
signIn:
  clients:
    - clientId: portal
      name: 报销平台
      clientSecret: "${SECRET}"
      redirectUris: ["https://portal.example.test/cb"]
      postLogoutRedirectUris: ["https://portal.example.test/bye"]
      backchannelLogoutUri: "${receiver.url}"
      target: hesi-main
    - clientId: second
      redirectUris: ["https://second.example.test/cb"]
${extra}${HESI_TARGET_YAML}`;
  }

  beforeAll(async () => {
    users = await createAdUsers(info, "broker", ["alice", "bob", "disabled"]);
    receiver = await logoutReceiver();
    config = writeConfig(tmp.dir, yaml());
    service = await start(config, { people });
    issuer = `${service.url}/oidc`;
    portal = await relyingParty(issuer, {
      clientId: "portal",
      clientSecret: SECRET,
      redirectUri: "https://portal.example.test/cb",
    });
    second = await relyingParty(issuer, {
      clientId: "second",
      redirectUri: "https://second.example.test/cb",
    });
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    receiver?.server.close();
    await users?.remove();
    tmp.remove();
  });

  /** Alice signed in at the portal in `browser`: the request, where she landed and the portal's tokens. */
  async function signInAlice(browser: Browser) {
    const { request, done } = await signInWithPassword(
      browser,
      portal,
      "broker-alice",
      users.password.alice!,
    );
    return { request, done, tokens: await redeemCode(portal, done, request) };
  }

  it("publishes discovery with code flow, S256 PKCE, logout endpoints and our claims", async () => {
    const meta = portal.config.serverMetadata();
    expect(meta.issuer).toBe(issuer);
    expect(meta.response_types_supported).toContain("code");
    expect(meta.code_challenge_methods_supported).toStrictEqual(["S256"]);
    expect(meta.end_session_endpoint).toBe(`${issuer}/session/end`);
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.claims_supported).toEqual(
      expect.arrayContaining(["sub", "name", "email", "employee_no", "departments", "roles"]),
    );
  });

  it("signs in with an AD password and issues an ID token whose sub is the person and roles are the client's", async () => {
    const browser = new Browser(service.url);
    const { tokens } = await signInAlice(browser);
    const claims = tokens.claims()!;
    const personId = people.bySubject.get(people.resolved.at(-1)!.subject)!;
    expect(claims.sub).toBe(personId);
    expect(claims).toMatchObject({ name: "Test alice", roles: ["报销提交人"], departments: ["财务部"] });
    expect(claims.amr).toStrictEqual(["pwd"]);
    const info = await oidc.fetchUserInfo(portal.config, tokens.access_token, personId);
    expect(info).toMatchObject({
      sub: personId,
      email: "broker-alice@corp.example.test",
      roles: ["报销提交人"],
    });
  });

  it("rotates refresh tokens: the old one is refused after use", async () => {
    const browser = new Browser(service.url);
    const { tokens: first } = await signInAlice(browser);
    expect(first.refresh_token).toBeDefined();
    const second = await oidc.refreshTokenGrant(portal.config, first.refresh_token!);
    expect(second.refresh_token).toBeDefined();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    await expect(oidc.refreshTokenGrant(portal.config, first.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });
  });

  it("completes a second client's authorization silently with the session cookie", async () => {
    const browser = new Browser(service.url);
    const { tokens: one } = await signInAlice(browser);
    const again = await second.authorizationRequest();
    const landing = await browser.go(again.url);
    const two = await redeemCode(second, landing, again);
    expect(two.claims()!.sub).toBe(one.claims()!.sub);
    // The second client has no target: no roles claimed for it.
    expect(two.claims()!.roles).toStrictEqual([]);
  });

  it("changes the session id at sign-in (a planted session cookie is not kept)", async () => {
    const browser = new Browser(service.url);
    await signInAlice(browser);
    const before = browser.jar.cookies.get("idb_session");
    expect(before).toBeDefined();
    // Sign in again in the same browser (prompt=login): the session id must change.
    const { done } = await signInWithPassword(browser, portal, "broker-alice", users.password.alice!, {
      prompt: "login",
    });
    expect(done.kind).toBe("away");
    const after = browser.jar.cookies.get("idb_session");
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  it("refuses an authorization request without PKCE", async () => {
    const browser = new Browser(service.url);
    const url = oidc.buildAuthorizationUrl(portal.config, {
      redirect_uri: portal.redirectUri,
      scope: "openid",
      state: "s",
    });
    const landing = await browser.go(url);
    expect(landing.kind).toBe("away");
    if (landing.kind !== "away") return;
    expect(landing.url.searchParams.get("error")).toBe("invalid_request");
    expect(landing.url.searchParams.get("error_description")).toMatch(/PKCE/);
  });

  it.each([
    ["a trailing slash", "https://portal.example.test/cb/"],
    ["a different case", "https://PORTAL.example.test/CB"],
    ["an extra query", "https://portal.example.test/cb?x=1"],
    ["another path", "https://portal.example.test/cb2"],
  ])("refuses a redirect_uri with %s, with a plain page and no redirect", async (_what, uri) => {
    const browser = new Browser(service.url);
    const request = await portal.authorizationRequest({ redirect_uri: uri });
    const landing = await browser.go(request.url);
    expect(landing.kind).toBe("page");
    if (landing.kind !== "page") return;
    expect(landing.status).toBe(400);
    expect(landing.html).toContain("请求无效。");
    expect(landing.html).not.toContain("redirect_uri");
  });

  it("refuses a code used twice", async () => {
    const browser = new Browser(service.url);
    const { request, done } = await signInAlice(browser);
    await expect(redeemCode(portal, done, request)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("shows a wrong password as a sentence in the user's language and audits it without the password", async () => {
    const browser = new Browser(service.url, undefined, "en-US,en;q=0.9");
    const wrong = "Wrong1!password";
    const { done } = await signInWithPassword(browser, portal, "broker-bob", wrong);
    expect(done.kind).toBe("page");
    if (done.kind !== "page") return;
    expect(done.status).toBe(401);
    expect(errorSentence(done.html)).toBe("The user name or password is not right.");
    const entries = await recentAudit(config.store.url, 20);
    const failed = entries.filter((e) => e.action === "login.failed").at(-1)!;
    expect(failed.details).toMatchObject({
      source: "corp-ad",
      code: "INVALID_CREDENTIALS",
      login: "broker-bob",
      clientId: "portal",
    });
    expect(JSON.stringify(entries)).not.toContain(wrong);
  });

  it("shows a disabled AD account as a sentence", async () => {
    const browser = new Browser(service.url);
    const { done } = await signInWithPassword(browser, portal, "broker-disabled", users.password.disabled!);
    expect(done.kind === "page" && errorSentence(done.html)).toBe("此账号已被停用，请联系管理员。");
  });

  it("shows the not-provisioned page for an identity no person has", async () => {
    people.resolveFailure.set("broker-bob", { ok: false, code: "NOT_PROVISIONED", reason: "no link" });
    try {
      const browser = new Browser(service.url);
      const { done } = await signInWithPassword(browser, portal, "broker-bob", users.password.bob!);
      expect(done.kind).toBe("page");
      if (done.kind !== "page") return;
      expect(done.status).toBe(403);
      expect(done.html).toContain("您的账号尚未开通，请联系管理员。");
    } finally {
      people.resolveFailure.delete("broker-bob");
    }
  });

  it("shows a sentence and audits the attempt when resolving the person fails", async () => {
    people.throwFor.add("broker-bob");
    try {
      const browser = new Browser(service.url);
      const { done } = await signInWithPassword(browser, portal, "broker-bob", users.password.bob!);
      expect(done.kind === "page" && errorSentence(done.html)).toBe("出现了问题，请稍后重试。");
      const last = (await recentAudit(config.store.url, 5)).at(-1)!;
      expect(last).toMatchObject({
        action: "login.failed",
        details: { code: "INTERNAL", source: "corp-ad" },
      });
    } finally {
      people.throwFor.delete("broker-bob");
    }
  });

  it("refuses a password post without the page's CSRF token", async () => {
    const browser = new Browser(service.url);
    const { form } = await openPasswordForm(browser, portal);
    const done = await browser.go(form.action, {
      form: { csrf: "forged.x", login: "broker-alice", password: users.password.alice! },
    });
    expect(done.kind === "page" && done.status).toBe(403);
  });

  it("refuses a callback with an unknown state, and audits it", async () => {
    const browser = new Browser(service.url);
    const landing = await browser.go(`/login/callback/corp-ad?state=${"ab".repeat(32)}&code=x`);
    expect(landing.kind === "page" && landing.status).toBe(400);
    expect(landing.kind === "page" && landing.html).toContain("登录请求已失效，请重新登录。");
  });

  it("refuses an off-site returnTo at /login/return", async () => {
    const browser = new Browser(service.url);
    for (const state of ["https://evil.example.test/", "//evil.example.test/x", "/\\evil.example.test"]) {
      const landing = await browser.go(`/login/return?state=${encodeURIComponent(state)}`);
      expect(landing.kind === "page" && landing.status).toBe(400);
    }
    const ok = await browser.go("/login/return?state=%2Fhealthz");
    expect(ok.kind === "page" && ok.url.pathname).toBe("/healthz");
  });

  it("answers an oversized password post with a clear 413 page", async () => {
    const browser = new Browser(service.url);
    const { form } = await openPasswordForm(browser, portal);
    const done = await browser.go(form.action, {
      form: { csrf: form.csrf, login: "x", password: "y".repeat(40_000) },
    });
    expect(done.kind === "page" && done.status).toBe(413);
    expect(done.kind === "page" && done.html).toContain("请求无效。");
  });

  it("ends the session at RP-initiated logout and tells the back-channel client", async () => {
    const browser = new Browser(service.url);
    const { tokens } = await signInAlice(browser);
    const before = receiver.tokens.length;
    const end = oidc.buildEndSessionUrl(portal.config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: "https://portal.example.test/bye",
    });
    const confirm = await browser.go(end);
    if (confirm.kind !== "page") throw new Error("expected the logout confirmation");
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.html)?.[1];
    const action = /action="([^"]+)"/.exec(confirm.html)?.[1];
    const out = await browser.go(action!, { form: { xsrf: xsrf!, logout: "yes" } });
    expect(out.kind === "away" && out.url.origin + out.url.pathname).toBe("https://portal.example.test/bye");
    // The back channel is told (asynchronously).
    for (let i = 0; i < 50 && receiver.tokens.length === before; i++)
      await new Promise((r) => setTimeout(r, 50));
    const logoutToken = receiver.tokens.at(-1)!;
    const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${issuer}/jwks`)), {
      issuer,
      audience: "portal",
    });
    expect(payload.sub).toBe(tokens.claims()!.sub);
    expect(payload.events).toHaveProperty(["http://schemas.openid.net/event/backchannel-logout"]);
    // The next authorization shows the login page again.
    const next = await portal.authorizationRequest();
    const landing = await browser.go(next.url);
    expect(landing.kind === "page" && landing.url.pathname).toMatch(/^\/login\//);
    expect(decodeJwt(tokens.id_token!).sid).toBe(payload.sid);
    const entries = await recentAudit(config.store.url, 20);
    expect(entries.filter((e) => e.action === "logout.succeeded").at(-1)?.details).toMatchObject({
      personId: payload.sub,
      clientId: "portal",
    });
  });
});
