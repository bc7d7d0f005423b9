/**
 * The idbridge SSO session: idle and absolute timeouts (on a pinned clock), a restart on the same SQLite
 * keeps it, and two instances on one PostgreSQL share sign-ins. idbridge is reached at one public URL
 * (`http://idbridge.test`) that the browser and the relying party route to whichever instance a test
 * picks.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { rotateTokenKey } from "../../src/keys/keys.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import {
  adSourceYaml,
  Browser,
  createAdUsers,
  openPasswordForm,
  redeemCode,
  PORTAL,
  relyingParty,
  serviceYaml,
  signInWithPassword,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type RelyingParty,
} from "../helpers/broker-env.js";
import { createDatabase, postgresUrlOrSkip, sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const postgresUrl = postgresUrlOrSkip();
const PUBLIC = "http://idbridge.test";

describe.skipIf(samba === null)("idbridge sessions", () => {
  const info = samba!;
  let users: AdUsers;
  const tmp = tempDir();
  const running: RunningService[] = [];

  beforeAll(async () => {
    users = await createAdUsers(info, "brokersess", ["carol"]);
  }, 60_000);
  afterEach(async () => {
    vi.useRealTimers();
    while (running.length > 0) await running.pop()!.stop();
  });
  afterAll(async () => {
    await users?.remove();
    tmp.remove();
  });

  function config(name: string, storeUrl: string, session = "") {
    return writeConfig(
      tmp.dir,
      `${serviceYaml(tmp.dir, { storeUrl, keysDir: `${tmp.dir}/keys-${name}`, publicUrl: PUBLIC })}${adSourceYaml(info, users.ou)}
identity: { primarySource: corp-ad }
signIn:
  ${session}
  justInTime: true
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`,
    );
  }

  async function startOne(cfg: ReturnType<typeof config>): Promise<RunningService> {
    // The real person directory: carol becomes a person just in time at her first sign-in.
    const service = await start(cfg);
    running.push(service);
    return service;
  }

  /** Carol's password sign-in: where the browser lands, and the request it answers. */
  function signInCarol(browser: Browser, rp: RelyingParty) {
    return signInWithPassword(browser, rp, "brokersess-carol", users.password.carol!);
  }

  /** Whether a new authorization completes without the login page. */
  async function silent(browser: Browser, rp: RelyingParty): Promise<boolean> {
    const request = await rp.authorizationRequest();
    const landing = await browser.go(request.url);
    if (landing.kind === "away") return (await redeemCode(rp, landing, request)).claims()?.sub !== undefined;
    expect(landing.url.pathname).toMatch(/^\/login\//);
    return false;
  }

  function party(route: () => string): Promise<RelyingParty> {
    return relyingParty(`${PUBLIC}/oidc`, PORTAL, route);
  }

  /** A browser that reaches idbridge's public URL at the instance listening on `via`. */
  function publicBrowser(via: string): Browser {
    const browser = new Browser(PUBLIC);
    browser.via = via;
    return browser;
  }

  it("ends a session left unused for the idle time, and keeps one in use", async () => {
    const service = await startOne(
      config("idle", `sqlite:${tmp.dir}/idle.db`, "session: { idleMinutes: 1, absoluteHours: 1 }"),
    );
    const rp = await party(() => service.url);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const used = publicBrowser(service.url);
    expect((await signInCarol(used, rp)).done.kind).toBe("away");
    const idle = publicBrowser(service.url);
    expect((await signInCarol(idle, rp)).done.kind).toBe("away");
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(40_000);
      expect(await silent(used, rp)).toBe(true);
    }
    // 120 s since `idle` was last used, 40 s since `used` was.
    expect(await silent(idle, rp)).toBe(false);
    expect(await silent(used, rp)).toBe(true);
  });

  it("ends a session at the absolute time however much it is used", async () => {
    const service = await startOne(
      config("absolute", `sqlite:${tmp.dir}/absolute.db`, "session: { idleMinutes: 30, absoluteHours: 1 }"),
    );
    const rp = await party(() => service.url);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const browser = publicBrowser(service.url);
    expect((await signInCarol(browser, rp)).done.kind).toBe("away");
    for (let t = 0; t < 3; t++) {
      vi.advanceTimersByTime(20 * 60_000 - 1000);
      expect(await silent(browser, rp)).toBe(true);
    }
    vi.advanceTimersByTime(5000);
    expect(await silent(browser, rp)).toBe(false);
  });

  it("keeps a session over a restart on the same SQLite file", async () => {
    const cfg = config("restart", `sqlite:${tmp.dir}/restart.db`);
    let service = await startOne(cfg);
    const rp = await party(() => service.url);
    const browser = publicBrowser(service.url);
    expect((await signInCarol(browser, rp)).done.kind).toBe("away");
    await running.pop()!.stop();
    service = await startOne(cfg);
    browser.via = service.url;
    expect(await silent(browser, rp)).toBe(true);
  });

  it("keeps verifying a token signed before a key rotation, and the session, after the restart", async () => {
    const cfg = config("rotation", `sqlite:${tmp.dir}/rotation.db`);
    let service = await startOne(cfg);
    const rp = await party(() => service.url);
    const browser = publicBrowser(service.url);
    const { request, done } = await signInCarol(browser, rp);
    const before = await redeemCode(rp, done, request);
    const oldKid = decodeProtectedHeader(before.id_token!).kid;
    await running.pop()!.stop();
    await rotateTokenKey(`${tmp.dir}/keys-rotation`, new Date(), { graceDays: 7 });
    service = await startOne(cfg);
    browser.via = service.url;
    const jwks = (await (await fetch(`${service.url}/oidc/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(oldKid);
    const remote = createRemoteJWKSet(new URL(`${service.url}/oidc/jwks`));
    await expect(
      jwtVerify(before.id_token!, remote, {
        issuer: `${PUBLIC}/oidc`,
        audience: "portal",
        currentDate: new Date(),
      }),
    ).resolves.toBeDefined();
    // New tokens are signed with the new key; the session survived (the cookie secret still verifies).
    const fresh = await party(() => service.url);
    const again = await fresh.authorizationRequest();
    const next = await browser.go(again.url);
    expect(next.kind).toBe("away");
    const after = await redeemCode(fresh, next, again);
    expect(decodeProtectedHeader(after.id_token!).kid).not.toBe(oldKid);
  });

  it.skipIf(postgresUrl === null)(
    "finishes on a second instance a sign-in started on the first (one PostgreSQL)",
    async () => {
      const url = await createDatabase(postgresUrl!, `broker_${Date.now()}`);
      // Both instances share the keys directory, as a deployment shares its keys.
      const cfg = config("pg", url);
      const one = await startOne(cfg);
      const two = await startOne(cfg);
      let current = one.url;
      const rp = await party(() => current);
      const browser = publicBrowser(one.url);
      const { request, form } = await openPasswordForm(browser, rp);
      browser.via = two.url;
      current = two.url;
      const landing = await browser.go(form.action, {
        form: { csrf: form.csrf, login: "brokersess-carol", password: users.password.carol! },
      });
      expect(landing.kind).toBe("away");
      current = one.url;
      const tokens = await redeemCode(rp, landing, request);
      expect(tokens.claims()?.sub).toMatch(/^p_/);
      browser.via = one.url;
      expect(await silent(browser, rp)).toBe(true);
    },
  );
});
