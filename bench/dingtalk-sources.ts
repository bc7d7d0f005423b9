/**
 * DingTalk source benchmark (not a test): reads N generated people with their departments and roles from
 * the DingTalk simulator with our reader, under the simulator's rate limits (`--qps` calls per second per
 * app and API, 10,000 calls per 20 s per IP), and compares with the floor: the least time those calls
 * need under those limits — for each API, the calls it served ÷ the calls it allows per second; the
 * slowest API decides (the APIs have separate budgets and run side by side). Throttled calls are left out
 * of the floor. The reader runs in a child process, so its peak RSS (VmHWM) is its own, not the
 * simulator's.
 *
 *   node --import tsx bench/dingtalk-sources.ts [--people 100000] [--qps 100] [--runs 1] [--concurrency C] [--json FILE]
 *
 * Aim (issue 3): within 1.3x of the floor, peak RSS <= 500 MB for 100,000 people.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { generateOrg } from "../src/simulators/common/org.js";
import { startDingTalkSimulator } from "../src/simulators/dingtalk/index.js";
import { dingtalkConfigSchema } from "../src/sources/dingtalk/config.js";
import { openDingTalkDirectory } from "../src/sources/dingtalk/reader.js";
import { defaultSourceContext } from "../src/sources/registry.js";
import { incompleteReasons } from "../src/sources/snapshot.js";
import type { BenchRow } from "./bench-row.js";

const HERE = fileURLToPath(import.meta.url);
const CHILD_ENV = "IDBRIDGE_BENCH_DINGTALK_CHILD";
// DingTalk's per-IP limit (reference A7): 10,000 calls per 20 s.
const IP_CALLS_PER_SECOND = 10_000 / 20;

/** What the child process reports about its read. */
interface ChildResult {
  readonly seconds: number;
  readonly people: number;
  readonly departments: number;
  readonly groups: number;
  readonly complete: boolean;
  readonly reasons: readonly string[];
  readonly peakRssMb: number;
}

/** Reads `people` people from a fresh simulator limited to `qps` calls per second per API, `runs` times. */
export async function runDingtalkBench(options: {
  people: number;
  qps: number;
  runs?: number;
  /** The reader's `concurrency` (requests in flight per API); the config default when absent. */
  concurrency?: number;
}): Promise<BenchRow[]> {
  const runs = options.runs ?? 1;
  const org = generateOrg({ people: options.people, seed: 1 });
  const ours: number[] = [];
  const floors: number[] = [];
  let peakRssMb = 0;
  let detail = "";
  for (let run = 0; run < runs; run++) {
    const sim = await startDingTalkSimulator({ org, qps: options.qps });
    try {
      const result = await readInChild({
        ...sim.sourceConfig(),
        requestsPerSecond: options.qps,
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      });
      if (!result.complete) throw new Error(`the read was not complete: ${result.reasons.join("; ")}`);
      const served = new Map<string, number>();
      for (const [path, calls] of sim.controls.calls) {
        served.set(path, calls - (sim.throttled.get(path) ?? 0));
      }
      const total = [...served.values()].reduce((a, b) => a + b, 0);
      const perApi = [...served].map(([path, calls]) => ({ path, seconds: calls / options.qps }));
      const slowest = perApi.reduce((a, b) => (b.seconds > a.seconds ? b : a));
      const floor = Math.max(slowest.seconds, total / IP_CALLS_PER_SECOND);
      ours.push(result.seconds);
      floors.push(floor);
      peakRssMb = Math.max(peakRssMb, result.peakRssMb);
      const throttled = [...sim.throttled.values()].reduce((a, b) => a + b, 0);
      detail =
        `${result.people} people, ${result.departments} departments, ${result.groups} roles/role groups; ` +
        `${total} calls (${[...served].map(([p, c]) => `${p} ${c}`).join(", ")}); ` +
        `floor set by ${slowest.path}; ${throttled} calls throttled`;
    } finally {
      await sim.close();
    }
  }
  const oursSeconds = median(ours);
  const floorSeconds = median(floors);
  return [
    {
      name: `dingtalk: read ${options.people.toLocaleString("en")} people + departments + roles from the simulator at ${options.qps} calls/s per API`,
      oursSeconds: round(oursSeconds),
      floorSeconds: round(floorSeconds),
      ratio: round(oursSeconds / floorSeconds),
      peakRssMb: Math.round(peakRssMb),
      notes: `reader in a child process (VmHWM), simulator in the parent; median of ${runs} run(s); ${detail}`,
    },
  ];
}

function readInChild(config: Record<string, unknown>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", HERE], {
      env: { ...process.env, [CHILD_ENV]: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`the reader process exited with ${code}`));
      else resolve(JSON.parse(out) as ChildResult);
    });
  });
}

/** The child: one full read, timed from the first call to the snapshot. */
async function childMain(configJson: string): Promise<void> {
  const config = dingtalkConfigSchema.parse(JSON.parse(configJson));
  const reader = openDingTalkDirectory(defaultSourceContext("dingtalk-bench"), config);
  const started = performance.now();
  const snapshot = await reader.read({ mode: "full" });
  const seconds = (performance.now() - started) / 1000;
  await reader.close();
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  const result: ChildResult = {
    seconds,
    people: snapshot.people.length,
    departments: snapshot.departments.length,
    groups: snapshot.groups.length,
    complete: snapshot.completeness.complete,
    reasons: incompleteReasons(snapshot).map((r) => r.message),
    peakRssMb: hwm === undefined ? Number.NaN : Number(hwm) / 1024,
  };
  process.stdout.write(JSON.stringify(result));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      people: { type: "string", default: "100000" },
      qps: { type: "string", default: "100" },
      runs: { type: "string", default: "1" },
      concurrency: { type: "string" },
      json: { type: "string" },
    },
  });
  const rows = await runDingtalkBench({
    people: Number(values.people),
    qps: Number(values.qps),
    runs: Number(values.runs),
    ...(values.concurrency === undefined ? {} : { concurrency: Number(values.concurrency) }),
  });
  process.stdout.write(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}\n`,
  );
  for (const row of rows) {
    process.stdout.write(
      `${row.name}\n  ours ${row.oursSeconds} s, floor ${row.floorSeconds} s, ratio ${row.ratio}, peak RSS ${row.peakRssMb} MB\n  ${row.notes}\n`,
    );
  }
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(rows, null, 2)}\n`);
}

const childConfig = process.env[CHILD_ENV];
if (childConfig !== undefined) {
  await childMain(childConfig);
} else if (
  process.argv[1] !== undefined &&
  pathToFileURL(resolve(process.argv[1])).href === import.meta.url
) {
  await main();
}
