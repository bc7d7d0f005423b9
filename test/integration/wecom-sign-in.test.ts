import { afterEach, describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.js";
import { generateOrg, type SimOrg, type SimPerson, type SimStatus } from "../../src/simulators/common/org.js";
import { startWeComSimulator, type WeComSimulatorOptions } from "../../src/simulators/wecom/index.js";
import type { RedirectSignIn, SignInConnector, SignInContext } from "../../src/sources/sign-in.js";
import { wecomConfigSchema } from "../../src/sources/wecom/config.js";
import { wecomSource } from "../../src/sources/wecom/index.js";

type Running = Awaited<ReturnType<typeof startWeComSimulator>>;

const CALLBACK = "http://127.0.0.1:8443/login/callback/wecom-hq";
const STATE = "a".repeat(32) + "0123456789abcdef0123456789abcdef";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

interface Setup {
  readonly sim: Running;
  readonly connector: SignInConnector;
  readonly web: RedirectSignIn;
  readonly inApp: RedirectSignIn;
}

async function setup(
  options: {
    sim?: WeComSimulatorOptions;
    config?: Record<string, unknown>;
    timeoutMs?: number;
    agentId?: number;
  } = {},
): Promise<Setup> {
  const sim = await startWeComSimulator({ people: 200, seed: 7, ...options.sim });
  // Some tests stop the simulator themselves.
  closers.push(() => sim.close().catch(() => undefined));
  const context: SignInContext = {
    sourceId: "wecom-hq",
    now: () => new Date(sim.controls.clock.now()),
    timeoutMs: options.timeoutMs ?? 3_000,
    publicUrl: "http://127.0.0.1:8443",
    once: () => Promise.resolve(true),
  };
  const config = wecomConfigSchema.parse({
    ...sim.sourceConfig({
      use: "app",
      ...(options.agentId === undefined ? {} : { agentId: options.agentId }),
    }),
    ...options.config,
  });
  const connector = wecomSource.openSignIn!(context, config);
  closers.push(() => connector.close());
  return { sim, connector, web: connector.web as RedirectSignIn, inApp: connector.inApp as RedirectSignIn };
}

const person = (org: SimOrg, status: SimStatus): SimPerson => org.people.find((p) => p.status === status)!;

/** Opens the login page, clicks the picker entry whose attribute matches, returns the callback's query. */
async function pick(url: string, selector: string): Promise<Record<string, string>> {
  const page = await (await fetch(url)).text();
  const match = new RegExp(`<a [^>]*${selector}[^>]*href="([^"]+)"`).exec(page);
  if (match === null) throw new Error(`no picker entry ${selector} on the page: ${page.slice(0, 300)}`);
  const href = match[1]!.replaceAll("&amp;", "&");
  return follow(new URL(href, url).toString());
}

/** Follows one redirect by hand and returns the query it carried back to our callback. */
async function follow(url: string, headers: Record<string, string> = {}): Promise<Record<string, string>> {
  const response = await fetch(url, { redirect: "manual", headers });
  expect(response.status).toBe(302);
  const location = new URL(response.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(CALLBACK);
  return Object.fromEntries(location.searchParams);
}

async function webSignIn(s: Setup, userid: string) {
  const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
  const params = await pick(start.url, `data-userid="${userid}"`);
  expect(params.state).toBe(STATE);
  return {
    params,
    outcome: await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: start.keep }),
  };
}

describe("WeCom sign-in: web login", () => {
  it("sends the browser to wwlogin/sso/login with the corp, app, redirect and state", async () => {
    const s = await setup();
    const { url } = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const parsed = new URL(url);
    expect(parsed.pathname).toBe("/wwlogin/sso/login");
    expect(Object.fromEntries(parsed.searchParams)).toEqual({
      login_type: "CorpApp",
      appid: s.sim.credentials.corpId,
      agentid: String(s.sim.credentials.apps[0]!.agentId),
      redirect_uri: CALLBACK,
      state: STATE,
      lang: "zh",
    });
  });

  it("signs a member in with the same person the directory reader reads", async () => {
    const s = await setup();
    const member = person(s.sim.org, "active");
    const { outcome } = await webSignIn(s, member.userid);
    if (!outcome.ok) throw new Error(outcome.reason);
    expect(outcome.identity.subject).toBe(member.userid);
    expect(outcome.identity.sourceId).toBe("wecom-hq");

    const reader = wecomSource.openDirectory!(
      { sourceId: "wecom-hq", now: () => new Date(), sleep: () => Promise.resolve() },
      wecomConfigSchema.parse(s.sim.sourceConfig({ use: "app" })),
    );
    const snapshot = await reader.read();
    await reader.close();
    // english_name comes only with user/list (reference B4), which the reader uses and sign-in cannot.
    const read = snapshot.people.find((p) => p.subject === member.userid)!;
    const { english_name: _englishName, ...readAttributes } = read.attributes;
    expect(outcome.identity.person).toEqual({ ...read, attributes: readAttributes });
  });

  it("refuses a state outside WeCom's rule with a TypeError naming the rule", async () => {
    const s = await setup();
    await expect(s.web.begin({ callbackUrl: CALLBACK, state: "has-dash" })).rejects.toThrow(
      /1 to 128 characters of \[a-zA-Z0-9\]/,
    );
    await expect(s.inApp.begin({ callbackUrl: CALLBACK, state: "x".repeat(129) })).rejects.toThrow(TypeError);
  });

  it("treats a return without a code as cancelled and asks WeCom nothing", async () => {
    const s = await setup();
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, "data-cancel");
    expect(params).toEqual({ state: STATE });
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: start.keep });
    expect(outcome).toMatchObject({ ok: false, code: "CANCELLED" });
    expect(s.sim.controls.calls.get("/cgi-bin/auth/getuserinfo")).toBeUndefined();
  });

  it("refuses a WeChat user who is not a member (openid without userid)", async () => {
    const s = await setup();
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, 'data-kind="non-member"');
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: start.keep });
    expect(outcome).toMatchObject({ ok: false, code: "NOT_A_MEMBER" });
  });

  it("refuses a member of a linked corp (CorpId/userid)", async () => {
    const s = await setup();
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, 'data-kind="linked-corp"');
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: start.keep });
    expect(outcome).toMatchObject({ ok: false, code: "FOREIGN_ORGANISATION" });
    if (!outcome.ok) expect(outcome.reason).toMatch(/linked corp wwlinkedcorp0000001/);
  });

  it("refuses disabled, not activated and departed members", async () => {
    const s = await setup();
    for (const [status, code] of [
      ["disabled", "ACCOUNT_DISABLED"],
      ["not-activated", "ACCOUNT_DISABLED"],
      ["left", "ACCOUNT_LEFT"],
    ] as const) {
      const { outcome } = await webSignIn(s, person(s.sim.org, status).userid);
      expect(outcome).toMatchObject({ ok: false, code });
    }
  });

  it("refuses a member outside the app's visible range as not a member", async () => {
    const org = generateOrg({ people: 200, seed: 7 });
    const child = org.departments.find((d) => d.parentId === 1)!;
    const s = await setup({ sim: { apps: [{ agentId: 1000002, visibleDepartments: [child.id] }] } });
    const inside = new Set([child.id]);
    for (let grew = true; grew;) {
      grew = false;
      for (const d of org.departments)
        if (!inside.has(d.id) && inside.has(d.parentId)) grew = inside.add(d.id).size > 0;
    }
    const outside = s.sim.org.people.find(
      (p) => p.status === "active" && !p.departments.some((d) => inside.has(d)),
    )!;
    const { outcome } = await webSignIn(s, outside.userid);
    expect(outcome).toMatchObject({ ok: false, code: "NOT_A_MEMBER" });
    if (!outcome.ok) expect(outcome.reason).toMatch(/visible range of app 1000002/);
  });

  it("refuses a reused code and an expired one as an invalid response", async () => {
    const s = await setup();
    const member = person(s.sim.org, "active");
    const { params, outcome } = await webSignIn(s, member.userid);
    expect(outcome.ok).toBe(true);
    const again = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(again).toMatchObject({ ok: false, code: "INVALID_RESPONSE" });

    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const late = await pick(start.url, `data-userid="${member.userid}"`);
    s.sim.controls.clock.advance(5 * 60_000 + 1_000);
    const expired = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params: late, keep: {} });
    expect(expired).toMatchObject({ ok: false, code: "INVALID_RESPONSE" });
    if (!expired.ok) expect(expired.reason).not.toContain(late.code);
  });

  it("refuses a code made for another app", async () => {
    const s = await setup({ sim: { apps: [{ agentId: 1000002 }, { agentId: 1000003 }] }, agentId: 1000003 });
    const other = s.sim.credentials.apps[0]!.agentId;
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const url = new URL(start.url);
    url.searchParams.set("agentid", String(other));
    const params = await pick(url.toString(), `data-userid="${person(s.sim.org, "active").userid}"`);
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome).toMatchObject({ ok: false, code: "INVALID_RESPONSE" });
  });

  it("stops at WeCom's page when the callback's host and port are not a trusted domain", async () => {
    const s = await setup({ sim: { apps: [{ agentId: 1000002, trustedDomains: ["127.0.0.1:9443"] }] } });
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const response = await fetch(start.url, { redirect: "manual" });
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain("redirect_uri参数错误");
    expect(page).toContain('data-errcode="50001"');
  });

  it("accepts the callback when its host and port are the trusted domain", async () => {
    const s = await setup({ sim: { apps: [{ agentId: 1000002, trustedDomains: ["127.0.0.1:8443"] }] } });
    const { outcome } = await webSignIn(s, person(s.sim.org, "active").userid);
    expect(outcome.ok).toBe(true);
  });
});

describe("WeCom sign-in: in the WeCom app", () => {
  it("signs in silently with snsapi_base for the member signed in to the app", async () => {
    const s = await setup();
    const member = person(s.sim.org, "active");
    const start = await s.inApp.begin({ callbackUrl: CALLBACK, state: STATE });
    expect(start.url).toMatch(/#wechat_redirect$/);
    const parsed = new URL(start.url);
    expect(parsed.pathname).toBe("/connect/oauth2/authorize");
    expect(parsed.searchParams.get("scope")).toBe("snsapi_base");
    expect(parsed.searchParams.get("response_type")).toBe("code");
    expect(parsed.searchParams.get("agentid")).toBe(String(s.sim.credentials.apps[0]!.agentId));

    const signedIn = await fetch(`${s.sim.url}/sim/sign-in-as?userid=${member.userid}`);
    const cookie = signedIn.headers.get("set-cookie")!.split(";")[0]!;
    expect(cookie).toBe(`wecom_sim_user=${member.userid}`);
    const params = await follow(start.url, { cookie });
    const outcome = await s.inApp.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: start.keep });
    expect(outcome).toMatchObject({ ok: true, identity: { subject: member.userid } });
  });

  it("refuses a departed member in the app too", async () => {
    const s = await setup();
    const start = await s.inApp.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await follow(start.url, { cookie: `wecom_sim_user=${person(s.sim.org, "left").userid}` });
    const outcome = await s.inApp.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome).toMatchObject({ ok: false, code: "ACCOUNT_LEFT" });
  });
});

describe("WeCom sign-in: an unreachable, slow or misconfigured WeCom", () => {
  it("answers SOURCE_UNAVAILABLE within the timeout when WeCom is slow", async () => {
    const s = await setup({ timeoutMs: 400 });
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, `data-userid="${person(s.sim.org, "active").userid}"`);
    // The token is fetched before the slowdown (gettoken is not slowed by the fault anyway).
    expect(await s.connector.accountStatus!(person(s.sim.org, "active").userid)).toBe("active");
    await fetch(`${s.sim.url}/__simulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ spec: "latency=3000" }),
    });
    const began = Date.now();
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(Date.now() - began).toBeLessThan(1_500);
    expect(outcome).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    if (!outcome.ok) expect(outcome.reason).toMatch(/within 400 ms/);
  });

  it("answers SOURCE_UNAVAILABLE when WeCom is down or answers HTTP 5xx", async () => {
    const s = await setup({ sim: { faults: "5xx@/cgi-bin/auth/getuserinfo*always" } });
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, `data-userid="${person(s.sim.org, "active").userid}"`);
    expect(await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} })).toMatchObject({
      ok: false,
      code: "SOURCE_UNAVAILABLE",
    });
    await s.sim.close();
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    if (!outcome.ok) expect(outcome.reason).toMatch(/connection refused/);
    expect(await s.connector.accountStatus!("anyone")).toBe("unavailable");
  });

  it("sends the code to auth/getuserinfo once: one HTTP 5xx is SOURCE_UNAVAILABLE", async () => {
    const s = await setup({ sim: { faults: "5xx@/cgi-bin/auth/getuserinfo" } });
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, `data-userid="${person(s.sim.org, "active").userid}"`);
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    if (!outcome.ok) expect(outcome.reason).not.toContain(params.code);
    expect(s.sim.controls.calls.get("/cgi-bin/auth/getuserinfo")).toBe(1);
  });

  it("still repeats user/get after an HTTP 5xx and signs the member in", async () => {
    const s = await setup({ sim: { faults: "5xx@/cgi-bin/user/get" } });
    const who = person(s.sim.org, "active");
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, `data-userid="${who.userid}"`);
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome.ok && outcome.identity.subject).toBe(who.userid);
    expect(s.sim.controls.calls.get("/cgi-bin/user/get")).toBe(2);
  });

  it("answers SOURCE_UNAVAILABLE naming the app's credentials when the secret is wrong", async () => {
    const s = await setup({ config: { secret: "not-the-secret" } });
    const start = await s.web.begin({ callbackUrl: CALLBACK, state: STATE });
    const params = await pick(start.url, `data-userid="${person(s.sim.org, "active").userid}"`);
    const outcome = await s.web.complete({ callbackUrl: CALLBACK, state: STATE, params, keep: {} });
    expect(outcome).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    if (!outcome.ok) {
      expect(outcome.reason).toMatch(/secret of app 1000002/);
      expect(outcome.reason).toMatch(/agentId \/ secret/);
      expect(outcome.reason).not.toContain("not-the-secret");
    }
  });

  it("refuses to open without an app: agentId is named", async () => {
    const sim = await startWeComSimulator({ people: 20, seed: 7 });
    closers.push(() => sim.close());
    const config = wecomConfigSchema.parse(sim.sourceConfig());
    let thrown: unknown;
    try {
      wecomSource.openSignIn!(
        {
          sourceId: "wecom-hq",
          now: () => new Date(),
          timeoutMs: 1000,
          publicUrl: "http://127.0.0.1:8443",
          once: () => Promise.resolve(true),
        },
        config,
      );
    } catch (error) {
      thrown = error;
    }
    expect(isAppError(thrown, "CONFIG_INVALID")).toBe(true);
    expect((thrown as Error).message).toMatch(/sources\[\]\.config\.agentId/);
  });
});

describe("WeCom sign-in: account status now", () => {
  it("tells active, disabled, left and unknown members apart", async () => {
    const s = await setup();
    const status = (userid: string) => s.connector.accountStatus!(userid);
    expect(await status(person(s.sim.org, "active").userid)).toBe("active");
    expect(await status(person(s.sim.org, "disabled").userid)).toBe("disabled");
    expect(await status(person(s.sim.org, "left").userid)).toBe("left");
    expect(await status("nobody-here")).toBe("not-found");
  });
});
