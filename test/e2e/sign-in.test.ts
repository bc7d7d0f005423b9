/**
 * Sign-in end to end in headless Chromium, against one idbridge with every kind of source: DingTalk (QR and
 * in-app), WeCom (QR and in-app), AD password on Samba, a corporate OIDC IdP and SimpleSAMLphp. For each, a
 * person signs in to finance client A, opens client B without a prompt, and logs out of both. Then: one
 * `sub` whichever way they came, refusals of not-active and foreign accounts in plain sentences, and the
 * one-click launch into 合思 from the DingTalk in-app browser.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { sambaOrSkip } from "../peers/index.js";
import { simplesamlphpOrSkip, type SimpleSamlPhpPeer } from "../peers/simplesamlphp.js";
import {
  chromiumOrSkip,
  launchBrowser,
  newContext,
  screenshot,
  setCookiesOn,
  USER_AGENTS,
  type ContextOptions,
} from "./browser.js";
import {
  AD_ID,
  DINGTALK_ID,
  HESI_ID,
  OIDC_ID,
  OIDC_USER,
  SAML_ID,
  SAML_USER,
  startSignInEnv,
  WECOM_ID,
  type SignInEnv,
} from "./sign-in-env.js";

const chromium = chromiumOrSkip();
const samba = sambaOrSkip();
const TIMEOUT = 30_000;

/**
 * Screenshots of every page that matters go to a temp dir removed after the run, or to
 * $IDBRIDGE_E2E_SCREENSHOTS (kept) to look at them. They are not committed: without CJK fonts installed
 * Chromium draws the Chinese pages as boxes, so they differ from machine to machine.
 */
const KEEP_SHOTS = process.env.IDBRIDGE_E2E_SCREENSHOTS;

const DISABLED_ZH = "此账号已被停用，请联系管理员。";
const DISABLED_EN = "Your account is disabled. Contact your administrator.";
const FOREIGN_ZH = "此账号不属于本企业，无法登录。";

describe.skipIf(chromium === null || samba === null)("sign-in in a browser (headless Chromium)", () => {
  let ssp: SimpleSamlPhpPeer | null = null;
  let env: SignInEnv;
  let browser: Browser;
  let shots: string;
  /** The sub client A saw, by way of signing in. */
  const subs = new Map<string, string>();

  beforeAll(async () => {
    ssp = await simplesamlphpOrSkip();
    if (ssp === null) return;
    env = await startSignInEnv(samba!, ssp);
    browser = await launchBrowser(chromium!);
    shots = KEEP_SHOTS ?? (await mkdtemp(join(tmpdir(), "idbridge-e2e-sign-in-")));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await env?.close();
    await ssp?.stop();
    if (shots !== undefined && KEEP_SHOTS === undefined) await rm(shots, { recursive: true, force: true });
  });

  /** A screenshot of the page as it is now. */
  async function shoot(page: Page, name: string): Promise<void> {
    const file = await screenshot(page, shots, name);
    expect((await stat(file)).size).toBeGreaterThan(1_000);
  }

  async function context(options: ContextOptions = {}): Promise<BrowserContext> {
    return newContext(browser, options);
  }

  /** Main-frame URLs the page goes through from now on. */
  function trackNavigations(page: Page): string[] {
    const seen: string[] = [];
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) seen.push(frame.url());
    });
    return seen;
  }

  /**
   * A URL test on origin and path only: WeCom's in-app OAuth URL ends in `#wechat_redirect`, and a browser
   * keeps a fragment across redirects whose Location has none, so the client's page inherits it.
   */
  function at(origin: string, path: string): (url: URL) => boolean {
    return (url) => url.origin === origin && url.pathname === path;
  }

  async function statusOf(page: Page, url: string): Promise<string> {
    await page.goto(url);
    return (await page.textContent("#status")) ?? "";
  }

  /** A's page after sign-in: name and sub shown; returns the sub. */
  async function signedInAtA(page: Page, way: string, name: string): Promise<string> {
    await page.waitForURL(at(env.financeA.url, "/"));
    expect(await page.textContent("#name")).toBe(name);
    const sub = (await page.textContent("#sub")) ?? "";
    expect(sub).toMatch(/^p_[0-9a-f]{20}$/);
    subs.set(way, sub);
    return sub;
  }

  /** Client B signs in with no page of idbridge or of any IdP in between, as the same person. */
  async function secondClientSilently(page: Page, sub: string): Promise<void> {
    const seen = trackNavigations(page);
    await page.goto(`${env.financeB.url}/login`);
    await page.waitForURL(at(env.financeB.url, "/"));
    expect(await page.textContent("#sub")).toBe(sub);
    expect(await page.textContent("#roles")).not.toBe("none");
    const stops = seen.filter((u) => !u.startsWith(env.financeB.url));
    expect(stops, `pages shown on the way: ${seen.join(" → ")}`).toStrictEqual([]);
  }

  /** A's logout: idbridge asks to confirm; then both clients are signed out (B over the back channel). */
  async function logoutOfBoth(page: Page, sub: string, shot?: string): Promise<void> {
    const told = env.financeB.received().length;
    await page.goto(env.financeA.url);
    await page.click("text=Sign out");
    await page.waitForURL((u) => u.href.startsWith(`${env.issuer}/session/end`));
    if (shot !== undefined) await shoot(page, shot);
    await page.click('button[name="logout"]');
    await page.waitForURL(at(env.financeA.url, new URL(env.financeA.postLogoutRedirectUri).pathname));
    expect(await page.textContent("#status")).toBe("signed out");
    await expect.poll(() => env.financeB.received().length).toBe(told + 1);
    expect(env.financeB.received()[told]).toMatchObject({
      accepted: true,
      endedSessions: 1,
      claims: { sub },
    });
    expect(await statusOf(page, env.financeB.url)).toBe("not signed in");
    expect(await statusOf(page, env.financeA.url)).toBe("not signed in");
  }

  /** The login page of idbridge for client A. */
  async function loginPage(page: Page): Promise<void> {
    await page.goto(`${env.financeA.url}/login`);
    await page.waitForURL((u) => u.href.startsWith(`${env.url}/login/`));
  }

  /** The sentence of a refusal on idbridge's page, and no session at A. */
  async function refused(page: Page, sentence: string, shot?: string): Promise<void> {
    await page.waitForURL((u) => u.href.startsWith(`${env.url}/`));
    await expect.poll(() => page.textContent('[role="alert"]')).toBe(sentence);
    expect(page.url()).not.toContain(env.financeA.url);
    if (shot !== undefined) await shoot(page, shot);
    expect(await statusOf(page, env.financeA.url)).toBe("not signed in");
  }

  const corpId = (): string => String(env.dingtalk.sourceConfig().corpId);

  describe("each source: sign in to A, B without a prompt, log out of both", () => {
    it(
      "DingTalk QR: the person is picked on DingTalk's page",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await shoot(page, "login-page");
        await page.click(`a.source[href*="/source/${DINGTALK_ID}"]`);
        await page.waitForURL((u) => u.href.startsWith(env.dingtalk.url));
        await shoot(page, "dingtalk-picker");
        await page.click(`a[data-userid="${env.linked.userid}"][data-corpid="${corpId()}"]`);
        const sub = await signedInAtA(page, "dingtalk-qr", env.linked.name);
        expect(await page.textContent("#roles")).toContain("报销提交人");
        await shoot(page, "finance-signed-in");
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub, "logout-confirm");
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "DingTalk in-app: the DingTalk user agent signs in with no click at all",
      async () => {
        const ctx = await context({ userAgent: USER_AGENTS.dingTalk });
        await setCookiesOn(ctx, env.dingtalk.url, [{ name: "dingtalk_sim_user", value: env.linked.userid }]);
        const page = await ctx.newPage();
        const seen = trackNavigations(page);
        await page.goto(`${env.financeA.url}/login`);
        const sub = await signedInAtA(page, "dingtalk-in-app", env.linked.name);
        // The JSAPI page was the only page of idbridge on the way, and it posted itself.
        expect(seen.some((u) => u.startsWith(`${env.url}/login/`))).toBe(true);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "WeCom QR: the person is picked on WeCom's page",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${WECOM_ID}"]`);
        await page.waitForURL((u) => u.href.startsWith(env.wecom.url));
        await shoot(page, "wecom-picker");
        await page.click(`a[data-kind="member"][data-userid="${env.linked.userid}"]`);
        const sub = await signedInAtA(page, "wecom-qr", env.linked.name);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "WeCom in-app: the wxwork user agent signs in with no click at all",
      async () => {
        const ctx = await context({ userAgent: USER_AGENTS.weCom });
        await setCookiesOn(ctx, env.wecom.url, [{ name: "wecom_sim_user", value: env.linked.userid }]);
        const page = await ctx.newPage();
        await page.goto(`${env.financeA.url}/login`);
        const sub = await signedInAtA(page, "wecom-in-app", env.linked.name);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "AD password: typed into idbridge's form",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.fill(`#login-${AD_ID}`, env.samOf("linked"));
        await page.fill(`#password-${AD_ID}`, env.ad.password.linked!);
        await page.press(`#password-${AD_ID}`, "Enter");
        const sub = await signedInAtA(page, "ad-password", env.linked.name);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "corporate OIDC: the IdP's own login form",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${OIDC_ID}"]`);
        await page.waitForURL((u) => u.href.startsWith(env.idp.url));
        await shoot(page, "oidc-idp-login");
        await page.fill('input[name="username"]', OIDC_USER.username);
        await page.fill('input[name="password"]', OIDC_USER.password);
        await page.click('button[name="login"]');
        const sub = await signedInAtA(page, "oidc", env.linked.name);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "SAML: SimpleSAMLphp's login form",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${SAML_ID}"]`);
        await page.waitForURL((u) => u.href.startsWith(env.saml.baseUrl));
        await page.waitForSelector('input[name="password"]');
        await shoot(page, "saml-idp-login");
        await page.fill('input[name="username"]', SAML_USER.username);
        await page.fill('input[name="password"]', SAML_USER.password);
        await page.press('input[name="password"]', "Enter");
        const sub = await signedInAtA(page, "saml", env.linked.name);
        await secondClientSilently(page, sub);
        await logoutOfBoth(page, sub);
        await ctx.close();
      },
      TIMEOUT,
    );
  });

  it("gives the person linked across DingTalk, WeCom, AD, OIDC and SAML one sub whichever way they came", () => {
    expect([...subs.keys()].sort()).toStrictEqual(
      ["ad-password", "dingtalk-in-app", "dingtalk-qr", "oidc", "saml", "wecom-in-app", "wecom-qr"].sort(),
    );
    expect(new Set(subs.values()).size).toBe(1);
  });

  describe("refusals, in plain sentences", () => {
    it(
      "refuses a DingTalk account that is not active at the QR page",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${DINGTALK_ID}"]`);
        await page.click(`a[data-userid="${env.inactive.userid}"][data-corpid="${corpId()}"]`);
        await refused(page, DISABLED_ZH, "refused-disabled");
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "refuses a DingTalk account that is not active in the in-app browser",
      async () => {
        const ctx = await context({ userAgent: USER_AGENTS.dingTalk });
        await setCookiesOn(ctx, env.dingtalk.url, [
          { name: "dingtalk_sim_user", value: env.inactive.userid },
        ]);
        const page = await ctx.newPage();
        await page.goto(`${env.financeA.url}/login`);
        await refused(page, DISABLED_ZH);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "refuses a WeCom account that is not active at the QR page",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${WECOM_ID}"]`);
        await page.click(`a[data-kind="member"][data-userid="${env.inactive.userid}"]`);
        await refused(page, DISABLED_ZH);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "refuses a WeCom account that is not active in the in-app browser",
      async () => {
        const ctx = await context({ userAgent: USER_AGENTS.weCom });
        await setCookiesOn(ctx, env.wecom.url, [{ name: "wecom_sim_user", value: env.inactive.userid }]);
        const page = await ctx.newPage();
        await page.goto(`${env.financeA.url}/login`);
        await refused(page, DISABLED_ZH);
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "refuses a disabled AD account, in English for an English browser",
      async () => {
        for (const [locale, sentence] of [
          ["zh-CN", DISABLED_ZH],
          ["en-US", DISABLED_EN],
        ] as const) {
          const ctx = await context({ locale });
          const page = await ctx.newPage();
          await loginPage(page);
          await page.fill(`#login-${AD_ID}`, env.samOf("disabled"));
          await page.fill(`#password-${AD_ID}`, env.ad.password.disabled!);
          await page.press(`#password-${AD_ID}`, "Enter");
          await refused(page, sentence, locale === "en-US" ? "refused-disabled-en" : undefined);
          await ctx.close();
        }
      },
      TIMEOUT,
    );

    it(
      "refuses a DingTalk user of another organisation",
      async () => {
        const ctx = await context();
        const page = await ctx.newPage();
        await loginPage(page);
        await page.click(`a.source[href*="/source/${DINGTALK_ID}"]`);
        const foreign = env.dingtalk.foreignOrg;
        await page.click(`a[data-corpid="${foreign.corpId}"] >> nth=0`);
        await refused(page, FOREIGN_ZH, "refused-foreign-organisation");
        await ctx.close();
      },
      TIMEOUT,
    );
  });

  describe("launch into 合思 from the DingTalk in-app browser", () => {
    const launchUrl = () => `${env.url}/launch/${HESI_ID}?page=approve`;

    it(
      "lands on 合思's to-do page signed in as the person with no click, and the link works once",
      async () => {
        const staff = env.hesi.staff().find((s) => s.code === env.linked.jobNumber);
        expect(staff, "the sync made the person a 合思 staff").toBeDefined();
        const ctx = await context({ userAgent: USER_AGENTS.dingTalk });
        await setCookiesOn(ctx, env.dingtalk.url, [{ name: "dingtalk_sim_user", value: env.linked.userid }]);
        const page = await ctx.newPage();
        await page.goto(launchUrl());
        await page.waitForURL(
          (u) => u.href.startsWith(env.hesi.url) && u.pathname.endsWith("thirdparty.html"),
        );
        const landing = (await page.textContent("body")) ?? "";
        expect(landing).toContain(`signed in as ${staff!.name} (${staff!.id})`);
        expect(landing).toContain("待办列表 (to-do list)");
        await shoot(page, "hesi-launch-landing");
        const link = page.url();
        await page.goto(link);
        expect(await page.textContent("body")).toContain("临时访问地址已过期");
        expect(await page.textContent("body")).not.toContain("signed in as");
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "gives no link to a person whose AD account was disabled after they signed in",
      async () => {
        const ctx = await context({ userAgent: USER_AGENTS.dingTalk });
        await setCookiesOn(ctx, env.dingtalk.url, [{ name: "dingtalk_sim_user", value: env.second.userid }]);
        const page = await ctx.newPage();
        await page.goto(`${env.url}/launch/${HESI_ID}?page=home`);
        await page.waitForURL((u) => u.href.startsWith(env.hesi.url));
        const launches = env.hesi.launches.length;
        await env.setAdDisabled("second", true);
        try {
          await page.goto(launchUrl());
          expect(new URL(page.url()).origin).toBe(env.url);
          expect(await page.textContent('[role="alert"]')).toBe(DISABLED_ZH);
          expect(env.hesi.launches.length).toBe(launches);
          await shoot(page, "launch-refused-disabled");
        } finally {
          await env.setAdDisabled("second", false);
        }
        await ctx.close();
      },
      TIMEOUT,
    );

    it(
      "gives no link to a person DingTalk lists as not active",
      async () => {
        const launches = env.hesi.launches.length;
        const ctx = await context({ userAgent: USER_AGENTS.dingTalk });
        await setCookiesOn(ctx, env.dingtalk.url, [
          { name: "dingtalk_sim_user", value: env.inactive.userid },
        ]);
        const page = await ctx.newPage();
        await page.goto(launchUrl());
        await page.waitForURL((u) => u.href.startsWith(`${env.url}/login/`));
        await expect.poll(() => page.textContent('[role="alert"]')).toBe(DISABLED_ZH);
        expect(env.hesi.launches.length).toBe(launches);
        await ctx.close();
      },
      TIMEOUT,
    );
  });
});
