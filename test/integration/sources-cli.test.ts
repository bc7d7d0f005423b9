import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { generateOrg } from "../../src/simulators/common/org.js";
import { cliCommand, runCli } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "idbridge-sources-cli-"));
const running: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(running.map((stop) => stop()));
});

/** Runs `idbridge simulate ARGS` and resolves with the YAML it prints once the simulator listens. */
function simulate(args: string[]): Promise<{ sources: { id: string; type: string; config: object }[] }> {
  const [node, bin] = cliCommand()
    .split(" ")
    .map((s) => JSON.parse(s) as string) as [string, string];
  const child = spawn(node, [bin, "simulate", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  running.push(() => {
    child.kill("SIGTERM");
    return exited;
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      // The entry is complete once its config block has been printed.
      if (/\n {6}\S/.test(out) || /config: \{/.test(out)) {
        setTimeout(() => resolve(parse(out) as never), 50);
      }
    });
    void exited.then(() => reject(new Error(`simulate exited early:\n${err}`)));
  });
}

/** A port on 127.0.0.1 that nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Writes a config file with the given sources and a private SQLite store; returns its path. */
function configWith(name: string, sources: unknown[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({ dataDir: join(dir, name), sources }));
  return file;
}

describe("idbridge sources and simulate", () => {
  it("simulate prints a sources: entry that sources test and sources read accept, reading every current employee", async () => {
    const printed = await simulate(["dingtalk", "--people", "150", "--seed", "3"]);
    expect(printed.sources).toHaveLength(1);
    expect(printed.sources[0]).toMatchObject({ id: "dingtalk-sim", type: "dingtalk" });
    const config = configWith("dingtalk", printed.sources);

    const list = await runCli(["sources", "list", "-c", config]);
    expect(list.stdout).toMatch(/^dingtalk-sim\s+dingtalk$/m);

    const tested = await runCli(["sources", "test", "dingtalk-sim", "-c", config]);
    expect(tested.stderr).toBe("");
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/^dingtalk-sim \(dingtalk\): ok$/m);

    // DingTalk lists neither people who left nor disabled ones (see the simulator's org index).
    const org = generateOrg({ people: 150, seed: 3 });
    const current = org.people.filter((p) => p.status === "active" || p.status === "not-activated");
    const summary = await runCli(["sources", "read", "dingtalk-sim", "-c", config]);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toContain("complete: yes");
    expect(summary.stdout).toContain(`people: ${current.length} (active ${current.length},`);
    expect(summary.stdout).toContain(`departments: ${org.departments.length}`);

    const jsonl = await runCli(["sources", "read", "dingtalk-sim", "-c", config, "--format", "jsonl"]);
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; subject?: string; completeness?: unknown });
    expect(lines[0]).toMatchObject({ type: "snapshot", completeness: { complete: true } });
    const subjects = lines.filter((l) => l.type === "person").map((l) => l.subject);
    expect(subjects.sort()).toEqual(current.map((p) => p.userid).sort());
  });

  it("--incremental reads everything when there is no earlier complete read, and says so", async () => {
    const printed = await simulate(["dingtalk", "--people", "40", "--seed", "9"]);
    const config = configWith("incremental", printed.sources);
    const first = await runCli(["sources", "read", "dingtalk-sim", "--incremental", "-c", config]);
    expect(first.code).toBe(0);
    expect(first.stderr).toBe(
      "note: dingtalk-sim: no earlier complete read to continue from; reading everything\n",
    );
    expect(first.stdout).toMatch(/^dingtalk-sim \(dingtalk\), full read in /);
    expect(first.stdout).toContain("complete: yes");
  });

  it("a failing page makes the read exit 1 with the reason, and nothing claims completeness", async () => {
    // The role list is one request: each read below gives up on it after 1 + 3 attempts.
    const printed = await simulate([
      "dingtalk",
      "--people",
      "60",
      "--faults",
      "5xx@/topapi/role/list*always",
    ]);
    const config = configWith("faulty", printed.sources);
    const summary = await runCli(["sources", "read", "dingtalk-sim", "-c", config]);
    expect(summary.code).toBe(1);
    expect(summary.stdout).toContain("complete: NO");
    expect(summary.stdout).toMatch(/reason: \[SERVER_ERROR\] dingtalk-sim: .*\/topapi\/role\/list/);
    expect(summary.stdout).not.toContain("saved the position");

    const jsonl = await runCli(["sources", "read", "dingtalk-sim", "-c", config, "--format", "jsonl"]);
    expect(jsonl.code).toBe(1);
    expect(JSON.parse(jsonl.stdout.split("\n")[0]!)).toMatchObject({ completeness: { complete: false } });
    expect(jsonl.stderr).toContain("complete: NO");
  });

  it("reads the WeCom simulator through its printed entry", async () => {
    const printed = await simulate(["wecom", "--people", "80", "--seed", "5"]);
    expect(printed.sources[0]).toMatchObject({ id: "wecom-sim", type: "wecom" });
    const config = configWith("wecom", printed.sources);
    const summary = await runCli(["sources", "read", "wecom-sim", "-c", config]);
    expect(summary.stdout).toContain("complete: yes");
    expect(summary.code).toBe(0);
  });

  it("simulate hesi prints a targets: entry that config check accepts, and serves the tenant's page", async () => {
    const printed = (await simulate(["hesi"])) as unknown as {
      targets: { id: string; type: string; config: { baseUrl: string } }[];
    };
    expect(printed.targets[0]).toMatchObject({ id: "hesi-sim", type: "hesi" });
    const file = join(dir, "hesi.yaml");
    writeFileSync(file, stringify({ dataDir: join(dir, "hesi"), targets: printed.targets }));
    const checked = await runCli(["config", "check", "-c", file]);
    expect(checked.stderr).toBe("");
    expect(checked.stdout).toBe("ok\n");
    const page = await fetch(`${printed.targets[0]!.config.baseUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
  });

  it("refuses an unknown source and an unknown simulator with exit 2", async () => {
    const config = configWith("empty", [
      {
        id: "ad-hq",
        type: "ldap",
        config: {
          url: "ldaps://127.0.0.1:1",
          flavor: "ad",
          bindDn: "x",
          bindPassword: "y",
          users: { baseDns: ["DC=x"] },
        },
      },
    ]);
    const unknown = await runCli(["sources", "read", "nope", "-c", config]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no source "nope"');
    expect(unknown.stderr).toContain("(configured: ad-hq)");

    const vendor = await runCli(["simulate", "dingding"]);
    expect(vendor.code).toBe(2);
    expect(vendor.stderr).toContain('unknown simulator "dingding" (known: dingtalk, wecom, hesi)');
  });

  it("sources test exits 1 naming the cause when the source is unreachable", async () => {
    const printed = await simulate(["dingtalk", "--people", "20"]);
    const entry = printed.sources[0]!;
    const closed = `http://127.0.0.1:${await closedPort()}`;
    const config = configWith("unreachable", [
      { ...entry, config: { ...entry.config, oapiBaseUrl: closed, apiBaseUrl: closed } },
    ]);
    const tested = await runCli(["sources", "test", "dingtalk-sim", "-c", config]);
    expect(tested.code).toBe(1);
    expect(tested.stdout).toMatch(/^dingtalk-sim \(dingtalk\): FAILED$/m);
    expect(tested.stdout).toMatch(
      /problem: \[UNREACHABLE\] dingtalk-sim: cannot reach 127\.0\.0\.1:\d+: connection refused, still failing after 3 retries \(at POST \S+\)$/m,
    );
  });
});
