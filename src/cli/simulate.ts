import { stringify } from "yaml";
import { AppError } from "../domain/errors.js";

/** What `idbridge simulate` needs from a simulator: the config entry that points idbridge at it. */
interface StartedSimulator {
  readonly url: string;
  close(): Promise<void>;
  /** `sources:` or `targets:`, and the entry's `config:`. */
  readonly entry: { readonly list: "sources" | "targets"; readonly config: Record<string, unknown> };
  /** What the banner says it serves. */
  readonly serves: string;
}

interface SimulatorOptions {
  readonly port?: number;
  readonly people: number;
  readonly seed: number;
  readonly faults?: string;
}

// Loaded on demand: the simulators are not part of the service's start-up.
const SIMULATORS: Record<string, (options: SimulatorOptions) => Promise<StartedSimulator>> = {
  dingtalk: async (options) => {
    const sim = await (await import("../simulators/dingtalk/index.js")).startDingTalkSimulator(options);
    return { ...asSource(sim), serves: company(options) };
  },
  wecom: async (options) => {
    const sim = await (await import("../simulators/wecom/index.js")).startWeComSimulator(options);
    return { ...asSource(sim), serves: company(options) };
  },
  // A fresh standalone 合思 tenant: the company arrives through a sync.
  hesi: async (options) => {
    const { startHesiSimulator } = await import("../simulators/hesi/index.js");
    const sim = await startHesiSimulator({
      ...(options.port === undefined ? {} : { port: options.port }),
      ...(options.faults === undefined ? {} : { faults: options.faults }),
    });
    return {
      url: sim.url,
      close: () => sim.close(),
      entry: { list: "targets", config: sim.targetConfig() },
      serves: `an empty tenant; its staff, departments and roles are listed at ${sim.url}/`,
    };
  },
};

function asSource(sim: {
  url: string;
  close(): Promise<void>;
  sourceConfig(): Record<string, unknown>;
}): Omit<StartedSimulator, "serves"> {
  return { url: sim.url, close: () => sim.close(), entry: { list: "sources", config: sim.sourceConfig() } };
}

function company(options: SimulatorOptions): string {
  return `${options.people} people, seed ${options.seed}`;
}

/**
 * Runs a simulator on 127.0.0.1 until SIGINT or SIGTERM. Once it listens, stdout gets the `sources:` (for a
 * finance platform `targets:`) entry (YAML) that points idbridge at it; the banner goes to stderr so stdout
 * can be redirected into a config file.
 */
export async function runSimulator(vendor: string, options: SimulatorOptions): Promise<void> {
  const start = SIMULATORS[vendor];
  if (start === undefined) {
    throw new AppError(
      "INPUT_INVALID",
      `unknown simulator "${vendor}" (known: ${Object.keys(SIMULATORS).join(", ")})`,
    );
  }
  let wake = (): void => undefined;
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  process.on("SIGTERM", wake);
  process.on("SIGINT", wake);
  try {
    const simulator = await start(options);
    const entry = {
      [simulator.entry.list]: [{ id: `${vendor}-sim`, type: vendor, config: simulator.entry.config }],
    };
    process.stderr.write(
      `${vendor} simulator listening on ${simulator.url} (${simulator.serves}` +
        `${options.faults ? `, faults ${options.faults}` : ""}); Ctrl-C stops it. Test credentials only.\n`,
    );
    process.stdout.write(stringify(entry));
    await stopRequested;
    await simulator.close();
  } finally {
    process.off("SIGTERM", wake);
    process.off("SIGINT", wake);
  }
}
