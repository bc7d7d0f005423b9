/**
 * A throwaway PostgreSQL server for the integration tests: its own data directory under the system temp
 * directory, scram password auth with a password made up at run time, listening on 127.0.0.1 only.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdtemp, open, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { ensureDebianPackages } from "./packages.js";
import { exited, freePort, sleep, stopChild, tailOf } from "./process.js";

const run = promisify(execFile);

/** A running server and how to get rid of it. */
export interface PostgresPeer {
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`. */
  url: string;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s, then removes the data directory. */
  stop(): Promise<void>;
}

const PG_ROOT = "/usr/lib/postgresql";

/** The `bin` directory of the newest PostgreSQL Debian has installed, if any. */
async function findPostgresBin(): Promise<string | null> {
  const versions = await readdir(PG_ROOT).catch(() => [] as string[]);
  const usable = versions
    .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a));
  return usable[0] === undefined ? null : join(PG_ROOT, usable[0], "bin");
}

/** initdb and postgres refuse to run as root; as root we become Debian's `postgres` system user. */
interface RunAs {
  prefix: string[];
  uid: number;
  gid: number;
}

async function runAs(): Promise<RunAs | null> {
  if (process.getuid?.() !== 0) return null;
  const id = async (flag: string) => Number((await run("id", [flag, "postgres"])).stdout.trim());
  return {
    prefix: ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"],
    uid: await id("-u"),
    gid: await id("-g"),
  };
}

/** Connects until a real query works, the server dies, or 30 s pass. */
async function waitUntilReady(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error(`postgres exited during start-up:\n${await tailOf(log, 15)}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (err) {
      lastError = err;
    } finally {
      await client.end().catch(() => undefined);
    }
    await sleep(50);
  }
  throw new Error(
    `postgres did not accept connections within 30 s (${String(lastError)}):\n${await tailOf(log, 15)}`,
  );
}

/**
 * Starts a PostgreSQL server for this test run. Installs Debian's `postgresql` first if no server is
 * installed and we may (see packages.ts); throws with the reason if it cannot be had. With `durable`,
 * PostgreSQL keeps its default fsync settings (benchmarks); tests run without them.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PostgresPeer> {
  let bin = await findPostgresBin();
  if (bin === null) {
    const problem = await ensureDebianPackages(["postgresql"], "PostgreSQL integration tests");
    if (problem !== null) throw new Error(problem);
    bin = await findPostgresBin();
    if (bin === null) throw new Error(`package postgresql is installed but ${PG_ROOT}/*/bin/postgres is not`);
  }

  const as = await runAs();
  const work = await mkdtemp(join(tmpdir(), "idbridge-pg-"));
  let child: ChildProcess | undefined;
  const removeWork = () => rm(work, { recursive: true, force: true });
  try {
    // mkdtemp makes 0700 directories; the postgres user must be able to reach the data directory inside.
    await chmod(work, 0o755);
    if (as) await chown(work, as.uid, as.gid);
    const data = join(work, "data");
    const pwfile = join(work, "pw");
    const password = randomBytes(24).toString("base64url");
    await writeFile(pwfile, password, { mode: 0o600 });
    if (as) await chown(pwfile, as.uid, as.gid);

    const initdb = [
      join(bin, "initdb"),
      ...["-D", data, "-U", "postgres", `--pwfile=${pwfile}`, "--auth=scram-sha-256"],
      ...["--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"],
    ];
    const [command, ...args] = [...(as?.prefix ?? []), ...initdb] as [string, ...string[]];
    try {
      await run(command, args);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`initdb failed: ${e.stderr?.trim() || e.message}`);
    } finally {
      await rm(pwfile, { force: true });
    }

    // The port is picked before postgres binds it; another process may take it in between, so retry.
    const log = join(work, "server.log");
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logFile = await open(log, "a");
      const server = [
        join(bin, "postgres"),
        ...[
          "-D",
          data,
          "-p",
          String(port),
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          `unix_socket_directories=${data}`,
        ],
        // Durability is worthless for a database that is deleted after the run (unless we measure it).
        ...(options.durable
          ? []
          : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
      ];
      const [cmd, ...rest] = [...(as?.prefix ?? []), ...server] as [string, ...string[]];
      // setpriv execs, so the child's pid is the postmaster's and signals reach it directly.
      child = spawn(cmd, rest, { stdio: ["ignore", logFile.fd, logFile.fd] });
      await logFile.close();
      const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
      try {
        await waitUntilReady(url, child, log);
      } catch (err) {
        const bindFailed = /could not (bind|create listen socket)/.test(await tailOf(log, 15));
        if (exited(child) && bindFailed && attempt < 3) continue;
        throw err;
      }
      const started = child;
      let stopping: Promise<void> | undefined;
      return {
        url,
        stop: () =>
          (stopping ??= (async () => {
            // SIGINT is PostgreSQL's fast shutdown: disconnect clients, checkpoint, exit.
            await stopChild(started, 10_000, "SIGINT");
            await removeWork();
          })()),
      };
    }
  } catch (err) {
    if (child) await stopChild(child, 0, "SIGKILL");
    await removeWork();
    throw err;
  }
}

/**
 * Creates the empty database `name` on the server at `url` and returns the URL that points at it, so each
 * test (file) works on its own database.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new TypeError(`database name "${name}" must be [a-z_][a-z0-9_]*`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}
