import type { ReadCursor } from "../sources/snapshot.js";
import type { JsonObject } from "../domain/json.js";
import type { Person } from "../identity/person.js";
import type { LinkDecision, ReviewItem } from "../identity/link.js";

/** One row of the audit log as stored; `hash` chains it to the row before (see src/audit/chain.ts). */
export interface AuditRecord {
  /** Position in the chain, 1-based, without gaps. */
  seq: number;
  /** ISO 8601 time of recording, UTC, millisecond precision. */
  time: string;
  /** Who did it: a person id, `system`, `cli:<user>` or a client id. */
  actor: string;
  /** What happened, dotted (`role.granted`, `login.failed`, `plan.approved`). */
  action: string;
  /** Whom or what it concerns (a person id, a plan id), if anything. */
  subject: string | null;
  /** Where it took effect (a target id), if anywhere. */
  target: string | null;
  /** Structured facts of the event; never secrets. */
  details: JsonObject;
  /** `hash` of the entry before, or the genesis hash for seq 1. */
  prevHash: string;
  /** sha256 hex of prevHash ‖ canonical JSON of the entry. */
  hash: string;
}

/** The last entry of the chain: seq 0 with the genesis hash when the log is empty. */
export interface ChainHead {
  /** Seq of the last entry (0 for an empty log). */
  seq: number;
  /** Hash of the last entry (the genesis hash for an empty log). */
  hash: string;
}

/** A signed statement that the chain had `hash` at `seq`. */
export interface Checkpoint {
  /** Seq of the entry the checkpoint pins. */
  seq: number;
  /** Hash of that entry. */
  hash: string;
  /** ISO time of signing. */
  time: string;
  /** Compact JWS (EdDSA) over `{seq, hash, time}`. */
  jws: string;
}

/** Which audit entries a search selects; every field given narrows it (AND). */
export interface AuditSearch {
  /** ISO time, inclusive. */
  readonly from?: string;
  /** ISO time, exclusive. */
  readonly to?: string;
  /** Exact actor. */
  readonly actor?: string;
  /** Exact action, or a prefix ending in `*` (`role.*`). */
  readonly action?: string;
  /** Any of these exact actions. */
  readonly actions?: readonly string[];
  /** Exact subject. */
  readonly subject?: string;
  /** Exact target. */
  readonly target?: string;
}

/** A running idbridge server registered in the store. */
export interface InstanceInfo {
  /** Random id of this process's registration. */
  id: string;
  /** Host name of the machine. */
  host: string;
  /** Process id on that host. */
  pid: number;
}

/** What `/readyz` reports about the store. */
export interface StoreHealth {
  /** Migration version of the database. */
  schemaVersion: number;
  /** Latest migration this code knows. */
  codeVersion: number;
}

/** What a target record idbridge manages is keyed by: a user (Person id), a department (`source:id`) or a role (policy key). */
export type TargetLinkKind = "user" | "department" | "role";

/** One row of the link table: our key → the target's id, so re-runs and crashed applies never duplicate. */
export interface TargetLink {
  /** What is linked. */
  readonly kind: TargetLinkKind;
  /** Our key: Person id, `sourceId:departmentId`, or the policy's role key. */
  readonly key: string;
  /** The record's id in the target. */
  readonly targetRecordId: string;
  /** When the link was made (ISO 8601). */
  readonly linkedAt: string;
}

/** Where a plan is in its life. */
export type PlanStatus =
  /** Waiting for a person's approval. */
  | "pending"
  /** Approved (by a person or automatically); may be applied. */
  | "approved"
  /** Refused by a person; never applied. */
  | "rejected"
  /** An apply is running (or crashed while running: apply again to finish it). */
  | "applying"
  /** Applied; every change took. */
  | "applied"
  /** Applied, but some changes failed (see its items). */
  | "partial"
  /** A newer plan for the same target replaced it before it was applied. */
  | "superseded"
  /** Nothing to change. */
  | "empty";

/** Where a newest-first listing continues: the rows older than `at`, or as old with an id below `id`. */
export interface ListPosition {
  /** Time of the last row seen (a plan's createdAt, a run's startedAt). */
  readonly at: string;
  /** Id of the last row seen. */
  readonly id: string;
}

/** A person's (or the automatic) decision about a plan. */
export interface PlanDecision {
  /** approved, rejected, or auto-approved (low risk, allowed by the config). */
  readonly kind: "approved" | "rejected" | "auto-approved";
  /** Who decided (`system` for auto). */
  readonly by: string;
  /** When (ISO 8601). */
  readonly at: string;
  /** Why, in their words. */
  readonly comment?: string;
}

/** A stored plan. The content is immutable (its hash is over it); status and decision move. */
export interface PlanRecord {
  /** `plan_` + random. */
  readonly id: string;
  /** Target id. */
  readonly target: string;
  /** When it was computed (ISO 8601). */
  readonly createdAt: string;
  /** sha256 hex of the content. */
  readonly hash: string;
  /** Current status. */
  readonly status: PlanStatus;
  /** Whether a person must approve it (thresholds, sensitive grants, re-enables). */
  readonly needsApproval: boolean;
  /** Small facts for listings (counts by kind, guardrails hit); never the changes. */
  readonly summary: JsonObject;
  /** The plan itself, canonical JSON text (src/sync/plan.ts `Plan`). */
  readonly content: string;
  /** The decision, once made. */
  readonly decision: PlanDecision | null;
  /** When its status last changed (ISO 8601). */
  readonly updatedAt: string;
}

/** A plan without its content, for listings. */
export type PlanListing = Omit<PlanRecord, "content">;

/** The recorded outcome of one change of a plan. */
export interface PlanItemRecord {
  /** The change's key inside the plan. */
  readonly key: string;
  /** applied: took effect; noop: the target already matched; failed: did not take. */
  readonly status: "applied" | "noop" | "failed";
  /** The target record it concerned or created. */
  readonly targetRecordId?: string;
  /** The failure, for failed items. */
  readonly failure?: JsonObject;
  /** When (ISO 8601). */
  readonly at: string;
}

/** One run of the sync (plan, maybe approve, maybe apply). */
export interface SyncRunRecord {
  /** `run_` + random. */
  readonly id: string;
  /** Target id. */
  readonly target: string;
  /** What started it. */
  readonly trigger: "cli" | "schedule" | "callback" | "api";
  /** When it started (ISO 8601). */
  readonly startedAt: string;
  /** When it ended; null while running. */
  readonly finishedAt: string | null;
  /** running, then: applied, partial, needs-approval, nothing-to-do, failed. */
  readonly status: "running" | "applied" | "partial" | "needs-approval" | "nothing-to-do" | "failed";
  /** The plan it made, once made. */
  readonly planId: string | null;
  /** Facts for history: per-source completeness, counts, durations, failures with causes. */
  readonly summary: JsonObject;
}

/** One artefact of the downstream OIDC provider (a code, a token, a session, an interaction, a grant…). */
export interface OidcArtifact {
  /** The provider's model name (`AuthorizationCode`, `Session`, `Grant`, …). */
  readonly model: string;
  /** Its id within the model. */
  readonly id: string;
  /** The provider's payload, JSON text exactly as given. */
  readonly payload: string;
  /** Epoch ms after which it is gone; null for artefacts that do not expire. */
  readonly expiresAt: number | null;
  /** Epoch ms at which it was consumed (a code redeemed, a refresh token rotated); null while unused. */
  readonly consumedAt: number | null;
}

/** The secondary keys an OIDC artefact can be found or revoked by. */
export interface OidcArtifactKeys {
  /** The grant it belongs to (codes, tokens): revoking the grant removes it. */
  readonly grantId?: string;
  /** The device flow's user code. */
  readonly userCode?: string;
  /** A session's uid. */
  readonly uid?: string;
}

/**
 * Durable state of idbridge. Narrow and domain-named: every method is one thing the service needs.
 * Audit rows can be appended and read, never updated or deleted.
 */
export interface Store {
  /** `sqlite` or `postgres`. */
  readonly flavour: "sqlite" | "postgres";
  /** Where the store lives, without credentials (for messages). */
  readonly location: string;

  /**
   * Appends audit entries built from the current head, in one transaction serialised in the database,
   * so that concurrent writers (threads, processes, instances) form one linear chain.
   */
  appendAudit(build: (head: ChainHead) => AuditRecord[]): Promise<AuditRecord[]>;
  /** The last entry's seq and hash. */
  auditHead(): Promise<ChainHead>;
  /** Entries with `afterSeq < seq <= toSeq`, ascending, at most `limit`. */
  readAudit(afterSeq: number, toSeq: number, limit: number): Promise<AuditRecord[]>;
  /**
   * Entries matching `filter` with seq below `beforeSeq` (all when null), newest first, at most `limit`:
   * filtered in the database on indexed columns, so a page never reads the whole log.
   */
  searchAudit(filter: AuditSearch, beforeSeq: number | null, limit: number): Promise<AuditRecord[]>;
  /** Stores a checkpoint; returns false if one for that seq already exists. */
  addCheckpoint(checkpoint: Checkpoint): Promise<boolean>;
  /** The checkpoint with the highest seq, if any. */
  latestCheckpoint(): Promise<Checkpoint | null>;
  /** Checkpoints with `fromSeq <= seq <= toSeq`, ascending. */
  listCheckpoints(fromSeq: number, toSeq: number): Promise<Checkpoint[]>;

  /**
   * Registers a running server. With `exclusive`, refuses (STORE_LOCKED) while another live server is
   * registered — used for SQLite, which one server at a time may own.
   */
  registerInstance(
    instance: InstanceInfo,
    options: { exclusive: boolean; staleAfterMs: number },
  ): Promise<void>;
  /** Marks a registered server as alive. */
  heartbeatInstance(id: string): Promise<void>;
  /** Removes a server's registration at shutdown. */
  unregisterInstance(id: string): Promise<void>;

  /**
   * The cursor an earlier complete read of `sourceId` left for `consumer` (the sync, the CLI), so that
   * one consumer's incremental reads never skip changes another consumer has already seen.
   */
  getSourceCursor(sourceId: string, consumer: string): Promise<ReadCursor | null>;
  /** Saves (replaces) the cursor of `sourceId` for `consumer`. */
  setSourceCursor(sourceId: string, consumer: string, cursor: ReadCursor, at: Date): Promise<void>;

  // ---------------------------------------------------------------- identity (src/identity)

  /** Every stored person, sorted by id. */
  listPeople(): Promise<Person[]>;
  /** Inserts or replaces these people (by id), in one transaction. */
  savePeople(people: readonly Person[]): Promise<void>;
  /** Admins' link decisions, oldest first. */
  listLinkDecisions(): Promise<LinkDecision[]>;
  /** Appends an admin's link decision. */
  /**
   * Appends an admin's link decision and the audit entries `build` makes for it, in one transaction under
   * the audit lock: the log never shows a decision that was not stored, nor the other way round.
   */
  addLinkDecision(decision: LinkDecision, build: (head: ChainHead) => AuditRecord[]): Promise<AuditRecord[]>;
  /** The current review queue (as the last linking left it). */
  getReviewQueue(): Promise<ReviewItem[]>;
  /** Replaces the review queue. */
  setReviewQueue(items: readonly ReviewItem[]): Promise<void>;

  /**
   * The last full snapshot of a source as JSON text, for incremental reads to build on and for
   * `policy check` to resolve names; null when none was kept.
   */
  getLatestSnapshot(sourceId: string): Promise<{ json: string; takenAt: string } | null>;
  /** Keeps (replaces) the last full snapshot of a source. */
  putLatestSnapshot(sourceId: string, json: string, takenAt: string): Promise<void>;

  // ---------------------------------------------------------------- sign-in: person by account

  /**
   * The stored person one of whose accounts is (sourceId, subject), or null: an indexed look-up, so a
   * sign-in does not read every person.
   */
  findPersonByAccount(sourceId: string, subject: string): Promise<Person | null>;
  /** The stored person with this id, or null. */
  getPerson(id: string): Promise<Person | null>;
  /**
   * When each kept snapshot was taken, by source, without their content: a cheap check whether the
   * snapshots a cache was built from are still the latest.
   */
  listLatestSnapshotTimes(): Promise<{ sourceId: string; takenAt: string }[]>;

  // ---------------------------------------------------------------- sync (src/sync)

  /** The link table of a target. */
  listTargetLinks(target: string): Promise<TargetLink[]>;
  /** One link of a target (a launch looks up one person's staff id), or null. */
  getTargetLink(target: string, kind: TargetLinkKind, key: string): Promise<TargetLink | null>;
  /** Inserts or replaces links (by kind and key) of a target, in one transaction. */
  saveTargetLinks(target: string, links: readonly TargetLink[]): Promise<void>;

  /**
   * Stores a new plan; in the same transaction every `pending` or `approved` plan of the same target
   * becomes `superseded` (only the newest plan of a target may be applied). Returns the superseded ids.
   */
  insertPlan(plan: PlanRecord): Promise<string[]>;
  /** A plan with its content; null when unknown. */
  getPlan(id: string): Promise<PlanRecord | null>;
  /** Plans without content, newest first; with `before`, only those after that position (paging). */
  listPlans(filter: {
    target?: string;
    statuses?: readonly PlanStatus[];
    limit: number;
    before?: ListPosition;
  }): Promise<PlanListing[]>;
  /**
   * Moves a plan to `to` only if its status is one of `from` (compare-and-set; two approvals or two
   * applies cannot both win), setting the decision when given. Returns the updated plan, or null when its
   * status was not in `from` (or it does not exist).
   */
  transitionPlan(
    id: string,
    from: readonly PlanStatus[],
    to: PlanStatus,
    at: string,
    decision?: PlanDecision,
  ): Promise<PlanRecord | null>;
  /** Recorded outcomes of a plan's changes (the latest per key). */
  listPlanItems(planId: string): Promise<PlanItemRecord[]>;
  /**
   * Records outcomes of a plan's changes and their audit entries in one transaction (under the audit
   * lock), exactly once: an item already recorded as `applied` or `noop` is not recorded again, and
   * `build` gets only the items that are new (`fresh`) to make audit entries for (it is not called when
   * none are). Of several items with one key, the last counts. Returns the fresh items.
   */
  recordPlanItems(
    planId: string,
    items: readonly PlanItemRecord[],
    build: (head: ChainHead, fresh: readonly PlanItemRecord[]) => AuditRecord[],
  ): Promise<PlanItemRecord[]>;

  /** Records the start of a sync run. */
  insertSyncRun(run: SyncRunRecord): Promise<void>;
  /** Updates a run (status, end, plan, summary). */
  updateSyncRun(run: SyncRunRecord): Promise<void>;
  /** Runs, newest first; with `before`, only those after that position (paging). */
  listSyncRuns(filter: { target?: string; limit: number; before?: ListPosition }): Promise<SyncRunRecord[]>;

  /**
   * Takes or renews the lease `name` for `holder` until now + ttlMs; true when `holder` holds it after
   * the call (it was free, expired, or already held by `holder`). Works across processes and instances
   * (one row per lease, compare-and-set), on SQLite and PostgreSQL alike. Expiry is taken from the
   * caller's clock: instances' clocks must agree to well within `ttlMs` (NTP).
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if `holder` holds it. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Who holds the lease now, or null when it is free or expired. */
  leaseHolder(name: string): Promise<string | null>;

  // ---------------------------------------------------------------- OIDC provider (src/broker)

  /** Inserts or replaces the artefact `model`/`id` with its payload (JSON text), expiry and lookup keys. */
  upsertOidcArtifact(
    model: string,
    id: string,
    payload: string,
    expiresAt: number | null,
    keys: OidcArtifactKeys,
  ): Promise<void>;
  /** The artefact `model`/`id` unless it is unknown or expired at `now` (epoch ms). */
  findOidcArtifact(model: string, id: string, now: number): Promise<OidcArtifact | null>;
  /** The unexpired artefact of `model` with session uid `uid`. */
  findOidcArtifactByUid(model: string, uid: string, now: number): Promise<OidcArtifact | null>;
  /** The unexpired artefact of `model` with device user code `userCode`. */
  findOidcArtifactByUserCode(model: string, userCode: string, now: number): Promise<OidcArtifact | null>;
  /**
   * Marks the artefact consumed at `at` (epoch ms) unless it already is, atomically; a later find still
   * returns it, marked. True only for the one call that consumed it: false when another call did first
   * (two redemptions of one code racing) or the artefact is gone.
   */
  consumeOidcArtifact(model: string, id: string, at: number): Promise<boolean>;
  /** Removes the artefact `model`/`id`. */
  destroyOidcArtifact(model: string, id: string): Promise<void>;
  /** Removes every artefact of the grant (codes, access and refresh tokens…) in one statement. */
  revokeOidcGrant(grantId: string): Promise<void>;
  /** Removes artefacts expired at `now` (epoch ms); returns how many. */
  deleteExpiredOidcArtifacts(now: number): Promise<number>;

  // ---------------------------------------------------------------- sign-in flows (src/broker/login.ts)

  /** Keeps a sign-in flow record (JSON) under its `state` until `expiresAt` (epoch ms). */
  putSignInFlow(state: string, payload: string, expiresAt: number): Promise<void>;
  /** Removes and returns the unexpired flow record of `state`: of concurrent takers, exactly one gets it. */
  takeSignInFlow(state: string, now: number): Promise<string | null>;
  /** Marks `key` used until `expiresAt`: true the first time, false while the mark lasts (every instance). */
  claimOnce(key: string, expiresAt: number, now: number): Promise<boolean>;

  /** Checks that the store answers and reports its schema version. */
  health(): Promise<StoreHealth>;
  /** Closes connections. */
  close(): Promise<void>;
}
