/**
 * `/launch/<targetId>` end to end: idbridge started in-process with AD password sign-in on the run's Samba
 * AD DC (people made just in time, asked for their state at every launch), the Hesi simulator as the
 * target, and a browser made of fetch and a cookie jar.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Attribute, Change, Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { RunningService } from "../../src/cli/serve.js";
import { demoExistingData, startHesiSimulator } from "../../src/simulators/hesi/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import type { AuditRecord } from "../../src/store/store.js";
import {
  Browser,
  createAdUsers,
  errorSentence,
  passwordForm,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type Landing,
} from "../helpers/broker-env.js";
import { adTestConfig } from "../helpers/ldap.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();

const AD = "corp-ad";
const HESI = "hesi-main";
const HESI_DOWN = "hesi-down";
const EXPIRED = "临时访问地址已过期，请重新获取访问临时授权";

describe.skipIf(samba === null)("launch into Hesi", () => {
  const info = samba!;
  let users: AdUsers;
  let sim: Awaited<ReturnType<typeof startHesiSimulator>>;
  let service: RunningService;
  let store: Store;
  let temp: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    temp = tempDir();
    users = await createAdUsers(info, "launch", ["anna", "bob", "carl", "dora", "erik"]);
    sim = await startHesiSimulator({ corpId: "corp1", existing: demoExistingData() });
    mkdirSync(join(temp.dir, "policies"));
    const config = writeConfig(
      temp.dir,
      stringify({
        policiesDir: join(temp.dir, "policies"),
        store: { url: `sqlite:${join(temp.dir, "idbridge.db")}` },
        keys: { dir: join(temp.dir, "keys"), generateIfMissing: true },
        server: { port: 0 },
        log: { level: "silent" },
        sources: [
          {
            id: AD,
            type: "ldap",
            config: adTestConfig(info, { users: { baseDns: [users.ou] }, groups: { baseDns: [] } }),
          },
        ],
        targets: [
          {
            id: HESI,
            type: "hesi",
            config: { ...sim.targetConfig(), requestsPerSecond: 100, timeoutMs: 2000 },
          },
          {
            id: HESI_DOWN,
            type: "hesi",
            config: { ...sim.targetConfig(), baseUrl: "http://127.0.0.1:1", timeoutMs: 500 },
          },
        ],
        signIn: { justInTime: true },
        sync: { fullEveryMinutes: 0, incrementalEveryMinutes: 0 },
      }),
    );
    service = await start(config);
    store = await openStore({ url: config.store.url, poolSize: 1 });
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await service?.stop();
    await sim?.close();
    await users?.remove();
    temp?.remove();
  });

  const sam = (name: string): string => `launch-${name}`.slice(0, 20);

  /** Opens a launch URL in a fresh browser and signs in with the AD password form on the way. */
  async function launchSigningIn(
    name: string,
    path: string,
    userAgent?: string,
  ): Promise<{ browser: Browser; landing: Landing }> {
    const browser = new Browser(service.url, userAgent);
    const login = await browser.go(path);
    if (login.kind !== "page") throw new Error(`expected the login page, went to ${login.url.href}`);
    expect(login.url.pathname).toMatch(/^\/login\//);
    const form = passwordForm(login.html);
    const landing = await browser.go(form.action, {
      form: { csrf: form.csrf, login: sam(name), password: users.password[name]! },
    });
    return { browser, landing };
  }

  async function audit(): Promise<AuditRecord[]> {
    return store.readAudit(0, Number.MAX_SAFE_INTEGER, 100_000);
  }

  async function launchAudits(personId?: string): Promise<AuditRecord[]> {
    return (await audit()).filter(
      (r) => r.action.startsWith("launch.") && (personId === undefined || r.subject === personId),
    );
  }

  /** Signs `name` in through a launch (not linked yet), and returns their person id from the audit. */
  async function signInUnlinked(name: string): Promise<{ browser: Browser; personId: string }> {
    const { browser, landing } = await launchSigningIn(name, `/launch/${HESI}?page=home`);
    expect(landing).toMatchObject({ kind: "page", status: 403 });
    const failed = (await launchAudits()).filter((r) => r.action === "launch.failed").at(-1);
    expect(failed?.details).toMatchObject({ code: "NOT_LINKED", target: HESI, page: "home" });
    return { browser, personId: failed!.subject! };
  }

  async function link(personId: string, staffId: string, target = HESI): Promise<void> {
    await store.saveTargetLinks(target, [
      { kind: "user", key: personId, targetRecordId: staffId, linkedAt: new Date().toISOString() },
    ]);
  }

  async function open(url: URL): Promise<string> {
    return (await fetch(url, { redirect: "manual" })).text();
  }

  it("signs in on the way, lands on the to-do list as the linked staff, and the link works once", async () => {
    const { browser, personId } = await signInUnlinked("anna");
    await link(personId, "corp1:legacy-1");
    const before = sim.launches.length;

    const response = await fetch(new URL(`/launch/${HESI}?page=approve`, service.url), {
      redirect: "manual",
      headers: { cookie: browser.jar.header(), "user-agent": browser.userAgent },
    });
    expect(response.status).toBe(302);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    const url = new URL(response.headers.get("location")!);
    expect(url.origin).toBe(sim.url);
    expect(url.searchParams.get("pageType")).toBe("approve");

    const first = await open(url);
    expect(first).toContain("signed in as <strong>老财务</strong> (<code>corp1:legacy-1</code>)");
    expect(first).toContain("to-do list");
    expect(await open(url)).toContain(EXPIRED);
    expect(sim.launches.slice(before)).toEqual([
      expect.objectContaining({ staffId: "corp1:legacy-1", pageType: "approve" }),
    ]);

    const succeeded = (await launchAudits(personId)).filter((r) => r.action === "launch.succeeded");
    expect(succeeded.at(-1)?.details).toMatchObject({ personId, target: HESI, page: "approve" });
    // The link is a bearer token: no audit entry holds it or its token.
    const all = JSON.stringify(await audit());
    expect(all).not.toContain(url.searchParams.get("accessToken")!);
    expect(all).not.toContain(url.href);
  });

  it("a person not yet linked in Hesi gets a page and no link, whoever they are", async () => {
    const before = sim.launches.length;
    const { browser } = await signInUnlinked("carl");
    const again = await browser.go(`/launch/${HESI}?page=approve`);
    expect(again).toMatchObject({ kind: "page", status: 403 });
    if (again.kind === "page")
      expect(errorSentence(again.html)).toBe("您在合思的账号尚未开通，请联系管理员。");
    const english = await browser.go(`/launch/${HESI}?page=approve&lang=en`);
    expect(english).toMatchObject({ kind: "page", status: 403 });
    if (english.kind === "page")
      expect(errorSentence(english.html)).toBe(
        "Your Hesi account has not been set up yet. Contact your administrator.",
      );
    expect(sim.launches.length).toBe(before);
  });

  it("opens one bill with form and its flowId, and a new launch gets a fresh link", async () => {
    const { browser, personId } = await signInUnlinked("dora");
    await link(personId, "corp1:legacy-3");
    const first = await browser.go(`/launch/${HESI}?page=form&flowId=ID01abc`);
    const second = await browser.go(`/launch/${HESI}?page=form&flowId=ID01abc`);
    expect(first.kind).toBe("away");
    expect(second.kind).toBe("away");
    expect(first.url.href).not.toBe(second.url.href);
    const page = await open(first.url);
    expect(page).toContain("待交接");
    expect(page).toContain("<code>ID01abc</code>");
    expect(sim.launches.at(-1)).toMatchObject({
      staffId: "corp1:legacy-3",
      pageType: "form",
      flowId: "ID01abc",
    });
  });

  it("a person disabled in AD since signing in gets no link, and the audit says why", async () => {
    const { browser, personId } = await signInUnlinked("bob");
    await link(personId, "corp1:legacy-3");
    const home = await browser.go(`/launch/${HESI}?page=home`);
    expect(home.kind).toBe("away");
    // page=home is Hesi's home page, not its "my bills" (pageType home).
    expect(home.url.searchParams.get("pageType")).toBe("frontPage");

    const admin = new Client({ url: info.url, tlsOptions: { ca: readFileSync(info.caFile) } });
    await admin.bind(info.bindDn, info.bindPassword);
    try {
      await admin.modify(`CN=${sam("bob")},${users.ou}`, [
        new Change({
          operation: "replace",
          modification: new Attribute({ type: "userAccountControl", values: ["514"] }),
        }),
      ]);
    } finally {
      await admin.unbind();
    }
    const before = sim.launches.length;
    const landing = await browser.go(`/launch/${HESI}?page=approve`);
    expect(landing).toMatchObject({ kind: "page", status: 403 });
    if (landing.kind === "page") expect(errorSentence(landing.html)).toBe("此账号已被停用，请联系管理员。");
    expect(sim.launches.length).toBe(before);
    expect((await launchAudits(personId)).at(-1)).toMatchObject({
      action: "launch.failed",
      target: HESI,
      details: { code: "ACCOUNT_DISABLED", page: "approve" },
    });
  });

  it("a phone gets Hesi's app page, signing in on the way when the session is another browser's", async () => {
    const phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 test";
    const { landing } = await launchSigningIn("anna", `/launch/${HESI}?page=approve`, phone);
    expect(landing.kind).toBe("away");
    expect(landing.url.pathname).toBe("/applet/thirdparty.html");
    expect(await open(landing.url)).toContain("老财务");
  });

  it("a staff Hesi has disabled gets no link", async () => {
    const { browser, personId } = await signInUnlinked("carl");
    await link(personId, "corp1:legacy-2");
    const landing = await browser.go(`/launch/${HESI}?page=home`);
    expect(landing).toMatchObject({ kind: "page", status: 403 });
    if (landing.kind === "page") expect(errorSentence(landing.html)).toBe("合思未能为您登录，请联系管理员。");
    expect((await launchAudits(personId)).at(-1)?.details).toMatchObject({ code: "LINK_REFUSED" });
  });

  it("Hesi down: a plain sentence in the person's language, audited, and no link", async () => {
    const { browser, personId } = await signInUnlinked("erik");
    await link(personId, "corp1:legacy-1", HESI_DOWN);
    const zh = await browser.go(`/launch/${HESI_DOWN}?page=home`);
    expect(zh).toMatchObject({ kind: "page", status: 503 });
    if (zh.kind === "page") expect(errorSentence(zh.html)).toBe("合思暂时无法访问，请稍后重试。");
    expect((await launchAudits(personId)).at(-1)).toMatchObject({
      action: "launch.failed",
      target: HESI_DOWN,
      details: { code: "TARGET_UNAVAILABLE", page: "home" },
    });
    const en = await browser.go(`/launch/${HESI_DOWN}?page=home&lang=en`);
    expect(en).toMatchObject({ kind: "page", status: 503 });
    if (en.kind === "page") expect(errorSentence(en.html)).toBe("Hesi is not reachable, try again.");
  }, 60_000);

  it.each([
    ["an unknown target", "/launch/nowhere?page=home", 404],
    ["a page not offered", `/launch/${HESI}?page=mall`, 400],
    ["form without a flowId", `/launch/${HESI}?page=form`, 400],
    ["a flowId that is no bill id", `/launch/${HESI}?page=form&flowId=${encodeURIComponent("a b<c>")}`, 400],
    ["a flowId on another page", `/launch/${HESI}?page=approve&flowId=ID01`, 400],
    ["the page given twice", `/launch/${HESI}?page=home&page=approve`, 400],
  ])("refuses %s with a page, before any sign-in", async (_what, path, status) => {
    const before = (await launchAudits()).length;
    const response = await fetch(new URL(path, service.url), { redirect: "manual" });
    expect(response.status).toBe(status);
    expect(response.headers.get("location")).toBeNull();
    expect(errorSentence(await response.text())).toBe("此链接无效，请检查链接或联系管理员。");
    expect((await launchAudits()).length).toBe(before);
  });
});
