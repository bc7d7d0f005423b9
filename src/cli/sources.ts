import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import { openDirectory, type SourceConfigEntry } from "../sources/registry.js";
import {
  PERSON_STATUSES,
  type DirectorySnapshot,
  type IncompleteReason,
  type UnavailableField,
} from "../sources/snapshot.js";
import type { ReadMode, ReadProgress, SourceTestReport } from "../sources/source.js";
import { openStore } from "../store/index.js";

/** The CLI's own incremental position, kept apart from the sync's (see Store.getSourceCursor). */
const CLI_CONSUMER = "cli";

/** Looks up a configured source by id; INPUT_INVALID naming the configured ids when it is not there. */
export function findSource(config: Config, id: string): SourceConfigEntry {
  const entry = config.sources.find((s) => s.id === id);
  if (entry !== undefined) return entry;
  const known = config.sources.map((s) => s.id);
  throw new AppError(
    "INPUT_INVALID",
    `no source "${id}" in ${config.file ?? "the built-in defaults"}` +
      (known.length > 0 ? ` (configured: ${known.join(", ")})` : " (no sources are configured)"),
  );
}

/** `idbridge sources list`: one line per configured source. */
export function formatSourceList(config: Config): string {
  if (config.sources.length === 0) return "no sources configured\n";
  return config.sources.map((s) => `${s.id.padEnd(24)} ${s.type}\n`).join("");
}

/** `idbridge sources test ID`: the report as text; `ok` is false when the source is unusable. */
export async function testSource(entry: SourceConfigEntry): Promise<{ ok: boolean; text: string }> {
  const reader = await openDirectory(entry);
  let report: SourceTestReport;
  try {
    report = await reader.test();
  } finally {
    await reader.close();
  }
  const lines = [`${entry.id} (${entry.type}): ${report.ok ? "ok" : "FAILED"}`];
  for (const fact of report.found) lines.push(`  found: ${fact}`);
  for (const problem of report.problems) lines.push(`  problem: ${formatReason(problem)}`);
  for (const field of report.unavailableFields) lines.push(`  unavailable: ${formatUnavailable(field)}`);
  return { ok: report.ok, text: `${lines.join("\n")}\n` };
}

/**
 * `idbridge sources read ID`: reads a snapshot (incrementally from the CLI's last complete read when
 * asked), saves the new cursor for the next incremental read, and returns the snapshot.
 */
export async function readSource(
  config: Config,
  entry: SourceConfigEntry,
  options: { incremental: boolean; progress: boolean; note: (line: string) => void },
): Promise<DirectorySnapshot> {
  const store = await openStore({ url: config.store.url, poolSize: 1 });
  const bar = options.progress ? new ProgressDisplay() : null;
  try {
    let mode: ReadMode = { mode: "full" };
    if (options.incremental) {
      const cursor = await store.getSourceCursor(entry.id, CLI_CONSUMER);
      // Like a reader whose cursor cannot be continued: read everything rather than refuse.
      if (cursor === null)
        options.note(`${entry.id}: no earlier complete read to continue from; reading everything`);
      else mode = { mode: "incremental", cursor };
    }
    const reader = await openDirectory(entry);
    let snapshot: DirectorySnapshot;
    try {
      snapshot = await reader.read({ ...mode, ...(bar ? { onProgress: (p) => bar.update(p) } : {}) });
    } finally {
      bar?.stop();
      await reader.close();
    }
    if (snapshot.completeness.complete && snapshot.cursor !== undefined) {
      await store.setSourceCursor(entry.id, CLI_CONSUMER, snapshot.cursor, new Date(snapshot.finishedAt));
    }
    return snapshot;
  } finally {
    await store.close();
  }
}

/** The snapshot as JSON lines: a header, then departments, people and groups, one per line. */
export function* snapshotLines(snapshot: DirectorySnapshot): Generator<string> {
  const { people, departments, groups, ...header } = snapshot;
  yield JSON.stringify({
    type: "snapshot",
    ...header,
    counts: { people: people.length, departments: departments.length, groups: groups.length },
  });
  for (const department of departments) yield JSON.stringify({ type: "department", ...department });
  for (const person of people) yield JSON.stringify({ type: "person", ...person });
  for (const group of groups) yield JSON.stringify({ type: "group", ...group });
}

/** A summary for people: counts by status and kind, completeness with every reason, unavailable fields. */
export function formatSummary(snapshot: DirectorySnapshot): string {
  const seconds = (Date.parse(snapshot.finishedAt) - Date.parse(snapshot.startedAt)) / 1000;
  const lines = [
    `${snapshot.sourceId} (${snapshot.sourceType}), ${snapshot.mode} read in ${seconds.toFixed(1)} s`,
    snapshot.completeness.complete
      ? "complete: yes"
      : `complete: NO — nothing may be removed on the strength of this read`,
  ];
  if (!snapshot.completeness.complete) {
    for (const reason of snapshot.completeness.reasons) lines.push(`  reason: ${formatReason(reason)}`);
  }
  const byStatus = PERSON_STATUSES.map(
    (status) => `${status} ${snapshot.people.filter((p) => p.status === status).length}`,
  );
  lines.push(`people: ${snapshot.people.length} (${byStatus.join(", ")})`);
  lines.push(`departments: ${snapshot.departments.length}`);
  const kinds = new Map<string, number>();
  for (const group of snapshot.groups) kinds.set(group.kind, (kinds.get(group.kind) ?? 0) + 1);
  lines.push(
    `groups: ${snapshot.groups.length}` +
      (kinds.size > 0 ? ` (${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")})` : ""),
  );
  for (const field of snapshot.unavailableFields) lines.push(`unavailable: ${formatUnavailable(field)}`);
  const shown = snapshot.warnings.slice(0, 10);
  for (const warning of shown) lines.push(`warning: ${warning}`);
  if (snapshot.warnings.length > shown.length) {
    lines.push(`… and ${snapshot.warnings.length - shown.length} more warnings (see --format jsonl)`);
  }
  if (snapshot.cursor !== undefined) lines.push("saved the position for the next --incremental read");
  return `${lines.join("\n")}\n`;
}

function formatReason(reason: IncompleteReason): string {
  return `[${reason.code}] ${reason.message}${reason.where === undefined ? "" : ` (at ${reason.where})`}`;
}

function formatUnavailable(field: UnavailableField): string {
  return `${field.field} — ${field.reason}`;
}

/**
 * Progress on stderr for long reads on a terminal: one line per phase (readers read departments, people and
 * groups side by side), a bar where the total is known and a count where it is not.
 */
class ProgressDisplay {
  private readonly bars = new MultiBar(
    {
      format: "{phase} {bar} {value}{of}",
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    Presets.shades_classic,
  );
  private readonly byPhase = new Map<string, SingleBar>();

  update(progress: ReadProgress): void {
    const total = progress.total ?? Math.max(progress.done, 1);
    const payload = {
      phase: progress.phase.padEnd(12),
      of: progress.total === undefined ? "" : ` / ${progress.total}`,
    };
    const bar = this.byPhase.get(progress.phase);
    if (bar === undefined) {
      this.byPhase.set(progress.phase, this.bars.create(total, progress.done, payload));
      return;
    }
    bar.setTotal(total);
    bar.update(progress.done, payload);
  }

  stop(): void {
    this.bars.stop();
  }
}
