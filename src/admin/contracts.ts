/**
 * What security admins and auditors can do, as one service used by both the admin API (`/api/v1`) and
 * the console (`/console`): the same operations, the same permission checks (src/admin/access.ts) and
 * the same audit entries, whichever door a request came through. The HTTP layers only translate.
 *
 * Every method takes the {@link Caller} first and checks its permission before reading anything.
 * Errors are AppErrors with stable codes: NOT_FOUND (unknown id), INPUT_INVALID (bad filter, too long
 * a query), ACCESS_DENIED, PLAN_STATE / PLAN_STALE (a decision on a plan that moved on).
 */
import type { Readable } from "node:stream";
import type { AuditFilter } from "../audit/export-format.js";
import type { ReviewItem } from "../identity/link.js";
import type { PlanChange, PlanChangeKind, Plan } from "../sync/plan.js";
import type { AuditRecord, PlanItemRecord, PlanListing, PlanStatus, SyncRunRecord } from "../store/store.js";
import type { Caller } from "./access.js";

/** One page of a listing; `next` is an opaque cursor for the page after, null on the last page. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly next: string | null;
}

/** Paging of a listing: at most `limit` items (1..200, default 50) after `cursor`. */
export interface PageRequest {
  readonly limit?: number;
  readonly cursor?: string;
}

// ------------------------------------------------------------------------------------------ plans

/** Which plans to list. */
export interface PlanQuery extends PageRequest {
  readonly status?: PlanStatus;
  readonly target?: string;
}

/** Which changes of one plan to show. */
export interface ChangeQuery extends PageRequest {
  /** Only changes of these kinds. */
  readonly kinds?: readonly PlanChangeKind[];
  /** Only changes of this person (id). */
  readonly person?: string;
  /** Only changes of this role (key). */
  readonly role?: string;
  /** Free text, matched case-insensitively against names, roles, departments and lineage (≤ 200 chars). */
  readonly text?: string;
  /** Only sensitive grants and changes named by an SoD finding. */
  readonly flagged?: boolean;
  /** Order per person (by name, then id) or per role (by role key, then name); apply order when absent. */
  readonly groupBy?: "person" | "role";
}

/** One change as shown to a reviewer: the change itself plus its applied outcome, if any. */
export interface ChangeView {
  readonly change: PlanChange;
  /** The outcome once applied. */
  readonly outcome: PlanItemRecord | null;
}

/** How a plan's changes came out, over the whole plan, from the outcomes recorded as it was applied. */
export interface PlanOutcomes {
  /** Took effect. */
  readonly applied: number;
  /** Needed no write: the target already matched. */
  readonly noop: number;
  /** Did not take. */
  readonly failed: number;
  /** No outcome recorded: not applied yet, or left when an apply stopped. */
  readonly notAttempted: number;
  /** The failed changes with their causes, the first {@link MAX_LISTED_FAILURES}. */
  readonly failures: readonly { readonly key: string; readonly code: string; readonly message: string }[];
}

/** Most failures {@link PlanOutcomes} lists (the counts are whole). */
export const MAX_LISTED_FAILURES = 20;

/** A plan for review: everything but the change list, plus one page of changes matching the query. */
export interface PlanView {
  readonly plan: PlanListing;
  /** The plan's content without `changes` (sources, risk, sod, blocked, problems, heldPeople, base). */
  readonly content: Omit<Plan, "changes">;
  /** Counts of all changes by kind, and of those matching the query. */
  readonly counts: { readonly all: Partial<Record<PlanChangeKind, number>>; readonly matching: number };
  /** Changes grouped per person or per role, as asked, one page. */
  readonly changes: Page<ChangeView>;
  /** How the plan's changes came out (all not attempted before the first apply). */
  readonly outcomes: PlanOutcomes;
}

/** A decision on a plan. `hash` must be the content hash the reviewer saw: a different plan is refused. */
export interface PlanDecisionInput {
  readonly decision: "approve" | "reject";
  /** Required, 1..2000 characters: why. */
  readonly comment: string;
  readonly hash: string;
}

/** What an apply did. */
export interface ApplyResult {
  readonly plan: PlanListing;
  /** The sync run that records this apply (trigger `api`). */
  readonly run?: SyncRunRecord;
  readonly applied: number;
  readonly noop: number;
  readonly failed: number;
}

// ------------------------------------------------------------------------------------------ people

/** A person in a search result. */
export interface PersonSummary {
  readonly id: string;
  readonly name: string;
  readonly employeeNo?: string;
  readonly email?: string;
  /** active / disabled / left, as the latest reads say. */
  readonly status: string;
  /** `sourceId:subject` of each linked account. */
  readonly accounts: readonly string[];
}

/** One source account of a person, with how it was linked and what the source says about it. */
export interface AccountView {
  readonly sourceId: string;
  readonly subject: string;
  readonly rule: string;
  readonly linkedAt: string;
  /** From the latest snapshot of that source, when it still holds the account. */
  readonly name?: string;
  readonly status?: string;
  readonly departments?: readonly string[];
  readonly groups?: readonly string[];
}

/** A role of a person in one target: held now, desired by policy, or both, with the reasons. */
export interface PersonRoleView {
  readonly target: string;
  readonly role: string;
  readonly targetRole: string;
  readonly scope?: string;
  readonly held: boolean;
  readonly desired: boolean;
  readonly sensitive: boolean;
  /** Lineage lines of the desired grant (source fact → rule → role). */
  readonly why: readonly string[];
}

/** Everything about one person. */
export interface PersonView {
  readonly person: PersonSummary;
  readonly accounts: readonly AccountView[];
  readonly roles: readonly PersonRoleView[];
  /** `idbridge policy explain` text per target. */
  readonly explain: Readonly<Record<string, string>>;
  /** Open review items naming this person. */
  readonly reviews: readonly ReviewItem[];
}

/** What the latest kept snapshot of its source says about an account (one waiting in review). */
export interface AccountFacts {
  readonly sourceId: string;
  readonly subject: string;
  /** Whether the kept snapshot of its source lists the account; the facts below are there only then. */
  readonly listed: boolean;
  readonly name?: string;
  /** Login name in the source. */
  readonly username?: string;
  /** active / disabled / left, as the source says. */
  readonly status?: string;
  /** Department paths (main first). */
  readonly departments?: readonly string[];
  readonly email?: string;
  readonly employeeNo?: string;
  /** Job title. */
  readonly title?: string;
}

/** A candidate person of a review item: their summary and the departments their accounts are in. */
export interface ReviewCandidate extends PersonSummary {
  readonly departments: readonly string[];
}

/**
 * A review item as a reviewer needs it: the item, each account with its facts (still with `sourceId`
 * and `subject`), and the candidates' summaries, so the accounts and the people can be set side by side.
 */
export interface ReviewItemView extends Omit<ReviewItem, "accounts"> {
  /** The accounts left unlinked, with what their sources say. */
  readonly accounts: readonly AccountFacts[];
  /** The candidates that exist, in the order of `candidates` (one gone since is left out). */
  readonly candidatePeople: readonly ReviewCandidate[];
}

/** An admin's decision in the identity review queue, about one account (`sourceId:subject`). */
export type LinkDecisionInput =
  | {
      readonly kind: "link" | "unlink";
      readonly account: string;
      readonly personId: string;
      readonly comment: string;
    }
  | { readonly kind: "ignore"; readonly account: string; readonly comment: string };

// ------------------------------------------------------------------------------------------ audit

/** Audit search: the export filter plus target, newest first, paged by seq. */
export interface AuditQuery extends AuditFilter, PageRequest {
  readonly target?: string;
}

/** A downloadable export: its file name, media type and a stream of its bytes (never all in memory). */
export interface ExportDownload {
  readonly fileName: string;
  readonly contentType: string;
  readonly body: Readable;
}

/** A person holding a role at a time, per the audit log. */
export interface RoleHolder {
  readonly personId: string;
  readonly name: string;
  readonly target: string;
  readonly role: string;
  readonly targetRole: string;
  readonly scope?: string;
  /** When the grant that makes them hold it took effect, and its audit seq. */
  readonly since: string;
  readonly grantSeq: number;
  readonly sensitive: boolean;
}

/** Why a person holds (or held) a role: the grant entry, its lineage, the plan and who approved it. */
export interface RoleExplanation {
  readonly holder: RoleHolder | null;
  /** The audit entries that tell the story, oldest first: grants, revokes, plan decisions. */
  readonly entries: readonly AuditRecord[];
  /** Lineage lines of the grant in force. */
  readonly lineage: readonly string[];
  /** The plan and its decision (who approved, when, the comment). */
  readonly approval: {
    readonly plan: string;
    readonly by: string;
    readonly at: string;
    readonly comment?: string;
  } | null;
}

/** Most people {@link AdminService.peopleNames} names in one call (a page of audit entries, twice over). */
export const MAX_NAMED_PEOPLE = 400;

// ------------------------------------------------------------------------------------------ service

/** The operations of the console and the admin API. */
export interface AdminService {
  listPlans(caller: Caller, query: PlanQuery): Promise<Page<PlanListing>>;
  getPlan(caller: Caller, id: string, query: ChangeQuery): Promise<PlanView>;
  /** Records the decision (audited with the caller as actor); an approval of a plan does not apply it. */
  decidePlan(caller: Caller, id: string, input: PlanDecisionInput): Promise<PlanListing>;
  /** Applies an approved plan against the target; PLAN_STALE if the target moved (re-plan). */
  applyPlan(caller: Caller, id: string): Promise<ApplyResult>;

  listSyncRuns(
    caller: Caller,
    query: PageRequest & { readonly target?: string },
  ): Promise<Page<SyncRunRecord>>;

  /** The open review items, each with its accounts' facts and its candidates' summaries. */
  reviewQueue(caller: Caller): Promise<readonly ReviewItemView[]>;
  /** Records a link / unlink / ignore decision (audited with the caller as actor). */
  decideLink(caller: Caller, input: LinkDecisionInput): Promise<void>;

  searchPeople(caller: Caller, query: PageRequest & { readonly text?: string }): Promise<Page<PersonSummary>>;
  /**
   * The names of up to {@link MAX_NAMED_PEOPLE} people by id (for showing audit actors and subjects);
   * unknown ids are left out. Needs audit.read.
   */
  peopleNames(caller: Caller, ids: readonly string[]): Promise<ReadonlyMap<string, string>>;
  getPerson(caller: Caller, id: string): Promise<PersonView>;

  searchAudit(caller: Caller, query: AuditQuery): Promise<Page<AuditRecord>>;
  /** JSONL (with checkpoints and signed head) or CSV of the selection; audited as `audit.exported`. */
  exportAudit(caller: Caller, filter: AuditFilter, format: "jsonl" | "csv"): Promise<ExportDownload>;
  /** The public JWKS that verifies exports offline. */
  auditJwks(caller: Caller): Promise<object>;

  /** Who held `role` of `target` at `at` (default now), per the audit log. */
  roleHolders(caller: Caller, target: string, role: string, at?: string): Promise<readonly RoleHolder[]>;
  /** Why `personId` holds (or held at `at`) `role` of `target`. */
  explainHolding(
    caller: Caller,
    personId: string,
    target: string,
    role: string,
    at?: string,
  ): Promise<RoleExplanation>;
  /** Every holder of every sensitive role of `target` (all targets when undefined), now. */
  accessReview(caller: Caller, target?: string): Promise<readonly RoleHolder[]>;
  /** The same report as CSV; audited as `audit.exported`. */
  accessReviewCsv(caller: Caller, target?: string): Promise<ExportDownload>;
}
