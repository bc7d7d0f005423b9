/**
 * The plans, sync history, identity review and people half of {@link AdminService}: permission first,
 * input checked, then the same code the CLI runs (SyncService for plans, recordLinkDecision for the review
 * queue), so a decision taken in the console is the decision `idbridge sync approve` would have taken,
 * audited with the signed-in caller as actor. Text is returned as data: escaping is the page's job.
 */
import type { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import { recordLinkDecision } from "../identity/decisions.js";
import { formatLineage } from "../policy/explain.js";
import { compareStrings } from "../policy/facts.js";
import type {
  ListPosition,
  PlanItemRecord,
  PlanListing,
  PlanRecord,
  PlanStatus,
  Store,
  SyncRunRecord,
} from "../store/store.js";
import { APPLY_ORDER, countChanges, type Plan, type PlanChange, type PlanChangeKind } from "../sync/plan.js";
import type { SyncService } from "../sync/service.js";
import { requirePermission, type Caller } from "./access.js";
import {
  MAX_LISTED_FAILURES,
  MAX_NAMED_PEOPLE,
  type AdminService,
  type ApplyResult,
  type ChangeQuery,
  type ChangeView,
  type LinkDecisionInput,
  type Page,
  type PageRequest,
  type PersonSummary,
  type PersonView,
  type PlanDecisionInput,
  type PlanOutcomes,
  type PlanQuery,
  type PlanView,
  type ReviewCandidate,
  type ReviewItemView,
} from "./contracts.js";
import {
  accountFacts,
  accountView,
  heldRoles,
  KeptDirectoriesCache,
  PeopleIndex,
  profileOrder,
  reviewCandidate,
  reviewsOf,
  rolesInTarget,
  summarisePerson,
} from "./people-view.js";

/** Page sizes (contracts: 1..200, default 50). */
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;
/** Longest free-text filter and id accepted. */
export const MAX_TEXT = 200;
/** Longest decision comment. */
export const MAX_COMMENT = 2000;

const PLAN_STATUSES: readonly PlanStatus[] = [
  "pending",
  "approved",
  "rejected",
  "applying",
  "applied",
  "partial",
  "superseded",
  "empty",
];

/** Options of {@link SyncOperations}. */
export interface SyncOperationsOptions {
  /** The configuration (targets, sources, identity and sync sections). */
  readonly config: Config;
  /** Plans, runs, people, the review queue, kept snapshots. */
  readonly store: Store;
  /** The sync: decisions and applies go through it. */
  readonly sync: SyncService;
  /** The audit log (decisions are audited through the sync and the store's decision transaction). */
  readonly audit: AuditLog;
  /** Clock. */
  readonly now?: () => Date;
}

/** The plans, sync runs, review queue and people operations of the console and the admin API. */
export class SyncOperations implements Pick<
  AdminService,
  | "listPlans"
  | "getPlan"
  | "decidePlan"
  | "applyPlan"
  | "listSyncRuns"
  | "reviewQueue"
  | "decideLink"
  | "searchPeople"
  | "peopleNames"
  | "getPerson"
> {
  private readonly now: () => Date;
  private readonly kept: KeptDirectoriesCache;
  private readonly people: PeopleIndex;

  constructor(private readonly options: SyncOperationsOptions) {
    this.now = options.now ?? (() => new Date());
    this.kept = new KeptDirectoriesCache(options.store, options.config);
    this.people = new PeopleIndex(profileOrder(options.config));
  }

  private get store(): Store {
    return this.options.store;
  }

  // ------------------------------------------------------------------------------------------ plans

  async listPlans(caller: Caller, query: PlanQuery): Promise<Page<PlanListing>> {
    requirePermission(caller, "sync.read");
    const limit = pageLimit(query.limit);
    const before = decodeCursor(query.cursor, isPosition);
    const target = optionalText("target", query.target);
    if (query.status !== undefined && !PLAN_STATUSES.includes(query.status))
      throw invalid(
        `unknown plan status "${String(query.status).slice(0, 40)}" (${PLAN_STATUSES.join(", ")})`,
      );
    const rows = await this.store.listPlans({
      limit: limit + 1,
      ...(query.status !== undefined ? { statuses: [query.status] } : {}),
      ...(target !== undefined ? { target } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    return keysetPage(rows, limit, (p) => ({ at: p.createdAt, id: p.id }));
  }

  async getPlan(caller: Caller, id: string, query: ChangeQuery): Promise<PlanView> {
    requirePermission(caller, "sync.read");
    const limit = pageLimit(query.limit);
    const offset = decodeCursor(query.cursor, isOffset)?.offset ?? 0;
    const filter = changeFilter(query);
    const record = await this.findPlan(id);
    const { changes, ...content } = JSON.parse(record.content) as Plan;
    const flaggedPeople = new Set(content.sod.map((s) => s.person));
    const matching = grouped(
      changes.filter((c) => filter(c, flaggedPeople)),
      query.groupBy,
    );
    const outcomes = new Map((await this.store.listPlanItems(id)).map((item) => [item.key, item]));
    const items: ChangeView[] = matching
      .slice(offset, offset + limit)
      .map((change) => ({ change, outcome: outcomes.get(change.key) ?? null }));
    return {
      plan: listing(record),
      content,
      counts: { all: countChanges({ changes }), matching: matching.length },
      changes: {
        items,
        next: offset + limit < matching.length ? encodeCursor({ offset: offset + limit }) : null,
      },
      outcomes: countOutcomes(changes, outcomes),
    };
  }

  async decidePlan(caller: Caller, id: string, input: PlanDecisionInput): Promise<PlanListing> {
    requirePermission(caller, "sync.decide");
    const comment = requiredComment(input.comment);
    if (input.decision !== "approve" && input.decision !== "reject")
      throw invalid(`decision must be approve or reject, not "${String(input.decision).slice(0, 40)}"`);
    if (typeof input.hash !== "string" || !/^[0-9a-f]{64}$/.test(input.hash))
      throw invalid("hash must be the plan's content hash as shown with it (64 hex digits)");
    checkId("plan", id);
    const options = { actor: caller.actor, hash: input.hash };
    const decided =
      input.decision === "approve"
        ? await this.options.sync.approve(id, caller.name, comment, options)
        : await this.options.sync.reject(id, caller.name, comment, options);
    return listing(decided);
  }

  async applyPlan(caller: Caller, id: string): Promise<ApplyResult> {
    requirePermission(caller, "sync.decide");
    checkId("plan", id);
    await this.findPlan(id);
    // An apply from the console or the API is a sync run like a scheduled one: the history shows it.
    const { plan, report, run } = await this.options.sync.apply(id, undefined, {
      actor: caller.actor,
      trigger: "api",
    });
    return {
      plan: listing(plan),
      ...(run !== undefined ? { run } : {}),
      applied: report.applied,
      noop: report.observed + report.skipped,
      failed: report.failed.length,
    };
  }

  // ------------------------------------------------------------------------------------------ runs

  async listSyncRuns(
    caller: Caller,
    query: PageRequest & { readonly target?: string },
  ): Promise<Page<SyncRunRecord>> {
    requirePermission(caller, "sync.read");
    const limit = pageLimit(query.limit);
    const before = decodeCursor(query.cursor, isPosition);
    const target = optionalText("target", query.target);
    const rows = await this.store.listSyncRuns({
      limit: limit + 1,
      ...(target !== undefined ? { target } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    return keysetPage(rows, limit, (r) => ({ at: r.startedAt, id: r.id }));
  }

  // ------------------------------------------------------------------------------------------ review

  async reviewQueue(caller: Caller): Promise<readonly ReviewItemView[]> {
    requirePermission(caller, "sync.read");
    const [queue, kept] = await Promise.all([this.store.getReviewQueue(), this.kept.get()]);
    const order = profileOrder(this.options.config);
    // Each candidate read once, however many items name them.
    const candidates = new Map<string, ReviewCandidate | null>();
    for (const id of new Set(queue.flatMap((item) => item.candidates))) {
      const person = await this.store.getPerson(id);
      candidates.set(id, person === null ? null : reviewCandidate(person, kept, order));
    }
    return queue.map((item) => ({
      ...item,
      accounts: item.accounts.map((a) => accountFacts(a, kept.directories)),
      candidatePeople: item.candidates
        .map((id) => candidates.get(id) ?? null)
        .filter((c): c is ReviewCandidate => c !== null),
    }));
  }

  async decideLink(caller: Caller, input: LinkDecisionInput): Promise<void> {
    requirePermission(caller, "sync.decide");
    const comment = requiredComment(input.comment);
    if (input.kind !== "link" && input.kind !== "unlink" && input.kind !== "ignore")
      throw invalid(`kind must be link, unlink or ignore, not "${String(input.kind).slice(0, 40)}"`);
    if (typeof input.account !== "string" || input.account.length > MAX_TEXT * 2)
      throw invalid(`account must be SOURCE:SUBJECT, at most ${MAX_TEXT * 2} characters`);
    if (input.kind !== "ignore") checkId("person", input.personId);
    await recordLinkDecision(
      this.store,
      input.kind === "ignore"
        ? { kind: "ignore", account: input.account }
        : { kind: input.kind, account: input.account, personId: input.personId },
      {
        actor: caller.actor,
        by: caller.name,
        comment,
        now: this.now(),
        sourceIds: this.options.config.sources.map((s) => s.id),
      },
    );
  }

  // ------------------------------------------------------------------------------------------ people

  async searchPeople(
    caller: Caller,
    query: PageRequest & { readonly text?: string },
  ): Promise<Page<PersonSummary>> {
    requirePermission(caller, "sync.read");
    const limit = pageLimit(query.limit);
    const offset = decodeCursor(query.cursor, isOffset)?.offset ?? 0;
    const needle = optionalText("text", query.text)?.trim().toLowerCase() ?? "";
    const [people, kept] = await Promise.all([this.store.listPeople(), this.kept.get()]);
    const found: PersonSummary[] = [];
    for (const { summary, haystack } of this.people.index(people, kept))
      if (needle === "" || haystack.includes(needle)) found.push(summary);
    found.sort((a, b) => compareStrings(a.name, b.name) || compareStrings(a.id, b.id));
    return {
      items: found.slice(offset, offset + limit),
      next: offset + limit < found.length ? encodeCursor({ offset: offset + limit }) : null,
    };
  }

  async peopleNames(caller: Caller, ids: readonly string[]): Promise<ReadonlyMap<string, string>> {
    requirePermission(caller, "audit.read");
    const wanted = [...new Set(ids)].filter((id) => id !== "" && id.length <= 200);
    if (wanted.length > MAX_NAMED_PEOPLE)
      throw invalid(`at most ${MAX_NAMED_PEOPLE} people can be named at once, got ${wanted.length}`);
    const kept = await this.kept.get();
    const order = profileOrder(this.options.config);
    const names = new Map<string, string>();
    for (const id of wanted) {
      const person = await this.store.getPerson(id);
      if (person !== null) names.set(id, summarisePerson(person, kept, order).summary.name);
    }
    return names;
  }

  async getPerson(caller: Caller, id: string): Promise<PersonView> {
    requirePermission(caller, "sync.read");
    checkId("person", id);
    const person = await this.store.getPerson(id);
    if (person === null)
      throw new AppError("NOT_FOUND", `no person "${id}" (search people by name, employee number or email)`, {
        expose: true,
      });
    const [kept, queue, held] = await Promise.all([
      this.kept.get(),
      this.store.getReviewQueue(),
      heldRoles(this.store, id),
    ]);
    const roles: PersonView["roles"][number][] = [];
    const explain: Record<string, string> = {};
    for (const target of this.options.config.targets) {
      let policy;
      try {
        policy = this.options.sync.policyFor(target.id);
      } catch (error) {
        // A target without exactly one policy still shows, with why nothing is desired there.
        if (!(error instanceof AppError && error.code === "POLICY_INVALID")) throw error;
        explain[target.id] = error.message;
        continue;
      }
      const inTarget = rolesInTarget(policy, person, kept.directories, held);
      roles.push(...inTarget.roles);
      explain[target.id] = inTarget.explain;
    }
    return {
      person: summarisePerson(person, kept, profileOrder(this.options.config)).summary,
      accounts: person.accounts.map((a) => accountView(a, kept.directories)),
      roles,
      explain,
      reviews: reviewsOf(person, queue),
    };
  }

  private async findPlan(id: string): Promise<PlanRecord> {
    checkId("plan", id);
    const record = await this.store.getPlan(id);
    if (record === null)
      throw new AppError("NOT_FOUND", `no plan "${id}": it does not exist (list the plans to find one)`, {
        expose: true,
      });
    return record;
  }
}

// ------------------------------------------------------------------------------------------ input

function invalid(message: string): AppError {
  return new AppError("INPUT_INVALID", message, { expose: true });
}

/** The page size asked for: 1..200, default 50. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw invalid(`limit must be a whole number from 1 to ${MAX_LIMIT}, not ${String(limit)}`);
  return limit;
}

/** An opaque cursor: base64url of JSON, so callers do not build or depend on its contents. */
export function encodeCursor(value: object): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** The value of a cursor made by {@link encodeCursor}; INPUT_INVALID when it is not one of this shape. */
export function decodeCursor<T>(
  cursor: string | undefined,
  is: (value: unknown) => value is T,
): T | undefined {
  if (cursor === undefined) return undefined;
  let value: unknown;
  try {
    if (cursor.length > 1000 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error("not base64url");
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    value = undefined;
  }
  if (!is(value)) throw invalid("cursor is not one this listing gave out; start again from the first page");
  return value;
}

const isOffset = (v: unknown): v is { offset: number } =>
  typeof v === "object" &&
  v !== null &&
  Number.isSafeInteger((v as { offset?: unknown }).offset) &&
  (v as { offset: number }).offset >= 0;

const isPosition = (v: unknown): v is ListPosition =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as { at?: unknown }).at === "string" &&
  typeof (v as { id?: unknown }).id === "string";

/** A page of a keyset listing fetched with one row more than asked, to know whether another follows. */
function keysetPage<T>(rows: readonly T[], limit: number, position: (row: T) => ListPosition): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last !== undefined ? encodeCursor(position(last)) : null };
}

function optionalText(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length > MAX_TEXT)
    throw invalid(`${name} must be text of at most ${MAX_TEXT} characters (it has ${String(value).length})`);
  return value;
}

function checkId(what: string, id: string): void {
  if (typeof id !== "string" || id === "" || id.length > MAX_TEXT)
    throw invalid(`a ${what} id is 1 to ${MAX_TEXT} characters`);
}

function requiredComment(comment: string): string {
  const text = typeof comment === "string" ? comment.trim() : "";
  if (text === "" || text.length > MAX_COMMENT)
    throw invalid(
      text === ""
        ? "a comment is required: say why"
        : `the comment is ${text.length} characters; at most ${MAX_COMMENT}`,
    );
  return text;
}

const listing = ({ content: _content, ...rest }: PlanRecord): PlanListing => rest;

/** The outcomes of a plan's changes; items of keys the plan does not have (none expected) are left out. */
function countOutcomes(
  changes: readonly PlanChange[],
  items: ReadonlyMap<string, PlanItemRecord>,
): PlanOutcomes {
  const counts = { applied: 0, noop: 0, failed: 0, notAttempted: 0 };
  const failures: { key: string; code: string; message: string }[] = [];
  for (const change of changes) {
    const item = items.get(change.key);
    if (item === undefined) {
      counts.notAttempted += 1;
      continue;
    }
    counts[item.status] += 1;
    if (item.status === "failed" && failures.length < MAX_LISTED_FAILURES) {
      const { code, message } = item.failure ?? {};
      failures.push({
        key: change.key,
        code: typeof code === "string" ? code : "",
        message: typeof message === "string" ? message : "",
      });
    }
  }
  return { ...counts, failures };
}

/** The filter of a change query, checked once: kinds known, text and ids not too long. */
function changeFilter(
  query: ChangeQuery,
): (change: PlanChange, flaggedPeople: ReadonlySet<string>) => boolean {
  const kinds = query.kinds === undefined ? undefined : new Set<PlanChangeKind>(query.kinds);
  for (const kind of kinds ?? [])
    if (!APPLY_ORDER.includes(kind))
      throw invalid(`unknown change kind "${String(kind).slice(0, 40)}" (kinds: ${APPLY_ORDER.join(", ")})`);
  const person = optionalText("person", query.person);
  const role = optionalText("role", query.role);
  const text = optionalText("text", query.text)?.trim().toLowerCase();
  return (change, flaggedPeople) => {
    if (kinds !== undefined && !kinds.has(change.kind)) return false;
    if (person !== undefined && !("person" in change && change.person === person)) return false;
    if (role !== undefined && !("role" in change && change.role === role)) return false;
    if (
      query.flagged === true &&
      !(
        (change.kind === "grant" && change.sensitive) ||
        ("person" in change && flaggedPeople.has(change.person))
      )
    )
      return false;
    return text === undefined || text === "" || changeText(change).includes(text);
  };
}

/**
 * Changes per person (by name, then id; changes of no person last) or per role (by role key, then name;
 * changes of no role last), each group in apply order (a stable sort); as they are without `groupBy`.
 */
function grouped(changes: PlanChange[], groupBy: ChangeQuery["groupBy"]): PlanChange[] {
  if (groupBy === undefined) return changes;
  if (groupBy !== "person" && groupBy !== "role")
    throw invalid(`groupBy must be person or role, not "${String(groupBy).slice(0, 40)}"`);
  // "\uffff" sorts changes without the key after every real one.
  const last = "\uffff";
  const name = (c: PlanChange) => ("name" in c ? c.name : last);
  const id = (c: PlanChange) => ("person" in c ? c.person : last);
  const role = (c: PlanChange) => ("role" in c ? c.role : last);
  const compare =
    groupBy === "person"
      ? (a: PlanChange, b: PlanChange) =>
          compareStrings(id(a) === last ? last : name(a), id(b) === last ? last : name(b)) ||
          compareStrings(id(a), id(b))
      : (a: PlanChange, b: PlanChange) =>
          compareStrings(role(a), role(b)) ||
          compareStrings(name(a), name(b)) ||
          compareStrings(id(a), id(b));
  return [...changes].sort(compare);
}

/** What free text is matched against: names, roles, departments, reasons and lineage, lower-cased. */
function changeText(change: PlanChange): string {
  const parts: string[] = [];
  if ("name" in change) parts.push(change.name);
  if ("person" in change) parts.push(change.person);
  if ("role" in change) parts.push(change.role, change.targetRole);
  if ("scopeLabel" in change) parts.push(change.scopeLabel);
  if ("path" in change) parts.push(change.path);
  if ("reason" in change) parts.push(change.reason);
  if (change.kind === "grant") parts.push(formatLineage(change.lineage));
  return parts.join("\u0000").toLowerCase();
}
