import { stringify } from "yaml";
import { AppError } from "../domain/errors.js";

/** What `idbridge simulate` needs from a simulator. */
interface StartedSimulator {
  readonly url: string;
  close(): Promise<void>;
  sourceConfig(): Record<string, unknown>;
}

interface SimulatorOptions {
  readonly port?: number;
  readonly people: number;
  readonly seed: number;
  readonly faults?: string;
}

// Loaded on demand: the simulators are not part of the service's start-up.
const SIMULATORS: Record<string, (options: SimulatorOptions) => Promise<StartedSimulator>> = {
  dingtalk: async (options) =>
    (await import("../simulators/dingtalk/index.js")).startDingTalkSimulator(options),
  wecom: async (options) => (await import("../simulators/wecom/index.js")).startWeComSimulator(options),
};

/**
 * Runs a simulator on 127.0.0.1 until SIGINT or SIGTERM. Once it listens, stdout gets the `sources:`
 * entry (YAML) that points idbridge at it; the banner goes to stderr so stdout can be redirected into a
 * config file.
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
    const entry = { sources: [{ id: `${vendor}-sim`, type: vendor, config: simulator.sourceConfig() }] };
    process.stderr.write(
      `${vendor} simulator listening on ${simulator.url} (${options.people} people, seed ${options.seed}` +
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
