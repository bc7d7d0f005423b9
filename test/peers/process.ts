/** Process and port helpers shared by the peers: every peer runs as a child we stop by its PID. */
import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";

/** A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True once the child has exited or was killed. */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when the child exits within `ms`, false otherwise. */
export function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Stops a child by its PID: `signal` (SIGTERM), then SIGKILL after `ms`. */
export async function stopChild(
  child: ChildProcess,
  ms = 10_000,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (exited(child)) return;
  child.kill(signal);
  if (!(await waitForExit(child, ms))) {
    child.kill("SIGKILL");
    await waitForExit(child, 5_000);
  }
}

/** The last lines of a log file ("" when it cannot be read). */
export async function tailOf(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").slice(-lines).join("\n");
}
