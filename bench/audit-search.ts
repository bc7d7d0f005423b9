/**
 * Audit search benchmark (not a test): one page (50 entries, newest first) of `Store.searchAudit` on a log
 * of N entries (default 1,000,000) on SQLite, for each filter the console offers, on the first page and
 * on a page deep in the log (cursor at the middle seq); then "who holds role X" and the access review
 * through AuditOperations, which replay the role entries of a target page by page.
 *
 *   node --import tsx bench/audit-search.ts [--entries 1000000] [--runs 5] [--keep]
 *
 * The log spans about a year (one entry every 30 s) with grants, revokes, sign-ins, plan decisions and
 * disables of 20,000 people in two targets. Everything lives in a temporary directory removed at the end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { chainEvents, type AuditEvent } from "../src/audit/chain.js";
import { AuditLog } from "../src/audit/log.js";
import { AuditOperations } from "../src/admin/audit-operations.js";
import { generateKeys } from "../src/keys/keys.js";
import { openStore, type AuditSearch } from "../src/store/index.js";
import { auditSearchStatement } from "../src/store/sql/audit-search.js";
import type { Config } from "../src/config/load.js";

const { values: opts } = parseArgs({
  options: {
    entries: { type: "string", default: "1000000" },
    runs: { type: "string", default: "5" },
    keep: { type: "boolean", default: false },
  },
});
const ENTRIES = Number(opts.entries);
const RUNS = Number(opts.runs);
const START = Date.parse("2025-12-01T00:00:00.000Z");
const STEP_MS = 30_000;
const PEOPLE = 20_000;
const ROLES = ["approver", "submitter", "budget-owner", "cashier", "finance-director"];
const SENSITIVE = new Set(["cashier", "finance-director"]);

const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);
const person = (i: number): string => `p${String(i % PEOPLE).padStart(5, "0")}`;

function makeEvent(i: number): AuditEvent {
  const subject = person((i * 7919) % PEOPLE);
  const target = i % 3 === 0 ? "hesi-main" : "scim-hr";
  const role = ROLES[(i >> 3) % ROLES.length] as string;
  switch (i % 20) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return {
        actor: "system",
        action: "role.granted",
        subject,
        target,
        details: {
          plan: `plan_${i >> 10}`,
          role,
          targetRole: role,
          scope: "",
          name: `员工${subject}`,
          sensitive: SENSITIVE.has(role),
          lineage: [{ rule: "finance-staff", facts: ["member of 财务部 in dingtalk-hq"] }],
        },
      };
    case 5:
      return {
        actor: "system",
        action: "role.revoked",
        subject,
        target,
        details: { plan: `plan_${i >> 10}`, role, targetRole: role, scope: "", name: `员工${subject}` },
      };
    case 6:
      return i % 400 === 6
        ? { actor: "system", action: "target.user.disabled", subject, target, details: { reason: "left" } }
        : { actor: "system", action: "plan.created", subject: `plan_${i >> 10}`, target, details: {} };
    case 7:
      return i % 1000 === 7
        ? { actor: "person:p00001", action: "plan.approved", subject: `plan_${i >> 10}`, target, details: {} }
        : { actor: "system", action: "sync.run.finished", subject: null, target, details: {} };
    case 8:
    case 9:
      return {
        actor: subject,
        action: "login.failed",
        subject,
        target: null,
        details: { reason: "密码错误" },
      };
    default:
      return {
        actor: subject,
        action: "login.succeeded",
        subject,
        target: null,
        details: { source: "ding" },
      };
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-bench-search-"));
  const file = join(dir, "idbridge.db");
  const store = await openStore({ url: `sqlite:${file}` });
  const keys = await generateKeys(join(dir, "keys"));
  const t0 = performance.now();
  for (let n = 0; n < ENTRIES; n += 5000) {
    const k = Math.min(5000, ENTRIES - n);
    const events = Array.from({ length: k }, (_, j) => makeEvent(n + j));
    // One time per batch as AuditLog stamps; batches 5000 × 30 s apart keep time increasing with seq.
    await store.appendAudit((head) => chainEvents(head, events, new Date(START + n * STEP_MS).toISOString()));
  }
  log(`filled ${ENTRIES} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const end = new Date(START + ENTRIES * STEP_MS);
  const iso = (msBeforeEnd: number): string => new Date(end.getTime() - msBeforeEnd).toISOString();
  const DAY = 86_400_000;
  const filters: [string, AuditSearch][] = [
    ["no filter", {}],
    ["actor (one person)", { actor: person(4242) }],
    ["subject (one person)", { subject: person(4242) }],
    ["target", { target: "hesi-main" }],
    ["action exact, common (login.succeeded)", { action: "login.succeeded" }],
    ["action exact, rare (plan.approved)", { action: "plan.approved" }],
    ["action prefix, common (role.*)", { action: "role.*" }],
    ["action prefix, rare (target.user.*)", { action: "target.user.*" }],
    ["time, last 7 days", { from: iso(7 * DAY), to: end.toISOString() }],
    ["time, 7 days 300 days back", { from: iso(300 * DAY), to: iso(293 * DAY) }],
    ["actor + time (30 days)", { actor: person(4242), from: iso(30 * DAY) }],
    ["role.* + target + subject", { action: "role.*", target: "hesi-main", subject: person(4242) }],
  ];
  const raw = new Database(file, { readonly: true });
  const rows: string[] = [];
  for (const [name, filter] of filters) {
    const firstMs: number[] = [];
    const deepMs: number[] = [];
    let count = 0;
    for (let r = 0; r < RUNS; r++) {
      let t = performance.now();
      count = (await store.searchAudit(filter, null, 51)).length;
      firstMs.push(performance.now() - t);
      t = performance.now();
      await store.searchAudit(filter, Math.floor(ENTRIES / 2), 51);
      deepMs.push(performance.now() - t);
    }
    // A prefix without subject or actor runs as one query per action under it: explain the first of them.
    const split = filter.action?.endsWith("*") && filter.subject === undefined && filter.actor === undefined;
    const first = split
      ? (raw
          .prepare("SELECT action FROM audit_entries WHERE action >= ? ORDER BY action LIMIT 1")
          .get(filter.action?.slice(0, -1)) as { action: string })
      : null;
    const stmt = auditSearchStatement(
      "sqlite",
      "*",
      first ? { ...filter, action: first.action } : filter,
      null,
      51,
    );
    const plan = raw
      .prepare(`EXPLAIN QUERY PLAN ${stmt.sql.replace(/\$\d+/g, "?")}`)
      .all(...stmt.params)
      .map((p) => (p as { detail: string }).detail)
      .join("; ");
    rows.push(
      `| ${name} | ${count > 50 ? "50+" : count} | ${median(firstMs).toFixed(1)} | ${median(deepMs).toFixed(1)} | ${first ? `per action under the prefix: ${plan}` : plan} |`,
    );
    log(rows[rows.length - 1] as string);
  }
  raw.close();

  const audit = new AuditLog(store, keys.audit, { checkpointEvery: 1000, checkpointIntervalMs: 0 });
  const ops = new AuditOperations({
    config: { policiesDir: dir } as unknown as Config,
    store,
    audit,
    keys,
    policies: () => [],
  });
  const auditor = { actor: "person:bench", name: "bench", roles: new Set(["auditor"] as const) };
  let t = performance.now();
  const holders = await ops.roleHolders(auditor, "hesi-main", "cashier");
  const holdersMs = performance.now() - t;
  t = performance.now();
  const review = await ops.accessReview(auditor, "hesi-main");
  const reviewMs = performance.now() - t;
  t = performance.now();
  const why = await ops.explainHolding(auditor, holders[0]?.personId ?? person(1), "hesi-main", "cashier");
  const whyMs = performance.now() - t;
  rows.push(
    "",
    `roleHolders(hesi-main, cashier): ${holders.length} holders in ${holdersMs.toFixed(0)} ms`,
    `accessReview(hesi-main): ${review.length} holders in ${reviewMs.toFixed(0)} ms`,
    `explainHolding: ${why.entries.length} entries in ${whyMs.toFixed(1)} ms`,
  );
  await audit.close();
  await store.close();
  process.stdout.write(
    `| filter | matches | first page ms | deep page ms | SQLite plan |\n|---|---|---|---|---|\n${rows.join("\n")}\n`,
  );
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
}

await main();
