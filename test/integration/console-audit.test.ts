/**
 * The console's pages for auditors over HTTP, on the demo: the audit search (filters, paging, bad input,
 * HTML in search text), the export with its proof (verified with the real `idbridge audit verify`), the
 * JWKS, who holds a role and why, and the access review — and what a viewer may not do.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Landing } from "../helpers/broker-env.js";
import { runCli } from "../helpers/cli.js";
import { demoPerson, signInToConsole, startConsoleEnv, type ConsoleEnv } from "../helpers/console-env.js";

const DIST_CLI = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");

let env: ConsoleEnv;
let auditor: Browser;
let viewer: Browser;
let admin: Browser;
let work: string;

beforeAll(async () => {
  env = await startConsoleEnv();
  work = mkdtempSync(join(tmpdir(), "idbridge-console-audit-"));
  const signIn = async (role: "auditor" | "viewer" | "security-admin"): Promise<Browser> =>
    (await signInToConsole(env, demoPerson(env, role).userid)).browser;
  [auditor, viewer, admin] = await Promise.all([
    signIn("auditor"),
    signIn("viewer"),
    signIn("security-admin"),
  ]);
}, 120_000);

afterAll(async () => {
  await env?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

function pageOf(landing: Landing): Extract<Landing, { kind: "page" }> {
  if (landing.kind !== "page") throw new Error(`expected a console page, went to ${landing.url.href}`);
  return landing;
}

async function open(browser: Browser, path: string): Promise<Extract<Landing, { kind: "page" }>> {
  return pageOf(await browser.go(`/console${path}`));
}

/** The `data-testid` element's opening tag up to the end of the page (enough to look inside it). */
function from(html: string, testid: string): string {
  const at = html.indexOf(`data-testid="${testid}"`);
  if (at < 0) throw new Error(`the page has no ${testid}`);
  return html.slice(at);
}

const count = (html: string, testid: string): number => html.split(`data-testid="${testid}"`).length - 1;
const seqs = (html: string): number[] => [...html.matchAll(/data-seq="(\d+)"/g)].map((m) => Number(m[1]));
const unescape = (href: string): string => href.replaceAll("&amp;", "&").replaceAll("&#38;", "&");
const hrefOf = (html: string, testid: string): string => {
  const href = new RegExp(`href="([^"]+)" data-testid="${testid}"`).exec(html)?.[1];
  if (href === undefined) throw new Error(`no link ${testid}`);
  return unescape(href);
};

/** A GET with `browser`'s session, for downloads (headers and bytes as they are). */
function fetchAs(browser: Browser, path: string): Promise<Response> {
  return fetch(`${env.demo.urls.idbridge}${path}`, { headers: { cookie: browser.jar.header() } });
}

/** A call of the admin API with `browser`'s session and its CSRF token. */
async function api(browser: Browser, path: string, body?: object): Promise<Record<string, unknown>> {
  const base = `${env.demo.urls.idbridge}/api/v1`;
  const me = (await (await fetchAs(browser, "/api/v1/me")).json()) as { csrfToken: string };
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      cookie: browser.jar.header(),
      "x-csrf-token": me.csrfToken,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function exportedCount(): Promise<number> {
  const page = await open(auditor, "/audit?action=audit.exported&limit=200");
  return count(page.html, "audit-row");
}

describe("audit search", () => {
  it("shows the auditor the demo's entries newest first, with the plan the demo made", async () => {
    const page = await open(auditor, "/audit");
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-testid="audit-table"');
    const found = seqs(page.html);
    expect(found.length).toBeGreaterThan(1);
    expect(found).toEqual([...found].sort((a, b) => b - a));

    const created = await open(auditor, "/audit?action=plan.created");
    expect(count(created.html, "audit-row")).toBeGreaterThanOrEqual(1);
    expect(from(created.html, "audit-table")).toContain(env.demo.initialPlan.id);
  });

  it("names the people who acted, beside their actor ids", async () => {
    const page = await open(auditor, "/audit?action=login.succeeded&limit=200");
    const table = from(page.html, "audit-table");
    for (const role of ["auditor", "viewer", "security-admin"] as const)
      expect(table).toContain(demoPerson(env, role).name);
  });

  it("narrows by action: every row of plan.created is a plan.created, and fewer than unfiltered", async () => {
    const all = await open(auditor, "/audit?limit=200");
    const created = await open(auditor, "/audit?action=plan.created&limit=200");
    const actions = [
      ...created.html.matchAll(/data-testid="audit-row" data-seq="\d+" data-action="([^"]+)"/g),
    ].map((m) => m[1]);
    expect(actions.length).toBe(count(created.html, "audit-row"));
    expect(new Set(actions)).toEqual(new Set(["plan.created"]));
    // Each action links to the entries with that action.
    expect(created.html).toContain(
      '<a class="mono" href="/console/audit?action=plan.created">plan.created</a>',
    );
    expect(count(created.html, "audit-row")).toBeLessThan(count(all.html, "audit-row"));
  });

  it("pages with the cursor, keeping the filters, and links back to the first page", async () => {
    const first = await open(auditor, "/audit?action=identity.*&limit=20");
    expect(count(first.html, "audit-row")).toBe(20);
    const next = hrefOf(first.html, "next-page");
    expect(new URL(next, env.console).searchParams.get("action")).toBe("identity.*");
    const second = await open(auditor, next.replace(/^\/console/, ""));
    expect(second.status).toBe(200);
    const [firstSeqs, secondSeqs] = [seqs(first.html), seqs(second.html)];
    expect(secondSeqs.length).toBeGreaterThan(0);
    expect(Math.max(...secondSeqs)).toBeLessThan(Math.min(...firstSeqs));
    const back = await open(auditor, hrefOf(second.html, "first-page").replace(/^\/console/, ""));
    expect(seqs(back.html)).toEqual(firstSeqs);
  });

  it("shows HTML in search text as text, never as markup", async () => {
    const script = "<script>alert(1)</script>";
    const page = await open(
      auditor,
      `/audit?actor=${encodeURIComponent(script)}&subject=${encodeURIComponent(`"><img src=x onerror=alert(1)>`)}`,
    );
    expect(page.status).toBe(200);
    expect(page.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page.html).not.toContain("<script");
    expect(page.html).not.toContain("<img");
    expect(count(page.html, "audit-row")).toBe(0);
  });

  it("answers a bad date or a range that ends before it starts with 400 and a notice, not a crash", async () => {
    const bad = await open(auditor, "/audit?from=yesterday");
    expect(bad.status).toBe(400);
    expect(from(bad.html, "notice")).toContain("yesterday");
    expect(bad.html).toContain('data-testid="audit-filters"');
    expect(bad.html).not.toContain('data-testid="audit-table"');

    const backwards = await open(auditor, "/audit?from=2026-11-28T10:00&to=2026-11-27T10:00");
    expect(backwards.status).toBe(400);
    expect(from(backwards.html, "notice")).toContain("2026-11-28T10:00Z");
  });

  it("reads datetime-local times as UTC: a window in the future is empty, one around now is not", async () => {
    const later = new Date(Date.now() + 3600_000).toISOString().slice(0, 16);
    const empty = await open(auditor, `/audit?from=${later}`);
    expect(empty.status).toBe(200);
    expect(count(empty.html, "audit-row")).toBe(0);
    const earlier = new Date(Date.now() - 3600_000).toISOString().slice(0, 16);
    const recent = await open(auditor, `/audit?from=${earlier}`);
    expect(count(recent.html, "audit-row")).toBeGreaterThan(0);
  });
});

describe("audit export", () => {
  it("offers the auditor JSONL, CSV, the JWKS and how to verify with idbridge audit verify", async () => {
    const page = await open(auditor, "/audit?action=plan.*");
    const block = from(page.html, "audit-export");
    expect(hrefOf(block, "export-jsonl")).toBe("/console/audit/export?format=jsonl&action=plan.*");
    expect(hrefOf(block, "export-csv")).toBe("/console/audit/export?format=csv&action=plan.*");
    expect(hrefOf(block, "export-jwks")).toBe("/console/audit/jwks.json");
    expect(from(block, "verify-howto")).toContain("idbridge audit verify export.jsonl --jwks jwks.json");
  });

  it("explains the export in English to an English-speaking auditor", async () => {
    const { browser } = await signInToConsole(env, demoPerson(env, "auditor").userid, "/", "en-US,en;q=0.9");
    const page = await open(browser, "/audit");
    expect(page.html).toContain("<h1>Audit log</h1>");
    const howto = from(page.html, "verify-howto");
    expect(howto).toContain("How to verify");
    expect(howto).toContain("signed head");
  });

  it("downloads a JSONL export that idbridge audit verify accepts, and records the export with the auditor as actor", async () => {
    if (!existsSync(DIST_CLI)) throw new Error("dist/ is missing: run `npm run build` first (npm test does)");
    const before = await exportedCount();
    const res = await fetchAs(auditor, "/console/audit/export?format=jsonl&action=plan.*");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(
      /^attachment; filename="idbridge-audit-.*\.jsonl"$/,
    );
    const jsonl = await res.text();
    const lines = jsonl.trim().split("\n");
    expect(JSON.parse(lines[0]!)).toMatchObject({ type: "header", filter: { action: "plan.*" } });
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: "head" });

    const jwksRes = await fetchAs(auditor, "/console/audit/jwks.json");
    expect(jwksRes.headers.get("content-disposition")).toBe('attachment; filename="jwks.json"');
    const jwks = await jwksRes.text();
    expect((JSON.parse(jwks) as { keys: unknown[] }).keys).toHaveLength(1);

    writeFileSync(join(work, "export.jsonl"), jsonl);
    writeFileSync(join(work, "jwks.json"), jwks);
    const verified = await runCli([
      "audit",
      "verify",
      join(work, "export.jsonl"),
      "--jwks",
      join(work, "jwks.json"),
    ]);
    expect(verified.stderr).toBe("");
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^verified \d+ entries/);

    // An edited line fails: the check is real.
    writeFileSync(join(work, "edited.jsonl"), jsonl.replace('"plan.created"', '"plan.approved"'));
    const edited = await runCli([
      "audit",
      "verify",
      join(work, "edited.jsonl"),
      "--jwks",
      join(work, "jwks.json"),
    ]);
    expect(edited.code).toBe(1);

    expect(await exportedCount()).toBe(before + 1);
    const exported = await open(auditor, "/audit?action=audit.exported&limit=1");
    const row = from(exported.html, "audit-row");
    expect(row).toContain(demoPerson(env, "auditor").name);
    expect(row).toContain("&quot;format&quot;: &quot;jsonl&quot;");
  }, 60_000);

  it("downloads the CSV export as an attachment with a header row", async () => {
    const res = await fetchAs(auditor, "/console/audit/export?format=csv&action=plan.created");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="idbridge-audit-.*\.csv"$/);
    const text = await res.text();
    expect(text.replace(/^\uFEFF/, "").split("\r\n")[0]).toContain("action");
    expect(text).toContain("plan.created");
  });

  it("refuses an export with a bad filter with a 400 page", async () => {
    const page = await open(auditor, "/audit/export?format=jsonl&to=tomorrow");
    expect(page.status).toBe(400);
    expect(page.html).toContain('data-code="INPUT_INVALID"');
  });

  it("shows a viewer no export block, answers their direct export with 403 and records nothing", async () => {
    const before = await exportedCount();
    const page = await open(viewer, "/audit");
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-testid="audit-table"');
    expect(page.html).not.toContain('data-testid="audit-export"');
    expect(page.html).not.toContain("/audit/export");

    const refused = await open(viewer, "/audit/export?format=jsonl");
    expect(refused.status).toBe(403);
    expect(refused.html).toContain('data-code="ACCESS_DENIED"');
    const res = await fetchAs(viewer, "/console/audit/export?format=csv");
    expect(res.status).toBe(403);
    expect(res.headers.get("content-disposition")).toBeNull();
    expect(await exportedCount()).toBe(before);
  });
});

describe("role holders, why, and the access review", () => {
  const plan = (): ConsoleEnv["demo"]["initialPlan"] => env.demo.initialPlan;
  const comment = "核对了出纳与会计的职责分离 <b>例外</b><script>alert(1)</script>";
  let beforeApproval: string;

  it("has no holder of 出纳 before the demo's plan is applied", async () => {
    const page = await open(auditor, "/holders?target=hesi-main&role=cashier");
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('data-testid="holders-table"');
    expect(from(page.html, "holders-results")).toContain("没有人持有");
  });

  it("lists the holders of 出纳 once the plan is approved and applied, and not at a time before", async () => {
    beforeApproval = new Date().toISOString();
    await api(admin, `/plans/${plan().id}/decision`, { decision: "approve", comment, hash: plan().hash });
    await api(admin, `/plans/${plan().id}/apply`, {});

    const page = await open(auditor, "/holders?target=hesi-main&role=cashier");
    expect(page.status).toBe(200);
    const table = from(page.html, "holders-table");
    expect(count(table, "holder-row")).toBeGreaterThan(0);
    expect(table).toContain("出纳");
    expect(table).toContain('class="badge warn"');

    const earlier = await open(
      auditor,
      `/holders?target=hesi-main&role=cashier&at=${encodeURIComponent(beforeApproval)}`,
    );
    expect(earlier.status).toBe(200);
    expect(earlier.html).not.toContain('data-testid="holders-table"');
  }, 60_000);

  it("explains a holding: lineage, the approval with the admin's name and comment (as text), the entries", async () => {
    const page = await open(auditor, "/holders?target=hesi-main&role=cashier");
    const why = await open(auditor, hrefOf(page.html, "holder-why").replace(/^\/console/, ""));
    expect(why.status).toBe(200);
    expect(from(why.html, "why-lineage")).toContain('<ul class="why">');
    const approval = from(why.html, "why-approval");
    expect(hrefOf(approval, "why-plan")).toBe(`/console/plans/${plan().id}`);
    expect(from(approval, "why-approved-by")).toContain(demoPerson(env, "security-admin").name);
    expect(from(approval, "why-comment")).toContain(
      "核对了出纳与会计的职责分离 &lt;b&gt;例外&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
    );
    expect(why.html).not.toContain("<script");
    const entries = from(why.html, "why-entries");
    expect(entries).toContain("role.granted");
    expect(entries).toContain("plan.approved");
  });

  it("answers a bad time on the holders form with 400 and a notice", async () => {
    const page = await open(auditor, "/holders?target=hesi-main&role=cashier&at=noon");
    expect(page.status).toBe(400);
    expect(from(page.html, "notice")).toContain("noon");
  });

  it("lists every holder of a sensitive role in the access review, and the auditor downloads it as CSV", async () => {
    const before = await exportedCount();
    const page = await open(auditor, "/access-review");
    expect(page.status).toBe(200);
    const table = from(page.html, "access-review-table");
    expect(count(table, "holder-row")).toBeGreaterThan(0);
    expect(table).toContain("出纳");
    expect(table).not.toContain("报销提交人");
    const href = hrefOf(page.html, "access-review-csv");
    expect(href).toBe("/console/access-review.csv");

    const res = await fetchAs(auditor, href);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(
      /^attachment; filename="idbridge-access-review-.*\.csv"$/,
    );
    const csv = (await res.text())
      .replace(/^\uFEFF/, "")
      .split("\r\n")
      .filter((l) => l !== "");
    expect(csv[0]).toBe("target,role,targetRole,scope,personId,name,since,grantSeq,sensitive");
    expect(csv.length - 1).toBe(count(table, "holder-row"));
    expect(await exportedCount()).toBe(before + 1);
  });

  it("shows a viewer the access review without the CSV link, and refuses the CSV with 403", async () => {
    const page = await open(viewer, "/access-review");
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-testid="access-review-table"');
    expect(page.html).not.toContain('data-testid="access-review-csv"');
    const refused = await open(viewer, "/access-review.csv");
    expect(refused.status).toBe(403);
  });
});
