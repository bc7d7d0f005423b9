/**
 * The auditors' half of the {@link AdminService}: audit search, export with its proof, who holds a role,
 * why, and the access review of sensitive roles. Each method checks the caller's permission before it
 * reads anything; exports record `audit.exported` before a byte leaves, so every export leaves evidence.
 */
import { PassThrough, type Readable } from "node:stream";
import { stringify } from "csv-stringify";
import { AppError } from "../domain/errors.js";
import type { JsonObject, JsonValue } from "../domain/json.js";
import type { Config } from "../config/load.js";
import type { AuditFilter } from "../audit/export-format.js";
import { exportCsv, exportJsonl, neutraliseCell } from "../audit/export.js";
import { HOLDING_ACTIONS, HoldingsReplay } from "../audit/holdings.js";
import type { AuditLog } from "../audit/log.js";
import type { KeySet } from "../keys/keys.js";
import { loadPolicies } from "../policy/load.js";
import { formatLineage } from "../policy/explain.js";
import type { Policy } from "../policy/schema.js";
import type { AuditRecord, AuditSearch, Store } from "../store/store.js";
import { requirePermission, type Caller } from "./access.js";
import type {
  AdminService,
  AuditQuery,
  ExportDownload,
  Page,
  RoleExplanation,
  RoleHolder,
} from "./contracts.js";

/** What {@link AuditOperations} works with. */
export interface AuditOperationsOptions {
  readonly config: Config;
  readonly store: Store;
  /** Where `audit.exported` entries go. */
  readonly audit: AuditLog;
  /** The audit key (signs export heads) and the public JWKS stored checkpoints verify with. */
  readonly keys: Pick<KeySet, "audit" | "jwks">;
  /** The policies (for roles marked `sensitive`); default: read from `config.policiesDir` when needed. */
  readonly policies?: () => readonly Policy[];
  /** Clock, pinned in tests. */
  readonly now?: () => Date;
}

/** Longest text accepted in a filter field: longer is not a real actor, action or id. */
const MAX_TEXT = 200;
const MAX_LIMIT = 200;
const DEFAULT_LIMIT = 50;
/** Entries read per query while replaying holdings. */
const REPLAY_BATCH = 1000;
const FILTER_TEXT = ["actor", "action", "subject"] as const;
const FILTER_KEYS = ["from", "to", ...FILTER_TEXT] as const;
const QUERY_KEYS = [...FILTER_KEYS, "target", "limit", "cursor"] as const;
const DECISION_ACTIONS = ["plan.approved", "plan.auto-approved"];
// Date only (UTC midnight), or date and time with seconds optional and a zone: local times are ambiguous.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const REVIEW_COLUMNS = [
  "target",
  "role",
  "targetRole",
  "scope",
  "personId",
  "name",
  "since",
  "grantSeq",
  "sensitive",
] as const;

const invalid = (message: string): AppError => new AppError("INPUT_INVALID", message, { expose: true });

/** The auditors' operations of the console and the admin API. */
export class AuditOperations implements Pick<
  AdminService,
  | "searchAudit"
  | "exportAudit"
  | "auditJwks"
  | "roleHolders"
  | "explainHolding"
  | "accessReview"
  | "accessReviewCsv"
> {
  private readonly now: () => Date;
  private readonly policies: () => readonly Policy[];

  constructor(private readonly options: AuditOperationsOptions) {
    this.now = options.now ?? (() => new Date());
    this.policies = options.policies ?? (() => loadPolicies(options.config.policiesDir));
  }

  /** Newest first, filtered in the store, paged by seq: new entries never shift a later page. */
  async searchAudit(caller: Caller, query: AuditQuery): Promise<Page<AuditRecord>> {
    requirePermission(caller, "audit.read");
    const fields = checkFields(query, QUERY_KEYS, "search");
    const filter: AuditSearch = { ...checkFilter(fields), ...textField(fields, "target") };
    const limit = checkLimit(fields.limit);
    const beforeSeq = checkCursor(fields.cursor);
    const rows = await this.options.store.searchAudit(filter, beforeSeq, limit + 1);
    const items = rows.slice(0, limit);
    return { items, next: rows.length > limit ? String(items[items.length - 1]!.seq) : null };
  }

  async exportAudit(caller: Caller, filter: AuditFilter, format: "jsonl" | "csv"): Promise<ExportDownload> {
    requirePermission(caller, "audit.export");
    const checked = checkFilter(checkFields(filter, FILTER_KEYS, "export"));
    if (format !== "jsonl" && format !== "csv") throw invalid('format must be "jsonl" or "csv"');
    const at = this.now();
    await this.options.audit.record({
      actor: caller.actor,
      action: "audit.exported",
      details: { kind: "audit", format, filter: checked as JsonObject },
    });
    const { store, keys } = this.options;
    const body = new PassThrough();
    const options = { store, filter: checked, out: body, jwks: keys.jwks, now: () => at };
    const run = format === "jsonl" ? exportJsonl({ ...options, key: keys.audit }) : exportCsv(options);
    // A failure part-way (a broken chain, the store gone) fails the download instead of ending it short.
    run.then(
      () => body.end(),
      (err: unknown) => body.destroy(err instanceof Error ? err : new Error(String(err))),
    );
    return {
      fileName: `idbridge-audit-${fileStamp(at)}.${format}`,
      contentType: format === "jsonl" ? "application/x-ndjson; charset=utf-8" : "text/csv; charset=utf-8",
      body,
    };
  }

  /** Only the audit key: it signs checkpoints and export heads; the token keys verify nothing here. */
  async auditJwks(caller: Caller): Promise<object> {
    requirePermission(caller, "audit.read");
    return { keys: [this.options.keys.audit.publicJwk] };
  }

  async roleHolders(
    caller: Caller,
    target: string,
    role: string,
    at?: string,
  ): Promise<readonly RoleHolder[]> {
    requirePermission(caller, "audit.read");
    const when = checkHoldingArgs({ target, role, at });
    const replay = new HoldingsReplay({ target, role, ...(when ? { at: when } : {}) });
    for await (const entry of this.holdingEntries({ target, ...upTo(when) })) replay.add(entry);
    return this.markSensitive(replay.holders());
  }

  async explainHolding(
    caller: Caller,
    personId: string,
    target: string,
    role: string,
    at?: string,
  ): Promise<RoleExplanation> {
    requirePermission(caller, "audit.read");
    const when = checkHoldingArgs({ person: personId, target, role, at });
    const replay = new HoldingsReplay({ target, role, ...(when ? { at: when } : {}) });
    const story: AuditRecord[] = [];
    for await (const entry of this.holdingEntries({ subject: personId, target, ...upTo(when) })) {
      if (entry.action.startsWith("role.") && entry.details.role !== role) continue;
      replay.add(entry);
      story.push(entry);
    }
    const [holder = null] = this.markSensitive(replay.holders()).sort((a, b) => b.grantSeq - a.grantSeq);
    // The grant in force, or (when none is) the last grant: "why did they hold it".
    const grant =
      story.find((e) => e.seq === holder?.grantSeq) ?? story.find((e) => e.action === "role.granted") ?? null;
    const plan = grant === null ? undefined : textOf(grant.details.plan);
    let approval: RoleExplanation["approval"] = null;
    if (plan !== undefined) {
      const decisions = await this.options.store.searchAudit(
        { subject: plan, actions: DECISION_ACTIONS, ...upTo(when) },
        null,
        10,
      );
      story.push(...decisions);
      approval = approvalOf(plan, decisions[0]) ?? (await this.storedApproval(plan));
    }
    return {
      holder,
      entries: story.sort((a, b) => a.seq - b.seq),
      lineage: grant === null ? [] : lineageLines(grant.details.lineage),
      approval,
    };
  }

  async accessReview(caller: Caller, target?: string): Promise<readonly RoleHolder[]> {
    requirePermission(caller, "audit.read");
    return this.sensitiveHolders(target);
  }

  async accessReviewCsv(caller: Caller, target?: string): Promise<ExportDownload> {
    requirePermission(caller, "audit.export");
    const holders = await this.sensitiveHolders(target);
    // Recorded before a byte is handed out, with the count: the report exists only with its evidence.
    await this.options.audit.record({
      actor: caller.actor,
      action: "audit.exported",
      target: target ?? null,
      details: { kind: "access-review", format: "csv", target: target ?? null, count: holders.length },
    });
    const csv = stringify({
      bom: true,
      header: true,
      columns: [...REVIEW_COLUMNS],
      record_delimiter: "windows",
      cast: { string: neutraliseCell, boolean: (value) => String(value) },
    });
    for (const holder of holders) csv.write({ ...holder, scope: holder.scope ?? "" });
    csv.end();
    const suffix = target === undefined ? "" : `-${target}`;
    return {
      fileName: `idbridge-access-review${suffix}-${fileStamp(this.now())}.csv`,
      contentType: "text/csv; charset=utf-8",
      body: csv as Readable,
    };
  }

  // ------------------------------------------------------------------------------------------ helpers

  /**
   * Every entry matching `filter` and one of the holding actions, a page at a time: newest first per
   * action, one action after the other (the replay does not depend on order, and an exact action lets the
   * store walk its index instead of sorting).
   */
  private async *holdingEntries(filter: AuditSearch): AsyncGenerator<AuditRecord> {
    for (const action of HOLDING_ACTIONS) {
      let before: number | null = null;
      for (;;) {
        const page = await this.options.store.searchAudit({ ...filter, action }, before, REPLAY_BATCH);
        yield* page;
        if (page.length < REPLAY_BATCH) break;
        before = page[page.length - 1]!.seq;
      }
    }
  }

  private async sensitiveHolders(target?: string): Promise<RoleHolder[]> {
    if (target !== undefined) checkText("target", target);
    const targets = target === undefined ? this.options.config.targets.map((t) => t.id) : [target];
    const result: RoleHolder[] = [];
    for (const id of targets) {
      const replay = new HoldingsReplay({ target: id });
      for await (const entry of this.holdingEntries({ target: id })) replay.add(entry);
      result.push(...this.markSensitive(replay.holders()).filter((h) => h.sensitive));
    }
    return result;
  }

  /** A holding is sensitive when its grant said so or the policy of its target marks the role sensitive now. */
  private markSensitive(holders: RoleHolder[]): RoleHolder[] {
    if (holders.every((h) => h.sensitive)) return holders;
    const sensitive = new Set(
      this.policies().flatMap((p) =>
        Object.entries(p.roles)
          .filter(([, definition]) => definition.sensitive === true)
          .map(([key]) => JSON.stringify([p.target, key])),
      ),
    );
    return holders.map((h) =>
      h.sensitive || !sensitive.has(JSON.stringify([h.target, h.role])) ? h : { ...h, sensitive: true },
    );
  }

  /** The decision stored with the plan, when the log has no decision entry (older logs). */
  private async storedApproval(plan: string): Promise<RoleExplanation["approval"]> {
    const decision = (await this.options.store.getPlan(plan))?.decision;
    if (decision === undefined || decision === null || decision.kind === "rejected") return null;
    return {
      plan,
      by: decision.by,
      at: decision.at,
      ...(decision.comment !== undefined ? { comment: decision.comment } : {}),
    };
  }
}

// ------------------------------------------------------------------------------------------ input

/** The object's fields, refusing anything but a plain object with known keys. */
function checkFields<K extends string>(
  input: unknown,
  keys: readonly K[],
  what: string,
): Partial<Record<K, unknown>> {
  if (input === null || typeof input !== "object" || Array.isArray(input))
    throw invalid(`the ${what} filter must be an object`);
  const unknown = Object.keys(input).filter((k) => !(keys as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw invalid(
      `unknown ${what} field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(", ")}; ` +
        `known: ${keys.join(", ")}`,
    );
  }
  return input as Partial<Record<K, unknown>>;
}

function checkText(name: string, value: unknown): string {
  if (typeof value !== "string") throw invalid(`${name} must be text`);
  if (value.length > MAX_TEXT) throw invalid(`${name} is longer than ${MAX_TEXT} characters`);
  return value;
}

/** A text field, absent when not given or empty (an empty form field filters nothing). */
function textField<K extends string>(
  fields: Partial<Record<K, unknown>>,
  name: K,
): Partial<Record<K, string>> {
  const value = fields[name];
  if (value === undefined || value === "") return {};
  return { [name]: checkText(name, value) } as Partial<Record<K, string>>;
}

function checkTime(name: string, value: unknown): string {
  const text = checkText(name, value);
  if (!ISO_TIME.test(text) || Number.isNaN(Date.parse(text))) {
    throw invalid(
      `${name} ${JSON.stringify(text)} is not an ISO 8601 time: use 2026-11-28, 2026-11-28T10:00Z or 2026-11-28T18:00+08:00`,
    );
  }
  return text;
}

/** The export filter's fields, checked: times ISO 8601 with a zone, from ≤ to, texts ≤ 200 characters. */
function checkFilter(fields: Partial<Record<(typeof FILTER_KEYS)[number], unknown>>): AuditFilter {
  const filter: AuditFilter = {};
  for (const name of ["from", "to"] as const) {
    const value = fields[name];
    if (value !== undefined && value !== "") filter[name] = checkTime(name, value);
  }
  if (filter.from !== undefined && filter.to !== undefined && Date.parse(filter.from) > Date.parse(filter.to))
    throw invalid(`from (${filter.from}) is after to (${filter.to})`);
  for (const name of FILTER_TEXT) Object.assign(filter, textField(fields, name));
  if (filter.action?.slice(0, -1).includes("*"))
    throw invalid("action takes * only at its end, as a prefix (role.*)");
  return filter;
}

function checkLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_LIMIT)
    throw invalid(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return value as number;
}

/** The seq a page continues below; cursors are the seq of the last entry of the page before. */
function checkCursor(value: unknown): number | null {
  if (value === undefined || value === "") return null;
  if (typeof value !== "string" || !/^[1-9]\d{0,15}$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw invalid("cursor is not one this search gave out (start again from the first page)");
  return Number(value);
}

/** Checks the arguments of a holdings question; returns the time asked about, if any. */
function checkHoldingArgs(args: {
  person?: string;
  target: string;
  role: string;
  at?: string | undefined;
}): string | undefined {
  for (const [name, value] of Object.entries(args)) {
    if (name === "at") continue;
    if (checkText(name, value) === "") throw invalid(`${name} is required`);
  }
  return args.at === undefined || args.at === "" ? undefined : checkTime("at", args.at);
}

/** A search bound that keeps entries recorded at or before `at` (stored times have millisecond precision). */
function upTo(at: string | undefined): { to?: string } {
  return at === undefined ? {} : { to: new Date(Date.parse(at) + 1).toISOString() };
}

// ------------------------------------------------------------------------------------------ output

/** `2026-11-28T10-00Z`: minutes, UTC, no colons (they are not allowed in Windows file names). */
function fileStamp(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace(":", "-")}Z`;
}

const textOf = (value: JsonValue | undefined): string | undefined =>
  typeof value === "string" ? value : undefined;

function approvalOf(plan: string, entry: AuditRecord | undefined): RoleExplanation["approval"] {
  if (entry === undefined) return null;
  const comment = textOf(entry.details.comment);
  return { plan, by: entry.actor, at: entry.time, ...(comment !== undefined ? { comment } : {}) };
}

/** Lineage as recorded on a grant (src/policy/evaluate.ts LineageStep[]), one line per step. */
function lineageLines(value: JsonValue | undefined): string[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((step) => {
    if (step === null || typeof step !== "object" || Array.isArray(step)) return [];
    const { rule, facts } = step;
    if (typeof rule !== "string" || !Array.isArray(facts)) return [];
    return [formatLineage([{ rule, facts: facts.filter((f): f is string => typeof f === "string") }])];
  });
}
