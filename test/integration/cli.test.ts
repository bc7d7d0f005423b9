import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliCommand, runCli, startServe } from "../helpers/cli.js";
import { peerMissing } from "../peers/index.js";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "audit");
const tmp = (): string => mkdtempSync(join(tmpdir(), "idbridge-cli-"));

function configFile(dir: string, yaml: string): string {
  const file = join(dir, "idbridge.yaml");
  writeFileSync(file, yaml);
  return file;
}

describe("idbridge CLI", () => {
  it("--help lists every command", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["serve", "config check", "keys generate", "audit export", "audit verify <file>"]) {
      expect(r.stdout).toContain(`idbridge ${c}`);
    }
  });

  it("config check prints ok for a valid file and every problem with exit 2 for an invalid one", async () => {
    const dir = tmp();
    expect(
      await runCli(["config", "check", "-c", configFile(dir, "server: { port: 9090 }\n")]),
    ).toMatchObject({ code: 0, stdout: "ok\n" });
    const bad = configFile(
      dir,
      "server: { port: 9090, hots: x }\nstore: { url: 'mysql://x' }\nsources:\n  - { id: a, type: dingding }\n",
    );
    const r = await runCli(["config", "check", "-c", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("server.hots: unknown key (line 1)");
    expect(r.stderr).toContain("store.url: must start with sqlite: or postgres:// (line 2)");
    expect(r.stderr).toContain('sources[0].type: unknown source type "dingding"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("policy check accepts the shipped policies and names file and line of a bad one, with exit 2", async () => {
    const shipped = join(import.meta.dirname, "..", "..", "policies");
    const ok = await runCli(["policy", "check", "--dir", shipped]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`ok: 1 policy file(s) in ${shipped} (targets: hesi-main)\n`);

    const dir = tmp();
    writeFileSync(
      join(dir, "bad.yaml"),
      "version: 1\ntarget: hesi-main\nroles:\n  cashier: { targetRole: 出纳 }\nrules:\n  - id: r1\n    when: { status: active }\n    grant: approver\n",
    );
    const bad = await runCli(["policy", "check", "--dir", dir]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(
      new RegExp(`^${join(dir, "bad.yaml")}:8: rules\\[0\\]\\.grant: .*approver`, "m"),
    );
  });

  it("config check names the line and column of a YAML syntax error", async () => {
    const r = await runCli(["config", "check", "-c", configFile(tmp(), "server:\n  port: [8080\n")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line \d+, column \d+: /);
  });

  it("keys generate writes 0600 private keys and a public JWKS, and never overwrites", async () => {
    const dir = join(tmp(), "keys");
    expect((await runCli(["keys", "generate", "--dir", dir])).code).toBe(0);
    expect(statSync(join(dir, "audit-signing.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "token-signing.pem")).mode & 0o777).toBe(0o600);
    const jwks = JSON.parse(readFileSync(join(dir, "jwks.json"), "utf8")) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(["EdDSA", "RS256"]);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
    const again = await runCli(["keys", "generate", "--dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to overwrite/);
  });

  it("audit verify accepts the committed fixture and names the seq after a deleted line", async () => {
    const ok = await runCli([
      "audit",
      "verify",
      join(FIXTURE, "export.jsonl"),
      "--jwks",
      join(FIXTURE, "jwks.json"),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^verified 20 entries .* head [0-9a-f]{64}\n$/);

    const lines = readFileSync(join(FIXTURE, "export.jsonl"), "utf8").trimEnd().split("\n");
    const i = lines.findIndex((l) => l.includes('"seq":9,') && l.includes('"type":"entry"'));
    lines.splice(i, 1);
    const file = join(tmp(), "cut.jsonl");
    writeFileSync(file, `${lines.join("\n")}\n`);
    const bad = await runCli(["audit", "verify", file, "--jwks", join(FIXTURE, "jwks.json")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/verification FAILED at seq 9 .*missing/);
  });

  it("audit verify refuses a file that is not an export and a JWKS without the key", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "x.csv"), "seq,time\n1,2\n");
    const notExport = await runCli([
      "audit",
      "verify",
      join(dir, "x.csv"),
      "--jwks",
      join(FIXTURE, "jwks.json"),
    ]);
    expect(notExport).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/not an idbridge audit export/),
    });
    writeFileSync(join(dir, "empty-jwks.json"), '{"keys":[]}');
    const noKey = await runCli([
      "audit",
      "verify",
      join(FIXTURE, "export.jsonl"),
      "--jwks",
      join(dir, "empty-jwks.json"),
    ]);
    expect(noKey).toMatchObject({ code: 1, stderr: expect.stringMatching(/no key with kid/) });
    const notJwks = await runCli([
      "audit",
      "verify",
      join(FIXTURE, "export.jsonl"),
      "--jwks",
      join(dir, "x.csv"),
    ]);
    expect(notJwks.code).toBe(2);
    expect(notJwks.stderr).toMatch(/--jwks .*cannot read a JSON key set/);
    const missing = await runCli([
      "audit",
      "verify",
      join(dir, "nope.jsonl"),
      "--jwks",
      join(FIXTURE, "jwks.json"),
    ]);
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringMatching(/cannot read .*nope\.jsonl/) });
  });

  it("serve answers /healthz, refuses a second server on the same SQLite file, while export keeps working", async () => {
    const dir = tmp();
    const config = configFile(dir, "server: { port: 0 }\naudit: { checkpointEvery: 2 }\n");
    const server = await startServe(["-c", config]);
    try {
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

      const second = await runCli(["serve", "-c", config]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(
        /^idbridge: .*idbridge\.db is in use by another idbridge server \(pid \d+/,
      );

      const out = join(dir, "export.jsonl");
      const exported = await runCli(["audit", "export", "-c", config, "-o", out]);
      expect(exported.code).toBe(0);
      const verified = await runCli([
        "audit",
        "verify",
        out,
        "--jwks",
        join(dir, "data", "keys", "jwks.json"),
      ]);
      expect(verified.code).toBe(0);
      expect(verified.stdout).toMatch(/^verified 2 entries/); // keys.generated, service.started
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(server.output()).toContain("idbridge stopped");
    // After a clean stop the file is free again.
    const again = await startServe(["-c", config]);
    expect(await again.stop()).toBe(0);
  });

  it("gives a one-line cause for an unreachable PostgreSQL and for a file that is not a database", async () => {
    const dir = tmp();
    const pg = await runCli([
      "audit",
      "export",
      "-c",
      configFile(dir, "store: { url: 'postgres://idb:pw@127.0.0.1:1/idb' }\nkeys: { dir: ./k }\n"),
    ]);
    // Keys are loaded first: make them exist so the store is what fails.
    expect(pg.code).toBe(1);
    expect(pg.stderr).toMatch(/signing key .* is missing/);
    await runCli(["keys", "generate", "--dir", join(dir, "k")]);
    const pg2 = await runCli(["audit", "export", "-c", join(dir, "idbridge.yaml")]);
    expect(pg2).toMatchObject({
      code: 1,
      stderr:
        "idbridge: cannot connect to PostgreSQL at 127.0.0.1:1: connection refused (is the server running and listening there?)\n",
    });

    const junk = join(dir, "junk.db");
    writeFileSync(
      junk,
      "this is not a database, just text that happens to be long enough to fill a header....",
    );
    const r = await runCli([
      "serve",
      "-c",
      configFile(dir, `store: { url: 'sqlite:${junk}' }\nserver: { port: 0 }\n`),
    ]);
    expect(r).toMatchObject({
      code: 1,
      stderr: `idbridge: ${junk} is not an SQLite database (corrupt, encrypted or another kind of file)\n`,
    });
  });

  /** Shell lines: start serve, wait (at most 30 s) until it listens, stop it. */
  const firstStart = (cli: string, config: string, dir: string): string =>
    `${cli} serve -c ${config} > ${dir}/first.log 2>&1 & pid=$!\n` +
    `for i in $(seq 300); do grep -q 'listening on' ${dir}/first.log && break; sleep 0.1; done\n` +
    `kill -TERM $pid; wait $pid`;

  // Disk-full and read-only data dirs need a private mount namespace (root, unshare, tmpfs).
  const canMount = ((): boolean => {
    try {
      execFileSync("unshare", ["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], {
        stdio: "ignore",
      });
      return true;
    } catch {
      return false;
    }
  })();
  if (!canMount)
    peerMissing("mount namespaces", "the disk-full and read-only tests need root and `unshare -m`");

  it.skipIf(!canMount)(
    "on a full disk, serve fails with a one-line cause and the chain stays whole",
    async () => {
      const dir = tmp();
      const data = join(dir, "data");
      const config = configFile(dir, "server: { port: 0 }\n");
      const cli = cliCommand();
      const script = [
        `mkdir -p ${data} && mount -t tmpfs -o size=3m tmpfs ${data}`,
        // First start creates the database and keys; then fill the disk to the last byte.
        firstStart(cli, config, dir),
        `dd if=/dev/zero of=${data}/filler bs=4k 2>/dev/null; dd if=/dev/zero of=${data}/filler2 bs=1 2>/dev/null`,
        `${cli} serve -c ${config} > ${dir}/full.log 2>&1; echo "rc=$?" >> ${dir}/full.log`,
        `rm ${data}/filler ${data}/filler2`,
        `${cli} audit export -c ${config} -o ${dir}/after.jsonl 2> ${dir}/export.log`,
        `cp -r ${data}/keys ${dir}/keys-copy`,
      ].join("\n");
      execFileSync("unshare", ["-m", "sh", "-c", script], { stdio: "inherit" });
      const full = readFileSync(join(dir, "full.log"), "utf8");
      expect(full).toMatch(/idbridge: cannot write to .*: the disk is full\n(.|\n)*rc=1/);
      expect(full).not.toMatch(/\n\s+at /);
      expect(existsSync(join(dir, "after.jsonl"))).toBe(true);
      const verified = await runCli([
        "audit",
        "verify",
        join(dir, "after.jsonl"),
        "--jwks",
        join(dir, "keys-copy", "jwks.json"),
      ]);
      expect(verified.code).toBe(0);
    },
  );

  it.skipIf(!canMount)("on a read-only data dir, serve fails with a one-line cause", async () => {
    const dir = tmp();
    const data = join(dir, "data");
    const config = configFile(dir, "server: { port: 0 }\n");
    const cli = cliCommand();
    const script = [
      `mkdir -p ${data} && mount -t tmpfs -o size=8m tmpfs ${data}`,
      firstStart(cli, config, dir),
      `mount -o remount,ro ${data}`,
      `${cli} serve -c ${config} > ${dir}/ro.log 2>&1; echo "rc=$?" >> ${dir}/ro.log`,
    ].join("\n");
    execFileSync("unshare", ["-m", "sh", "-c", script], { stdio: "inherit" });
    const ro = readFileSync(join(dir, "ro.log"), "utf8");
    expect(ro).toMatch(/^idbridge: .*read-only.*\nrc=1\n$/);
  });
});
