/**
 * The sync, with its I/O: read the sources, link people, plan against each target, approve or reject,
 * apply, and record it all. The CLI (`idbridge sync …`), the scheduler in `idbridge serve` and the
 * console call this; the decisions themselves are the pure planner's and guardrails'.
 *
 * Only one sync works at a time across every process and instance: plan, apply and run hold the store's
 * `sync` lease (renewed while they run), so two servers on one PostgreSQL never apply concurrently.
 */
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { AuditEvent } from "../audit/chain.js";
import { chainEvents } from "../audit/chain.js";
import type { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import { processAlive } from "../domain/process.js";
import type { JsonObject } from "../domain/json.js";
import { linkPeople, type LinkChange, type LinkResult } from "../identity/link.js";
import type { Person } from "../identity/person.js";
import { explainPerson } from "../policy/explain.js";
import { buildDirectoryFacts, type DirectoryFacts } from "../policy/facts.js";
import { loadPolicies } from "../policy/load.js";
import type { Policy } from "../policy/schema.js";
import { openDirectory, type SourceConfigEntry } from "../sources/registry.js";
import {
  incompleteReasons,
  proveComplete,
  type DirectorySnapshot,
  type ReadCursor,
} from "../sources/snapshot.js";
import type { DirectoryReader } from "../sources/source.js";
import type {
  PlanDecision,
  PlanListing,
  PlanRecord,
  PlanStatus,
  Store,
  SyncRunRecord,
} from "../store/store.js";
import { openTarget, type TargetConfigEntry } from "../targets/registry.js";
import type { TargetConnector } from "../targets/target.js";
import { applyPlan, type ApplyReport } from "./apply.js";
import { planSync } from "./diff.js";
import { affectedPeople, mergeIncremental, type SourceChanges } from "./merge.js";
import { countChanges, type Plan } from "./plan.js";

/** Source types that have a directory to read (the others are sign-in only). */
export const DIRECTORY_TYPES: ReadonlySet<string> = new Set(["ldap", "dingtalk", "wecom"]);
/** The consumer name of the sync's incremental cursors (the CLI keeps its own). */
const CURSOR_CONSUMER = "sync";
const LEASE = "sync";
const LEASE_TTL_MS = 120_000;

/** Which sources to read now, and how. */
export interface ReadRequest {
  /** Sources to read now; the others are taken from their last full read kept in the store. */
  readonly fresh: "all" | readonly string[];
  /** Read incrementally where the source supports it and an earlier read left a cursor. */
  readonly incremental: boolean;
}

/** How a decision on a plan is taken beyond the CLI's `--by NAME`. */
export interface DecideOptions {
  /**
   * The authenticated audit actor (`person:<id>`, `client:<id>`) when the decider was signed in; without
   * it the actor is `person:<by>`, the name the CLI was given.
   */
  readonly actor?: string;
  /** The content hash the decider reviewed: a plan with another hash is refused (PLAN_STALE). */
  readonly hash?: string;
}

/** What started a run. */
export type Trigger = SyncRunRecord["trigger"];

/** How {@link SyncService.apply} is asked. */
export interface ApplyOptions {
  /** The audit actor of `plan.applied` (`person:<id>`, `client:<id>`); default `system`. */
  readonly actor?: string;
  /** Record the apply as a sync run started this way (the console and the admin API: `api`). */
  readonly trigger?: Trigger;
}

/** The statuses a plan can be applied from: approved, or an apply that was interrupted or partial. */
const START_FROM: readonly PlanStatus[] = ["approved", "applying", "partial"];

/** Options of {@link SyncService}. */
export interface SyncServiceOptions {
  /** The configuration. */
  readonly config: Config;
  /** Where people, plans, links, runs and leases live. */
  readonly store: Store;
  /** Where plan events go. */
  readonly audit: AuditLog;
  /** Who holds the lease while this process syncs (an instance id). */
  readonly holder: string;
  /** Clock. */
  readonly now?: () => Date;
  /** Notes for a person watching (the CLI prints them). */
  readonly note?: (line: string) => void;
  /** Opens a target (tests inject one). */
  readonly openTarget?: (entry: TargetConfigEntry) => Promise<TargetConnector>;
  /** Opens a directory reader (tests inject one). */
  readonly openDirectory?: (entry: SourceConfigEntry) => Promise<DirectoryReader>;
}

/** The result of one `run`: the run record, the plan and, when applied, the report. */
export interface RunOutcome {
  /** The run as recorded. */
  readonly run: SyncRunRecord;
  /** The plan made. */
  readonly plan: PlanRecord;
  /** The apply report, when the plan was applied. */
  readonly report?: ApplyReport;
}

/** The sync of one idbridge process. */
export class SyncService {
  private readonly now: () => Date;
  private readonly note: (line: string) => void;

  constructor(private readonly options: SyncServiceOptions) {
    this.now = options.now ?? (() => new Date());
    this.note = options.note ?? (() => undefined);
  }

  private get config(): Config {
    return this.options.config;
  }

  private get store(): Store {
    return this.options.store;
  }

  /** Configured target ids. */
  targetIds(): string[] {
    return this.config.targets.map((t) => t.id);
  }

  // ------------------------------------------------------------------------------------------ reading

  /** Reads (or takes from the store) one snapshot per directory source. */
  async gatherSnapshots(request: ReadRequest): Promise<DirectorySnapshot[]> {
    return (await this.gather(request)).snapshots;
  }

  /**
   * The snapshots, and for an incremental run the change lists read: when every source was either read
   * incrementally or taken from its kept full read, the run is scoped to the people those changes touch.
   */
  private async gather(
    request: ReadRequest,
  ): Promise<{ snapshots: DirectorySnapshot[]; changes: SourceChanges[]; scoped: boolean }> {
    const snapshots: DirectorySnapshot[] = [];
    const changes: SourceChanges[] = [];
    let scoped = request.incremental;
    for (const entry of this.config.sources) {
      if (!DIRECTORY_TYPES.has(entry.type)) continue;
      const fresh = request.fresh === "all" || request.fresh.includes(entry.id);
      const cursor = request.incremental ? await this.store.getSourceCursor(entry.id, CURSOR_CONSUMER) : null;
      // Between full reads, a source that cannot read incrementally is taken as last read in full.
      if (!fresh || (request.incremental && cursor === null)) {
        const kept = await this.keptSnapshot(entry.id);
        if (kept !== null) {
          snapshots.push(kept);
          continue;
        }
        this.note(`${entry.id}: no earlier full read kept; reading it now`);
      }
      const read = await this.readSource(entry, cursor);
      snapshots.push(read.snapshot);
      if (read.changes !== undefined) changes.push(read.changes);
      else scoped = false;
    }
    return { snapshots, changes, scoped };
  }

  private async keptSnapshot(sourceId: string): Promise<DirectorySnapshot | null> {
    const kept = await this.store.getLatestSnapshot(sourceId);
    if (kept === null) return null;
    const snapshot = JSON.parse(kept.json) as DirectorySnapshot;
    // Only complete full reads are kept, by this process: trusted to be what they were.
    return proveComplete(snapshot) ?? snapshot;
  }

  /**
   * Reads one source: incrementally from `cursor` when given and a full read is kept to lay the changes
   * over, else fully. Cursors advance only with full reads, so each incremental read lists every change
   * since the kept full read and the merge of the two is never missing one.
   */
  private async readSource(
    entry: SourceConfigEntry,
    cursor: ReadCursor | null,
  ): Promise<{ snapshot: DirectorySnapshot; changes?: SourceChanges }> {
    const base = cursor !== null ? await this.keptSnapshot(entry.id) : null;
    const reader = await (this.options.openDirectory ?? openDirectory)(entry);
    let snapshot: DirectorySnapshot;
    try {
      snapshot = await reader.read(
        cursor !== null && base !== null ? { mode: "incremental", cursor } : { mode: "full" },
      );
    } finally {
      await reader.close();
    }
    if (!snapshot.completeness.complete)
      this.note(
        `${entry.id}: read incomplete (${incompleteReasons(snapshot)
          .map((r) => r.message)
          .join("; ")}); nothing will be removed on its account`,
      );
    if (snapshot.mode === "incremental" && base !== null) {
      this.note(
        `${entry.id}: ${snapshot.people.length} people changed since the full read of ${base.finishedAt}`,
      );
      return { snapshot: mergeIncremental(base, snapshot), changes: { base, delta: snapshot } };
    }
    const proven = proveComplete(snapshot);
    if (proven !== null) {
      await this.store.putLatestSnapshot(entry.id, JSON.stringify(proven), proven.finishedAt);
      if (proven.cursor !== undefined)
        await this.store.setSourceCursor(
          entry.id,
          CURSOR_CONSUMER,
          proven.cursor,
          new Date(proven.finishedAt),
        );
    }
    return { snapshot: proven ?? snapshot };
  }

  // ------------------------------------------------------------------------------------------ linking

  /** Links the snapshots' accounts to people; saves people and the review queue; audits each link change. */
  async linkAccounts(snapshots: readonly DirectorySnapshot[]): Promise<LinkResult> {
    const existing = await this.store.listPeople();
    const result = linkPeople({
      snapshots,
      config: this.config.identity,
      existing,
      decisions: await this.store.listLinkDecisions(),
      now: this.now(),
      newId: () => `p_${randomBytes(10).toString("hex")}`,
    });
    if (result.changes.length > 0) {
      const touched = new Set(result.changes.map((c) => c.personId));
      await this.store.savePeople(result.people.filter((p) => touched.has(p.id)));
      const events = result.changes.map(linkAudit);
      const time = this.now().toISOString();
      for (let i = 0; i < events.length; i += 1000)
        await this.store.appendAudit((head) => chainEvents(head, events.slice(i, i + 1000), time));
    }
    await this.store.setReviewQueue(result.reviewQueue);
    if (result.reviewQueue.length > 0)
      this.note(
        `${result.reviewQueue.length} identity case(s) wait for review (idbridge identities review); those people are left unchanged`,
      );
    return result;
  }

  // ------------------------------------------------------------------------------------------ planning

  /** The policy of a target; POLICY_INVALID when there is none or more than one. */
  policyFor(targetId: string): Policy {
    const policies = loadPolicies(this.config.policiesDir).filter((p) => p.target === targetId);
    if (policies.length !== 1)
      throw new AppError(
        "POLICY_INVALID",
        policies.length === 0
          ? `no policy in ${this.config.policiesDir} is for target ${targetId}; add one with target: ${targetId}`
          : `${policies.length} policies in ${this.config.policiesDir} are for target ${targetId} (${policies.map((p) => p.file).join(", ")}); keep one`,
      );
    return policies[0]!;
  }

  private targetEntry(targetId: string): TargetConfigEntry {
    const entry = this.config.targets.find((t) => t.id === targetId);
    if (entry !== undefined) return entry;
    throw new AppError(
      "INPUT_INVALID",
      `no target "${targetId}" in ${this.config.file ?? "the built-in defaults"} (configured: ${this.targetIds().join(", ") || "none"})`,
      { expose: true },
    );
  }

  /** Reads, links and plans for one target; stores the plan (superseding older ones) and audits it. */
  async plan(
    targetId: string,
    request: ReadRequest = { fresh: "all", incremental: false },
  ): Promise<PlanRecord> {
    return this.withLease(() => this.planUnlocked(targetId, request));
  }

  private async planUnlocked(
    targetId: string,
    request: ReadRequest,
    prepared?: Awaited<ReturnType<SyncService["prepare"]>>,
  ): Promise<PlanRecord> {
    const entry = this.targetEntry(targetId);
    const policy = this.policyFor(targetId);
    const ready = prepared ?? (await this.prepare(request));
    const { snapshots, linked, directories } = ready;
    const connector = await (this.options.openTarget ?? openTarget)(entry);
    let state;
    try {
      state = await connector.readState();
    } catch (error) {
      throw new AppError("TARGET_UNAVAILABLE", `cannot read ${targetId}: ${(error as Error).message}`, {
        cause: error,
        expose: true,
      });
    }
    const orgChartSource = this.config.sync.orgChartSource ?? this.config.identity.primarySource;
    const plan = planSync({
      id: `plan_${randomBytes(8).toString("hex")}`,
      now: this.now(),
      policy,
      target: { id: targetId, capabilities: connector.capabilities(), state },
      snapshots,
      directories,
      people: linked.people,
      heldPeople: linked.held.personIds,
      ...(ready.affected !== undefined ? { affected: ready.affected } : {}),
      links: await this.store.listTargetLinks(targetId),
      ...(orgChartSource !== undefined ? { orgChartSource } : {}),
      profileSources: [
        ...(this.config.identity.primarySource ? [this.config.identity.primarySource] : []),
        ...snapshots.map((s) => s.sourceId),
      ],
    });
    return this.storePlan(plan);
  }

  private async prepare(request: ReadRequest) {
    const { snapshots, changes, scoped } = await this.gather(request);
    const linked = await this.linkAccounts(snapshots);
    const affected = scoped ? affectedPeople(changes, linked.people, linked.changes) : undefined;
    if (affected !== undefined) this.note(`incremental run: ${affected.size} people to re-plan`);
    return { snapshots, linked, directories: buildDirectoryFacts(snapshots), affected };
  }

  private async storePlan(plan: Plan): Promise<PlanRecord> {
    const content = JSON.stringify(plan);
    const hash = createHash("sha256").update(content).digest("hex");
    const needsApproval = plan.risk.length > 0;
    const at = plan.createdAt;
    const empty = plan.changes.length === 0;
    const auto = !empty && !needsApproval && this.config.sync.autoApprove;
    const decision: PlanDecision | null = auto ? { kind: "auto-approved", by: "system", at } : null;
    const status: PlanStatus = empty ? "empty" : auto ? "approved" : "pending";
    const record: PlanRecord = {
      id: plan.id,
      target: plan.target,
      createdAt: at,
      hash,
      status,
      needsApproval,
      summary: summarise(plan),
      content,
      decision,
      updatedAt: at,
    };
    const superseded = await this.store.insertPlan(record);
    // Older partial or interrupted plans too: applied later, they would undo what this one finds (role rows
    // carry no precondition). This runs under the sync lease, so none of them is being applied right now.
    for (const older of await this.store.listPlans({
      target: plan.target,
      statuses: ["partial", "applying"],
      limit: 1000,
    }))
      if (
        older.id !== plan.id &&
        (await this.store.transitionPlan(older.id, ["partial", "applying"], "superseded", at)) !== null
      )
        superseded.push(older.id);
    await this.options.audit.record({
      actor: "system",
      action: "plan.created",
      subject: plan.id,
      target: plan.target,
      details: { hash, status, ...record.summary, superseded },
    });
    if (auto)
      await this.options.audit.record({
        actor: "system",
        action: "plan.auto-approved",
        subject: plan.id,
        target: plan.target,
        details: { hash, reason: "low risk: no guardrail hit, no sensitive grant (sync.autoApprove)" },
      });
    return record;
  }

  // ------------------------------------------------------------------------------------------ deciding

  /** A stored plan; NOT_FOUND naming the id. */
  async getPlan(id: string): Promise<PlanRecord> {
    const plan = await this.store.getPlan(id);
    if (plan === null)
      throw new AppError("NOT_FOUND", `no plan "${id}" (list them with idbridge sync status)`, {
        expose: true,
      });
    return plan;
  }

  /** A person approves a pending plan. */
  async approve(id: string, by: string, comment?: string, options?: DecideOptions): Promise<PlanRecord> {
    return this.decide(id, "approved", by, comment, options);
  }

  /** A person rejects a pending or approved plan; it is never applied. */
  async reject(id: string, by: string, comment?: string, options?: DecideOptions): Promise<PlanRecord> {
    return this.decide(id, "rejected", by, comment, options);
  }

  private async decide(
    id: string,
    kind: "approved" | "rejected",
    by: string,
    comment?: string,
    options: DecideOptions = {},
  ): Promise<PlanRecord> {
    const who = by.trim();
    if (who === "")
      throw new AppError("INPUT_INVALID", "the name of the person deciding is required (--by NAME)", {
        expose: true,
      });
    const plan = await this.getPlan(id);
    // The content is immutable, so a hash that differs means the reviewer saw another plan's content.
    if (options.hash !== undefined && options.hash !== plan.hash)
      throw new AppError(
        "PLAN_STALE",
        `the plan changed since you opened it: ${id} has content ${plan.hash.slice(0, 12)}…, not ${options.hash.slice(0, 12)}…; open it again`,
        { expose: true },
      );
    const from: PlanStatus[] = kind === "approved" ? ["pending"] : ["pending", "approved"];
    const decision: PlanDecision = {
      kind,
      by: who,
      at: this.now().toISOString(),
      ...(comment ? { comment } : {}),
    };
    const updated = await this.store.transitionPlan(id, from, kind, decision.at, decision);
    if (updated === null) {
      const current = await this.getPlan(id);
      throw new AppError(
        "PLAN_STATE",
        `plan ${id} is ${current.status}${current.decision ? ` (${current.decision.kind} by ${current.decision.by})` : ""}; only a ${from.join(" or ")} plan can be ${kind}`,
        { expose: true },
      );
    }
    await this.options.audit.record({
      actor: options.actor ?? `person:${who}`,
      action: kind === "approved" ? "plan.approved" : "plan.rejected",
      subject: id,
      target: plan.target,
      details: {
        hash: plan.hash,
        ...(comment ? { comment } : {}),
        needsApproval: plan.needsApproval,
        // With an authenticated actor, the name is only for reading; the actor is who it was.
        ...(options.actor !== undefined ? { by: who } : {}),
      },
    });
    return updated;
  }

  // ------------------------------------------------------------------------------------------ applying

  /**
   * Applies an approved plan (or finishes one whose apply was interrupted). With a `trigger`, the apply is
   * recorded as a sync run of that trigger (its counts, failures and who applied), as `run` records its
   * own; a plan in a state that cannot be applied is refused before any run is recorded.
   */
  async apply(
    id: string,
    onProgress?: (done: number, total: number) => void,
    options: ApplyOptions = {},
  ): Promise<{ plan: PlanRecord; report: ApplyReport; run?: SyncRunRecord }> {
    const { trigger, actor } = options;
    if (trigger === undefined) return this.withLease(() => this.applyUnlocked(id, onProgress, actor));
    return this.withLease(async () => {
      const record = await this.getPlan(id);
      checkApplicable(record);
      const started = this.now();
      const run = await this.startRun(record.target, trigger, started, {
        ...(actor !== undefined ? { actor } : {}),
      });
      return this.applyAsRun(run, started, record, onProgress, actor);
    });
  }

  private async applyUnlocked(
    id: string,
    onProgress?: (done: number, total: number) => void,
    actor = "system",
  ): Promise<{ plan: PlanRecord; report: ApplyReport }> {
    const record = await this.getPlan(id);
    checkApplicable(record);
    const started = await this.store.transitionPlan(id, START_FROM, "applying", this.now().toISOString());
    if (started === null)
      throw new AppError("PLAN_STATE", `plan ${id} changed state while starting to apply; look at it again`, {
        expose: true,
      });
    const plan = JSON.parse(record.content) as Plan;
    const connector = await (this.options.openTarget ?? openTarget)(this.targetEntry(record.target));
    let report: ApplyReport;
    try {
      report = await applyPlan({
        plan,
        approvedBy: record.decision?.by ?? "system",
        connector,
        store: this.store,
        maxFailures: this.config.sync.maxFailedChanges,
        now: this.now,
        ...(onProgress ? { onProgress } : {}),
      });
    } catch (error) {
      // Nothing was written (stale, or the target could not be read): back to where it was.
      await this.store.transitionPlan(id, ["applying"], record.status, this.now().toISOString());
      if (error instanceof AppError && error.code === "PLAN_STALE")
        await this.options.audit.record({
          actor: "system",
          action: "plan.refused",
          subject: id,
          target: record.target,
          details: { reason: "stale", message: error.message },
        });
      throw error;
    }
    const clean = report.failed.length === 0 && report.notAttempted === 0 && report.mismatches.length === 0;
    const done = await this.store.transitionPlan(
      id,
      ["applying"],
      clean ? "applied" : "partial",
      this.now().toISOString(),
    );
    await this.options.audit.record({
      actor,
      action: "plan.applied",
      subject: id,
      target: record.target,
      details: {
        hash: record.hash,
        status: clean ? "applied" : "partial",
        ...reportSummary(report),
        approvedBy: record.decision?.by ?? "system",
      },
    });
    return { plan: done ?? record, report };
  }

  // ------------------------------------------------------------------------------------------ running

  /**
   * Plan → approve if allowed → apply, for every target (or one): what cron and the scheduler call. A plan
   * that needs approval is left pending for a person, whatever the trigger — no flag overrides that.
   */
  async run(trigger: Trigger, request: ReadRequest, targetId?: string): Promise<RunOutcome[]> {
    const targets = targetId === undefined ? this.targetIds() : [this.targetEntry(targetId).id];
    if (targets.length === 0)
      throw new AppError("INPUT_INVALID", "no targets are configured; add one under targets:", {
        expose: true,
      });
    return this.withLease(async () => {
      // Recorded before the read, so the history shows when a run began and what it was asked to do.
      const started = this.now();
      const runs = new Map<string, SyncRunRecord>();
      for (const target of targets)
        runs.set(
          target,
          await this.startRun(target, trigger, started, {
            request: {
              fresh: request.fresh === "all" ? "all" : [...request.fresh],
              incremental: request.incremental,
            },
          }),
        );
      let prepared: Awaited<ReturnType<SyncService["prepare"]>>;
      try {
        prepared = await this.prepare(request);
      } catch (error) {
        for (const run of runs.values()) await this.finishRun(run, started, "failed", failureOf(error), null);
        throw error;
      }
      const outcomes: RunOutcome[] = [];
      for (const target of targets)
        outcomes.push(await this.runOne(runs.get(target)!, started, request, prepared));
      return outcomes;
    });
  }

  private async runOne(
    recorded: SyncRunRecord,
    started: Date,
    request: ReadRequest,
    prepared: Awaited<ReturnType<SyncService["prepare"]>>,
  ): Promise<RunOutcome> {
    const target = recorded.target;
    let run: SyncRunRecord = {
      ...recorded,
      summary: { ...recorded.summary, sources: prepared.snapshots.map(sourceSummary) },
    };
    const finish = async (status: SyncRunRecord["status"], extra: JsonObject, planId: string | null) =>
      (run = await this.finishRun(run, started, status, extra, planId));
    // While a plan waits for a person's decision, automatic runs do not plan over it: a newer plan would
    // supersede it every hour, and the decision would never be asked for long enough to be taken.
    if (recorded.trigger === "schedule" || recorded.trigger === "callback") {
      const [waiting] = await this.store.listPlans({ target, statuses: ["pending"], limit: 1 });
      if (waiting?.needsApproval) {
        this.note(
          `${target}: plan ${waiting.id} waits for a decision; automatic syncs of ${target} pause until then`,
        );
        return {
          run: await finish("needs-approval", { waitingFor: waiting.id }, waiting.id),
          plan: await this.getPlan(waiting.id),
        };
      }
    }
    let plan: PlanRecord;
    try {
      plan = await this.planUnlocked(target, request, prepared);
    } catch (error) {
      await finish("failed", failureOf(error), null);
      throw error;
    }
    if (plan.status === "empty")
      return { run: await finish("nothing-to-do", { plan: plan.summary }, plan.id), plan };
    if (plan.status !== "approved") {
      await this.options.audit.record({
        actor: "system",
        action: "plan.refused",
        subject: plan.id,
        target,
        details: {
          reason: plan.needsApproval ? "needs approval" : "not auto-approved (sync.autoApprove is false)",
          risk: plan.summary.risk ?? [],
        },
      });
      this.note(
        `plan ${plan.id} for ${target} waits for approval: idbridge sync show ${plan.id}, then idbridge sync approve ${plan.id} --by NAME`,
      );
      return { run: await finish("needs-approval", { plan: plan.summary }, plan.id), plan };
    }
    return this.applyAsRun(run, started, plan);
  }

  /** Records the start of a run of `trigger` against `target`; {@link finishRun} records its end. */
  private async startRun(
    target: string,
    trigger: Trigger,
    started: Date,
    summary: JsonObject,
  ): Promise<SyncRunRecord> {
    const run: SyncRunRecord = {
      id: `run_${randomBytes(8).toString("hex")}`,
      target,
      trigger,
      startedAt: started.toISOString(),
      finishedAt: null,
      status: "running",
      planId: null,
      summary,
    };
    await this.store.insertSyncRun(run);
    return run;
  }

  /** Records how a run ended: its status, plan, end time, duration and `extra` facts for the history. */
  private async finishRun(
    run: SyncRunRecord,
    started: Date,
    status: SyncRunRecord["status"],
    extra: JsonObject,
    planId: string | null,
  ): Promise<SyncRunRecord> {
    const finished: SyncRunRecord = {
      ...run,
      status,
      planId,
      finishedAt: this.now().toISOString(),
      summary: { ...run.summary, ...extra, durationMs: this.now().getTime() - started.getTime() },
    };
    await this.store.updateSyncRun(finished);
    return finished;
  }

  /** Applies `plan` as part of `run`, recording the outcome (or the failure and its cause) on the run. */
  private async applyAsRun(
    run: SyncRunRecord,
    started: Date,
    plan: PlanRecord,
    onProgress?: (done: number, total: number) => void,
    actor?: string,
  ): Promise<{ run: SyncRunRecord; plan: PlanRecord; report: ApplyReport }> {
    try {
      const { plan: applied, report } = await this.applyUnlocked(plan.id, onProgress, actor);
      const status = applied.status === "applied" ? "applied" : "partial";
      return {
        run: await this.finishRun(
          run,
          started,
          status,
          { plan: plan.summary, apply: reportSummary(report) },
          plan.id,
        ),
        plan: applied,
        report,
      };
    } catch (error) {
      await this.finishRun(run, started, "failed", { plan: plan.summary, ...failureOf(error) }, plan.id);
      throw error;
    }
  }

  // ------------------------------------------------------------------------------------------ explain

  /**
   * `policy explain`: which rules give one person which roles in a target, and why not others — from the
   * last full reads kept in the store (read now if none), linked in memory; nothing is saved. The person
   * is a Person id, an account `source:subject`, or a display name that only one person has.
   */
  async explain(who: string, targetId: string): Promise<string> {
    const policy = this.policyFor(targetId);
    const snapshots = await this.gatherSnapshots({ fresh: [], incremental: false });
    const linked = linkPeople({
      snapshots,
      config: this.config.identity,
      existing: await this.store.listPeople(),
      decisions: await this.store.listLinkDecisions(),
      now: this.now(),
      newId: (() => {
        let n = 0;
        return () => `p_unsaved_${++n}`;
      })(),
    });
    const directories = buildDirectoryFacts(snapshots);
    const person = findPerson(who, linked.people, directories);
    const { text } = explainPerson(policy, person, directories);
    const held = linked.held.personIds.includes(person.id)
      ? "\nThis person's identity is in review: syncs leave them unchanged until an admin decides (idbridge identities review)."
      : "";
    return `${text}${held}\n`;
  }

  // ------------------------------------------------------------------------------------------ status

  /** The last runs and the plans waiting for someone. */
  async status(limit = 10): Promise<{ runs: SyncRunRecord[]; waiting: PlanListing[] }> {
    return {
      runs: await this.store.listSyncRuns({ limit }),
      waiting: await this.store.listPlans({
        statuses: ["pending", "approved", "applying", "partial"],
        limit: 50,
      }),
    };
  }

  /** Runs `work` holding the `sync` lease, renewing it meanwhile; SYNC_BUSY when another holds it. */
  private async withLease<T>(work: () => Promise<T>): Promise<T> {
    // host/pid/name: a holder on this host whose process is gone (killed) is taken over at once rather
    // than after its TTL.
    const holder = `${hostname()}/${process.pid}/${this.options.holder}`;
    if (!(await this.store.acquireLease(LEASE, holder, LEASE_TTL_MS))) {
      const other = await this.store.leaseHolder(LEASE);
      const [host, pid] = other?.split("/") ?? [];
      const gone = other !== null && host === hostname() && !processAlive(Number(pid));
      if (gone) {
        await this.store.releaseLease(LEASE, other);
        this.note(
          `took over the sync lease of process ${pid}, which is gone (killed?); its work resumes from what it recorded`,
        );
      }
      if (!gone || !(await this.store.acquireLease(LEASE, holder, LEASE_TTL_MS)))
        throw new AppError(
          "SYNC_BUSY",
          `another idbridge process is syncing right now${other ? ` (${other})` : ""}; try again when it is done (idbridge sync status)`,
          { expose: true },
        );
    }
    const renew = setInterval(() => {
      this.store.acquireLease(LEASE, holder, LEASE_TTL_MS).catch(() => undefined);
    }, LEASE_TTL_MS / 4);
    renew.unref();
    try {
      return await work();
    } finally {
      clearInterval(renew);
      await this.store.releaseLease(LEASE, holder).catch(() => undefined);
    }
  }
}

function findPerson(who: string, people: readonly Person[], directories: DirectoryFacts): Person {
  const byId = people.find((p) => p.id === who);
  if (byId !== undefined) return byId;
  const colon = who.indexOf(":");
  if (colon > 0) {
    const [sourceId, subject] = [who.slice(0, colon), who.slice(colon + 1)];
    const byAccount = people.find((p) =>
      p.accounts.some((a) => a.sourceId === sourceId && a.subject === subject),
    );
    if (byAccount !== undefined) return byAccount;
  }
  const named = people.filter((p) =>
    p.accounts.some((a) => {
      const found = directories.get(a.sourceId)?.people.get(a.subject);
      return found?.name === who || found?.username === who;
    }),
  );
  if (named.length === 1) return named[0]!;
  throw new AppError(
    "INPUT_INVALID",
    named.length > 1
      ? `${named.length} people are called "${who}" (${named.map((p) => p.id).join(", ")}); give a person id or SOURCE:SUBJECT`
      : `no person "${who}": give a person id (p_…), an account as SOURCE:SUBJECT, or a name as the sources spell it`,
    { expose: true },
  );
}

/** The audit entry of one link change (the sync's, and sign-in's when it links an account). */
export function linkAudit(change: LinkChange): AuditEvent {
  const account = `${change.account.sourceId}:${change.account.subject}`;
  switch (change.kind) {
    case "person-created":
      return {
        actor: "system",
        action: "identity.person-created",
        subject: change.personId,
        details: { account },
      };
    case "account-linked":
      return {
        actor: change.decidedBy ? `person:${change.decidedBy}` : "system",
        action: "identity.account-linked",
        subject: change.personId,
        details: {
          account,
          rule: change.rule,
          ...(change.evidence
            ? {
                value: change.evidence.value,
                matched: `${change.evidence.matched.sourceId}:${change.evidence.matched.subject}`,
              }
            : {}),
        },
      };
    case "account-unlinked":
      return {
        actor: `person:${change.decidedBy}`,
        action: "identity.account-unlinked",
        subject: change.personId,
        details: { account, reason: change.reason },
      };
  }
}

function sourceSummary(s: DirectorySnapshot): JsonObject {
  return {
    id: s.sourceId,
    mode: s.mode,
    complete: s.completeness.complete,
    people: s.people.length,
    reasons: incompleteReasons(s).map((r) => r.message),
  };
}

/** The small facts of a plan for listings and the audit entry. */
export function summarise(plan: Plan): JsonObject {
  return {
    changes: plan.changes.length,
    byKind: countChanges(plan) as JsonObject,
    blocked: plan.blocked.length,
    risk: plan.risk.map((r) => r.code),
    sensitiveGrants: plan.changes.filter((c) => c.kind === "grant" && c.sensitive).length,
    sod: plan.sod.length,
    problems: plan.problems.length,
    heldPeople: plan.heldPeople.length,
    incompleteSources: plan.sources.filter((s) => !s.complete).map((s) => s.id),
  };
}

/** PLAN_STATE, with what to do, unless the plan can be applied from its status. */
function checkApplicable(record: PlanRecord): void {
  if (START_FROM.includes(record.status)) return;
  const hint =
    record.status === "pending"
      ? `it needs approval first (idbridge sync approve ${record.id} --by NAME)`
      : record.status === "superseded"
        ? "a newer plan replaced it; apply the newest plan"
        : record.status === "rejected"
          ? "it was rejected"
          : record.status === "empty"
            ? "it has nothing to change"
            : "it was applied already";
  throw new AppError("PLAN_STATE", `plan ${record.id} is ${record.status}: ${hint}`, { expose: true });
}

/** A failed run's cause for the history: the message, and the stable code when there is one. */
function failureOf(error: unknown): JsonObject {
  return {
    error: error instanceof Error ? error.message : String(error),
    ...(error instanceof AppError ? { errorCode: error.code } : {}),
  };
}

function reportSummary(report: ApplyReport): JsonObject {
  return {
    applied: report.applied,
    observed: report.observed,
    skipped: report.skipped,
    failed: report.failed.length,
    notAttempted: report.notAttempted,
    mismatches: report.mismatches.length,
    failures: report.failed
      .slice(0, 20)
      .map((f) => ({ key: f.key, code: f.failure.code, message: f.failure.message })),
    ...(report.stoppedBecause ? { stoppedBecause: report.stoppedBecause } : {}),
  };
}
