/**
 * The sync schedule of `idbridge serve`: a full reconcile every `sync.fullEveryMinutes`, incremental reads
 * every `sync.incrementalEveryMinutes` in between, and a re-read of the sources whose contact-change
 * callbacks arrived, once they have been quiet for `sync.callbackDelaySeconds`. One run at a time in this
 * process (what comes due meanwhile runs once afterwards); across processes the service's `sync` lease
 * decides, and a SYNC_BUSY answer only means another instance is at it. Every instance keeps its own timers,
 * but a scheduled run that comes due first reads the run history the instances share, and skips when one of
 * them already did that job within the interval: with N instances each interval still has one run of each.
 */
import type { Logger } from "pino";
import type { Config } from "../config/load.js";
import { isAppError } from "../domain/errors.js";
import type { ContactChange } from "../http/callbacks.js";
import type { Store, SyncRunRecord } from "../store/store.js";
import type { ReadRequest, Trigger } from "./service.js";

/** What the scheduler needs of the {@link SyncService}. */
export interface SyncRunner {
  /** Plans and, where allowed, applies for every target; SYNC_BUSY when another process syncs. */
  run(
    trigger: Trigger,
    request: ReadRequest,
  ): Promise<ReadonlyArray<{ readonly run: Pick<SyncRunRecord, "target" | "status" | "planId"> }>>;
}

/** Timers the scheduler runs on; tests drive a fake one. */
export interface SchedulerTimers {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; returns a handle for {@link SchedulerTimers.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending call. */
  clearTimeout(handle: unknown): void;
}

/** Options of {@link SyncScheduler}. */
export interface SyncSchedulerOptions {
  /** Runs the sync (the SyncService). */
  readonly runner: SyncRunner;
  /** Where earlier runs are recorded (by every instance), so restarts do not repeat a recent full run. */
  readonly store: Pick<Store, "listSyncRuns">;
  /** The `sync:` section of the configuration. */
  readonly config: Config["sync"];
  /** Where decisions and outcomes are logged. */
  readonly logger: Logger;
  /** Timers (default: the system's, unref'd). */
  readonly timers?: SchedulerTimers;
  /** Wait after start before the first due run; default 5 s. */
  readonly startDelayMs?: number;
  /** Callbacks run at most this long after the first one of a burst, however busy the burst; default 60 s. */
  readonly maxCallbackDelayMs?: number;
  /** Wait before trying again after SYNC_BUSY (another instance syncs); default 60 s. */
  readonly busyRetryMs?: number;
  /** How long {@link SyncScheduler.stop} waits for a running sync; default 30 s. */
  readonly stopTimeoutMs?: number;
}

/** Contact changes of one source waiting for their run. */
interface PendingSource {
  readonly userIds: Set<string>;
  readonly departmentIds: Set<string>;
  readonly eventTypes: Set<string>;
}

type Job =
  | { readonly kind: "full" }
  | { readonly kind: "incremental" }
  | { readonly kind: "callback"; readonly sources: Map<string, PendingSource> };

const MINUTE = 60_000;
/** Runs read back to find the last full one (each run records one row per target). */
const HISTORY = 200;
/** A run recorded within this share of the interval before a due one of its kind makes that unnecessary. */
const RECENT_SHARE = 0.9;
/** Ids per source named in a log line at most. */
const LOGGED_IDS = 100;

const systemTimers: SchedulerTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    // A pending schedule must not keep a stopping process alive.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The schedule of one `idbridge serve` process. */
export class SyncScheduler {
  private readonly timers: SchedulerTimers;
  private readonly log: Logger;
  private readonly fullEveryMs: number;
  private readonly incrementalEveryMs: number;
  private readonly callbackDelayMs: number;
  private readonly maxCallbackDelayMs: number;
  private readonly busyRetryMs: number;
  private nextFullAt: number | null = null;
  private nextIncrementalAt: number | null = null;
  private pending = new Map<string, PendingSource>();
  private firstPendingAt = 0;
  private lastPendingAt = 0;
  private callbackRetryAt: number | null = null;
  private timer: unknown = null;
  private running: Promise<void> | null = null;
  private started = false;
  private stopped = false;

  constructor(private readonly options: SyncSchedulerOptions) {
    this.timers = options.timers ?? systemTimers;
    this.log = options.logger;
    this.fullEveryMs = options.config.fullEveryMinutes * MINUTE;
    this.incrementalEveryMs = options.config.incrementalEveryMinutes * MINUTE;
    this.callbackDelayMs = options.config.callbackDelaySeconds * 1000;
    this.maxCallbackDelayMs = Math.max(options.maxCallbackDelayMs ?? MINUTE, this.callbackDelayMs);
    this.busyRetryMs = options.busyRetryMs ?? MINUTE;
  }

  /** What the schedule does, in one line for the start-up log. */
  describe(): string {
    const full =
      this.fullEveryMs > 0 ? `full reconcile every ${this.fullEveryMs / MINUTE} min` : "no full reconcile";
    const incremental =
      this.incrementalEveryMs > 0
        ? `incremental every ${this.incrementalEveryMs / MINUTE} min`
        : "no incremental reads";
    return `${full}, ${incremental}, callbacks after ${this.callbackDelayMs / 1000} s of quiet`;
  }

  /**
   * Plans the first runs from the recorded history: a full run only when the last one (by any instance) is
   * older than the interval, so restarting a server does not start a full sync.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const now = this.timers.now();
    const soonest = now + (this.options.startDelayMs ?? 5_000);
    const history = await this.history();
    if (this.fullEveryMs > 0) {
      const lastFull = history.lastFull;
      this.nextFullAt = lastFull === null ? soonest : Math.max(soonest, lastFull + this.fullEveryMs);
    }
    if (this.incrementalEveryMs > 0) {
      const last = history.lastAny;
      this.nextIncrementalAt = last === null ? soonest : Math.max(soonest, last + this.incrementalEveryMs);
    }
    this.log.info(
      {
        nextFullAt: iso(this.nextFullAt),
        nextIncrementalAt: iso(this.nextIncrementalAt),
        lastFullAt: iso(history.lastFull),
      },
      `sync schedule: ${this.describe()}`,
    );
    this.arm();
  }

  /** Takes a verified contact change from the callback router; the run follows after a quiet spell. */
  notifyContactChange(change: ContactChange): void {
    if (this.stopped || change.kind === "check") return;
    const now = this.timers.now();
    if (this.pending.size === 0) this.firstPendingAt = now;
    this.lastPendingAt = now;
    let source = this.pending.get(change.sourceId);
    if (source === undefined) {
      source = { userIds: new Set(), departmentIds: new Set(), eventTypes: new Set() };
      this.pending.set(change.sourceId, source);
    }
    for (const id of change.userIds) source.userIds.add(id);
    for (const id of change.departmentIds) source.departmentIds.add(id);
    source.eventTypes.add(change.eventType);
    this.arm();
  }

  /** Stops scheduling and waits (at most the stop timeout) for a running sync to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    const running = this.running;
    if (running === null) return;
    const timeoutMs = this.options.stopTimeoutMs ?? 30_000;
    let timeout: unknown = null;
    const expired = new Promise<boolean>((resolve) => {
      timeout = this.timers.setTimeout(() => resolve(false), timeoutMs);
    });
    const finished = await Promise.race([running.then(() => true), expired]);
    this.timers.clearTimeout(timeout);
    if (!finished)
      this.log.warn({ timeoutMs }, "a sync was still running at shutdown; it stops with the store");
  }

  // ------------------------------------------------------------------------------------------ timing

  /** When the pending callbacks are due: after the quiet spell, but never later than the cap. */
  private callbackDueAt(): number | null {
    if (this.pending.size === 0) return null;
    const due = Math.min(
      this.lastPendingAt + this.callbackDelayMs,
      this.firstPendingAt + this.maxCallbackDelayMs,
    );
    return this.callbackRetryAt === null ? due : Math.max(due, this.callbackRetryAt);
  }

  private disarm(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sets the one timer to the earliest due time; while a run goes, its end re-arms instead. */
  private arm(): void {
    this.disarm();
    if (this.stopped || !this.started || this.running !== null) return;
    const dues = [this.nextFullAt, this.nextIncrementalAt, this.callbackDueAt()].filter(
      (t): t is number => t !== null,
    );
    if (dues.length === 0) return;
    const wait = Math.max(0, Math.min(...dues) - this.timers.now());
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.tick();
    }, wait);
  }

  private tick(): void {
    if (this.stopped || this.running !== null) return;
    this.running = this.runDue()
      .catch((err: unknown) => this.log.error({ err }, "sync scheduler step failed"))
      .finally(() => {
        this.running = null;
        this.arm();
      });
  }

  /** Runs the one job that is due now, if any; the full run takes precedence and covers the others. */
  private async runDue(): Promise<void> {
    const now = this.timers.now();
    if (this.nextFullAt !== null && this.nextFullAt <= now) {
      // Another instance may have reconciled meanwhile.
      const lastFull = (await this.history()).lastFull;
      if (ranWithin(lastFull, this.fullEveryMs, now)) {
        this.nextFullAt = lastFull + this.fullEveryMs;
        this.log.info(
          { lastFullAt: iso(lastFull), nextFullAt: iso(this.nextFullAt) },
          "full reconcile skipped: one ran recently",
        );
        return;
      }
      await this.execute({ kind: "full" });
      return;
    }
    const callbackDue = this.callbackDueAt();
    if (callbackDue !== null && callbackDue <= now) {
      const sources = this.pending;
      this.pending = new Map();
      this.callbackRetryAt = null;
      await this.execute({ kind: "callback", sources });
      return;
    }
    if (this.nextIncrementalAt !== null && this.nextIncrementalAt <= now) {
      if (this.nextFullAt !== null && this.nextFullAt <= now + this.incrementalEveryMs / 2) {
        // A full reconcile is close: it reads everything anyway.
        this.nextIncrementalAt = this.nextFullAt + this.incrementalEveryMs;
        return;
      }
      // Another instance may have read everything meanwhile: its own incremental run or a full reconcile.
      const lastRead = (await this.history()).lastRead;
      if (ranWithin(lastRead, this.incrementalEveryMs, now)) {
        this.nextIncrementalAt = lastRead + this.incrementalEveryMs;
        this.log.info(
          { lastReadAt: iso(lastRead), nextIncrementalAt: iso(this.nextIncrementalAt) },
          "incremental run skipped: another one read every source recently",
        );
        return;
      }
      await this.execute({ kind: "incremental" });
    }
  }

  // ------------------------------------------------------------------------------------------ running

  private async execute(job: Job): Promise<void> {
    const started = this.timers.now();
    const request: ReadRequest =
      job.kind === "callback"
        ? { fresh: [...job.sources.keys()], incremental: false }
        : { fresh: "all", incremental: job.kind === "incremental" };
    // Callbacks that arrived before a run that reads every source are covered by it.
    const covered = request.fresh === "all" ? this.takePending() : new Map<string, PendingSource>();
    const context = {
      job: job.kind,
      ...(job.kind === "callback" ? { changes: describePending(job.sources) } : {}),
      ...(covered.size > 0 ? { coveredCallbacks: describePending(covered) } : {}),
    };
    this.log.info(context, `sync ${job.kind} run starting`);
    try {
      const outcomes = await this.options.runner.run(
        job.kind === "callback" ? "callback" : "schedule",
        request,
      );
      this.log.info(
        {
          ...context,
          durationMs: this.timers.now() - started,
          targets: outcomes.map((o) => ({ target: o.run.target, status: o.run.status, plan: o.run.planId })),
        },
        `sync ${job.kind} run finished`,
      );
      this.advance(job, started);
    } catch (err) {
      if (isAppError(err, "SYNC_BUSY")) {
        this.log.info(context, `sync ${job.kind} run postponed: another idbridge process is syncing`);
        this.retryLater(job, covered);
        return;
      }
      this.log.error({ ...context, err }, `sync ${job.kind} run failed`);
      // Callbacks this run would have covered get their own run; the failed job waits for its next turn
      // (a failed callback run is left to the next regular run), so a broken source causes no hot loop.
      this.restorePending(covered);
      this.advance(job, started);
    }
  }

  /** Sets the next times after a run that happened (or failed for good). */
  private advance(job: Job, started: number): void {
    if (job.kind === "full") {
      this.nextFullAt = this.fullEveryMs > 0 ? started + this.fullEveryMs : null;
      if (this.incrementalEveryMs > 0) this.nextIncrementalAt = started + this.incrementalEveryMs;
    } else if (job.kind === "incremental") {
      this.nextIncrementalAt = started + this.incrementalEveryMs;
    }
  }

  /** After SYNC_BUSY: try the full run and callbacks again soon; incremental waits for its next turn. */
  private retryLater(job: Job, covered: Map<string, PendingSource>): void {
    const at = this.timers.now() + this.busyRetryMs;
    this.restorePending(covered);
    if (job.kind === "full") this.nextFullAt = at;
    else if (job.kind === "incremental") {
      this.nextIncrementalAt = this.timers.now() + this.incrementalEveryMs;
    } else {
      this.restorePending(job.sources);
      this.callbackRetryAt = at;
    }
  }

  private takePending(): Map<string, PendingSource> {
    const taken = this.pending;
    this.pending = new Map();
    this.callbackRetryAt = null;
    return taken;
  }

  private restorePending(sources: Map<string, PendingSource>): void {
    if (sources.size === 0) return;
    const now = this.timers.now();
    if (this.pending.size === 0) {
      this.firstPendingAt = now;
      this.lastPendingAt = now;
    }
    for (const [id, source] of sources) {
      const into = this.pending.get(id);
      if (into === undefined) this.pending.set(id, source);
      else {
        for (const u of source.userIds) into.userIds.add(u);
        for (const d of source.departmentIds) into.departmentIds.add(d);
        for (const e of source.eventTypes) into.eventTypes.add(e);
      }
    }
  }

  /**
   * The start of the last full read of everything, of the last read of everything (full or incremental) and
   * of the last run of any kind, by any instance.
   */
  private async history(): Promise<{
    lastFull: number | null;
    lastRead: number | null;
    lastAny: number | null;
  }> {
    let runs: SyncRunRecord[];
    try {
      runs = await this.options.store.listSyncRuns({ limit: HISTORY });
    } catch (err) {
      this.log.error({ err }, "cannot read the sync history; scheduling as if there were none");
      return { lastFull: null, lastRead: null, lastAny: null };
    }
    return {
      lastFull: startOf(runs.find(isFullRead)),
      lastRead: startOf(runs.find(isReadOfAll)),
      lastAny: startOf(runs.find((r) => r.status !== "failed" && readSources(r))),
    };
  }
}

/**
 * Whether a run that started at `last` makes the one due `now` unnecessary. A run is recorded once the
 * lease is held, a little after the scheduler started it: the slack keeps our own last run from pushing
 * every next one later.
 */
function ranWithin(last: number | null, everyMs: number, now: number): last is number {
  return last !== null && last + everyMs * RECENT_SHARE > now;
}

function startOf(run: SyncRunRecord | undefined): number | null {
  return run === undefined ? null : Date.parse(run.startedAt);
}

/**
 * A run that read every source fully and did not fail: a full reconcile. Runs record what they were asked
 * (`summary.request`); older records are told from the per-source summary instead. A callback run reads
 * some sources and takes the rest from earlier reads, so it never counts.
 */
function isFullRead(run: SyncRunRecord): boolean {
  if (run.trigger === "callback" || run.status === "failed" || run.status === "running") return false;
  const summary = run.summary as {
    request?: { fresh?: unknown; incremental?: unknown };
    sources?: Array<{ mode?: unknown }>;
  };
  if (summary.request !== undefined)
    return summary.request.fresh === "all" && summary.request.incremental === false;
  const sources = summary.sources;
  return Array.isArray(sources) && sources.length > 0 && sources.every((s) => s.mode === "full");
}

/**
 * A run that read every source, fully or incrementally, and did not fail: what an incremental run would do.
 * One still running counts (it holds the lease, so ours would only be turned away); a callback run never
 * does, as above.
 */
function isReadOfAll(run: SyncRunRecord): boolean {
  if (run.trigger === "callback" || run.status === "failed") return false;
  const summary = run.summary as { request?: { fresh?: unknown }; sources?: unknown };
  if (summary.request !== undefined) return summary.request.fresh === "all";
  return Array.isArray(summary.sources) && summary.sources.length > 0;
}

/**
 * A run that read sources at all: a planned run (full, incremental or callback), not the apply of a plan
 * approved in the console or the API, which reads nothing and so says nothing about how fresh the reads are.
 */
function readSources(run: SyncRunRecord): boolean {
  const summary = run.summary as { request?: unknown; sources?: unknown };
  return summary.request !== undefined || (Array.isArray(summary.sources) && summary.sources.length > 0);
}

/** The ids a callback run covers, for its log lines; a mass change is cut short (the counts stay whole). */
function describePending(sources: Map<string, PendingSource>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [id, s] of sources)
    out[id] = {
      users: s.userIds.size,
      userIds: [...s.userIds].slice(0, LOGGED_IDS),
      departments: s.departmentIds.size,
      departmentIds: [...s.departmentIds].slice(0, LOGGED_IDS),
      events: [...s.eventTypes],
    };
  return out;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
