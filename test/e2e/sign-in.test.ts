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
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
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

  /** A page in a fresh browser context (its own cookies), closed when the test ends. */
  async function newPage(options: ContextOptions = {}): Promise<Page> {
    const ctx = await context(options);
    onTestFinished(() => ctx.close());
    return ctx.newPage();
  }

  /** A page in DingTalk's or WeCom's in-app browser, where the app already knows the person as `userid`. */
  async function inAppPage(app: "dingTalk" | "weCom", userid: string): Promise<Page> {
    const ctx = await context({ userAgent: USER_AGENTS[app] });
    onTestFinished(() => ctx.close());
    const [url, name] =
      app === "dingTalk" ? [env.dingtalk.url, "dingtalk_sim_user"] : [env.wecom.url, "wecom_sim_user"];
    await setCookiesOn(ctx, url, [{ name, value: userid }]);
    return ctx.newPage();
  }

  /** From idbridge's login page for A to a source's own page (QR picker or IdP form), with screenshots if named. */
  async function toSourcePage(
    page: Page,
    sourceId: string,
    shots: { login?: string; source?: string } = {},
  ): Promise<void> {
    const pageOf: Record<string, string> = {
      [DINGTALK_ID]: env.dingtalk.url,
      [WECOM_ID]: env.wecom.url,
      [OIDC_ID]: env.idp.url,
      [SAML_ID]: env.saml.baseUrl,
    };
    await loginPage(page);
    if (shots.login !== undefined) await shoot(page, shots.login);
    await page.click(`a.source[href*="/source/${sourceId}"]`);
    await page.waitForURL((u) => u.href.startsWith(pageOf[sourceId]!));
    if (shots.source !== undefined) await shoot(page, shots.source);
  }

  /** Picks the DingTalk user `userid` of our organisation on DingTalk's QR page. */
  async function pickOnDingTalk(page: Page, userid: string, shots?: { login?: string; source?: string }) {
    await toSourcePage(page, DINGTALK_ID, shots);
    await page.click(`a[data-userid="${userid}"][data-corpid="${corpId()}"]`);
  }

  /** Picks the WeCom member `userid` on WeCom's QR page. */
  async function pickOnWeCom(page: Page, userid: string, shot?: string): Promise<void> {
    await toSourcePage(page, WECOM_ID, { source: shot });
    await page.click(`a[data-kind="member"][data-userid="${userid}"]`);
  }

  /** Types an AD person's login and password into idbridge's form. */
  async function typeAdPassword(page: Page, who: "linked" | "disabled"): Promise<void> {
    await loginPage(page);
    await page.fill(`#login-${AD_ID}`, env.samOf(who));
    await page.fill(`#password-${AD_ID}`, env.ad.password[who]!);
    await page.press(`#password-${AD_ID}`, "Enter");
  }

  /** Fills the login form of an IdP (OIDC or SAML) reached from A's login page; the caller submits it. */
  async function fillIdpForm(
    page: Page,
    sourceId: string,
    user: { username: string; password: string },
    shot: string,
  ): Promise<void> {
    await toSourcePage(page, sourceId);
    await page.waitForSelector('input[name="password"]');
    await shoot(page, shot);
    await page.fill('input[name="username"]', user.username);
    await page.fill('input[name="password"]', user.password);
  }

  /**
   * The rest of every source's round trip once the source has answered: signed in at A as the linked person
   * (checked by `atA` too, if given), B without a prompt, and a logout of both.
   */
  async function signedInEverywhere(
    page: Page,
    way: string,
    options: { atA?: () => Promise<void>; logoutShot?: string } = {},
  ): Promise<void> {
    const sub = await signedInAtA(page, way, env.linked.name);
    await options.atA?.();
    await secondClientSilently(page, sub);
    await logoutOfBoth(page, sub, options.logoutShot);
  }

  describe("each source: sign in to A, B without a prompt, log out of both", () => {
    it(
      "DingTalk QR: the person is picked on DingTalk's page",
      async () => {
        const page = await newPage();
        await pickOnDingTalk(page, env.linked.userid, { login: "login-page", source: "dingtalk-picker" });
        await signedInEverywhere(page, "dingtalk-qr", {
          atA: async () => {
            expect(await page.textContent("#roles")).toContain("报销提交人");
            await shoot(page, "finance-signed-in");
          },
          logoutShot: "logout-confirm",
        });
      },
      TIMEOUT,
    );

    it(
      "DingTalk in-app: the DingTalk user agent signs in with no click at all",
      async () => {
        const page = await inAppPage("dingTalk", env.linked.userid);
        const seen = trackNavigations(page);
        await page.goto(`${env.financeA.url}/login`);
        await signedInEverywhere(page, "dingtalk-in-app", {
          // The JSAPI page was the only page of idbridge on the way, and it posted itself.
          atA: async () => expect(seen.some((u) => u.startsWith(`${env.url}/login/`))).toBe(true),
        });
      },
      TIMEOUT,
    );

    it(
      "WeCom QR: the person is picked on WeCom's page",
      async () => {
        const page = await newPage();
        await pickOnWeCom(page, env.linked.userid, "wecom-picker");
        await signedInEverywhere(page, "wecom-qr");
      },
      TIMEOUT,
    );

    it(
      "WeCom in-app: the wxwork user agent signs in with no click at all",
      async () => {
        const page = await inAppPage("weCom", env.linked.userid);
        await page.goto(`${env.financeA.url}/login`);
        await signedInEverywhere(page, "wecom-in-app");
      },
      TIMEOUT,
    );

    it(
      "AD password: typed into idbridge's form",
      async () => {
        const page = await newPage();
        await typeAdPassword(page, "linked");
        await signedInEverywhere(page, "ad-password");
      },
      TIMEOUT,
    );

    it(
      "corporate OIDC: the IdP's own login form",
      async () => {
        const page = await newPage();
        await fillIdpForm(page, OIDC_ID, OIDC_USER, "oidc-idp-login");
        await page.click('button[name="login"]');
        await signedInEverywhere(page, "oidc");
      },
      TIMEOUT,
    );

    it(
      "SAML: SimpleSAMLphp's login form",
      async () => {
        const page = await newPage();
        await fillIdpForm(page, SAML_ID, SAML_USER, "saml-idp-login");
        await page.press('input[name="password"]', "Enter");
        await signedInEverywhere(page, "saml");
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
        const page = await newPage();
        await pickOnDingTalk(page, env.inactive.userid);
        await refused(page, DISABLED_ZH, "refused-disabled");
      },
      TIMEOUT,
    );

    it(
      "refuses a DingTalk account that is not active in the in-app browser",
      async () => {
        const page = await inAppPage("dingTalk", env.inactive.userid);
        await page.goto(`${env.financeA.url}/login`);
        await refused(page, DISABLED_ZH);
      },
      TIMEOUT,
    );

    it(
      "refuses a WeCom account that is not active at the QR page",
      async () => {
        const page = await newPage();
        await pickOnWeCom(page, env.inactive.userid);
        await refused(page, DISABLED_ZH);
      },
      TIMEOUT,
    );

    it(
      "refuses a WeCom account that is not active in the in-app browser",
      async () => {
        const page = await inAppPage("weCom", env.inactive.userid);
        await page.goto(`${env.financeA.url}/login`);
        await refused(page, DISABLED_ZH);
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
          const page = await newPage({ locale });
          await typeAdPassword(page, "disabled");
          await refused(page, sentence, locale === "en-US" ? "refused-disabled-en" : undefined);
        }
      },
      TIMEOUT,
    );

    it(
      "refuses a DingTalk user of another organisation",
      async () => {
        const page = await newPage();
        await toSourcePage(page, DINGTALK_ID);
        const foreign = env.dingtalk.foreignOrg;
        await page.click(`a[data-corpid="${foreign.corpId}"] >> nth=0`);
        await refused(page, FOREIGN_ZH, "refused-foreign-organisation");
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
        const page = await inAppPage("dingTalk", env.linked.userid);
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
      },
      TIMEOUT,
    );

    it(
      "gives no link to a person whose AD account was disabled after they signed in",
      async () => {
        const page = await inAppPage("dingTalk", env.second.userid);
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
      },
      TIMEOUT,
    );

    it(
      "gives no link to a person DingTalk lists as not active",
      async () => {
        const launches = env.hesi.launches.length;
        const page = await inAppPage("dingTalk", env.inactive.userid);
        await page.goto(launchUrl());
        await page.waitForURL((u) => u.href.startsWith(`${env.url}/login/`));
        await expect.poll(() => page.textContent('[role="alert"]')).toBe(DISABLED_ZH);
        expect(env.hesi.launches.length).toBe(launches);
      },
      TIMEOUT,
    );
  });
});
