/**
 * The demo's data dir: a marker file that says it is one (so `--reset` never deletes anything else), the
 * simulators' state (credentials, the 合思 tenant) as JSON written atomically, and the first start's plan.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AppError, describeError } from "../domain/errors.js";
import type { DingTalkCredentials } from "../simulators/dingtalk/index.js";
import type { HesiCredentials, HesiTenantSnapshot } from "../simulators/hesi/index.js";

/** The file that marks a directory as the demo's own. */
export const DEMO_MARKER = ".idbridge-demo";
const SIMULATORS_FILE = "simulators.json";

/** What the marker records. */
export interface DemoMarker {
  readonly createdAt: string;
  /** The plan made at first start; absent until it is made (a start that failed before plans again). */
  readonly initialPlan?: string;
}

/** The simulators' state kept across restarts. The DingTalk and WeCom orgs come from the seed. */
export interface SimulatorState {
  readonly dingtalk: DingTalkCredentials;
  readonly wecom: { readonly corpId: string; readonly contactSecret: string; readonly appSecret: string };
  readonly hesi: { readonly credentials: HesiCredentials; readonly tenant: HesiTenantSnapshot };
  /** The finance app's client secret at idbridge. */
  readonly financeSecret: string;
}

/** A demo data dir, ready to use. */
export interface DemoDataDir {
  /** Absolute path. */
  readonly dir: string;
  readonly marker: DemoMarker;
  /** True when the dir was created now (first start or after `--reset`). */
  readonly fresh: boolean;
  /** The simulators' saved state; null on a fresh dir. */
  readonly simulators: SimulatorState | null;
  /** Records the first start's plan in the marker. */
  recordInitialPlan(planId: string): void;
  /** Saves the simulators' state (write to a temp file, then rename over the old one). */
  saveSimulators(state: SimulatorState): void;
}

/**
 * Opens (creating if needed) the demo data dir. `reset` deletes it first — only if it carries the marker;
 * an existing non-empty directory without the marker is refused either way, never written into or deleted.
 */
export function openDemoDataDir(path: string, reset: boolean): DemoDataDir {
  const dir = resolve(path);
  const markerFile = join(dir, DEMO_MARKER);
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(DEMO_MARKER))
      throw new AppError(
        "INPUT_INVALID",
        `${dir} is not a demo data dir (it has no ${DEMO_MARKER} file); refusing to ${reset ? "delete" : "use"} it — choose another --data-dir`,
      );
    if (reset) rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  let marker: DemoMarker;
  const fresh = !existsSync(markerFile);
  if (fresh) {
    marker = { createdAt: new Date().toISOString() };
    writeJson(markerFile, marker);
  } else marker = readJson<DemoMarker>(markerFile);
  const simulatorsFile = join(dir, SIMULATORS_FILE);
  const simulators = existsSync(simulatorsFile) ? readJson<SimulatorState>(simulatorsFile) : null;
  return {
    dir,
    marker,
    fresh,
    simulators,
    recordInitialPlan(planId) {
      marker = { ...marker, initialPlan: planId };
      writeJson(markerFile, marker);
    },
    saveSimulators(state) {
      writeJson(simulatorsFile, state);
    },
  };
}

/** Writes JSON atomically: a crash leaves the old file or the new one, never half of one. */
function writeJson(file: string, value: unknown): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (err) {
    throw new AppError(
      "INPUT_INVALID",
      `cannot read ${file} (${describeError(err)}); start afresh with idbridge demo --reset`,
      { cause: err },
    );
  }
}
