/**
 * A Samba AD DC for the integration tests, on 127.0.0.1 with its own CA-signed certificate (IP SAN
 * 127.0.0.1), provisioned once into a template cached under node_modules/.cache/idbridge-peers/ and
 * restored into a fresh directory per run, then seeded over LDAPS with ldapts
 * (test/fixtures/ldap/ad-directory.ts). Samba's LDAP ports 389/636 are fixed, so there is one DC per run.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Change, Attribute, Client } from "ldapts";
import {
  AD_ADMIN,
  AD_ADMIN_PASSWORD,
  AD_BASE,
  AD_GROUPS,
  AD_OUS,
  AD_PROBE_USER,
  AD_REALM,
  AD_USERS,
  LOCKOUT_THRESHOLD,
  type AdUser,
} from "../fixtures/ldap/ad-directory.js";
import { dateToFileTime } from "../../src/sources/ldap/ad.js";
import { waitForLdap } from "./openldap.js";
import { stopChild, tailOf } from "./process.js";
import { ensureDebianPackages } from "./packages.js";

const run = promisify(execFile);

/** What the tests need to reach the DC. */
export interface SambaInfo {
  /** `ldaps://127.0.0.1:636`. */
  readonly url: string;
  /** `ldap://127.0.0.1:389` (StartTLS, or plain with insecure). */
  readonly plainUrl: string;
  /** PEM of the CA that signed the DC's certificate. */
  readonly caFile: string;
  /** PEM of a CA that did not (for the wrong-CA test). */
  readonly otherCaFile: string;
  readonly bindDn: string;
  readonly bindPassword: string;
  readonly baseDn: string;
}

export interface SambaPeer extends SambaInfo {
  readonly pid: number;
  stop(): Promise<void>;
}

/** How long to wait for 389/636 to come free (another run's DC) before giving up. */
const PORT_WAIT_MS = 120_000;

const CACHE = resolve("node_modules/.cache/idbridge-peers");
const PROVISION_ARGS = [
  "domain",
  "provision",
  `--realm=${AD_REALM}`,
  "--domain=CORP",
  "--server-role=dc",
  "--dns-backend=NONE",
  "--use-rfc2307",
  `--adminpass=${AD_ADMIN_PASSWORD}`,
  "--host-name=dc1",
  "--host-ip=127.0.0.1",
  "--option=interfaces=127.0.0.1",
  "--option=bind interfaces only=yes",
  // Only the LDAP server: simple binds over LDAPS need nothing else, and fewer fixed ports are taken.
  "--option=server services=ldap",
];

async function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => done(err.code === "EADDRINUSE"));
    server.listen(port, "127.0.0.1", () => server.close(() => done(false)));
  });
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd });
}

/** Provisions a domain into `dir` (10–20 s) with directory options that keep everything under `dir`. */
/** A self-signed test CA: `${name}.key` and `${name}.pem` in `dir`. */
function selfSignedCa(dir: string, commonName: string, name: string): Promise<void> {
  const args = [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "3650",
    "-subj",
    `/CN=${commonName}`,
  ];
  return openssl(dir, [...args, "-keyout", `${name}.key`, "-out", `${name}.pem`]);
}

async function provision(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const options = [
    `--targetdir=${dir}`,
    `--option=pid directory=${dir}/run`,
    `--option=ncalrpc dir=${dir}/run/ncalrpc`,
    `--option=winbindd socket directory=${dir}/run/winbindd`,
    `--option=ntp signd socket directory=${dir}/run/ntp_signd`,
    `--option=log file=${dir}/log/log.%m`,
  ];
  try {
    await run("samba-tool", [...PROVISION_ARGS, ...options], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `samba-tool domain provision failed: ${(e.stderr ?? "").trim().split("\n").slice(-5).join("\n") || e.message}`,
    );
  }
  const tls = join(dir, "tls");
  await mkdir(tls, { recursive: true });
  await mkdir(join(dir, "cache"), { recursive: true });
  await mkdir(join(dir, "log"), { recursive: true });
  await selfSignedCa(tls, "idbridge test CA", "ca");
  await openssl(tls, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=dc1.corp.example.test",
    "-keyout",
    "key.pem",
    "-out",
    "srv.csr",
  ]);
  await writeFile(
    join(tls, "ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dc1.corp.example.test\n",
  );
  await openssl(tls, [
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "3650",
    "-extfile",
    "ext.cnf",
    "-out",
    "cert.pem",
  ]);
  // A second CA that signed nothing: the wrong-CA test trusts only this one.
  await selfSignedCa(tls, "unrelated CA", "other");
  // Samba refuses a key file that others can read.
  await chmod(join(tls, "key.pem"), 0o600);
  await chmod(join(tls, "ca.key"), 0o600);
  const smbConf = join(dir, "etc", "smb.conf");
  const conf = await readFile(smbConf, "utf8");
  // Provision drops `ldap server require strong auth` from --option, so it is added here (plain-LDAP test).
  const extra = [
    "\tldap server require strong auth = no",
    `\ttls keyfile = ${dir}/tls/key.pem`,
    `\ttls certfile = ${dir}/tls/cert.pem`,
    `\ttls cafile = ${dir}/tls/ca.pem`,
  ].join("\n");
  await writeFile(smbConf, conf.replace(/^\[global\]$/m, `[global]\n${extra}`));
}

/** Where a template was provisioned, recorded inside it: smb.conf holds that absolute path. */
const PROVISIONED_AT = ".provisioned-at";

/** The cached template tarball, provisioning it first when absent. Keyed by Samba version and options. */
async function template(): Promise<string> {
  const version = (await run("samba", ["--version"])).stdout.trim();
  const key = createHash("sha256")
    .update(JSON.stringify([version, PROVISION_ARGS, 3]))
    .digest("hex")
    .slice(0, 12);
  const tarball = join(CACHE, `samba-ad-${key}.tgz`);
  if (existsSync(tarball)) return tarball;
  await mkdir(CACHE, { recursive: true });
  // Per process, so two runs provisioning at once do not share a directory; the rename below is atomic.
  const dir = join(CACHE, `samba-ad-${key}.${process.pid}`);
  const started = Date.now();
  process.stderr.write(`[peers] provisioning a Samba AD domain template (once; 10–20 s) in ${dir}\n`);
  try {
    await provision(dir);
    await writeFile(join(dir, PROVISIONED_AT), dir);
    const partial = `${tarball}.${process.pid}.tmp`;
    // --xattrs: sysvol carries security.NTACL and POSIX ACL xattrs.
    await run("tar", ["--xattrs", "--xattrs-include=*", "-C", dir, "-czf", partial, "."]);
    await rename(partial, tarball);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.stderr.write(`[peers] Samba template provisioned in ${Date.now() - started} ms\n`);
  return tarball;
}

function adUserAttributes(user: AdUser): Record<string, string | string[]> {
  const passwordFree = user.password === undefined;
  // [MS-ADTS] 2.2.16: NORMAL_ACCOUNT 0x200, ACCOUNTDISABLE 0x2, PASSWD_NOTREQD 0x20.
  const uac = 0x200 | (user.disabled ? 0x2 : 0) | (passwordFree ? 0x20 : 0);
  const attributes: Record<string, string | string[]> = {
    objectClass: ["top", "person", "organizationalPerson", "user"],
    cn: user.cn,
    sAMAccountName: user.sAMAccountName,
    userPrincipalName: `${user.sAMAccountName}@corp.example.test`,
    userAccountControl: String(uac),
    // -1 = "set just now"; the default 0 means "must change at next logon", which AD computes as expired.
    pwdLastSet: "-1",
  };
  for (const key of [
    "displayName",
    "mail",
    "mobile",
    "employeeID",
    "title",
    "department",
    "manager",
  ] as const) {
    const value = user[key];
    if (value !== undefined) attributes[key] = value;
  }
  if (user.accountExpiresInPast) attributes.accountExpires = dateToFileTime(new Date("2020-01-01T00:00:00Z"));
  return attributes;
}

/** unicodePwd: the password in double quotes, UTF-16LE ([MS-ADTS] 3.1.1.3.1.5.1); needs an encrypted connection. */
function unicodePwd(password: string): Buffer {
  return Buffer.from(`"${password}"`, "utf16le");
}

async function seed(info: SambaInfo): Promise<void> {
  const tlsOptions = { ca: await readFile(info.caFile), rejectUnauthorized: true };
  const client = new Client({ url: info.url, tlsOptions, timeout: 60_000 });
  try {
    await client.bind(info.bindDn, info.bindPassword);
    for (const ou of AD_OUS) {
      const name = /^OU=([^,]+)/.exec(ou)![1]!;
      await client.add(ou, { objectClass: ["top", "organizationalUnit"], ou: name });
    }
    const addUser = async (user: AdUser) => {
      const dn = `CN=${user.cn},${user.ou}`;
      await client.add(dn, adUserAttributes(user));
      if (user.password !== undefined) {
        await client.modify(dn, [
          new Change({
            operation: "replace",
            modification: new Attribute({ type: "unicodePwd", values: [unicodePwd(user.password)] }),
          }),
          new Change({
            operation: "replace",
            modification: new Attribute({ type: "userAccountControl", values: ["512"] }),
          }),
        ]);
      }
    };
    // Managers first (alice's manager is erin), then the rest in concurrent batches.
    const [firstUser, ...rest] = AD_USERS;
    await addUser(firstUser!);
    for (let i = 0; i < rest.length; i += 25) await Promise.all(rest.slice(i, i + 25).map(addUser));
    await addUser({
      cn: AD_PROBE_USER.cn,
      ou: `CN=Users,${AD_BASE}`,
      sAMAccountName: "probe",
      password: AD_PROBE_USER.password,
    });
    for (const group of AD_GROUPS) {
      const prefix = /^OU=([^,]+),OU=Groups/.exec(group.ou)?.[1]?.toLowerCase();
      await client.add(`CN=${group.rdn ?? group.cn},${group.ou}`, {
        objectClass: ["top", "group"],
        cn: group.cn,
        // sAMAccountName is unique in the domain; the two `admins` groups need different ones.
        sAMAccountName:
          prefix === undefined ? group.cn.replace(/[^A-Za-z0-9-]/g, "_") : `${prefix}-${group.cn}`,
        member: [...group.members],
      });
    }
    await client.modify(
      AD_BASE,
      new Change({
        operation: "replace",
        modification: new Attribute({ type: "lockoutThreshold", values: [String(LOCKOUT_THRESHOLD)] }),
      }),
    );
  } finally {
    await client.unbind().catch(() => undefined);
  }
  // Lock accounts the way it happens for real: failed binds up to the threshold.
  for (const user of AD_USERS.filter((u) => u.lockOut)) {
    for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
      const probe = new Client({ url: info.url, tlsOptions, timeout: 10_000 });
      await probe.bind(`CN=${user.cn},${user.ou}`, "wrong-password").catch(() => undefined);
      await probe.unbind().catch(() => undefined);
    }
  }
}

/** Restores the template, starts the DC, seeds it. Throws with the reason when it cannot. */
export async function startSamba(): Promise<SambaPeer> {
  if (process.getuid?.() !== 0)
    throw new Error(
      "a Samba AD DC must run as root (it binds ports 389/636 and writes security.NTACL xattrs)",
    );
  const problem = await ensureDebianPackages(
    ["samba-ad-dc", "samba-ad-provision", "ldb-tools", "ldap-utils"],
    "Active Directory integration tests",
  );
  if (problem !== null) throw new Error(problem);
  // Another test run's DC holds the fixed ports until it ends: wait for it rather than skip.
  const waitUntil = Date.now() + PORT_WAIT_MS;
  while ((await portInUse(389)) || (await portInUse(636))) {
    if (Date.now() > waitUntil) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  for (const port of [389, 636]) {
    if (await portInUse(port)) {
      throw new Error(
        `port ${port} on 127.0.0.1 is in use, and Samba's LDAP ports cannot be changed; find the owner with: ss -ltnp 'sport = :${port}' (another Samba DC of a parallel test run?)`,
      );
    }
  }
  const tarball = await template();
  const dir = await mkdtemp(join(tmpdir(), "idbridge-samba-"));
  let child: ChildProcess | undefined;
  try {
    await run("tar", ["--xattrs", "--xattrs-include=*", "-C", dir, "-xzf", tarball]);
    const smbConf = join(dir, "etc", "smb.conf");
    const provisionedAt = (await readFile(join(dir, PROVISIONED_AT), "utf8")).trim();
    await writeFile(smbConf, (await readFile(smbConf, "utf8")).split(provisionedAt).join(dir));
    await mkdir(join(dir, "log"), { recursive: true });
    const log = join(dir, "log", "samba.out");
    const logFile = await open(log, "a");
    // -F: foreground (-i would exit when stdin closes); -M single: one process for all tasks.
    child = spawn("samba", ["-F", "-M", "single", "--debug-stdout", "-d", "1", "-s", smbConf], {
      stdio: ["ignore", logFile.fd, logFile.fd],
    });
    await logFile.close();
    const caFile = join(dir, "tls", "ca.pem");
    const info: SambaInfo = {
      url: "ldaps://127.0.0.1:636",
      plainUrl: "ldap://127.0.0.1:389",
      caFile,
      otherCaFile: join(dir, "tls", "other.pem"),
      bindDn: AD_ADMIN,
      bindPassword: AD_ADMIN_PASSWORD,
      baseDn: AD_BASE,
    };
    await waitForLdap(info.url, child, log, 30_000, { ca: await readFile(caFile), rejectUnauthorized: true });
    await seed(info);
    const started = child;
    let stopping: Promise<void> | undefined;
    return {
      ...info,
      pid: started.pid!,
      stop: () =>
        (stopping ??= (async () => {
          await stopChild(started);
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  } catch (err) {
    if (child) await stopChild(child, 3_000);
    const log = await tailOf(join(dir, "log", "samba.out"), 10);
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}${log ? `\nsamba log:\n${log}` : ""}`,
    );
  }
}
