/**
 * The sync scheduler of `idbridge serve`: its decisions on a fake clock with a fake sync; two sync services
 * on one real PostgreSQL (and on one SQLite file) against the DingTalk and Hesi simulators, of which only
 * one may apply; and a real `idbridge serve` whose DingTalk callback leads to a recorded callback run.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { stringify } from "yaml";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { AuditLog } from "../../src/audit/log.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { AppError } from "../../src/domain/errors.js";
import type { ContactChange } from "../../src/http/callbacks.js";
import { ensureKeys } from "../../src/keys/keys.js";
import {
  startDingTalkSimulator,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { startHesiSimulator, type RunningHesiSimulator } from "../../src/simulators/hesi/index.js";
import { openStore } from "../../src/store/index.js";
import type { Store, SyncRunRecord } from "../../src/store/store.js";
import { SyncScheduler, type SchedulerTimers, type SyncRunner } from "../../src/sync/scheduler.js";
import { SyncService, type ReadRequest, type Trigger } from "../../src/sync/service.js";
import { runCli, startServe } from "../helpers/cli.js";
import { storeFlavours } from "../helpers/store-flavours.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 27, 8, 0, 0);

// ------------------------------------------------------------------------------------------ fakes

/** Timers on a fake clock; `advance` fires what comes due in order and lets the runs it starts settle. */
/** The \`sync:\` section the scheduler tests start from: daily full reconciles, no incremental runs. */
const SYNC_DEFAULTS = {
  autoApprove: false,
  maxFailedChanges: 50,
  fullEveryMinutes: 1440,
  incrementalEveryMinutes: 0,
  callbackDelaySeconds: 10,
};

class FakeTimers implements SchedulerTimers {
  private at = T0;
  private nextId = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.at;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.nextId;
    this.pending.set(id, { at: this.at + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Moves the clock forward by `ms`, firing due timers at their own times. */
  async advance(ms: number): Promise<void> {
    const until = this.at + ms;
    await settle();
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (due === undefined) break;
      this.pending.delete(due[0]);
      this.at = Math.max(this.at, due[1].at);
      due[1].fn();
      await settle();
    }
    this.at = until;
  }
}

/** Lets promise chains (the scheduler's runs and their bookkeeping) run to their next real wait. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface Call {
  trigger: Trigger;
  request: ReadRequest;
  at: number;
}

/** A sync that records its calls; each call may be held open or made to fail. */
class FakeRunner implements SyncRunner {
  readonly calls: Call[] = [];
  active = 0;
  maxActive = 0;
  /** What the next calls do, in order; afterwards they succeed at once. */
  readonly script: Array<"ok" | "busy" | "fail" | "hold"> = [];
  private release: (() => void) | null = null;

  constructor(private readonly timers: FakeTimers) {}

  async run(trigger: Trigger, request: ReadRequest) {
    this.calls.push({ trigger, request, at: this.timers.now() });
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      const step = this.script.shift() ?? "ok";
      if (step === "busy") throw new AppError("SYNC_BUSY", "another idbridge process is syncing right now");
      if (step === "fail")
        throw new AppError("TARGET_UNAVAILABLE", "cannot read hesi-main: connection refused");
      if (step === "hold") await new Promise<void>((resolve) => (this.release = resolve));
      return [{ run: { target: "hesi-main", status: "nothing-to-do" as const, planId: "plan_x" } }];
    } finally {
      this.active -= 1;
    }
  }

  /** Lets a held call finish. */
  finish(): void {
    this.release?.();
    this.release = null;
  }
}

interface Harness {
  timers: FakeTimers;
  runner: FakeRunner;
  scheduler: SyncScheduler;
  logs: Array<{ level: number; msg: string; [key: string]: unknown }>;
}

const schedulers: SyncScheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.stop()));
});

function harness(
  sync: Partial<Config["sync"]>,
  history: SyncRunRecord[] = [],
  options: { stopTimeoutMs?: number } = {},
): Harness {
  const timers = new FakeTimers();
  const runner = new FakeRunner(timers);
  const logs: Harness["logs"] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => logs.push(JSON.parse(line) as Harness["logs"][number]) },
  );
  const scheduler = new SyncScheduler({
    runner,
    store: { listSyncRuns: () => Promise.resolve(history) },
    config: { ...SYNC_DEFAULTS, ...sync },
    logger,
    timers,
    startDelayMs: 5_000,
    busyRetryMs: MINUTE,
    ...options,
  });
  schedulers.push(scheduler);
  return { timers, runner, scheduler, logs };
}

function pastRun(
  minutesAgo: number,
  extra: Partial<SyncRunRecord> = {},
  modes: string[] = ["full"],
): SyncRunRecord {
  return {
    id: `run_${minutesAgo}`,
    target: "hesi-main",
    trigger: "schedule",
    startedAt: new Date(T0 - minutesAgo * MINUTE).toISOString(),
    finishedAt: new Date(T0 - minutesAgo * MINUTE + 1000).toISOString(),
    status: "applied",
    planId: "plan_old",
    summary: { sources: modes.map((mode, i) => ({ id: `s${i}`, mode, complete: true, people: 3 })) },
    ...extra,
  };
}

function change(sourceId: string, userIds: string[], eventType = "user_modify_org"): ContactChange {
  return { sourceId, kind: "users", userIds, departmentIds: [], eventType, receivedAt: new Date(T0) };
}

const FULL: ReadRequest = { fresh: "all", incremental: false };
const INCREMENTAL: ReadRequest = { fresh: "all", incremental: true };

// ------------------------------------------------------------------------------------------ decisions

describe("sync scheduler: decisions", () => {
  it("runs the first full reconcile shortly after start when no full run is recorded", async () => {
    const { timers, runner, scheduler } = harness({});
    await scheduler.start();
    await timers.advance(4_999);
    expect(runner.calls).toEqual([]);
    await timers.advance(1);
    expect(runner.calls).toEqual([{ trigger: "schedule", request: FULL, at: T0 + 5_000 }]);
    // And again one interval after it started.
    await timers.advance(1440 * MINUTE);
    expect(runner.calls.map((c) => c.at)).toEqual([T0 + 5_000, T0 + 5_000 + 1440 * MINUTE]);
  });

  it("skips the first full reconcile after a restart when one ran within the interval, waiting out the rest", async () => {
    const { timers, runner, scheduler, logs } = harness({}, [
      pastRun(5, { trigger: "callback" }),
      pastRun(8, {}, ["full", "incremental"]),
      pastRun(9, { status: "failed" }),
      pastRun(10),
    ]);
    await scheduler.start();
    expect(logs.find((l) => l.msg.startsWith("sync schedule:"))).toMatchObject({
      lastFullAt: new Date(T0 - 10 * MINUTE).toISOString(),
      nextFullAt: new Date(T0 + 1430 * MINUTE).toISOString(),
    });
    await timers.advance(1430 * MINUTE - 1);
    expect(runner.calls).toEqual([]);
    await timers.advance(1);
    expect(runner.calls).toEqual([{ trigger: "schedule", request: FULL, at: T0 + 1430 * MINUTE }]);
  });

  it("does not count the apply of an approved plan, which reads no source, as a recent read at start", async () => {
    const apply = pastRun(2, {
      trigger: "api",
      summary: { plan: {}, apply: { applied: 3, noop: 0, failed: 0 } },
    });
    const { timers, runner, scheduler } = harness({ incrementalEveryMinutes: 10 }, [apply, pastRun(10)]);
    await scheduler.start();
    await timers.advance(5_000);
    // The last read was the full one 10 minutes ago: an incremental read is due at once, not 8 minutes on.
    expect(runner.calls).toEqual([{ trigger: "schedule", request: INCREMENTAL, at: T0 + 5_000 }]);
  });

  it("runs incremental reads between full reconciles and none right before a full one", async () => {
    const { timers, runner, scheduler } = harness({ fullEveryMinutes: 210, incrementalEveryMinutes: 60 });
    await scheduler.start();
    await timers.advance(5_000 + 270 * MINUTE);
    expect(runner.calls.map((c) => [c.request, (c.at - T0 - 5_000) / MINUTE])).toEqual([
      [FULL, 0],
      [INCREMENTAL, 60],
      [INCREMENTAL, 120],
      // None at 180: the full reconcile at 210 is within half an interval and reads everything anyway.
      [FULL, 210],
      [INCREMENTAL, 270],
    ]);
    expect(runner.calls.every((c) => c.trigger === "schedule")).toBe(true);
  });

  it("never reconciles when both intervals are 0, but still runs callbacks", async () => {
    const { timers, runner, scheduler } = harness({ fullEveryMinutes: 0, callbackDelaySeconds: 1 });
    await scheduler.start();
    await timers.advance(3 * 1440 * MINUTE);
    expect(runner.calls).toEqual([]);
    scheduler.notifyContactChange(change("dingtalk-hq", ["u1"], "user_leave_org"));
    await timers.advance(1_000);
    expect(runner.calls).toEqual([
      { trigger: "callback", request: { fresh: ["dingtalk-hq"], incremental: false }, at: timers.now() },
    ]);
  });

  it("debounces callbacks into one run re-reading only the sources that called, with their ids logged", async () => {
    const { timers, runner, scheduler, logs } = harness({ fullEveryMinutes: 0 });
    await scheduler.start();
    scheduler.notifyContactChange(change("dingtalk-hq", ["u1"]));
    await timers.advance(5_000);
    scheduler.notifyContactChange(change("wecom-hq", ["w9"], "update_user"));
    await timers.advance(5_000);
    scheduler.notifyContactChange(change("dingtalk-hq", ["u2"], "user_leave_org"));
    scheduler.notifyContactChange({ ...change("dingtalk-hq", []), kind: "check", eventType: "check_url" });
    await timers.advance(9_999);
    expect(runner.calls).toEqual([]);
    await timers.advance(1);
    expect(runner.calls).toEqual([
      {
        trigger: "callback",
        request: { fresh: ["dingtalk-hq", "wecom-hq"], incremental: false },
        at: T0 + 20_000,
      },
    ]);
    expect(logs.find((l) => l.msg === "sync callback run starting")).toMatchObject({
      changes: {
        "dingtalk-hq": {
          users: 2,
          userIds: ["u1", "u2"],
          departments: 0,
          events: ["user_modify_org", "user_leave_org"],
        },
        "wecom-hq": { users: 1, userIds: ["w9"], events: ["update_user"] },
      },
    });
    await timers.advance(10 * MINUTE);
    expect(runner.calls).toHaveLength(1);
  });

  it("names at most 100 ids per source in the log line of a mass change, counting them all", async () => {
    const { timers, scheduler, logs } = harness({ fullEveryMinutes: 0 });
    await scheduler.start();
    const ids = Array.from({ length: 150 }, (_, i) => `u${i}`);
    scheduler.notifyContactChange(change("dingtalk-hq", ids));
    await timers.advance(10_000);
    const line = logs.find((l) => l.msg === "sync callback run starting") as unknown as {
      changes: Record<string, { users: number; userIds: string[] }>;
    };
    expect(line.changes["dingtalk-hq"]?.users).toBe(150);
    expect(line.changes["dingtalk-hq"]?.userIds).toEqual(ids.slice(0, 100));
  });

  it("does not run for a URL check alone", async () => {
    const { timers, runner, scheduler } = harness({ fullEveryMinutes: 0 });
    await scheduler.start();
    scheduler.notifyContactChange({ ...change("wecom-hq", []), kind: "check", eventType: "verify_url" });
    await timers.advance(10 * MINUTE);
    expect(runner.calls).toEqual([]);
  });

  it("runs a steady stream of callbacks at most 60 s after the first one", async () => {
    const { timers, runner, scheduler, logs } = harness({ fullEveryMinutes: 0 });
    await scheduler.start();
    for (let i = 0; i < 20; i++) {
      scheduler.notifyContactChange(change("dingtalk-hq", [`u${i}`]));
      await timers.advance(5_000);
    }
    // Events every 5 s from 0 to 95 s: the first burst is cut at 60 s, the rest runs 10 s after 95 s.
    expect(runner.calls.map((c) => c.at - T0)).toEqual([60_000]);
    await timers.advance(5_000);
    expect(runner.calls.map((c) => c.at - T0)).toEqual([60_000, 105_000]);
    expect(runner.calls.every((c) => c.trigger === "callback")).toBe(true);
    // The second run's log line names the ids of its burst only.
    const second = logs.filter((l) => l.msg === "sync callback run starting")[1] as unknown as {
      changes: Record<string, { users: number; userIds: string[] }>;
    };
    expect(second.changes["dingtalk-hq"]).toMatchObject({
      users: 8,
      userIds: ["u12", "u13", "u14", "u15", "u16", "u17", "u18", "u19"],
    });
  });

  it("never overlaps runs: what comes due meanwhile runs once afterwards", async () => {
    const { timers, runner, scheduler } = harness({ incrementalEveryMinutes: 1 });
    runner.script.push("hold");
    await scheduler.start();
    await timers.advance(5_000);
    expect(runner.active).toBe(1);
    // While the full run is held: callbacks come due, incremental ticks pass.
    scheduler.notifyContactChange(change("dingtalk-hq", ["u1"]));
    await timers.advance(30_000);
    scheduler.notifyContactChange(change("dingtalk-hq", ["u2"]));
    await timers.advance(5 * MINUTE);
    expect(runner.calls).toHaveLength(1);
    runner.finish();
    await timers.advance(0);
    expect(runner.maxActive).toBe(1);
    // Two callbacks make one run; five missed incremental ticks make one run.
    expect(runner.calls.map((c) => [c.trigger, c.request])).toEqual([
      ["schedule", FULL],
      ["callback", { fresh: ["dingtalk-hq"], incremental: false }],
      ["schedule", INCREMENTAL],
    ]);
    await timers.advance(MINUTE);
    expect(runner.calls.map((c) => c.request)).toEqual([
      FULL,
      { fresh: ["dingtalk-hq"], incremental: false },
      INCREMENTAL,
      INCREMENTAL,
    ]);
  });

  it("lets a full run cover callbacks that arrived before it started", async () => {
    const { timers, runner, scheduler, logs } = harness({});
    await scheduler.start();
    scheduler.notifyContactChange(change("dingtalk-hq", ["u1"]));
    await timers.advance(5_000);
    await timers.advance(MINUTE);
    expect(runner.calls.map((c) => c.request)).toEqual([FULL]);
    expect(logs.find((l) => l.msg === "sync full run starting")).toMatchObject({
      coveredCallbacks: { "dingtalk-hq": { userIds: ["u1"] } },
    });
  });

  it("takes SYNC_BUSY as another instance at work: logs at info and tries again later", async () => {
    const { timers, runner, scheduler, logs } = harness({});
    runner.script.push("busy");
    await scheduler.start();
    await timers.advance(5_000);
    expect(logs.find((l) => l.msg.includes("postponed"))).toMatchObject({ level: 30, job: "full" });
    expect(logs.some((l) => l.level >= 50)).toBe(false);
    await timers.advance(MINUTE);
    expect(runner.calls.map((c) => [c.request, c.at - T0])).toEqual([
      [FULL, 5_000],
      [FULL, 65_000],
    ]);
  });

  it("skips a due full reconcile that another instance recorded meanwhile", async () => {
    const history: SyncRunRecord[] = [];
    const timers = new FakeTimers();
    const runner = new FakeRunner(timers);
    runner.script.push("busy");
    const scheduler = new SyncScheduler({
      runner,
      store: { listSyncRuns: () => Promise.resolve(history) },
      config: SYNC_DEFAULTS,
      logger: pino({ enabled: false }),
      timers,
      startDelayMs: 5_000,
      busyRetryMs: MINUTE,
    });
    schedulers.push(scheduler);
    await scheduler.start();
    await timers.advance(5_000);
    // The other instance that held the lease recorded its full run.
    history.push({ ...pastRun(0), startedAt: new Date(T0 + 4_000).toISOString() });
    await timers.advance(2 * MINUTE);
    expect(runner.calls).toHaveLength(1);
    await timers.advance(1440 * MINUTE);
    expect(runner.calls.map((c) => c.at - T0)).toEqual([5_000, 4_000 + 1440 * MINUTE]);
  });

  it("skips a due incremental run when another instance read every source within the interval, and runs one interval after that read", async () => {
    const history: SyncRunRecord[] = [];
    const { timers, runner, scheduler, logs } = harness(
      { fullEveryMinutes: 0, incrementalEveryMinutes: 10 },
      history,
    );
    await scheduler.start();
    await timers.advance(5_000);
    expect(runner.calls.map((c) => c.request)).toEqual([INCREMENTAL]);
    // Meanwhile, newest first as the store lists them: runs that must not count (one failed, one re-read
    // only the sources that called back), then another instance's incremental read at +4 min.
    const at = (ms: number) => new Date(T0 + ms).toISOString();
    const read = { ...pastRun(0), summary: { request: { fresh: "all", incremental: true } } };
    history.push(
      { ...read, id: "run_b3", startedAt: at(5_000 + 9 * MINUTE), status: "failed" },
      {
        ...read,
        id: "run_b2",
        startedAt: at(5_000 + 8 * MINUTE),
        trigger: "callback",
        summary: { request: { fresh: ["dingtalk-hq"], incremental: false } },
      },
      { ...read, id: "run_b1", startedAt: at(5_000 + 4 * MINUTE) },
    );
    await timers.advance(14 * MINUTE - 1);
    expect(runner.calls.map((c) => c.at - T0)).toEqual([5_000]);
    expect(logs.find((l) => l.msg.startsWith("incremental run skipped"))).toMatchObject({
      lastReadAt: at(5_000 + 4 * MINUTE),
      nextIncrementalAt: at(5_000 + 14 * MINUTE),
    });
    await timers.advance(1);
    expect(runner.calls.map((c) => [c.request, c.at - T0])).toEqual([
      [INCREMENTAL, 5_000],
      [INCREMENTAL, 5_000 + 14 * MINUTE],
    ]);
  });

  it("keeps its own full reconciles on the interval although each is recorded after its sources were read", async () => {
    const history: SyncRunRecord[] = [];
    const { timers, runner, scheduler } = harness({}, history);
    await scheduler.start();
    await timers.advance(5_000);
    // The service records the run once the sources are read, two minutes after the scheduler started it.
    history.unshift({ ...pastRun(0), startedAt: new Date(T0 + 5_000 + 2 * MINUTE).toISOString() });
    await timers.advance(1440 * MINUTE);
    expect(runner.calls.map((c) => c.at - T0)).toEqual([5_000, 5_000 + 1440 * MINUTE]);
  });

  it("logs other failures as errors and keeps to the schedule", async () => {
    const { timers, runner, scheduler, logs } = harness({ fullEveryMinutes: 60, incrementalEveryMinutes: 0 });
    runner.script.push("fail");
    await scheduler.start();
    await timers.advance(5_000);
    expect(logs.find((l) => l.msg === "sync full run failed")).toMatchObject({
      level: 50,
      err: { code: "TARGET_UNAVAILABLE" },
    });
    await timers.advance(60 * MINUTE);
    expect(runner.calls.map((c) => c.at - T0)).toEqual([5_000, 5_000 + 60 * MINUTE]);
  });

  it("stop waits for the running sync, then nothing more runs", async () => {
    const { timers, runner, scheduler } = harness({ fullEveryMinutes: 60 });
    runner.script.push("hold");
    await scheduler.start();
    await timers.advance(5_000);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    runner.finish();
    await stopping;
    scheduler.notifyContactChange(change("dingtalk-hq", ["u1"]));
    await timers.advance(3 * 60 * MINUTE);
    expect(runner.calls).toHaveLength(1);
  });

  it("stop gives up waiting after its timeout", async () => {
    const { timers, runner, scheduler, logs } = harness({}, [], { stopTimeoutMs: 30_000 });
    runner.script.push("hold");
    await scheduler.start();
    await timers.advance(5_000);
    const stopping = scheduler.stop();
    await timers.advance(30_000);
    await stopping;
    expect(logs.some((l) => l.msg.includes("still running at shutdown"))).toBe(true);
    runner.finish();
  });
});

// ------------------------------------------------------------------------------------------ two schedulers

/**
 * One idbridge process's sync as the scheduler sees it, sharing a run history and a lease with the others
 * like the SyncService does: a run is recorded (running) once the lease is held, takes `durationMs` of the
 * fake clock, then is marked done; while another holds the lease it answers SYNC_BUSY.
 */
class LeasedRunner implements SyncRunner {
  constructor(
    private readonly name: string,
    private readonly shared: {
      timers: FakeTimers;
      history: SyncRunRecord[];
      lease: { holder: string | null };
      calls: Array<Call & { instance: string }>;
      durationMs: number;
    },
  ) {}

  async run(trigger: Trigger, request: ReadRequest) {
    const { timers, history, lease, calls, durationMs } = this.shared;
    if (lease.holder !== null)
      throw new AppError("SYNC_BUSY", "another idbridge process is syncing right now");
    lease.holder = this.name;
    calls.push({ instance: this.name, trigger, request, at: timers.now() });
    const run: SyncRunRecord = {
      id: `run_${this.name}_${calls.length}`,
      target: "hesi-main",
      trigger,
      startedAt: new Date(timers.now()).toISOString(),
      finishedAt: null,
      status: "running",
      planId: null,
      summary: {
        request: {
          fresh: request.fresh === "all" ? "all" : [...request.fresh],
          incremental: request.incremental,
        },
      },
    };
    history.unshift(run);
    await new Promise<void>((resolve) => timers.setTimeout(resolve, durationMs));
    const done = {
      ...run,
      status: "nothing-to-do" as const,
      finishedAt: new Date(timers.now()).toISOString(),
    };
    history.splice(history.indexOf(run), 1, done);
    lease.holder = null;
    return [{ run: done }];
  }
}

describe("two schedulers on one run history", () => {
  it("run each interval's incremental read once and the full reconcile once, not once per instance", async () => {
    const timers = new FakeTimers();
    const shared = {
      timers,
      history: [] as SyncRunRecord[],
      lease: { holder: null as string | null },
      calls: [] as Array<Call & { instance: string }>,
      durationMs: 30_000,
    };
    const logs: string[] = [];
    for (const name of ["a", "b"]) {
      const scheduler = new SyncScheduler({
        runner: new LeasedRunner(name, shared),
        store: { listSyncRuns: ({ limit }) => Promise.resolve(shared.history.slice(0, limit)) },
        config: { ...SYNC_DEFAULTS, fullEveryMinutes: 1440, incrementalEveryMinutes: 10 },
        logger: pino({ level: "info" }, { write: (line: string) => logs.push(line) }),
        timers,
        startDelayMs: 5_000,
        busyRetryMs: MINUTE,
      });
      schedulers.push(scheduler);
      await scheduler.start();
    }
    // Two hours and a bit, ending between runs (stop would wait for a held one on the fake clock).
    await timers.advance(125 * MINUTE);
    const reads = shared.calls.map((c) => [c.request, (c.at - T0 - 5_000) / MINUTE]);
    expect(reads).toEqual([[FULL, 0], ...Array.from({ length: 12 }, (_, i) => [INCREMENTAL, 10 * (i + 1)])]);
    // The other instance's timer came due as well, and stood down on reading the history.
    expect(logs.some((l) => l.includes("incremental run skipped"))).toBe(true);
    expect(shared.calls.every((c) => c.trigger === "schedule")).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------ instances

const POLICY = `version: 1
target: hesi-main
roles:
  submitter: { targetRole: "报销提交人" }
rules:
  - id: everyone-submits
    when: { status: active }
    grant: submitter
`;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A directory with a policy and an idbridge.yaml syncing the DingTalk simulator into the Hesi one. */
function writeSetup(
  dingtalk: RunningDingTalkSimulator,
  hesi: RunningHesiSimulator,
  extra: Record<string, unknown> = {},
): string {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-scheduler-"));
  dirs.push(dir);
  mkdirSync(join(dir, "policies"));
  writeFileSync(join(dir, "policies", "hesi-main.yaml"), POLICY);
  const config = {
    keys: { dir: "./keys" },
    policiesDir: "./policies",
    sources: [
      {
        id: "dingtalk-hq",
        type: "dingtalk",
        config: { ...dingtalk.sourceConfig(), callback: dingtalk.callback },
      },
    ],
    // Hesi documents no rate limit; the default of 5 per second would only make the test slow.
    targets: [{ id: "hesi-main", type: "hesi", config: { ...hesi.targetConfig(), requestsPerSecond: 100 } }],
    identity: { primarySource: "dingtalk-hq" },
    ...extra,
  };
  writeFileSync(join(dir, "idbridge.yaml"), stringify(config));
  return dir;
}

async function startSimulators(): Promise<{
  dingtalk: RunningDingTalkSimulator;
  hesi: RunningHesiSimulator;
}> {
  const dingtalk = await startDingTalkSimulator({ people: 12, seed: 5 });
  const hesi = await startHesiSimulator({ corpId: "corp1", existing: { roles: [{ name: "报销提交人" }] } });
  closers.push(dingtalk.close, hesi.close);
  return { dingtalk, hesi };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** One idbridge process's sync: its own Store (own connections) and audit log on the shared database. */
async function openService(config: Config, holder: string): Promise<{ sync: SyncService; store: Store }> {
  const keys = await ensureKeys(config.keys.dir, true);
  const store = await openStore({ url: config.store.url, poolSize: 2 });
  const audit = new AuditLog(store, keys.audit, { checkpointEvery: 1000, checkpointIntervalMs: 0 });
  closers.push(async () => {
    await audit.close();
    await store.close();
  });
  return { sync: new SyncService({ config, store, audit, holder }), store };
}

const flavours = storeFlavours();

describe.each([flavours.postgres, flavours.sqlite])("two instances on one $name store", (flavour) => {
  it.skipIf(!flavour.available)(
    "exactly one applies, the other gets SYNC_BUSY, and Hesi ends with no duplicate staff",
    async () => {
      const { dingtalk, hesi } = await startSimulators();
      const url = await flavour.freshUrl();
      const dir = writeSetup(dingtalk, hesi, { store: { url }, sync: { autoApprove: true } });
      const config = loadConfig({ file: join(dir, "idbridge.yaml"), env: {}, cwd: dir });
      // Keys first, so the two do not race to generate them.
      await ensureKeys(config.keys.dir, true);
      const a = await openService(config, "instance-a");
      const b = await openService(config, "instance-b");

      const results = await Promise.allSettled([a.sync.run("schedule", FULL), b.sync.run("schedule", FULL)]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r) => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ code: "SYNC_BUSY" });
      const [outcome] = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<SyncService["run"]>>>).value;
      expect(outcome?.run.status).toBe("applied");

      // Everyone active in DingTalk is in Hesi once.
      const active = dingtalk.org.people.filter((p) => p.status === "active");
      expect(active.length).toBeGreaterThan(5);
      const staff = hesi.staff().filter((s) => s.active);
      const userIds = staff.map((s) => s.userId);
      expect(new Set(userIds).size).toBe(userIds.length);
      expect(staff).toHaveLength(active.length);
      // Only the lease holder recorded a run.
      expect(await a.store.listSyncRuns({ limit: 10 })).toHaveLength(1);

      // The lease is free again: the other instance now finds nothing left to do.
      const again = await (won[0] === results[0] ? b : a).sync.run("schedule", FULL);
      expect(again.map((o) => o.run.status)).toEqual(["nothing-to-do"]);
      expect(hesi.staff().filter((s) => s.active)).toHaveLength(active.length);
    },
  );
});

// ------------------------------------------------------------------------------------------ serve

describe("idbridge serve", () => {
  it("answers a DingTalk contact-change callback and records a callback-triggered sync run; a forged one is refused and audited", async () => {
    const { dingtalk, hesi } = await startSimulators();
    const dir = writeSetup(dingtalk, hesi, {
      server: { port: 0 },
      log: { level: "info" },
      sync: {
        autoApprove: true,
        fullEveryMinutes: 0,
        incrementalEveryMinutes: 0,
        callbackDelaySeconds: 0.2,
      },
    });
    const config = join(dir, "idbridge.yaml");
    const server = await startServe(["-c", config]);
    try {
      await vi.waitFor(() =>
        expect(server.output()).toContain(
          "sync schedule: no full reconcile, no incremental reads, callbacks after 0.2 s of quiet",
        ),
      );
      const url = `${server.url}/callbacks/dingtalk-hq`;
      const forged = await dingtalk.pushEvent(
        url,
        { eventType: "user_leave_org", userIds: ["u-forged"] },
        { signWithToken: "not-the-registered-token" },
      );
      expect(forged).toMatchObject({ status: 403, accepted: false });

      const leaver = dingtalk.org.people[3]!.userid;
      const pushed = await dingtalk.pushEvent(url, { eventType: "user_leave_org", userIds: [leaver] });
      expect(pushed).toMatchObject({ status: 200, accepted: true });

      await vi.waitFor(() => expect(server.output()).toContain("sync callback run finished"), {
        timeout: 20_000,
        interval: 100,
      });
      const finished = server
        .output()
        .split("\n")
        .find((line) => line.includes("sync callback run finished"));
      expect(JSON.parse(finished!)).toMatchObject({
        job: "callback",
        changes: { "dingtalk-hq": { userIds: [leaver], events: ["user_leave_org"] } },
        targets: [{ target: "hesi-main", status: "applied" }],
      });
      // Only one run: the forged push never reached the scheduler.
      expect(server.output().match(/sync callback run starting/g)).toHaveLength(1);

      const status = await runCli(["sync", "status", "-c", config]);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/hesi-main\s+applied\s+callback\s/);
      const active = dingtalk.org.people.filter((p) => p.status === "active");
      expect(hesi.staff().filter((s) => s.active)).toHaveLength(active.length);

      const exported = await runCli(["audit", "export", "-c", config]);
      expect(exported.code).toBe(0);
      const refused = exported.stdout
        .split("\n")
        .filter((line) => line.includes('"callback.refused"'))
        .map((line) => JSON.parse(line) as { actor: string; details: { reason: string } });
      expect(refused).toMatchObject([{ actor: "source:dingtalk-hq", details: { reason: "bad_signature" } }]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
