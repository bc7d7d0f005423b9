/**
 * A private OpenLDAP slapd for tests and benchmarks: its own mdb database under the system temp
 * directory, memberof + refint + syncprov overlays, listening on a free port of 127.0.0.1 only.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, mkdir, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectionOptions } from "node:tls";
import { promisify } from "node:util";
import { Client } from "ldapts";
import { ensureDebianPackages } from "./packages.js";
import { exited, freePort, stopChild, tailOf } from "./process.js";

const run = promisify(execFile);

/** A running slapd and how to get rid of it. */
export interface SlapdPeer {
  /** `ldap://127.0.0.1:PORT`. */
  readonly url: string;
  /** The database suffix. */
  readonly baseDn: string;
  /** The rootdn. */
  readonly adminDn: string;
  /** The rootdn's password (made up at start). */
  readonly adminPassword: string;
  /** The work directory (config, database, log). */
  readonly dir: string;
  /** PID of the slapd process. */
  readonly pid: number;
  /** SIGTERM, SIGKILL after 10 s, then removes the work directory. */
  stop(): Promise<void>;
}

export interface SlapdOptions {
  /** Database suffix; default dc=example,dc=test. */
  readonly baseDn?: string;
  /** mdb map size; default 100 MB. */
  readonly maxSizeMb?: number;
  /** An LDIF file loaded with slapadd before the server starts (benchmarks: fast bulk load). */
  readonly slapaddLdif?: string;
}

/** Polls an anonymous root DSE read until it answers, the process dies, or `ms` pass. */
export async function waitForLdap(
  url: string,
  child: ChildProcess,
  log: string,
  ms: number,
  tlsOptions?: ConnectionOptions,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error(`${url}: server exited during start-up:\n${await tailOf(log)}`);
    const client = new Client({
      url,
      connectTimeout: 1000,
      timeout: 2000,
      ...(tlsOptions ? { tlsOptions } : {}),
    });
    try {
      await client.search("", { scope: "base", attributes: ["namingContexts"] });
      return;
    } catch (err) {
      last = err;
    } finally {
      await client.unbind().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within ${ms} ms (${String(last)}):\n${await tailOf(log)}`);
}

/** Starts slapd (installing Debian's slapd first when missing and allowed); throws with the reason otherwise. */
export async function startSlapd(options: SlapdOptions = {}): Promise<SlapdPeer> {
  const problem = await ensureDebianPackages(["slapd", "ldap-utils"], "OpenLDAP integration tests");
  if (problem !== null) throw new Error(problem);
  const baseDn = options.baseDn ?? "dc=example,dc=test";
  const adminDn = `cn=admin,${baseDn}`;
  const adminPassword = randomBytes(12).toString("base64url");
  const dir = await mkdtemp(join(tmpdir(), "idbridge-slapd-"));
  let child: ChildProcess | undefined;
  try {
    await mkdir(join(dir, "data"));
    const conf = join(dir, "slapd.conf");
    await writeFile(
      conf,
      [
        "include /etc/ldap/schema/core.schema",
        "include /etc/ldap/schema/cosine.schema",
        "include /etc/ldap/schema/inetorgperson.schema",
        "include /etc/ldap/schema/nis.schema",
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
        "moduleload memberof",
        "moduleload refint",
        "moduleload syncprov",
        `pidfile ${dir}/slapd.pid`,
        `argsfile ${dir}/slapd.args`,
        "sizelimit unlimited",
        "",
        "database mdb",
        `maxsize ${(options.maxSizeMb ?? 100) * 1024 * 1024}`,
        `suffix "${baseDn}"`,
        `rootdn "${adminDn}"`,
        `rootpw ${adminPassword}`,
        `directory ${dir}/data`,
        "index objectClass eq",
        "index uid,cn,mail,member,memberOf,entryUUID,entryCSN eq",
        "access to attrs=userPassword by self write by anonymous auth by * none",
        "access to * by users read by * none",
        "",
        "overlay memberof",
        "memberof-group-oc groupOfNames",
        "memberof-member-ad member",
        "memberof-memberof-ad memberOf",
        "memberof-refint TRUE",
        "overlay refint",
        "refint_attributes member",
        // syncprov keeps contextCSN on the suffix: the reader's change high-water mark (RFC 4533).
        "overlay syncprov",
        "",
      ].join("\n"),
    );
    await run("slaptest", ["-Q", "-u", "-f", conf]);
    if (options.slapaddLdif !== undefined) {
      await run("slapadd", ["-q", "-f", conf, "-l", options.slapaddLdif], { maxBuffer: 64 * 1024 * 1024 });
    }
    const log = join(dir, "slapd.log");
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `ldap://127.0.0.1:${port}`;
      const logFile = await open(log, "a");
      // -d 0: stay in the foreground, so the child's PID is slapd's.
      child = spawn("slapd", ["-f", conf, "-h", `${url}/`, "-d", "0"], {
        stdio: ["ignore", logFile.fd, logFile.fd],
      });
      await logFile.close();
      try {
        await waitForLdap(url, child, log, 15_000);
      } catch (err) {
        if (exited(child) && /bind|Address already in use/i.test(await tailOf(log)) && attempt < 3) continue;
        throw err;
      }
      const started = child;
      let stopping: Promise<void> | undefined;
      return {
        url,
        baseDn,
        adminDn,
        adminPassword,
        dir,
        pid: started.pid!,
        stop: () =>
          (stopping ??= (async () => {
            await stopChild(started);
            await rm(dir, { recursive: true, force: true });
          })()),
      };
    }
  } catch (err) {
    if (child) await stopChild(child, 2_000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Adds entries through the running server (so memberof computes memberOf), `batch` at a time. */
export async function addEntries(
  peer: Pick<SlapdPeer, "url" | "adminDn" | "adminPassword">,
  entries: ReadonlyArray<{ dn: string; attributes: Record<string, string | string[]> }>,
  batch = 50,
): Promise<void> {
  const client = new Client({ url: peer.url, timeout: 30_000 });
  try {
    await client.bind(peer.adminDn, peer.adminPassword);
    for (let i = 0; i < entries.length; i += batch) {
      await Promise.all(entries.slice(i, i + batch).map((e) => client.add(e.dn, e.attributes)));
    }
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
