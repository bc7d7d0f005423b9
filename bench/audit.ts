/**
 * Audit log benchmark (not a test): on SQLite and on PostgreSQL, measures
 *
 *   1. durable appends per second through AuditLog.record(): many concurrent callers (group commit)
 *      and one caller awaiting each entry;
 *   2. wall time of `idbridge audit verify` on an export of N entries (default 1,000,000);
 *   3. peak RSS of `idbridge audit export` (JSONL, and CSV) at several sizes, to show that memory does
 *      not grow with the size of the log.
 *
 * Targets (from the issue): appends >= 5,000/s on SQLite, verify 1M in <= 10 s, export RSS <= 150 MB.
 *
 * Everything lives in a temporary directory that is removed at the end (`--keep` keeps it).
 * PostgreSQL is started by the benchmark itself with its DEFAULT durability settings (fsync=on,
 * synchronous_commit=on, full_page_writes=on) — the test harness with `durable: true`; tests turn fsync off — unless
 * `--pg-url` points at an existing server.
 *
 *   npm run bench:audit -- [--entries 1000000] [--export-sizes 100000,300000,1000000]
 *                          [--appends 50000] [--sequential 2000] [--concurrency 64]
 *                          [--stores sqlite,postgres] [--pg-url postgres://…] [--no-csv]
 *                          [--json FILE] [--keep]
 *
 * Defaults: 1,000,000 entries; exports at 10 %, 30 % and 100 % of them; 50,000 appends from 64 callers
 * and 2,000 from one. A quick run: `npm run bench:audit -- --entries 20000 --appends 5000`.
 * With --pg-url the benchmark creates (and first drops!) databases named idbridge_bench_* on that server.
 */
import { spawn, execFileSync } from "node:child_process";
import { startPostgres } from "../test/peers/postgres.js";
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import pg from "pg";
import { AuditLog } from "../src/audit/log.js";
import { chainEvents, type AuditEvent } from "../src/audit/chain.js";
import { generateKeys, type KeySet } from "../src/keys/keys.js";
import { openStore, type Store } from "../src/store/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "bin", "idbridge.js");

// ---------------------------------------------------------------------------------------------------
// Options

const { values: opts } = parseArgs({
  options: {
    entries: { type: "string", default: process.env.BENCH_ENTRIES ?? "1000000" },
    "export-sizes": { type: "string" },
    appends: { type: "string", default: process.env.BENCH_APPENDS ?? "50000" },
    sequential: { type: "string", default: process.env.BENCH_SEQUENTIAL ?? "2000" },
    concurrency: { type: "string", default: "64" },
    stores: { type: "string", default: process.env.BENCH_STORES ?? "sqlite,postgres" },
    "pg-url": { type: "string", default: process.env.BENCH_PG_URL },
    "no-csv": { type: "boolean", default: false },
    json: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (opts.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0] + "*/\n");
  process.exit(0);
}

function int(name: string, text: string): number {
  const n = Number(text.trim().replace(/_/g, ""));
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name}: "${text}" is not a whole number`);
  return n;
}

const ENTRIES = int("entries", opts.entries);
const EXPORT_SIZES = (
  opts["export-sizes"] ?? `${Math.floor(ENTRIES / 10)},${Math.floor((ENTRIES * 3) / 10)},${ENTRIES}`
)
  .split(",")
  .filter((s) => s.trim() !== "")
  .map((s) => int("export-sizes", s));
const APPENDS = int("appends", opts.appends);
const SEQUENTIAL = int("sequential", opts.sequential);
const CONCURRENCY = Math.max(1, int("concurrency", opts.concurrency));
const STORES = opts.stores.split(",").map((s) => s.trim()) as ("sqlite" | "postgres")[];
const SIZES = [...new Set(EXPORT_SIZES.filter((n) => n > 0 && n <= ENTRIES))].sort((a, b) => a - b);
if (!SIZES.includes(ENTRIES) && ENTRIES > 0) SIZES.push(ENTRIES);

// ---------------------------------------------------------------------------------------------------
// Small helpers

const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (bytes: number): string => `${fmt(bytes / 1024 / 1024, 1)} MB`;
const secs = (ms: number): string => `${fmt(ms / 1000, 2)} s`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

// ---------------------------------------------------------------------------------------------------
// Realistic audit events: Chinese role and department names, person ids as the sources produce them.

const DEPARTMENTS = [
  "财务部",
  "人力资源部",
  "华东销售一部",
  "研发中心/平台组",
  "总经办",
  "采购部",
  "法务合规部",
];
const ROLES = ["部门审批人", "费用报销人", "预算负责人", "出纳", "财务总监", "访客"];
const NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄晓明"];

function personId(i: number): string {
  return `person:ding-${((i * 2654435761) >>> 0).toString(16).padStart(8, "0")}`;
}

function makeEvent(i: number): AuditEvent {
  const dept = DEPARTMENTS[i % DEPARTMENTS.length] as string;
  const role = ROLES[i % ROLES.length] as string;
  const actor = personId(i % 5000);
  const subject = personId((i * 7 + 13) % 20000);
  switch (i % 5) {
    case 0:
      return {
        actor: "system",
        action: "role.granted",
        subject,
        target: "hesi-prod",
        details: { role, scope: [dept], rule: "leaders-approve-their-departments", plan: `plan-${i >> 6}` },
      };
    case 1:
      return {
        actor,
        action: "login.succeeded",
        subject: actor,
        target: null,
        details: {
          source: "dingtalk-hq",
          ip: `10.${i % 250}.${(i >> 8) % 250}.${i % 199}`,
          name: NAMES[i % NAMES.length] as string,
        },
      };
    case 2:
      return {
        actor: "system",
        action: "sync.person.updated",
        subject,
        target: null,
        details: {
          source: "wecom-main",
          changed: {
            department: [DEPARTMENTS[(i + 1) % DEPARTMENTS.length] as string, dept],
            title: "高级经理",
          },
        },
      };
    case 3:
      return {
        actor: `cli:${NAMES[i % NAMES.length] as string}`,
        action: "plan.approved",
        subject: `plan-${i >> 6}`,
        target: "hesi-prod",
        details: { changes: (i % 17) + 1, comment: "按季度权限复核，批准本次同步计划" },
      };
    default:
      return {
        actor,
        action: "login.failed",
        subject: actor,
        target: null,
        details: { source: "ad-corp", reason: "密码错误或账号已停用", attempts: (i % 5) + 1 },
      };
  }
}

// ---------------------------------------------------------------------------------------------------
// Machine facts

interface Machine {
  nproc: number;
  cpu: string;
  memory: string;
  node: string;
  os: string;
  disk: string;
  fsyncPerSecond: number;
  fsyncMedianMs: number;
  fsyncP99Ms: number;
  sqlite: string;
  postgres: string | null;
}

function diskOf(dir: string): string {
  try {
    const df = execFileSync("df", ["--output=source,fstype,size", "-h", dir], { encoding: "utf8" });
    const [source = "?", fstype = "?", size = "?"] = (df.trim().split("\n")[1] ?? "").trim().split(/\s+/);
    const dev = source.replace(/^\/dev\//, "").replace(/p?\d+$/, "");
    const sys = `/sys/block/${dev}`;
    const read = (f: string): string | null => {
      try {
        return readFileSync(join(sys, f), "utf8").trim();
      } catch {
        return null;
      }
    };
    const rotational = read("queue/rotational");
    const model = read("device/model");
    const kind =
      rotational === "0" ? "non-rotational" : rotational === "1" ? "reports rotational" : "unknown kind";
    const cache = read("queue/write_cache");
    const virtio =
      existsSync(sys) && readdirSync(sys).length > 0 && /^vd/.test(dev) ? "virtio block device, " : "";
    return `${source} (${virtio}${model ? `${model}, ` : ""}${kind}${cache ? `, write cache ${cache}` : ""}), ${fstype}, ${size}`;
  } catch {
    return "unknown";
  }
}

/** Raw durable-write speed of the disk under `dir`: 4 KiB write + fdatasync, repeated. */
function fsyncProbe(dir: string, rounds = 1000): { perSecond: number; medianMs: number; p99Ms: number } {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const block = Buffer.alloc(4096, 1);
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    writeSync(fd, block, 0, block.length, (i % 64) * 4096);
    fdatasyncSync(fd);
    times.push(performance.now() - t);
  }
  const total = performance.now() - t0;
  closeSync(fd);
  rmSync(file);
  times.sort((a, b) => a - b);
  return {
    perSecond: (rounds * 1000) / total,
    medianMs: percentile(times, 50),
    p99Ms: percentile(times, 99),
  };
}

function machine(dir: string, postgres: string | null): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const cpu = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const mem = /^MemTotal:\s*(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
  const probe = fsyncProbe(dir);
  const db = new Database(":memory:");
  const sqlite = (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  db.close();
  return {
    nproc: os.availableParallelism(),
    cpu,
    memory: mem ? `${fmt(Number(mem) / 1024 / 1024, 1)} GiB` : `${fmt(os.totalmem() / 2 ** 30, 1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    disk: diskOf(dir),
    fsyncPerSecond: probe.perSecond,
    fsyncMedianMs: probe.medianMs,
    fsyncP99Ms: probe.p99Ms,
    sqlite,
    postgres,
  };
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL with default (durable) settings

interface Pg {
  url: string;
  version: string;
  settings: string;
  stop(): Promise<void>;
}

async function pgFacts(url: string): Promise<{ version: string; settings: string }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version =
      (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? "?";
    const rows = (
      await client.query<{ name: string; setting: string }>(
        "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method','shared_buffers') ORDER BY name",
      )
    ).rows;
    return { version, settings: rows.map((r) => `${r.name}=${r.setting}`).join(", ") };
  } finally {
    await client.end();
  }
}

/** PostgreSQL from the test harness, with its default fsync settings: the benchmark measures durable commits. */
async function startDurablePostgres(): Promise<Pg> {
  const peer = await startPostgres({ durable: true });
  return { url: peer.url, ...(await pgFacts(peer.url)), stop: peer.stop };
}

async function createDatabase(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name}`);
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

// ---------------------------------------------------------------------------------------------------
// Measurements

interface AppendResult {
  mode: string;
  entries: number;
  seconds: number;
  perSecond: number;
  transactions: number;
  meanBatch: number;
  p50ms: number;
  p99ms: number;
}

/** `callers` loops, each awaiting its own record() before the next; `total` entries in all. */
async function measureAppends(
  store: Store,
  keys: KeySet,
  total: number,
  callers: number,
  mode: string,
): Promise<AppendResult> {
  let transactions = 0;
  const audit = new AuditLog(store, keys.audit, {
    checkpointEvery: 1000,
    checkpointIntervalMs: 0,
    onAppend: () => void (transactions += 1),
  });
  // Warm up (statement caches, pool connections, JIT) outside the timing.
  await Promise.all(Array.from({ length: Math.min(callers, 50) }, (_, i) => audit.record(makeEvent(i))));
  transactions = 0;
  const latencies: number[] = [];
  let issued = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (issued < total) {
        const i = issued++;
        const t = performance.now();
        await audit.record(makeEvent(i));
        latencies.push(performance.now() - t);
      }
    }),
  );
  const ms = performance.now() - t0;
  await audit.close();
  latencies.sort((a, b) => a - b);
  return {
    mode,
    entries: total,
    seconds: ms / 1000,
    perSecond: (total * 1000) / ms,
    transactions,
    meanBatch: total / Math.max(1, transactions),
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
  };
}

/**
 * Fills the log up to `to` entries quickly: real chain (chainEvents, real hashes) appended in
 * transactions of 1000, and a signed checkpoint after each, as AuditLog with checkpointEvery=1000 makes.
 */
async function fill(store: Store, audit: AuditLog, from: number, to: number): Promise<number> {
  const t0 = performance.now();
  let lastReport = t0;
  for (let n = from; n < to; n += 1000) {
    const k = Math.min(1000, to - n);
    const events = Array.from({ length: k }, (_, j) => makeEvent(n + j));
    const time = new Date().toISOString();
    await store.appendAudit((head) => chainEvents(head, events, time));
    await audit.checkpoint(1);
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      log(`  filled ${fmt(n + k)} / ${fmt(to)} (${fmt(((n + k - from) * 1000) / (lastReport - t0))}/s)`);
    }
  }
  return performance.now() - t0;
}

/**
 * Lets the database settle after a bulk fill so background work does not run during the timed CLI runs
 * (on a 2-CPU machine autovacuum of a freshly filled table visibly slows the export and verify): PostgreSQL
 * VACUUM (ANALYZE) + CHECKPOINT, SQLite WAL checkpoint.
 */
async function settle(url: string): Promise<void> {
  if (url.startsWith("sqlite:")) {
    const db = new Database(url.slice("sqlite:".length));
    try {
      db.pragma("wal_checkpoint(TRUNCATE)");
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("VACUUM (ANALYZE) audit_entries, audit_checkpoints");
    await client.query("CHECKPOINT");
  } finally {
    await client.end();
  }
}

interface ChildRun {
  ms: number;
  peakRssBytes: number;
  code: number;
  stdout: string;
  stderr: string;
}

const TIME = "/usr/bin/time";
const HAVE_GNU_TIME = existsSync(TIME);
// Fallback when GNU time is missing: the child reports its own peak RSS (getrusage maxrss) at exit.
const RSS_HOOK =
  'data:text/javascript,import{writeSync}from"node:fs";process.on("exit",()=>{try{writeSync(2,`\\nBENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\\n`)}catch{}})';

/** Runs the CLI in a child process; wall time and peak RSS (VmHWM as reported by getrusage/wait4). */
function runCli(args: readonly string[]): Promise<ChildRun> {
  const nodeArgs = [CLI, ...args];
  const [cmd, argv] = HAVE_GNU_TIME
    ? [TIME, ["-v", process.execPath, ...nodeArgs]]
    : [process.execPath, ["--import", RSS_HOOK, ...nodeArgs]];
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => {
      const ms = performance.now() - t0;
      const kb = HAVE_GNU_TIME
        ? /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(stderr)?.[1]
        : /BENCH_MAXRSS_KB=(\d+)/.exec(stderr)?.[1];
      ok({ ms, peakRssBytes: Number(kb ?? NaN) * 1024, code: code ?? -1, stdout, stderr });
    });
  });
}

function checkRun(what: string, run: ChildRun): void {
  if (run.code !== 0) throw new Error(`${what} exited ${run.code}:\n${run.stdout}\n${run.stderr}`);
}

interface SizeResult {
  entries: number;
  fileBytes: number;
  exportMs: number;
  exportRss: number;
  csvMs: number | null;
  csvRss: number | null;
  csvBytes: number | null;
  verifyMs: number;
  verifyRss: number;
  verifyOutput: string;
}

interface StoreResult {
  store: "sqlite" | "postgres";
  details: string;
  appends: AppendResult[];
  fillSeconds: number;
  sizes: SizeResult[];
  cliStartMs: number;
  cliStartRss: number;
}

async function benchStore(
  kind: "sqlite" | "postgres",
  work: string,
  keys: KeySet,
  keysDir: string,
  pgServer: Pg | null,
): Promise<StoreResult> {
  const dir = join(work, kind);
  mkdirSync(dir);
  const urlFor = async (name: string): Promise<string> =>
    kind === "sqlite"
      ? `sqlite:${join(dir, `${name}.db`)}`
      : createDatabase((pgServer as Pg).url, `idbridge_bench_${name}`);
  const details =
    kind === "sqlite"
      ? "better-sqlite3, journal_mode=WAL, synchronous=FULL (as set by the store)"
      : `PostgreSQL ${pgServer?.version}: ${pgServer?.settings}; pool 10`;

  // 1. Appends.
  const appends: AppendResult[] = [];
  if (APPENDS > 0) {
    log(`${kind}: ${fmt(APPENDS)} appends from ${CONCURRENCY} concurrent callers`);
    const store = await openStore({ url: await urlFor("appends_concurrent") });
    try {
      appends.push(
        await measureAppends(store, keys, APPENDS, CONCURRENCY, `${CONCURRENCY} concurrent callers`),
      );
    } finally {
      await store.close();
    }
  }
  if (SEQUENTIAL > 0) {
    log(`${kind}: ${fmt(SEQUENTIAL)} appends from one caller awaiting each`);
    const store = await openStore({ url: await urlFor("appends_sequential") });
    try {
      appends.push(await measureAppends(store, keys, SEQUENTIAL, 1, "1 caller, each awaited"));
    } finally {
      await store.close();
    }
  }

  // 2./3. Fill, export (JSONL, CSV) and verify at each size.
  const url = await urlFor("export");
  const config = join(dir, "idbridge.yaml");
  // JSON is YAML; `$` never occurs in the URL (base64url password), so no ${ENV} substitution applies.
  writeFileSync(
    config,
    JSON.stringify(
      { dataDir: dir, store: { url }, keys: { dir: keysDir, generateIfMissing: false } },
      null,
      2,
    ),
  );
  const start = await runCli(["config", "check", "-c", config]);
  checkRun("config check", start);

  const sizes: SizeResult[] = [];
  let filled = 0;
  let fillMs = 0;
  const store = await openStore({ url });
  const audit = new AuditLog(store, keys.audit, { checkpointEvery: 1000, checkpointIntervalMs: 0 });
  try {
    for (const size of SIZES) {
      log(`${kind}: filling the log to ${fmt(size)} entries`);
      fillMs += await fill(store, audit, filled, size);
      filled = size;
      await settle(url);

      const out = join(dir, `export-${size}.jsonl`);
      log(`${kind}: export ${fmt(size)} (JSONL)`);
      const exp = await runCli(["audit", "export", "-c", config, "-o", out]);
      checkRun("audit export", exp);
      const fileBytes = statSync(out).size;

      let csv: ChildRun | null = null;
      let csvBytes: number | null = null;
      if (!opts["no-csv"]) {
        const csvOut = join(dir, `export-${size}.csv`);
        log(`${kind}: export ${fmt(size)} (CSV)`);
        csv = await runCli(["audit", "export", "-c", config, "--format", "csv", "-o", csvOut]);
        checkRun("audit export --format csv", csv);
        csvBytes = statSync(csvOut).size;
        rmSync(csvOut);
      }

      log(`${kind}: verify ${fmt(size)}`);
      const ver = await runCli(["audit", "verify", out, "--jwks", join(keysDir, "jwks.json")]);
      checkRun("audit verify", ver);
      if (!ver.stdout.startsWith(`verified ${size} entries`))
        throw new Error(`unexpected verify output: ${ver.stdout}`);
      rmSync(out);
      sizes.push({
        entries: size,
        fileBytes,
        exportMs: exp.ms,
        exportRss: exp.peakRssBytes,
        csvMs: csv?.ms ?? null,
        csvRss: csv?.peakRssBytes ?? null,
        csvBytes,
        verifyMs: ver.ms,
        verifyRss: ver.peakRssBytes,
        verifyOutput: ver.stdout.trim(),
      });
      log(
        `${kind}: ${fmt(size)}: export ${secs(exp.ms)} peak ${mb(exp.peakRssBytes)}` +
          (csv ? `, csv ${secs(csv.ms)} peak ${mb(csv.peakRssBytes)}` : "") +
          `, verify ${secs(ver.ms)} peak ${mb(ver.peakRssBytes)}`,
      );
    }
  } finally {
    await store.close();
  }
  return {
    store: kind,
    details,
    appends,
    fillSeconds: fillMs / 1000,
    sizes,
    cliStartMs: start.ms,
    cliStartRss: start.peakRssBytes,
  };
}

// ---------------------------------------------------------------------------------------------------
// Report

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

function report(m: Machine, results: StoreResult[], command: string): string {
  const out: string[] = [];
  out.push(`Command: \`${command}\``);
  out.push("");
  out.push(`- CPU: ${m.cpu}, nproc ${m.nproc}`);
  out.push(`- Memory: ${m.memory}`);
  out.push(`- Node: ${m.node} on ${m.os}`);
  out.push(
    `- Disk: ${m.disk}; 4 KiB write+fdatasync: ${fmt(m.fsyncPerSecond)}/s (median ${fmt(m.fsyncMedianMs, 2)} ms, p99 ${fmt(m.fsyncP99Ms, 2)} ms)`,
  );
  out.push(`- SQLite ${m.sqlite}${m.postgres ? `; PostgreSQL ${m.postgres}` : ""}`);
  out.push(
    `- Peak RSS measured with ${HAVE_GNU_TIME ? "GNU time -v (wait4 ru_maxrss of the CLI process)" : "getrusage maxRSS reported by the CLI process at exit"}`,
  );
  out.push("");
  for (const r of results) out.push(`- ${r.store}: ${r.details}`);
  out.push("");
  out.push(
    "Durable appends (AuditLog.record resolves after the commit; checkpoint signed every 1000 entries):",
  );
  out.push("");
  out.push(
    table(
      [
        "store",
        "callers",
        "entries",
        "time",
        "appends/s",
        "transactions",
        "entries/tx",
        "p50 latency",
        "p99 latency",
      ],
      results.flatMap((r) =>
        r.appends.map((a) => [
          r.store,
          a.mode,
          fmt(a.entries),
          secs(a.seconds * 1000),
          fmt(a.perSecond),
          fmt(a.transactions),
          fmt(a.meanBatch, 1),
          `${fmt(a.p50ms, 2)} ms`,
          `${fmt(a.p99ms, 2)} ms`,
        ]),
      ),
    ),
  );
  out.push("");
  out.push("Export and verify through the CLI (child process; times include CLI start-up):");
  out.push("");
  out.push(
    table(
      [
        "store",
        "entries",
        "JSONL size",
        "export time",
        "export peak RSS",
        "CSV export time",
        "CSV peak RSS",
        "verify time",
        "verify peak RSS",
      ],
      results.flatMap((r) =>
        r.sizes.map((s) => [
          r.store,
          fmt(s.entries),
          mb(s.fileBytes),
          secs(s.exportMs),
          mb(s.exportRss),
          s.csvMs === null ? "-" : secs(s.csvMs),
          s.csvRss === null ? "-" : mb(s.csvRss),
          secs(s.verifyMs),
          mb(s.verifyRss),
        ]),
      ),
    ),
  );
  out.push("");
  for (const r of results) {
    out.push(
      `- ${r.store}: CLI start-up alone (\`config check\`): ${secs(r.cliStartMs)}, peak RSS ${mb(r.cliStartRss)}; ` +
        `filling ${fmt(r.sizes.at(-1)?.entries ?? 0)} entries via appendAudit (1000/tx + checkpoint): ${fmt(r.fillSeconds, 1)} s`,
    );
  }
  out.push("");
  out.push("Targets:");
  out.push("");
  const sqliteBest = results.find((r) => r.store === "sqlite")?.appends[0];
  const verdict = (ok: boolean): string => (ok ? "met" : "MISSED");
  if (sqliteBest)
    out.push(
      `- appends >= 5,000/s on SQLite: ${fmt(sqliteBest.perSecond)}/s with ${sqliteBest.mode} — ${verdict(sqliteBest.perSecond >= 5000)}`,
    );
  for (const r of results) {
    const big = r.sizes.find((s) => s.entries === 1_000_000);
    if (big)
      out.push(
        `- verify 1,000,000 in <= 10 s (${r.store}): ${secs(big.verifyMs)} — ${verdict(big.verifyMs <= 10_000)}`,
      );
    const worst = Math.max(...r.sizes.flatMap((s) => [s.exportRss, s.csvRss ?? 0]));
    if (r.sizes.length > 0)
      out.push(
        `- export peak RSS <= 150 MB (${r.store}, all sizes, ${opts["no-csv"] ? "JSONL" : "JSONL and CSV"}): max ${mb(worst)} — ${verdict(worst <= 150 * 1024 * 1024)}`,
      );
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const command = `npm run bench:audit -- ${process.argv.slice(2).join(" ")}`.trim();
  const work = mkdtempSync(join(os.tmpdir(), "idbridge-bench-"));
  let pgServer: Pg | null = null;
  const cleanup = async (): Promise<void> => {
    await pgServer?.stop().catch(() => undefined);
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    log(
      `work directory ${work}; entries ${fmt(ENTRIES)}, export sizes ${SIZES.map((s) => fmt(s)).join(", ")}`,
    );
    const keysDir = join(work, "keys");
    const keys = await generateKeys(keysDir);
    if (STORES.includes("postgres")) {
      if (opts["pg-url"]) {
        const facts = await pgFacts(opts["pg-url"]);
        pgServer = { url: opts["pg-url"], ...facts, stop: async () => undefined };
      } else {
        log("starting PostgreSQL with default durability settings");
        pgServer = await startDurablePostgres();
      }
      log(`PostgreSQL ${pgServer.version}: ${pgServer.settings}`);
    }
    const m = machine(work, pgServer?.version ?? null);
    const results: StoreResult[] = [];
    for (const kind of STORES) {
      if (kind !== "sqlite" && kind !== "postgres") throw new Error(`--stores: unknown store ${kind}`);
      results.push(await benchStore(kind, work, keys, keysDir, pgServer));
    }
    const text = report(m, results, command);
    process.stdout.write(`\n${text}\n`);
    if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ command, machine: m, results }, null, 2)}\n`);
  } finally {
    await cleanup();
  }
}

await main();
