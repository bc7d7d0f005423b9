/**
 * Redirect and in-app flows through the broker against the DingTalk and WeCom simulators: a QR/web sign-in, the
 * flow state single-use and bound to the browser (replayed, tampered and foreign callbacks refused with a
 * sentence and no code), the DingTalk in-app page (JSAPI code posted without a click) and a DingTalk
 * that is down; the WeCom in-app browser sent straight into snsapi_base.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import {
  startDingTalkSimulator,
  DINGTALK_SIM_USER_COOKIE,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { startWeComSimulator } from "../../src/simulators/wecom/index.js";
import {
  Browser,
  PORTAL,
  recentAudit,
  relyingParty,
  serviceYaml,
  start,
  tempDir,
  writeConfig,
  type Landing,
  type RelyingParty,
} from "../helpers/broker-env.js";

const PUBLIC = "http://idbridge.test";
const CALLBACK = `${PUBLIC}/login/callback/dingtalk-hq`;
const DINGTALK_UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 DingTalk/7.5.0";

describe("sign-in broker: DingTalk redirect and in-app flows", () => {
  const tmp = tempDir();
  let sim: RunningDingTalkSimulator;
  let wecom: Awaited<ReturnType<typeof startWeComSimulator>>;
  let service: RunningService;
  let rp: RelyingParty;
  let closed = false;

  beforeAll(async () => {
    sim = await startDingTalkSimulator({ people: 50, seed: 3, redirectUrls: [CALLBACK] });
    wecom = await startWeComSimulator({
      people: 20,
      seed: 5,
      apps: [{ agentId: 1000002, trustedDomains: ["idbridge.test"] }],
    });
    const yaml = `${serviceYaml(tmp.dir, { publicUrl: PUBLIC })}
sources:
  - id: dingtalk-hq
    type: dingtalk
    config: ${JSON.stringify(sim.sourceConfig())}
  - id: wecom-hq
    type: wecom
    config: ${JSON.stringify(wecom.sourceConfig({ use: "app" }))}
signIn:
  justInTime: true
  upstreamTimeoutSeconds: 2
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`;
    // The real person directory: each account becomes a person just in time at its first sign-in.
    service = await start(writeConfig(tmp.dir, yaml));
    rp = await relyingParty(`${PUBLIC}/oidc`, PORTAL, () => service.url);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    if (!closed) await sim?.close();
    await wecom?.close();
    tmp.remove();
  });

  function browser(userAgent?: string): Browser {
    const b = new Browser(PUBLIC, userAgent);
    b.via = service.url;
    return b;
  }

  /** The details of the last audited sign-in: which source account the broker resolved to a person. */
  async function lastSignIn(): Promise<Record<string, unknown> | undefined> {
    return (await recentAudit(`sqlite:${tmp.dir}/idbridge.db`))
      .filter((e) => e.action === "login.succeeded")
      .at(-1)?.details;
  }

  function activeUserid(): string {
    const found = sim.org.people.find((p) => p.status === "active");
    if (found === undefined) throw new Error("no active person");
    return found.userid;
  }

  /** From the login page to DingTalk's callback URL, picking `userid` on the simulator's page. */
  async function toCallback(b: Browser): Promise<URL> {
    const request = await rp.authorizationRequest();
    const page = await b.go(request.url);
    if (page.kind !== "page") throw new Error(`expected the login page, went to ${page.url.href}`);
    const href = /<a class="source" href="([^"]+)"/.exec(page.html)?.[1];
    if (href === undefined) throw new Error(`no DingTalk button:\n${page.html}`);
    const away = await b.go(href.replace(/&amp;/g, "&"));
    if (away.kind !== "away") throw new Error("expected a redirect to DingTalk");
    expect(away.url.searchParams.get("state")).toMatch(/^[0-9a-f]{64}$/);
    const picker = await (await fetch(away.url)).text();
    const deny = /id="deny" href="([^"]+)"/.exec(picker)?.[1]?.replaceAll("&#38;", "&");
    const approve = `${deny!.replace("/deny?", "/approve?")}&userid=${activeUserid()}`;
    const res = await fetch(new URL(approve, away.url), { redirect: "manual" });
    return new URL(res.headers.get("location")!);
  }

  function expectNoCode(landing: Landing): void {
    expect(landing.kind).toBe("page");
  }

  it("signs in with DingTalk's web flow and returns to the platform with a code", async () => {
    const b = browser();
    const callback = await toCallback(b);
    expect(`${callback.origin}${callback.pathname}`).toBe(CALLBACK);
    const landing = await b.go(callback);
    expect(landing.kind === "away" && landing.url.searchParams.has("code")).toBe(true);
    expect(await lastSignIn()).toMatchObject({ source: "dingtalk-hq", sourceSubject: activeUserid() });
  });

  it("refuses a replayed callback: the state was taken by the first", async () => {
    const b = browser();
    const callback = await toCallback(b);
    expect((await b.go(callback)).kind).toBe("away");
    const replay = await b.go(callback);
    expectNoCode(replay);
  });

  it("refuses a tampered state with a sentence", async () => {
    const b = browser();
    const callback = await toCallback(b);
    const state = callback.searchParams.get("state")!;
    callback.searchParams.set("state", `${state.slice(0, -1)}${state.endsWith("0") ? "1" : "0"}`);
    const landing = await b.go(callback);
    expectNoCode(landing);
    if (landing.kind !== "page") return;
    expect(landing.html).toContain("登录请求已失效，请重新登录。");
  });

  it("refuses the callback in another browser than the one that started the flow", async () => {
    const callback = await toCallback(browser());
    const other = browser();
    const landing = await other.go(callback);
    expectNoCode(landing);
    expect(landing.kind === "page" && landing.status).toBe(400);
  });

  it("signs in inside DingTalk without a click: the page asks the JSAPI and posts the code", async () => {
    const b = browser(DINGTALK_UA);
    const request = await rp.authorizationRequest();
    const page = await b.go(request.url);
    if (page.kind !== "page") throw new Error("expected the in-app page");
    expect(page.html).toContain(`<script src="${sim.url}/jsapi/dingtalk.open.js"></script>`);
    expect(page.html).toContain("dd.runtime.permission.requestAuthCode");
    const nonce = /<script nonce="([^"]+)">/.exec(page.html)?.[1];
    expect(nonce).toBeDefined();
    // What the page's script does: get a code from the JSAPI, post it with the form's fields.
    const res = await fetch(
      `${sim.url}/jsapi/request-auth-code?corpId=${String(sim.sourceConfig().corpId)}`,
      {
        headers: { cookie: `${DINGTALK_SIM_USER_COOKIE}=${activeUserid()}`, origin: PUBLIC },
      },
    );
    const { code } = (await res.json()) as { code: string };
    const action = /<form id="code-form" method="post" action="([^"]+)"/
      .exec(page.html)![1]!
      .replace(/&amp;/g, "&");
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const landing = await b.go(action, { form: { csrf, code, error: "" } });
    expect(landing.kind === "away" && landing.url.searchParams.has("code")).toBe(true);
  });

  it("audits an in-app code post with a wrong CSRF token and one without a code", async () => {
    const b = browser(DINGTALK_UA);
    const page = await b.go((await rp.authorizationRequest()).url);
    if (page.kind !== "page") throw new Error("expected the in-app page");
    const action = /<form id="code-form" method="post" action="([^"]+)"/
      .exec(page.html)![1]!
      .replace(/&amp;/g, "&");
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const forged = await b.go(action, { form: { csrf: "forged", code: "secret-code-1", error: "" } });
    expect(forged.kind === "page" && forged.status).toBe(403);
    const cancelled = await b.go(action, { form: { csrf, code: "", error: "user cancelled" } });
    expect(cancelled.kind === "page" && cancelled.status).toBe(200);
    const entries = (await recentAudit(`sqlite:${tmp.dir}/idbridge.db`)).filter(
      (e) => e.action === "login.failed" && e.details.source === "dingtalk-hq",
    );
    expect(entries.map((e) => e.details.code).slice(-2)).toStrictEqual(["FORM_INVALID", "CANCELLED"]);
    expect(JSON.stringify(entries)).not.toContain("secret-code-1");
  });

  it("sends the WeCom in-app browser straight into WeCom's silent OAuth and signs in", async () => {
    const member = wecom.org.people.find((p) => p.status === "active")!;
    const b = browser(
      "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 wxwork/4.1.20 MicroMessenger/7.0.1",
    );
    const request = await rp.authorizationRequest();
    const away = await b.go(request.url);
    if (away.kind !== "away") throw new Error(`expected a redirect to WeCom, got a page:\n${away.html}`);
    expect(away.url.pathname).toBe("/connect/oauth2/authorize");
    expect(away.url.searchParams.get("scope")).toBe("snsapi_base");
    expect(away.url.searchParams.get("state")).toMatch(/^[0-9a-f]{64}$/);
    const res = await fetch(away.url, {
      redirect: "manual",
      headers: { cookie: `wecom_sim_user=${member.userid}` },
    });
    const callback = new URL(res.headers.get("location")!);
    expect(`${callback.origin}${callback.pathname}`).toBe(`${PUBLIC}/login/callback/wecom-hq`);
    const landing = await b.go(callback);
    expect(landing.kind === "away" && landing.url.searchParams.has("code")).toBe(true);
    expect(await lastSignIn()).toMatchObject({ source: "wecom-hq", sourceSubject: member.userid });
  });

  it("says DingTalk is not reachable when it is down, in Chinese and in English", async () => {
    const pages = [];
    for (const language of ["zh-CN", "en"]) {
      const b = new Browser(PUBLIC, DINGTALK_UA, language);
      b.via = service.url;
      const request = await rp.authorizationRequest();
      const page = await b.go(request.url);
      if (page.kind !== "page") throw new Error("expected the in-app page");
      pages.push({ b, page });
    }
    await sim.close();
    closed = true;
    const sentences = [];
    for (const { b, page } of pages) {
      const action = /<form id="code-form" method="post" action="([^"]+)"/
        .exec(page.html)![1]!
        .replace(/&amp;/g, "&");
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
      const landing = await b.go(action, { form: { csrf, code: "some-code", error: "" } });
      expectNoCode(landing);
      sentences.push(landing.kind === "page" ? landing.html : "");
    }
    expect(sentences[0]).toContain("钉钉暂时无法访问，请稍后重试。");
    expect(sentences[1]).toContain("DingTalk is not reachable, try again.");
  });
});
