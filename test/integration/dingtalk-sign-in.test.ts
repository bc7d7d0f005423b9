/**
 * DingTalk sign-in (reference A3, A5) against the simulator: the QR/web OAuth2 flow followed by hand, the
 * in-app 免登 code, and every refusal the connector owes: another organisation, non-members, people who
 * left or have not activated, reused and expired codes, a wrong app secret, a denial, a source down or slow.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SimClock } from "../../src/simulators/common/clock.js";
import {
  DINGTALK_SIM_USER_COOKIE,
  personalEmail,
  startDingTalkSimulator,
  type DingTalkSimulatorOptions,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { dingtalkConfigSchema } from "../../src/sources/dingtalk/config.js";
import { openDingTalkSignIn } from "../../src/sources/dingtalk/sign-in.js";
import {
  scriptLiteral,
  type JsapiCodeSignIn,
  type SignInConnector,
  type SignInOutcome,
} from "../../src/sources/sign-in.js";

const CALLBACK = "http://127.0.0.1:9/login/callback/dingtalk-hq";
const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

type Sim = RunningDingTalkSimulator & { clock: SimClock };

async function start(options: DingTalkSimulatorOptions = {}): Promise<Sim> {
  const clock = new SimClock(() => Date.UTC(2026, 0, 5, 9, 0, 0));
  const sim = await startDingTalkSimulator({
    people: 200,
    seed: 7,
    clock,
    redirectUrls: [CALLBACK],
    ...options,
  });
  running.push(sim);
  return Object.assign(sim, { clock });
}

function connect(sim: Sim, overrides: Record<string, unknown> = {}, timeoutMs = 5000): SignInConnector {
  const config = dingtalkConfigSchema.parse({ ...sim.sourceConfig(), ...overrides });
  return openDingTalkSignIn(
    {
      sourceId: "dingtalk-hq",
      now: () => new Date(sim.clock.now()),
      timeoutMs,
      publicUrl: "http://127.0.0.1:9",
      once: () => Promise.resolve(true),
    },
    config,
  );
}

function person(sim: Sim, status: string) {
  const found = sim.org.people.find((p) => p.status === status);
  if (found === undefined) throw new Error(`no ${status} person in the generated org`);
  return found;
}

/** Begins the web flow and returns the callback query after picking `userid` (or denying) on the page. */
async function pickAtDingTalk(
  connector: SignInConnector,
  choose: { userid: string; corpId?: string } | "deny",
  state = "st-1",
): Promise<Record<string, string>> {
  const start = await connector.web!.begin({ callbackUrl: CALLBACK, state });
  const page = await (await fetch(start.url)).text();
  const deny = /id="deny" href="([^"]+)"/.exec(page)?.[1]?.replaceAll("&#38;", "&");
  if (deny === undefined) throw new Error("no deny button on the page");
  let href = deny;
  if (choose !== "deny") {
    const listed = new RegExp(
      `data-userid="${choose.userid}"${choose.corpId ? ` data-corpid="${choose.corpId}"` : ""}[^>]*href="([^"]+)"`,
    ).exec(page)?.[1];
    // People the picker does not list (who left) choose by URL, as the page allows.
    href =
      listed?.replaceAll("&#38;", "&") ?? `${deny.replace("/deny?", "/approve?")}&userid=${choose.userid}`;
  }
  const res = await fetch(new URL(href, start.url), { redirect: "manual" });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get("location")!);
  expect(`${location.origin}${location.pathname}`).toBe(CALLBACK);
  return Object.fromEntries(location.searchParams);
}

async function completeWeb(
  connector: SignInConnector,
  params: Record<string, string>,
): Promise<SignInOutcome> {
  return connector.web!.complete({ callbackUrl: CALLBACK, state: "st-1", params, keep: {} });
}

/** A 免登 code as the JSAPI stand-in hands it to a page whose DingTalk user is `userid`. */
async function inAppCode(sim: Sim, userid: string): Promise<string> {
  const res = await fetch(`${sim.url}/jsapi/request-auth-code?corpId=${sim.credentials.corpId}`, {
    headers: { cookie: `${DINGTALK_SIM_USER_COOKIE}=${userid}`, origin: "http://127.0.0.1:9" },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { code: string }).code;
}

function failure(outcome: SignInOutcome): { code: string; reason: string } {
  if (outcome.ok) throw new Error(`expected a failure, got ${outcome.identity.subject}`);
  return outcome;
}

describe("DingTalk sign-in: web (QR) flow", () => {
  it("signs in an active member picked on the DingTalk page, as the directory reader sees them", async () => {
    const sim = await start();
    const connector = connect(sim);
    const who = person(sim, "active");
    const begun = await connector.web!.begin({ callbackUrl: CALLBACK, state: "st-1" });
    const url = new URL(begun.url);
    expect(url.pathname).toBe("/oauth2/auth");
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      redirect_uri: CALLBACK,
      response_type: "code",
      client_id: sim.credentials.appKey,
      scope: "openid corpid",
      state: "st-1",
      prompt: "consent",
      corpId: sim.credentials.corpId,
    });
    const params = await pickAtDingTalk(connector, { userid: who.userid });
    expect(params.state).toBe("st-1");
    const outcome = await completeWeb(connector, params);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.identity.subject).toBe(who.userid);
    expect(outcome.identity.person).toMatchObject({
      subject: who.userid,
      username: who.userid,
      name: who.name,
      email: who.email,
      status: "active",
      altIds: { unionid: who.unionid },
    });
  });

  it("never puts the self-set email of contact/users/me into the identity", async () => {
    const sim = await start();
    const connector = connect(sim);
    const who = person(sim, "active");
    const outcome = await completeWeb(connector, await pickAtDingTalk(connector, { userid: who.userid }));
    expect(outcome.ok).toBe(true);
    expect(JSON.stringify(outcome)).not.toContain(personalEmail(who));
  });

  it("refuses a user of another organisation after the token names that corpId", async () => {
    const sim = await start();
    const connector = connect(sim);
    const stranger = [...sim.foreignOrg.index.people.values()][0]!;
    const params = await pickAtDingTalk(connector, {
      userid: stranger.userid,
      corpId: sim.foreignOrg.corpId,
    });
    const outcome = failure(await completeWeb(connector, params));
    expect(outcome.code).toBe("FOREIGN_ORGANISATION");
    expect(outcome.reason).toContain(sim.foreignOrg.corpId);
    expect(sim.controls.calls.get("/v1.0/contact/users/me") ?? 0).toBe(0);
  });

  it("refuses a DingTalk account that is not an employee of the org (getbyunionid 60121)", async () => {
    const sim = await start();
    const connector = connect(sim);
    const gone = person(sim, "left");
    const outcome = failure(
      await completeWeb(connector, await pickAtDingTalk(connector, { userid: gone.userid })),
    );
    expect(outcome.code).toBe("NOT_A_MEMBER");
  });

  it("refuses an external contact of the org (contact_type 1)", async () => {
    const sim = await start();
    const gone = person(sim, "left");
    sim.externalContacts.add(gone.unionid);
    const connector = connect(sim);
    const outcome = failure(
      await completeWeb(connector, await pickAtDingTalk(connector, { userid: gone.userid })),
    );
    expect(outcome.code).toBe("NOT_A_MEMBER");
    expect(outcome.reason).toContain("external contact");
  });

  it("refuses a member who has not activated the account", async () => {
    const sim = await start();
    const connector = connect(sim);
    const idle = person(sim, "not-activated");
    const outcome = failure(
      await completeWeb(connector, await pickAtDingTalk(connector, { userid: idle.userid })),
    );
    expect(outcome.code).toBe("ACCOUNT_DISABLED");
  });

  it("treats a denial at DingTalk as cancelled without calling the token endpoint", async () => {
    const sim = await start();
    const connector = connect(sim);
    const params = await pickAtDingTalk(connector, "deny");
    expect(params).toMatchObject({ error: "access_denied", state: "st-1" });
    expect(failure(await completeWeb(connector, params)).code).toBe("CANCELLED");
    expect(sim.controls.calls.get("/v1.0/oauth2/userAccessToken") ?? 0).toBe(0);
  });

  it("refuses an authCode used a second time", async () => {
    const sim = await start();
    const connector = connect(sim);
    const params = await pickAtDingTalk(connector, { userid: person(sim, "active").userid });
    expect((await completeWeb(connector, params)).ok).toBe(true);
    expect(failure(await completeWeb(connector, params)).code).toBe("INVALID_RESPONSE");
  });

  it("refuses an authCode older than five minutes on the DingTalk clock", async () => {
    const sim = await start();
    const connector = connect(sim);
    const params = await pickAtDingTalk(connector, { userid: person(sim, "active").userid });
    sim.clock.advance(5 * 60_000 + 1000);
    expect(failure(await completeWeb(connector, params)).code).toBe("INVALID_RESPONSE");
  });

  it("reports a wrong app secret as the source unavailable, naming the app credentials", async () => {
    const sim = await start();
    const connector = connect(sim, { appSecret: "not-the-secret" });
    const params = await pickAtDingTalk(connector, { userid: person(sim, "active").userid });
    const outcome = failure(await completeWeb(connector, params));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(outcome.reason).toMatch(/appKey and appSecret/);
    expect(outcome.reason).not.toContain(params.authCode);
  });
});

describe("DingTalk sign-in: in-app 免登 code", () => {
  it("offers the JSAPI page its script, corpId and client id", async () => {
    const sim = await start();
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    expect(inApp.kind).toBe("jsapi-code");
    expect(inApp.page.scriptUrl).toBe(`${sim.url}/jsapi/dingtalk.open.js`);
    const { script } = inApp.page;
    expect(script).toContain("dd.runtime.permission.requestAuthCode(");
    expect(script).toContain(`corpId: ${JSON.stringify(sim.credentials.corpId)}`);
    expect(script).toContain(`clientId: ${JSON.stringify(sim.credentials.appKey)}`);
    expect(script).toContain('send("code"');
  });

  it("puts values into the page's script as literals that cannot close the script element", () => {
    const hostile = '</script><script>alert(1)</script>\u2028"';
    const literal = scriptLiteral(hostile);
    expect(literal).not.toMatch(/<\/?script/i);
    expect(literal).not.toContain("\u2028");
    expect(JSON.parse(literal)).toBe(hostile);
  });

  it("signs in the member the code was issued to, once", async () => {
    const sim = await start();
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    const who = person(sim, "active");
    const code = await inAppCode(sim, who.userid);
    const outcome = await inApp.complete(code);
    expect(outcome.ok && outcome.identity.subject).toBe(who.userid);
    expect(failure(await inApp.complete(code)).code).toBe("INVALID_RESPONSE");
  });

  it("refuses an expired 免登 code", async () => {
    const sim = await start();
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    const code = await inAppCode(sim, person(sim, "active").userid);
    sim.clock.advance(5 * 60_000 + 1000);
    expect(failure(await inApp.complete(code)).code).toBe("INVALID_RESPONSE");
  });

  it("refuses people who left or were removed, checked at user/get", async () => {
    const sim = await start();
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    for (const status of ["left", "disabled"]) {
      const outcome = failure(await inApp.complete(await inAppCode(sim, person(sim, status).userid)));
      expect(outcome.code).toBe("ACCOUNT_LEFT");
    }
  });
});

describe("DingTalk sign-in: the source down or slow", () => {
  it("fails with SOURCE_UNAVAILABLE when DingTalk does not answer", async () => {
    const sim = await start();
    const inApp = connect(sim, {}, 1500).inApp as JsapiCodeSignIn;
    const code = await inAppCode(sim, person(sim, "active").userid);
    await sim.close();
    running.splice(running.indexOf(sim), 1);
    const started = Date.now();
    expect(failure(await inApp.complete(code)).code).toBe("SOURCE_UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("gives up on a slow DingTalk within the sign-in timeout", async () => {
    const sim = await start({ faults: "latency=3000" });
    const connector = connect(sim, {}, 800);
    const started = Date.now();
    const outcome = failure(await connector.inApp!.complete("any-code" as never));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(outcome.reason).toMatch(/within 800 ms/);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe("DingTalk sign-in: single-use codes are sent once", () => {
  it("reports one HTTP 5xx at getuserinfo as SOURCE_UNAVAILABLE without sending the 免登 code again", async () => {
    const sim = await start({ faults: "5xx@/topapi/v2/user/getuserinfo" });
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    const code = await inAppCode(sim, person(sim, "active").userid);
    const outcome = failure(await inApp.complete(code));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(outcome.reason).toMatch(/HTTP 502/);
    expect(outcome.reason).not.toContain(code);
    expect(sim.controls.calls.get("/topapi/v2/user/getuserinfo")).toBe(1);
  });

  it("still repeats user/get after an HTTP 5xx and signs the member in", async () => {
    const sim = await start({ faults: "5xx@/topapi/v2/user/get" });
    const inApp = connect(sim).inApp as JsapiCodeSignIn;
    const who = person(sim, "active");
    const outcome = await inApp.complete(await inAppCode(sim, who.userid));
    expect(outcome.ok && outcome.identity.subject).toBe(who.userid);
    expect(sim.controls.calls.get("/topapi/v2/user/get")).toBe(2);
  });

  it("reports an HTTP 5xx at userAccessToken as SOURCE_UNAVAILABLE after one request", async () => {
    const sim = await start();
    // The simulator's userAccessToken takes no faults: a stand-in API host answers 502 and counts.
    let requests = 0;
    const failing = createServer((_req, res) => {
      requests++;
      res.writeHead(502, { "content-type": "text/plain" }).end("Bad Gateway");
    });
    await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
    running.push({ close: () => new Promise<void>((resolve) => failing.close(() => resolve())) });
    const { port } = failing.address() as AddressInfo;
    const connector = connect(sim, { apiBaseUrl: `http://127.0.0.1:${port}` });
    const params = await pickAtDingTalk(connector, { userid: person(sim, "active").userid });
    const outcome = failure(await completeWeb(connector, params));
    expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
    expect(requests).toBe(1);
  });
});

describe("DingTalk sign-in: account status now", () => {
  it("answers active, disabled (not activated), left, and unavailable", async () => {
    const sim = await start();
    const connector = connect(sim);
    expect(await connector.accountStatus!(person(sim, "active").userid)).toBe("active");
    expect(await connector.accountStatus!(person(sim, "not-activated").userid)).toBe("disabled");
    expect(await connector.accountStatus!(person(sim, "left").userid)).toBe("left");
    const down = connect(sim, { oapiBaseUrl: "http://127.0.0.1:9", apiBaseUrl: "http://127.0.0.1:9" }, 800);
    expect(await down.accountStatus!("anyone")).toBe("unavailable");
  });

  it("refuses to open without the corpId, naming the field", async () => {
    const sim = await start();
    const { corpId: _corpId, ...withoutCorp } = sim.sourceConfig();
    expect(() =>
      openDingTalkSignIn(
        {
          sourceId: "dingtalk-hq",
          now: () => new Date(),
          timeoutMs: 1000,
          publicUrl: "",
          once: () => Promise.resolve(true),
        },
        dingtalkConfigSchema.parse(withoutCorp),
      ),
    ).toThrow(/corpId is required/);
  });
});
