/**
 * The console end to end in headless Chromium, on the demo (`idbridge demo`: idbridge on SQLite with the
 * DingTalk, WeCom and 合思 simulators and the demo company): the security admin signs in through DingTalk,
 * opens the pending plan, sees its separation-of-duties conflict, approves it with a comment and applies it
 * to 合思; the auditor finds the approval in the audit search, downloads the export and the JWKS, and the
 * export verifies with `idbridge audit verify`; the auditor's approval posted straight to the API is
 * refused; the viewer cannot export.
 *
 * Screenshots of every page go to a temp dir removed after the run, or to $IDBRIDGE_E2E_SCREENSHOTS (kept):
 * `IDBRIDGE_E2E_SCREENSHOTS=docs/screenshots npx vitest run test/e2e/console.test.ts` refreshes the ones
 * the README shows.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_IDS } from "../../src/demo/config.js";
import { runCli } from "../helpers/cli.js";
import { demoPerson, startConsoleEnv, type ConsoleEnv } from "../helpers/console-env.js";
import { chromiumOrSkip, launchBrowser, newContext, screenshot } from "./browser.js";

const chromium = chromiumOrSkip();
const TIMEOUT = 60_000;
const KEEP_SHOTS = process.env.IDBRIDGE_E2E_SCREENSHOTS;
const COMMENT = "已核对：何敏的会计角色由 SoD 规则保留，其余授权符合财务部岗位。";

describe.skipIf(chromium === null)("the console in a browser (headless Chromium)", () => {
  let env: ConsoleEnv;
  let browser: Browser;
  let work: string;
  let shots: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "idbridge-e2e-console-"));
    shots = KEEP_SHOTS === undefined ? join(work, "shots") : resolve(KEEP_SHOTS);
    env = await startConsoleEnv();
    browser = await launchBrowser(chromium!);
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await env?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** A fresh browser (its own cookies) signed in to the console as `userid` through the DingTalk picker. */
  async function signIn(
    userid: string,
    shotPrefix?: string,
    viewport?: { width: number; height: number },
  ): Promise<Page> {
    const context = await newContext(browser);
    contexts.push(context);
    const page = await context.newPage();
    if (viewport !== undefined) await page.setViewportSize(viewport);
    await page.goto(`${env.console}/`);
    await page.waitForURL((u) => u.pathname.startsWith("/login/"));
    if (shotPrefix !== undefined) await screenshot(page, shots, `${shotPrefix}-sign-in`);
    await page.click(`a.source[href*="/source/${DEMO_IDS.dingtalk}"]`);
    await page.waitForURL((u) => u.href.startsWith(env.demo.urls.dingtalk));
    await page.click(`a[data-userid="${userid}"] >> nth=0`);
    await page.waitForURL((u) => u.href.startsWith(`${env.console}/`));
    return page;
  }

  it(
    "the security admin opens the pending plan, sees the SoD conflict, approves it with a comment and applies it to 合思",
    async () => {
      const admin = demoPerson(env, "security-admin");
      const plan = env.demo.initialPlan;
      const page = await signIn(admin.userid, "console");
      await expect(page.getByTestId("caller").textContent()).resolves.toContain(admin.name);
      await screenshot(page, shots, "console-home");

      await page.click(`[data-testid="pending-plan"][href$="/plans/${plan.id}"]`);
      await page.waitForURL((u) => u.pathname === `/console/plans/${plan.id}`);
      const summary = page.getByTestId("plan-summary");
      await expect(summary.isVisible()).resolves.toBe(true);
      const sod = await page.getByTestId("plan-sod").textContent();
      expect(sod).toContain(env.demo.company.conflicted.name);
      expect(sod).toContain("cashier-is-not-accountant");
      await shotOf(page, "plan-sod", "console-plan");

      // Flagged changes only, per role: the sensitive grants and the conflict, as a reviewer reads them.
      await page.goto(`${env.console}/plans/${plan.id}?flagged=true&groupBy=role`);
      await expect(page.getByTestId("plan-changes").textContent()).resolves.toContain("出纳");
      await shotOf(page, "plan-changes", "console-plan-flagged");

      await page.goto(`${env.console}/plans/${plan.id}`);
      const form = page.getByTestId("plan-decision");
      await form.locator("textarea[name=comment]").fill(COMMENT);
      await form.getByTestId("approve").click();
      await page.waitForURL((u) => u.pathname === `/console/plans/${plan.id}`);
      const record = await page.getByTestId("plan-decision-record").textContent();
      expect(record).toContain(admin.name);
      expect(record).toContain(COMMENT);
      await shotOf(page, "plan-decision-record", "console-plan-approved");

      expect(env.demo.hesi.staff()).toHaveLength(0);
      await page.getByTestId("apply").locator("button").click();
      await page.waitForURL((u) => u.pathname === `/console/plans/${plan.id}`);
      await expect(page.getByTestId("plan-outcome").isVisible()).resolves.toBe(true);
      expect(env.demo.hesi.staff().length).toBeGreaterThan(200);
      await shotOf(page, "plan-outcome", "console-plan-applied");
    },
    TIMEOUT,
  );

  it(
    "the auditor finds the approval in the audit search, exports it, and the export verifies with idbridge audit verify",
    async () => {
      const auditor = demoPerson(env, "auditor");
      const admin = demoPerson(env, "security-admin");
      const page = await signIn(auditor.userid);
      await page.goto(`${env.console}/audit?action=plan.approved`);
      const table = await page.getByTestId("audit-table").textContent();
      expect(table).toContain("plan.approved");
      expect(table).toContain(env.demo.initialPlan.id);
      expect(await page.getByTestId("audit-row").count()).toBe(1);
      await screenshot(page, shots, "console-audit");

      const jsonl = join(work, "export.jsonl");
      const jwks = join(work, "jwks.json");
      for (const [testId, file] of [
        ["export-jsonl", jsonl],
        ["export-jwks", jwks],
      ] as const) {
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.getByTestId(testId).click(),
        ]);
        await download.saveAs(file);
      }
      await expect(page.getByTestId("verify-howto").textContent()).resolves.toContain(
        "idbridge audit verify",
      );
      const verified = await runCli(["audit", "verify", jsonl, "--jwks", jwks]);
      expect(verified.stderr).toBe("");
      expect(verified.code).toBe(0);

      // The export itself is on the record, with the auditor as its actor; the approval names the admin.
      await page.goto(`${env.console}/audit?action=audit.exported`);
      await expect(page.getByTestId("audit-table").textContent()).resolves.toContain(auditor.name);
      await page.goto(`${env.console}/audit?action=plan.approved`);
      await expect(page.getByTestId("audit-table").textContent()).resolves.toContain(admin.name);
    },
    TIMEOUT,
  );

  it(
    "the auditor's approval posted straight to the API, with a valid CSRF token, gets 403 and records nothing",
    async () => {
      const page = await signIn(demoPerson(env, "auditor").userid);
      const api = `${env.demo.urls.idbridge}/api/v1`;
      const me = (await (await page.request.get(`${api}/me`)).json()) as { csrfToken: string };
      expect(me.csrfToken).toMatch(/.{20,}/);
      const approvedBefore = await countEntries(page, "plan.approved");
      const plan = env.demo.initialPlan;
      const res = await page.request.post(`${api}/plans/${plan.id}/decision`, {
        headers: { "x-csrf-token": me.csrfToken },
        data: { decision: "reject", comment: "审计员不应能决定", hash: plan.hash },
      });
      expect(res.status()).toBe(403);
      expect(await countEntries(page, "plan.approved")).toBe(approvedBefore);
      expect(await countEntries(page, "plan.rejected")).toBe(0);
    },
    TIMEOUT,
  );

  it(
    "the accountant with the conflict signs in to the finance app: 出纳 granted, 会计 withheld by the SoD rule",
    async () => {
      const context = await newContext(browser);
      contexts.push(context);
      const page = await context.newPage();
      await page.goto(`${env.demo.urls.financeApp}/login`);
      await page.waitForURL((u) => u.pathname.startsWith("/login/"));
      await page.click(`a.source[href*="/source/${DEMO_IDS.dingtalk}"]`);
      await page.waitForURL((u) => u.href.startsWith(env.demo.urls.dingtalk));
      await page.click(`a[data-userid="${env.demo.company.conflicted.userid}"] >> nth=0`);
      await page.waitForURL((u) => u.href.startsWith(env.demo.urls.financeApp));
      const roles = await page.locator("#roles").textContent();
      expect(roles).toContain("出纳");
      expect(roles).not.toContain("会计");
      await screenshot(page, shots, "finance-app");
    },
    TIMEOUT,
  );

  it(
    "the viewer sees no export, and a direct export link gets 403",
    async () => {
      const page = await signIn(demoPerson(env, "viewer").userid);
      await page.goto(`${env.console}/audit`);
      await expect(page.getByTestId("audit-table").isVisible()).resolves.toBe(true);
      expect(await page.getByTestId("audit-export").count()).toBe(0);
      const res = await page.request.get(`${env.console}/audit/export?format=jsonl`);
      expect(res.status()).toBe(403);
      expect(await res.text()).toContain('data-code="ACCESS_DENIED"');
      await screenshot(page, shots, "console-viewer-audit", { fullPage: false });
    },
    TIMEOUT,
  );

  it(
    "works on a phone-sized screen: the plan page fits its width and the tables scroll inside",
    async () => {
      const page = await signIn(demoPerson(env, "security-admin").userid, undefined, {
        width: 390,
        height: 844,
      });
      await page.goto(`${env.console}/plans/${env.demo.initialPlan.id}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      await screenshot(page, shots, "console-plan-phone", { fullPage: false });
    },
    TIMEOUT,
  );

  /** A screenshot of the window scrolled to the element `testId` (the part of a long page the README shows). */
  async function shotOf(page: Page, testId: string, name: string): Promise<void> {
    await page.getByTestId(testId).evaluate((element) => element.scrollIntoView({ block: "start" }));
    await screenshot(page, shots, name, { fullPage: false });
  }

  /** How many `action` entries the audit log holds, through the API with the page's session. */
  async function countEntries(page: Page, action: string): Promise<number> {
    const res = await page.request.get(
      `${env.demo.urls.idbridge}/api/v1/audit/entries?action=${action}&limit=200`,
    );
    expect(res.status()).toBe(200);
    return ((await res.json()) as { items: unknown[] }).items.length;
  }
});
