/**
 * `idbridge sync …` and `idbridge policy explain`: thin wrappers over the SyncService with text output.
 */
import { existsSync } from "node:fs";
import { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { ensureKeys } from "../keys/keys.js";
import { buildDirectoryFacts, type DirectoryFacts } from "../policy/facts.js";
import type { DirectorySnapshot } from "../sources/snapshot.js";
import { openStore } from "../store/index.js";
import type { PlanListing, SyncRunRecord } from "../store/store.js";
import type { ApplyReport } from "../sync/apply.js";
import { formatPlan } from "../sync/format.js";
import type { Plan } from "../sync/plan.js";
import { SyncService, type ReadRequest } from "../sync/service.js";

/** Opens the store, the audit log and the sync for one command; closes them after `work`. */
export async function withSync<T>(config: Config, work: (sync: SyncService) => Promise<T>): Promise<T> {
  // Like serve: the sync records audit entries, which need the signing key.
  const keys = await ensureKeys(config.keys.dir, config.keys.generateIfMissing);
  const store = await openStore({ url: config.store.url, poolSize: 2 });
  const audit = new AuditLog(store, keys.audit, {
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: 0,
  });
  try {
    const sync = new SyncService({
      config,
      store,
      audit,
      holder: "cli",
      note: (line) => process.stderr.write(`${line}\n`),
    });
    return await work(sync);
  } finally {
    // Signs a checkpoint over what this command recorded, as the server does when it stops.
    await audit.close();
    await store.close();
  }
}

/**
 * The last full reads the sync kept, indexed (for `policy check`); undefined when there is no store yet or
 * it keeps none. Never creates a store.
 */
export async function keptDirectories(config: Config): Promise<DirectoryFacts | undefined> {
  if (config.store.url.startsWith("sqlite:") && !existsSync(config.store.url.slice("sqlite:".length)))
    return undefined;
  const store = await openStore({ url: config.store.url, poolSize: 1 });
  try {
    const snapshots: DirectorySnapshot[] = [];
    for (const source of config.sources) {
      const kept = await store.getLatestSnapshot(source.id);
      if (kept !== null) snapshots.push(JSON.parse(kept.json) as DirectorySnapshot);
    }
    return snapshots.length > 0 ? buildDirectoryFacts(snapshots) : undefined;
  } finally {
    await store.close();
  }
}

/** The read request of `--incremental`. */
export function readRequest(incremental: boolean): ReadRequest {
  return { fresh: "all", incremental };
}

/** `sync show` text, or the plan itself as JSON. */
export function showPlan(
  record: { status: string; hash: string; content: string } & Parameters<typeof formatPlan>[0],
  format: "text" | "json",
): string {
  const plan = JSON.parse(record.content) as Plan;
  if (format === "json")
    return `${JSON.stringify({ status: record.status, hash: record.hash, decision: record.decision, plan }, null, 2)}\n`;
  return formatPlan(record, plan);
}

/** One line per plan for listings. */
export function planLine(plan: PlanListing): string {
  const s = plan.summary as { changes?: number; risk?: string[]; blocked?: number };
  const risk = s.risk && s.risk.length > 0 ? ` needs approval: ${s.risk.join(", ")}` : "";
  const blocked = s.blocked ? `, ${s.blocked} held back` : "";
  return `${plan.id}  ${plan.target.padEnd(14)} ${plan.status.padEnd(10)} ${plan.createdAt}  ${s.changes ?? 0} change(s)${blocked}${risk}`;
}

/** What `sync plan` prints after storing a plan. */
export function plannedText(plan: PlanListing): string {
  const next =
    plan.status === "empty"
      ? "nothing to change"
      : plan.status === "approved"
        ? `auto-approved (low risk); apply with: idbridge sync apply ${plan.id}`
        : `review with: idbridge sync show ${plan.id}; then idbridge sync approve ${plan.id} --by NAME (or reject)`;
  return `${planLine(plan)}\n${next}\n`;
}

/** The apply report as text. */
export function reportText(planId: string, status: string, report: ApplyReport): string {
  const lines = [
    `plan ${planId}: ${status} — ${report.applied} applied, ${report.observed} found done, ${report.skipped} done earlier, ${report.failed.length} failed, ${report.notAttempted} not attempted`,
  ];
  if (report.stoppedBecause) lines.push(`stopped: ${report.stoppedBecause}`);
  for (const f of report.failed.slice(0, 50))
    lines.push(`  failed ${f.key}: ${f.failure.code} (${f.failure.class}): ${f.failure.message}`);
  if (report.failed.length > 50)
    lines.push(
      `  … and ${report.failed.length - 50} more (idbridge audit export --action sync.change.failed)`,
    );
  for (const m of report.mismatches.slice(0, 50)) lines.push(`  did not take: ${m.key}: ${m.message}`);
  return `${lines.join("\n")}\n`;
}

/** `sync status`: the last runs and the plans waiting. */
export function statusText(status: { runs: SyncRunRecord[]; waiting: PlanListing[] }): string {
  const lines = ["Last runs:"];
  if (status.runs.length === 0) lines.push("  (none)");
  for (const run of status.runs) {
    const summary = run.summary as {
      durationMs?: number;
      sources?: { id: string; complete: boolean }[];
      error?: string;
    };
    const sources = (summary.sources ?? [])
      .map((s) => `${s.id}${s.complete ? "" : " INCOMPLETE"}`)
      .join(", ");
    lines.push(
      `  ${run.startedAt}  ${run.target.padEnd(14)} ${run.status.padEnd(14)} ${run.trigger.padEnd(8)} ${summary.durationMs !== undefined ? `${(summary.durationMs / 1000).toFixed(1)} s` : "running"}  plan ${run.planId ?? "-"}  sources: ${sources || "-"}${summary.error ? `  error: ${summary.error}` : ""}`,
    );
  }
  lines.push("Plans waiting:");
  if (status.waiting.length === 0) lines.push("  (none)");
  for (const plan of status.waiting) lines.push(`  ${planLine(plan)}`);
  return `${lines.join("\n")}\n`;
}
