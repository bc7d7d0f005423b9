/**
 * The console's pages for security admins over HTTP, on the demo: the plans list, the pending plan with
 * its SoD conflict, sensitive grants and filtered changes, the decision (a refused one, an approval, a
 * double submit) and the apply to the 合思 simulator; sync runs (the console's apply among them, and a
 * run as cron starts it); the identity review queue; people.
 * The demo's state is shared: the tests run in order (decide before apply, apply before runs).
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withSync } from "../../src/cli/sync.js";
import { loadConfig } from "../../src/config/load.js";
import { DEMO_CONFIG_FILE, DEMO_IDS } from "../../src/demo/config.js";
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
let auditor: Browser;
let viewer: Browser;
let planId: string;

beforeAll(async () => {
  env = await startConsoleEnv();
  planId = env.demo.initialPlan.id;
  const signIn = async (role: "auditor" | "viewer" | "security-admin"): Promise<Browser> =>
    (await signInToConsole(env, demoPerson(env, role).userid)).browser;
  [admin, auditor, viewer] = await Promise.all([
    signIn("security-admin"),
    signIn("auditor"),
    signIn("viewer"),
  ]);
}, 120_000);

afterAll(async () => {
  await env?.close();
});

type Page = Extract<Landing, { kind: "page" }>;

function pageOf(landing: Landing): Page {
  if (landing.kind !== "page") throw new Error(`expected a console page, went to ${landing.url.href}`);
  return landing;
}

async function open(browser: Browser, path: string): Promise<Page> {
  return pageOf(await browser.go(`/console${path}`));
}

async function post(browser: Browser, path: string, form: Record<string, string>): Promise<Page> {
  return pageOf(await browser.go(`/console${path}`, { form }));
}

/** The part of the page from the `data-testid` element on (enough to look inside it). */
function from(html: string, testid: string): string {
  const at = html.indexOf(`data-testid="${testid}"`);
  if (at < 0) throw new Error(`the page has no ${testid}`);
  return html.slice(at);
}

/** The `data-testid` element's section: from it up to the next `</section>`. */
function section(html: string, testid: string): string {
  const rest = from(html, testid);
  return rest.slice(0, rest.indexOf("</section>"));
}

const count = (html: string, testid: string): number => html.split(`data-testid="${testid}"`).length - 1;
const matching = (html: string): number =>
  Number(/data-testid="change-count" data-count="(\d+)"/.exec(html)?.[1]);
const kinds = (html: string): string[] =>
  [...html.matchAll(/data-testid="change-row" data-kind="([^"]+)"/g)].map((m) => m[1]!);
const hashOf = (html: string): string => {
  const hash = /name="hash" value="([0-9a-f]{64})"/.exec(html)?.[1];
  if (hash === undefined) throw new Error("the page has no decision form");
  return hash;
};

/** The session's CSRF token (the one the console's forms carry), for pages that show no form. */
async function sessionCsrf(browser: Browser): Promise<string> {
  const res = await fetch(`${env.demo.urls.idbridge}/api/v1/me`, {
    headers: { cookie: browser.jar.header() },
  });
  return ((await res.json()) as { csrfToken: string }).csrfToken;
}

/** Audit entries of the plan with `action`, read through the admin API as the auditor. */
async function auditEntries(
  action: string,
): Promise<Array<{ actor: string; details: Record<string, unknown> }>> {
  const res = await fetch(
    `${env.demo.urls.idbridge}/api/v1/audit/entries?action=${action}&subject=${planId}`,
    { headers: { cookie: auditor.jar.header() } },
  );
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Array<{ actor: string; details: Record<string, unknown> }> }).items;
}

describe("console: plans", () => {
  it("lists the demo's pending plan", async () => {
    const page = await open(admin, "/plans?status=pending");
    expect(page.status).toBe(200);
    const table = section(page.html, "plans-table");
    expect(table).toContain(`data-plan="${planId}" data-status="pending"`);
    expect(count(table, "plan-row")).toBe(1);
    const applied = await open(admin, "/plans?status=applied");
    expect(applied.html).not.toContain(`data-plan="${planId}"`);
  });

  it("shows the plan's SoD conflict and its sensitive grants", async () => {
    const page = await open(admin, `/plans/${planId}`);
    expect(page.status).toBe(200);
    const sod = section(page.html, "plan-sod");
    expect(sod).toContain('data-constraint="cashier-is-not-accountant"');
    expect(sod).toContain(env.demo.company.conflicted.name);
    const sensitive = env.demo.initialPlan.summary.sensitiveGrants;
    expect(sensitive).toBeGreaterThan(0);
    expect(section(page.html, "plan-summary")).toMatch(
      new RegExp(`data-testid="plan-sensitive"><b>${String(sensitive)}</b>`),
    );
    expect(section(page.html, "plan-summary")).toContain('data-testid="plan-status">待审批');
  });

  it("filters the changes: flagged only, per role, by search text", async () => {
    const all = await open(admin, `/plans/${planId}`);
    const total = matching(all.html);
    expect(total).toBeGreaterThan(50);
    expect(kinds(all.html)[0]).toMatch(/department/);
    expect(count(all.html, "next-page")).toBe(1);

    const flagged = await open(admin, `/plans/${planId}?flagged=1`);
    expect(matching(flagged.html)).toBeLessThan(total);
    expect(matching(flagged.html)).toBeGreaterThanOrEqual(
      Number(env.demo.initialPlan.summary.sensitiveGrants),
    );
    expect(count(flagged.html, "flag-sensitive") + count(flagged.html, "flag-sod")).toBeGreaterThan(0);

    const perRole = await open(admin, `/plans/${planId}?group=role`);
    expect(matching(perRole.html)).toBe(total);
    expect(count(perRole.html, "change-group")).toBeGreaterThan(0);
    expect(["create-role", "grant", "revoke"]).toContain(kinds(perRole.html)[0]);

    const name = env.demo.company.conflicted.name;
    const searched = await open(admin, `/plans/${planId}?text=${encodeURIComponent(name)}`);
    expect(matching(searched.html)).toBeGreaterThan(0);
    expect(matching(searched.html)).toBeLessThan(total);
    expect(section(searched.html, "changes-table")).toContain(name);
  });

  it("shows search text with HTML in it as text", async () => {
    const page = await open(
      admin,
      `/plans/${planId}?text=${encodeURIComponent("<script>alert(1)</script>")}`,
    );
    expect(page.status).toBe(200);
    expect(page.html).not.toContain("<script>alert(1)</script>");
    expect(page.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(matching(page.html)).toBe(0);
  });

  it("shows no decision form to a viewer or an auditor", async () => {
    for (const browser of [viewer, auditor]) {
      const page = await open(browser, `/plans/${planId}`);
      expect(page.status).toBe(200);
      expect(page.html).toContain('data-testid="plan-summary"');
      expect(page.html).not.toContain('data-testid="plan-decision"');
      expect(page.html).not.toContain('data-testid="approve"');
    }
  });

  it("refuses a decision without a comment with the same page and records nothing", async () => {
    const page = await open(admin, `/plans/${planId}`);
    const refused = await post(admin, `/plans/${planId}/decision`, {
      _csrf: csrfOf(from(page.html, "plan-decision")),
      hash: hashOf(page.html),
      decision: "approve",
      comment: "   ",
    });
    expect(refused.status).toBe(400);
    expect(from(refused.html, "notice")).toContain("请填写审批意见");
    expect(refused.html).toContain('data-testid="plan-decision"');
    expect(await auditEntries("plan.approved")).toEqual([]);
    expect((await open(admin, `/plans/${planId}`)).html).toContain('data-testid="plan-status">待审批');
  });

  it("approves with a comment: the page names the admin and the comment, the audit log too", async () => {
    const adminName = demoPerson(env, "security-admin").name;
    const comment = "已核实：会计兼出纳的冲突由 SoD 拦截 <b>ok</b>";
    const page = await open(admin, `/plans/${planId}`);
    const form = {
      _csrf: csrfOf(from(page.html, "plan-decision")),
      hash: hashOf(page.html),
      decision: "approve",
      comment,
    };
    const approved = await post(admin, `/plans/${planId}/decision`, form);
    expect(approved.status).toBe(200);
    expect(approved.url.pathname).toBe(`/console/plans/${planId}`);
    expect(from(approved.html, "notice")).toContain("已批准该计划");
    const record = section(approved.html, "plan-decision-record");
    expect(record).toContain('data-kind="approved"');
    expect(record).toContain(`data-testid="decided-by">${adminName}<`);
    expect(record).toContain("已核实：会计兼出纳的冲突由 SoD 拦截 &lt;b&gt;ok&lt;/b&gt;");
    expect(approved.html).not.toContain('data-testid="plan-decision"');
    expect(approved.html).toContain('data-testid="apply"');

    const entries = await auditEntries("plan.approved");
    expect(entries).toHaveLength(1);
    expect(entries[0]!.actor).toMatch(/^person:/);
    expect(entries[0]!.details).toMatchObject({ comment, by: adminName });

    // The same form again (a double click, a back button): refused with a notice, recorded once.
    const again = await post(admin, `/plans/${planId}/decision`, form);
    expect(again.status).toBe(200);
    expect(again.url.searchParams.get("done")).toBe("error.PLAN_STATE");
    expect(from(again.html, "notice")).toContain("该计划的状态已变化");
    expect(await auditEntries("plan.approved")).toHaveLength(1);
  });

  it("applies the approved plan to 合思 and shows the outcome counts", async () => {
    expect(env.demo.hesi.staff()).toHaveLength(0);
    const page = await open(admin, `/plans/${planId}`);
    const applied = await post(admin, `/plans/${planId}/apply`, { _csrf: csrfOf(from(page.html, "apply")) });
    expect(applied.status).toBe(200);
    expect(from(applied.html, "notice")).toContain("计划已执行");
    const staff = env.demo.hesi.staff();
    expect(staff.length).toBeGreaterThan(100);
    const outcome = section(applied.html, "plan-outcome");
    const appliedCount = Number(/data-outcome="applied"><b>(\d+)<\/b>/.exec(outcome)?.[1]);
    expect(appliedCount).toBeGreaterThanOrEqual(staff.length);
    expect(outcome).toMatch(/data-outcome="failed"><b>0<\/b>/);
    expect(section(applied.html, "plan-summary")).toContain('data-status="applied"');
    expect(count(applied.html, "change-outcome")).toBeGreaterThan(0);
    expect(applied.html).not.toContain('data-testid="apply"');

    // The counts come from the plan's recorded outcomes, so a viewer (no audit access) sees them too.
    const seen = section((await open(viewer, `/plans/${planId}`)).html, "plan-outcome");
    expect(seen).toContain(`data-outcome="applied"><b>${String(appliedCount)}</b>`);
    expect(seen).toMatch(/data-outcome="noop"><b>\d+<\/b>/);
    expect(seen).toMatch(/data-outcome="failed"><b>0<\/b>/);
    expect(seen).not.toContain('data-outcome="not-attempted"');
  });

  it("answers an unknown plan id with the 404 page", async () => {
    const page = await open(admin, "/plans/plan_doesnotexist");
    expect(page.status).toBe(404);
    expect(page.html).toContain('data-code="NOT_FOUND"');
  });
});

describe("console: sync runs", () => {
  it("lists the console's apply as a run: trigger api, who applied, the applied and failed counts", async () => {
    const page = await open(viewer, "/runs");
    expect(page.status).toBe(200);
    const rows = section(page.html, "runs-table").split('data-testid="run-row"').slice(1);
    // The demo's own runs (if any) are not applies of this plan: exactly one row is.
    const mine = rows.filter((r) => r.includes(`/console/plans/${planId}"`));
    expect(mine).toHaveLength(1);
    const row = mine[0]!;
    expect(row).toContain('data-status="applied"');
    expect(row).toContain("控制台 / API");
    const applied = Number(/data-testid="run-applied">(\d+)</.exec(row)?.[1]);
    expect(applied).toBeGreaterThanOrEqual(env.demo.hesi.staff().length);
    expect(row).toContain('data-testid="run-failed">0<');
    const actor = /data-testid="run-actor">([^<]*)</.exec(row)?.[1];
    const appliedEntries = await auditEntries("plan.applied");
    expect(appliedEntries).toHaveLength(1);
    expect(appliedEntries[0]!.actor).toMatch(/^person:/);
    expect(actor).toContain(appliedEntries[0]!.actor);
  });

  it("lists a sync run with its sources' completeness and its plan", async () => {
    // A run as cron would start it (`idbridge sync run`), against the demo's own config and store.
    const config = loadConfig({
      file: join(env.demo.dataDir, DEMO_CONFIG_FILE),
      env: {},
      cwd: env.demo.dataDir,
    });
    const [outcome] = await withSync(config, (sync) =>
      sync.run("cli", { fresh: "all", incremental: false }, DEMO_IDS.hesi),
    );
    expect(outcome).toBeDefined();

    const page = await open(viewer, "/runs");
    const table = section(page.html, "runs-table");
    const row = from(table, "run-row");
    expect(row).toContain(`data-run="${outcome!.run.id}" data-status="${outcome!.run.status}"`);
    expect(row).toContain("命令行");
    expect(row).toContain(DEMO_IDS.dingtalk);
    expect(row).toMatch(/badge ok">完整/);
    if (outcome!.run.planId !== null) expect(row).toContain(`/console/plans/${outcome!.run.planId}`);
    const filtered = await open(viewer, "/runs?target=no-such-target");
    expect(filtered.html).toContain('data-testid="runs-empty"');
  });
});

describe("console: people", () => {
  it("finds the conflicted person and shows their accounts and the explain text", async () => {
    const { name, userid } = env.demo.company.conflicted;
    const found = await open(viewer, `/people?text=${encodeURIComponent(name)}`);
    expect(found.status).toBe(200);
    const table = section(found.html, "people-table");
    expect(table).toContain(name);
    const id = /data-testid="person-row" data-person="([^"]+)"/.exec(table)?.[1];
    expect(id).toBeDefined();

    const person = await open(viewer, `/people/${encodeURIComponent(id!)}`);
    expect(person.status).toBe(200);
    expect(person.html).toContain(`data-account="${DEMO_IDS.dingtalk}:${userid}"`);
    const explain = section(person.html, "person-explain");
    expect(explain).toContain(`data-target="${DEMO_IDS.hesi}"`);
    expect(explain).toContain("Grants:");
    expect(explain).toContain("cashier-is-not-accountant");
    expect(section(person.html, "person-roles")).toContain('data-testid="role-row"');
  });

  it("finds nobody for text nobody has and answers an unknown person with 404", async () => {
    const none = await open(viewer, `/people?text=${encodeURIComponent("<b>nobody</b>")}`);
    expect(none.html).not.toContain('data-testid="people-table"');
    expect(none.html).toContain("&lt;b&gt;nobody&lt;/b&gt;");
    expect((await open(viewer, "/people/p_nobody")).status).toBe(404);
  });
});

describe("console: identity review", () => {
  it("shows the queue, empty in the demo", async () => {
    const page = await open(admin, "/review");
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-testid="review-empty"');
    expect(page.html).not.toContain('data-testid="review-item"');
  });

  it("refuses a decision without a comment or about an account not in the queue, recording nothing", async () => {
    const page = await open(admin, "/review");
    expect(page.html).not.toContain('name="_csrf"');
    const _csrf = await sessionCsrf(admin);
    const account = `${DEMO_IDS.dingtalk}:${env.demo.company.conflicted.userid}`;
    const noComment = await post(admin, "/review/decision", { _csrf, kind: "ignore", account, comment: "" });
    expect(noComment.status).toBe(400);
    expect(from(noComment.html, "notice")).toContain("请填写说明");
    const notQueued = await post(admin, "/review/decision", {
      _csrf,
      kind: "ignore",
      account,
      comment: "测试账号",
    });
    expect(notQueued.status).toBe(400);
    expect(from(notQueued.html, "notice")).toContain("不在该审核项中");
    const ignored = await fetch(`${env.demo.urls.idbridge}/api/v1/audit/entries?action=identity.ignored`, {
      headers: { cookie: auditor.jar.header() },
    });
    expect(ignored.status).toBe(200);
    expect(((await ignored.json()) as { items: unknown[] }).items).toEqual([]);
  });

  it("refuses a viewer's decision with 403", async () => {
    const refused = await post(viewer, "/review/decision", {
      _csrf: await sessionCsrf(viewer),
      kind: "ignore",
      account: "x:y",
      comment: "no",
    });
    expect(refused.status).toBe(403);
  });
});

describe("console: identity review of a real case", () => {
  const config = () =>
    loadConfig({ file: join(env.demo.dataDir, DEMO_CONFIG_FILE), env: {}, cwd: env.demo.dataDir });
  /** What the next sync does first: read every source and link the accounts (the review queue with it). */
  const link = () =>
    withSync(config(), async (sync) =>
      sync.linkAccounts(await sync.gatherSnapshots({ fresh: "all", incremental: false })),
    );
  const wecom = (userid: string) => `${DEMO_IDS.wecom}:${userid}`;
  /** Two active people of the demo company who sign in to nothing here (not the console's people). */
  const pair = () => {
    const taken = new Set([
      ...env.demo.company.accounts.map((a) => a.person.userid),
      env.demo.company.conflicted.userid,
    ]);
    const [a, b] = env.demo.company.org.people.filter((p) => p.status === "active" && !taken.has(p.userid));
    return { a: a!, b: b! };
  };
  async function personId(userid: string): Promise<string> {
    const res = await fetch(
      `${env.demo.urls.idbridge}/api/v1/people?text=${encodeURIComponent(`${DEMO_IDS.dingtalk}:${userid}`)}`,
      { headers: { cookie: admin.jar.header() } },
    );
    const [person] = ((await res.json()) as { items: Array<{ id: string }> }).items;
    if (person === undefined) throw new Error(`no person has ${userid}`);
    return person.id;
  }
  /** The identity decisions in the audit log, newest first, read through the API as the auditor. */
  async function decisions(): Promise<
    Array<{ actor: string; action: string; subject: string; details: Record<string, unknown> }>
  > {
    const out = [];
    for (const action of ["identity.linked", "identity.ignored"]) {
      const res = await fetch(`${env.demo.urls.idbridge}/api/v1/audit/entries?action=${action}`, {
        headers: { cookie: auditor.jar.header() },
      });
      expect(res.status).toBe(200);
      out.push(...((await res.json()) as { items: Awaited<ReturnType<typeof decisions>> }).items);
    }
    return out;
  }
  /** The review item of `account` on the page, from its section start to its end. */
  const itemOf = (html: string, account: string): string => {
    const items = html.split('data-testid="review-item"').slice(1);
    const found = items.find((i) => i.includes(`data-testid="review-account" data-account="${account}"`));
    if (found === undefined) throw new Error(`no review item for ${account}`);
    return found.slice(0, found.indexOf("</section>"));
  };

  it("puts B's WeCom account in review after an admin linked A's WeCom account to B", async () => {
    const { a, b } = pair();
    const personB = await personId(b.userid);
    // An admin's decision through the API: A's WeCom account belongs to B (a mistake, as it turns out).
    const res = await fetch(`${env.demo.urls.idbridge}/api/v1/identities/decisions`, {
      method: "POST",
      headers: {
        cookie: admin.jar.header(),
        "content-type": "application/json",
        "x-csrf-token": await sessionCsrf(admin),
      },
      body: JSON.stringify({ kind: "link", account: wecom(a.userid), personId: personB, comment: "同一人" }),
    });
    expect(res.status).toBeLessThan(300);
    const linked = await link();
    // B's own WeCom account now matches B, who already has one: a case for a person.
    const item = linked.reviewQueue.find((i) => i.accounts.some((x) => x.subject === b.userid));
    expect(item).toMatchObject({
      accounts: [{ sourceId: DEMO_IDS.wecom, subject: b.userid }],
      candidates: [personB],
      reasons: [expect.objectContaining({ code: "source-taken" })],
    });
  });

  it("shows the account's facts from WeCom and the candidate's summary side by side", async () => {
    const { a, b } = pair();
    const page = await open(admin, "/review");
    expect(page.status).toBe(200);
    const item = itemOf(page.html, wecom(b.userid));
    const account = section(item, "review-accounts");
    expect(account).toContain(`data-fact="name">${b.name}<`);
    expect(account).toContain('data-fact="status">在职<');
    expect(account).toContain(`data-fact="email">${b.email}<`);
    expect(account).toContain(`data-fact="employeeNo">${b.jobNumber}<`);
    expect(account).toContain(`data-fact="title">${b.title}<`);
    expect(account).toMatch(/data-fact="departments">[^<]+</);
    const candidates = from(item, "review-candidates");
    const personB = await personId(b.userid);
    expect(candidates).toContain(`data-testid="review-candidate" data-person="${personB}"`);
    expect(candidates).toContain(`>${b.name}</a>`);
    // B's accounts as they stand: their DingTalk account and A's WeCom account.
    expect(candidates).toContain(`${DEMO_IDS.dingtalk}:${b.userid}`);
    expect(candidates).toContain(wecom(a.userid));
    expect(count(candidates.slice(0, candidates.indexOf("<form")), "review-candidate")).toBe(1);

    // In English too, every word of the facts (the auditor reads; the others keep their language).
    const english = await open(auditor, "/review?lang=en");
    const facts = section(itemOf(english.html, wecom(b.userid)), "review-accounts");
    expect(facts).toContain('data-fact="status">active<');
    expect(facts).toContain("<dt>Title</dt>");
    expect(english.html).not.toMatch(/\bsync\.[a-zA-Z]+\.[a-zA-Z]/);
  });

  it("links with a comment: done notice, audited with the admin as actor, the item leaves the queue", async () => {
    const { a, b } = pair();
    const personB = await personId(b.userid);
    const page = await open(admin, "/review");
    const form = from(itemOf(page.html, wecom(b.userid)), "review-decision");
    const comment = "核对过：这是 B 本人的企业微信账号 <i>ok</i>";
    const done = await post(admin, "/review/decision", {
      _csrf: csrfOf(form),
      kind: "link",
      account: wecom(b.userid),
      personId: personB,
      comment,
    });
    expect(done.status).toBe(200);
    expect(done.url.pathname).toBe("/console/review");
    expect(done.url.searchParams.get("done")).toBe("sync.done.linked");
    const entry = (await decisions()).find(
      (e) => e.action === "identity.linked" && e.details.account === wecom(b.userid),
    );
    expect(entry).toMatchObject({
      actor: expect.stringMatching(/^person:/),
      subject: personB,
      details: { comment, by: demoPerson(env, "security-admin").name },
    });
    // Taken at the next sync's linking: B's account goes back to B, and A's account (now the second
    // WeCom account decided for B) is the case left.
    const linked = await link();
    expect(linked.reviewQueue.map((i) => i.accounts.map((x) => x.subject))).toEqual([[a.userid]]);
    const after = await open(admin, "/review");
    expect(after.html).not.toContain(`data-account="${wecom(b.userid)}"`);
    expect(after.html).toContain(`data-account="${wecom(a.userid)}"`);
  });

  it("ignores with a comment the same way, and the queue is empty again", async () => {
    const { a } = pair();
    const page = await open(admin, "/review");
    const form = from(itemOf(page.html, wecom(a.userid)), "review-decision");
    const done = await post(admin, "/review/decision", {
      _csrf: csrfOf(form),
      kind: "ignore",
      account: wecom(a.userid),
      comment: "A 的账号待人事确认后再关联",
    });
    expect(done.url.searchParams.get("done")).toBe("sync.done.ignored");
    const entry = (await decisions()).find((e) => e.action === "identity.ignored");
    expect(entry).toMatchObject({
      actor: expect.stringMatching(/^person:/),
      subject: wecom(a.userid),
      details: { comment: "A 的账号待人事确认后再关联" },
    });
    expect((await link()).reviewQueue).toEqual([]);
    expect((await open(admin, "/review")).html).toContain('data-testid="review-empty"');
  });
});

describe("console: the sync pages in English", () => {
  it("has every word of the sync pages in English too (no message key left untranslated)", async () => {
    const { name } = env.demo.company.conflicted;
    const people = await open(viewer, `/people?lang=en&text=${encodeURIComponent(name)}`);
    const person = /data-testid="person-row" data-person="([^"]+)"/.exec(people.html)?.[1];
    for (const path of [
      "/plans",
      `/plans/${planId}?group=person`,
      "/runs",
      "/review",
      `/people/${person!}`,
    ]) {
      const page = await open(viewer, path);
      expect(page.status).toBe(200);
      expect(page.html).toContain('lang="en"');
      expect(page.html).not.toMatch(/\bsync\.[a-zA-Z]+\.[a-zA-Z]/);
    }
  });
});
