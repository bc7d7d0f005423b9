/**
 * The console's frame over HTTP, on the demo (idbridge on SQLite with the DingTalk, WeCom and 合思
 * simulators): sign-in through idbridge's own provider, the no-role page, the language switch, the
 * navigation by role, the headers every page carries, CSRF on every form post, and the error pages. The
 * pages themselves are tested in console-sync.test.ts and console-audit.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP, STYLESHEET } from "../../src/console/layout.js";
import type { Browser, Landing } from "../helpers/broker-env.js";
import {
  csrfOf,
  demoPerson,
  signInToConsole,
  startConsoleEnv,
  type ConsoleEnv,
} from "../helpers/console-env.js";

let env: ConsoleEnv;
let admin: Browser;
let adminHome: string;

beforeAll(async () => {
  env = await startConsoleEnv();
  const signedIn = await signInToConsole(env, demoPerson(env, "security-admin").userid);
  admin = signedIn.browser;
  adminHome = pageOf(signedIn.landing).html;
}, 120_000);

afterAll(async () => {
  await env?.close();
});

function pageOf(landing: Landing): Extract<Landing, { kind: "page" }> {
  if (landing.kind !== "page") throw new Error(`expected a console page, went to ${landing.url.href}`);
  return landing;
}

/** How many `action` entries the audit log holds, read through the admin API with `browser`'s session. */
async function auditCount(browser: Browser, action: string): Promise<number> {
  const res = await fetch(`${env.demo.urls.idbridge}/api/v1/audit/entries?action=${action}&limit=200`, {
    headers: { cookie: browser.jar.header() },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: unknown[] }).items.length;
}

describe("signing in to the console", () => {
  it("sends a browser without a session to idbridge's own sign-in, and back to the page it asked for", async () => {
    const res = await fetch(`${env.console}/plans?status=pending`, { redirect: "manual" });
    expect(res.status).toBe(303);
    const to = new URL(res.headers.get("location")!);
    expect(to.pathname).toBe("/oidc/auth");
    expect(to.searchParams.get("client_id")).toBe("idbridge");
    expect(to.searchParams.get("state")).toBe("/console/plans?status=pending");

    const { landing } = await signInToConsole(
      env,
      demoPerson(env, "viewer").userid,
      "/people?text=%E4%BD%95",
    );
    const page = pageOf(landing);
    expect(page.status).toBe(200);
    expect(page.url.pathname).toBe("/console/people");
    expect(page.url.searchParams.get("text")).toBe("何");
  });

  it("shows a person without a console role a 403 page that says how to get one, and nothing else", async () => {
    const employee = demoPerson(env, "employee");
    const page = pageOf((await signInToConsole(env, employee.userid)).landing);
    expect(page.status).toBe(403);
    expect(page.html).toContain('data-code="NO_ROLE"');
    expect(page.html).toContain(employee.name);
    expect(page.html).toContain("console.access");
    expect(page.html).not.toContain('data-testid="nav"');
    expect(page.html).not.toContain('name="_csrf"');
    // …but they may sign out, to sign in as someone else.
    expect(page.html).toContain('data-testid="sign-out"');
  });

  it("refuses bearer tokens: the console takes browser sessions, the API takes tokens", async () => {
    const res = await fetch(`${env.console}/`, { headers: { authorization: "Bearer abc" } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("/api/v1");
  });

  it("sends a form posted without a session to sign in, and does not replay it", async () => {
    const plan = env.demo.initialPlan;
    const res = await fetch(`${env.console}/plans/${plan.id}/decision`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ decision: "approve", comment: "x", hash: plan.hash }).toString(),
    });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get("location")!).searchParams.get("state")).toBe("/console/");
  });
});

describe("the frame", () => {
  it("greets the security admin with the pending plan, their name and role, and every part of the console", () => {
    const admin = demoPerson(env, "security-admin");
    expect(adminHome).toContain(`${admin.name}（安全管理员）`);
    expect(adminHome).toContain(`/console/plans/${env.demo.initialPlan.id}`);
    for (const id of ["home", "plans", "runs", "review", "people", "audit", "holders", "accessReview"])
      expect(adminHome).toContain(`data-testid="nav-${id}"`);
    expect(adminHome).toContain('lang="zh-CN"');
  });

  it("sends every page with a strict CSP (no script, no inline style), no-store, and a year-cached stylesheet", async () => {
    const res = await fetch(`${env.console}/`, { headers: { cookie: admin.jar.header() } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).not.toContain("unsafe-inline");
    expect(CONSOLE_CSP).not.toContain("script-src");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html).not.toMatch(/<script|style="/);
    expect(html).toContain(`/console/assets/${STYLESHEET.name}`);

    const css = await fetch(`${env.console}/assets/${STYLESHEET.name}`);
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toContain("text/css");
    expect(css.headers.get("cache-control")).toContain("immutable");
    expect(await css.text()).toBe(STYLESHEET.body);
    expect(
      (await fetch(`${env.console}/assets/console-000000000000.css`, { redirect: "manual" })).status,
    ).toBe(303);
  });

  it("speaks English after ?lang=en, and keeps to it on the next page through a cookie", async () => {
    const english = pageOf(await admin.go("/console/?lang=en"));
    expect(english.html).toContain('lang="en"');
    expect(english.html).toContain("Plans waiting for a decision");
    expect(english.html).toContain("(security admin)");
    const next = pageOf(await admin.go("/console/"));
    expect(next.html).toContain('lang="en"');
    // The switch link goes back to Chinese, on the same page with the same query.
    expect(next.html).toMatch(/href="\/console\/\?lang=zh-CN"/);
    const chinese = pageOf(await admin.go("/console/?lang=zh-CN"));
    expect(chinese.html).toContain("待审批的计划");
  });

  it("takes the language from Accept-Language when none was chosen", async () => {
    const { landing } = await signInToConsole(env, demoPerson(env, "auditor").userid, "/", "en-US,en;q=0.9");
    expect(pageOf(landing).html).toContain('lang="en"');
  });
});

describe("refusals", () => {
  it("refuses a form with a forged or another session's CSRF token, and records nothing", async () => {
    const plan = env.demo.initialPlan;
    const auditor = (await signInToConsole(env, demoPerson(env, "auditor").userid)).browser;
    // Another session's token: the auditor's, as /api/v1/me gives it (GET forms carry none).
    const auditorToken = (
      (await (
        await fetch(`${env.demo.urls.idbridge}/api/v1/me`, { headers: { cookie: auditor.jar.header() } })
      ).json()) as { csrfToken: string }
    ).csrfToken;
    const adminPage = pageOf(await admin.go(`/console/plans/${plan.id}`));
    expect(auditorToken).not.toBe(csrfOf(adminPage.html));
    const before = await auditCount(admin, "plan.approved");
    const form = { decision: "approve", comment: "looks fine", hash: plan.hash };
    for (const token of ["forged", auditorToken]) {
      const page = pageOf(
        await admin.go(`/console/plans/${plan.id}/decision`, { form: { ...form, _csrf: token } }),
      );
      expect(page.status).toBe(403);
      expect(page.html).toContain('data-code="CSRF"');
      expect(page.html).toContain("页面已失效");
    }
    const missing = pageOf(await admin.go(`/console/plans/${plan.id}/decision`, { form }));
    expect(missing.status).toBe(403);
    expect(await auditCount(admin, "plan.approved")).toBe(before);
  });

  it("answers an unknown page with the console's 404 page", async () => {
    const page = pageOf(await admin.go("/console/no-such-page"));
    expect(page.status).toBe(404);
    expect(page.html).toContain('data-code="NOT_FOUND"');
    expect(page.html).toContain('data-testid="nav"');
  });

  it("refuses a query string longer than 4096 characters, and a parameter given twice, with 400 pages", async () => {
    const long = pageOf(await admin.go(`/console/people?text=${"x".repeat(5000)}`));
    expect(long.status).toBe(400);
    expect(long.html).toContain('data-code="INPUT_INVALID"');
    const twice = pageOf(await admin.go("/console/people?text=a&text=b"));
    expect(twice.status).toBe(400);
    expect(twice.html).toContain("text must be given once");
  });
});
