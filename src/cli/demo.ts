/**
 * `idbridge demo`: starts the demo (src/demo/run.ts), prints its banner on stdout and runs until SIGINT or
 * SIGTERM; idbridge's JSON log goes to a file in the data dir so the banner stays readable.
 */
import { startDemo } from "../demo/run.js";

/** Options of `idbridge demo`. */
export interface DemoCommandOptions {
  readonly port: number;
  readonly dataDir: string;
  readonly reset: boolean;
}

/** Runs the demo until SIGINT (Ctrl-C) or SIGTERM, then stops everything gracefully. */
export async function runDemo(options: DemoCommandOptions): Promise<void> {
  // Listen for signals before starting, so one that arrives during start-up still stops us gracefully.
  let wake = (): void => undefined;
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  process.on("SIGTERM", wake);
  process.on("SIGINT", wake);
  try {
    process.stderr.write(`starting the idbridge demo in ${options.dataDir}…\n`);
    const demo = await startDemo({
      ...options,
      note: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(demo.banner);
    await stopRequested;
    process.stderr.write("stopping…\n");
    await demo.stop();
    process.stderr.write("stopped; run it again to resume where you left off.\n");
  } finally {
    process.off("SIGTERM", wake);
    process.off("SIGINT", wake);
  }
}
