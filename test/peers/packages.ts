import { execFile, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Whether dpkg reports `pkg` as fully installed (not absent, not only its config files left). */
async function isInstalled(pkg: string): Promise<boolean> {
  try {
    const { stdout } = await run("dpkg-query", ["-W", "-f=${Status}", pkg]);
    return stdout.trim() === "install ok installed";
  } catch {
    // dpkg-query exits 1 for a package it has never heard of, and is absent off Debian.
    return false;
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** Runs a command with its output on our stderr (stdout is for the test reporter). */
function runLoud(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  process.stderr.write(`[peers] $ ${command} ${args.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", 2, 2], env });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

let aptUpdated = false;

/**
 * Makes sure the Debian packages `pkgs` are installed. Installs the missing ones when we are root and
 * apt-get exists; otherwise returns a message naming the one command that would install them.
 *
 * @param what - what needs the packages, for messages (`PostgreSQL integration tests`)
 * @returns null when every package is installed (now), else why not
 */
export async function ensureDebianPackages(pkgs: readonly string[], what: string): Promise<string | null> {
  const missing: string[] = [];
  for (const pkg of pkgs) if (!(await isInstalled(pkg))) missing.push(pkg);
  if (missing.length === 0) return null;

  const install = ["install", "-y", "--no-install-recommends", ...missing];
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !onPath("apt-get")) {
    const command = `${isRoot ? "" : "sudo "}env DEBIAN_FRONTEND=noninteractive apt-get ${install.join(" ")}`;
    return `${what} need the Debian package(s) ${missing.join(", ")}, not installed; install with: ${command}`;
  }

  process.stderr.write(`[peers] ${what} need ${missing.join(", ")}; installing with apt-get\n`);
  // Debian's policy-rc.d protocol: exit 101 forbids maintainer scripts to start the packaged daemons; the
  // tests start their own servers as children, on free ports.
  if (!existsSync("/usr/sbin/policy-rc.d")) {
    process.stderr.write("[peers] writing /usr/sbin/policy-rc.d (exit 101) so no daemon starts\n");
    writeFileSync("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  }
  try {
    if (!aptUpdated) {
      await runLoud("apt-get", ["update"]);
      aptUpdated = true;
    }
    await runLoud("apt-get", install, { ...process.env, DEBIAN_FRONTEND: "noninteractive" });
  } catch (err) {
    return `${what}: installing ${missing.join(", ")} failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  const still: string[] = [];
  for (const pkg of missing) if (!(await isInstalled(pkg))) still.push(pkg);
  return still.length === 0 ? null : `${what}: ${still.join(", ")} still not installed after apt-get install`;
}
