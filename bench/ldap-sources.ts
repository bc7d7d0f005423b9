/**
 * LDAP source benchmark (not a test): reads N generated people with their groups from a private slapd
 * with our reader, and — in the same run, on the same entries, alternating — with
 * `ldapsearch -E pr=1000/noprompt` writing to /dev/null: the floor, i.e. the time the server needs to
 * hand the entries out. Our reader runs in a child process so its peak RSS (VmHWM) is its own.
 *
 *   node --import tsx bench/ldap-sources.ts [--people 100000] [--runs 3] [--page-size 1000] [--json FILE] [--keep]
 *
 * The directory (bench/ldap-generate.ts) is loaded with slapadd before slapd starts, memberOf included.
 * Aim (issue 3): within 1.3x of the floor, peak RSS <= 500 MB for 100,000 people.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Client } from "ldapts";
import { ldapConfigSchema } from "../src/sources/ldap/config.js";
import { openLdapDirectory } from "../src/sources/ldap/reader.js";
import { startSlapd } from "../test/peers/openldap.js";
import type { BenchRow } from "./bench-row.js";
import { BENCH_GROUPS, BENCH_PEOPLE, writeBenchLdif } from "./ldap-generate.js";

const HERE = fileURLToPath(import.meta.url);
const PAGE_SIZE = 1000;
const CHILD_ENV = "IDBRIDGE_BENCH_LDAP_CHILD";

// The attributes our reader asks for, per search (see src/sources/ldap/reader.ts), so the floor reads the same.
const SEARCHES = [
  {
    base: BENCH_PEOPLE,
    filter: "(objectClass=organizationalUnit)",
    attributes: ["entryUUID", "ou", "name", "managedBy", "entryCSN"],
  },
  {
    base: BENCH_PEOPLE,
    filter: "(objectClass=inetOrgPerson)",
    attributes: [
      "entryUUID",
      "uid",
      "cn",
      "mail",
      "mobile",
      "employeeNumber",
      "title",
      "manager",
      "pwdAccountLockedTime",
      "shadowExpire",
      "entryCSN",
    ],
  },
  {
    base: BENCH_GROUPS,
    filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
    attributes: ["entryUUID", "cn", "member", "entryCSN"],
  },
];

interface ChildResult {
  seconds: number;
  people: number;
  groups: number;
  departments: number;
  memberships: number;
  complete: boolean;
  reasons: string[];
  vmHwmMb: number;
}

interface Target {
  url: string;
  adminDn: string;
  adminPassword: string;
  /** Our reader's pageSize. */
  pageSize: number;
  /** `reader`: our reader; `ldapts`: ldapts searchPaginated over the same searches, entries dropped. */
  mode: "reader" | "ldapts";
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdoutFd?: number } = {},
): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ["ignore", options.stdoutFd ?? "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", fail);
    child.on("exit", (code) =>
      code === 0 ? done(out) : fail(new Error(`${command} exited ${code}: ${err.trim()}`)),
    );
  });
}

/** The floor: ldapsearch with paged results reading the same entries and attributes, output to /dev/null. */
async function floorOnce(target: Target): Promise<number> {
  const devNull = openSync("/dev/null", "w");
  try {
    const started = performance.now();
    for (const search of SEARCHES) {
      await run(
        "ldapsearch",
        [
          "-x",
          "-LLL",
          "-H",
          target.url,
          "-D",
          target.adminDn,
          "-w",
          target.adminPassword,
          "-b",
          search.base,
          "-E",
          `pr=${PAGE_SIZE}/noprompt`,
          search.filter,
          ...search.attributes,
        ],
        { stdoutFd: devNull },
      );
    }
    return (performance.now() - started) / 1000;
  } finally {
    closeSync(devNull);
  }
}

/** Ours: the reader in a child process (tsx), which times its own read and reports its VmHWM. */
async function oursOnce(target: Target): Promise<ChildResult> {
  const output = await run(process.execPath, ["--import", "tsx", HERE], {
    env: { ...process.env, [CHILD_ENV]: JSON.stringify(target) },
  });
  const last = output.trim().split("\n").pop()!;
  return JSON.parse(last) as ChildResult;
}

function vmHwmMb(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? "0") / 1024;
}

/** The client library alone: the same paged searches with ldapts, every entry parsed and dropped. */
async function bareLdapts(target: Target): Promise<void> {
  const client = new Client({ url: target.url });
  await client.bind(target.adminDn, target.adminPassword);
  const started = performance.now();
  let entries = 0;
  for (const search of SEARCHES) {
    for await (const page of client.searchPaginated(search.base, {
      filter: search.filter,
      attributes: search.attributes,
      paged: { pageSize: target.pageSize },
    })) {
      entries += page.searchEntries.length;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await client.unbind();
  const result: ChildResult = {
    seconds,
    people: entries,
    groups: 0,
    departments: 0,
    memberships: 0,
    complete: true,
    reasons: [],
    vmHwmMb: vmHwmMb(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function child(target: Target): Promise<void> {
  if (target.mode === "ldapts") return bareLdapts(target);
  const config = ldapConfigSchema.parse({
    url: target.url,
    flavor: "openldap",
    insecure: true,
    bindDn: target.adminDn,
    bindPassword: target.adminPassword,
    users: { baseDns: [BENCH_PEOPLE] },
    groups: { baseDns: [BENCH_GROUPS] },
    pageSize: target.pageSize,
  });
  const reader = openLdapDirectory(
    { sourceId: "bench-ldap", now: () => new Date(), sleep: () => Promise.resolve() },
    config,
  );
  const started = performance.now();
  const snapshot = await reader.read({ mode: "full" });
  const seconds = (performance.now() - started) / 1000;
  await reader.close();
  const result: ChildResult = {
    seconds,
    people: snapshot.people.length,
    groups: snapshot.groups.length,
    departments: snapshot.departments.length,
    memberships: snapshot.groups.reduce((n, g) => n + g.members.length, 0),
    complete: snapshot.completeness.complete,
    reasons: snapshot.completeness.complete ? [] : snapshot.completeness.reasons.map((r) => r.message),
    vmHwmMb: vmHwmMb(),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Generates and loads N people into a private slapd and compares our read with ldapsearch's. */
export async function runLdapBench(options: {
  people: number;
  runs?: number;
  keep?: boolean;
  /** Our reader's page size (default 1000, as the floor's). */
  pageSize?: number;
}): Promise<BenchRow[]> {
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const runs = options.runs ?? 3;
  const work = mkdtempSync(join(os.tmpdir(), "idbridge-bench-ldap-"));
  const ldif = join(work, "bench.ldif");
  const log = (line: string) => process.stderr.write(`[bench:ldap] ${line}\n`);
  try {
    let started = performance.now();
    const counts = await writeBenchLdif(ldif, options.people);
    const generateSeconds = (performance.now() - started) / 1000;
    log(
      `generated ${counts.people} people, ${counts.groups} groups, ${counts.ous} OUs in ${generateSeconds.toFixed(1)} s`,
    );
    started = performance.now();
    const slapd = await startSlapd({
      baseDn: "dc=bench,dc=test",
      maxSizeMb: Math.max(256, Math.ceil(options.people / 100_000) * 2048),
      slapaddLdif: ldif,
    });
    const loadSeconds = (performance.now() - started) / 1000;
    log(`slapadd + start in ${loadSeconds.toFixed(1)} s (${slapd.url})`);
    try {
      const target: Target = {
        url: slapd.url,
        adminDn: slapd.adminDn,
        adminPassword: slapd.adminPassword,
        pageSize,
        mode: "reader",
      };
      const floors: number[] = [];
      const bare: ChildResult[] = [];
      const ours: ChildResult[] = [];
      // A warm-up of each, so both read from a warm mdb map, then alternate.
      await floorOnce(target);
      for (let i = 0; i < runs; i++) {
        floors.push(await floorOnce(target));
        const result = await oursOnce(target);
        if (!result.complete) throw new Error(`our read was incomplete: ${result.reasons.join("; ")}`);
        if (result.people !== counts.people || result.groups !== counts.groups) {
          throw new Error(
            `our read found ${result.people} people / ${result.groups} groups, expected ${counts.people} / ${counts.groups}`,
          );
        }
        ours.push(result);
        bare.push(await oursOnce({ ...target, mode: "ldapts" }));
        log(
          `run ${i + 1}: ldapsearch ${floors.at(-1)!.toFixed(2)} s, ours ${result.seconds.toFixed(2)} s (VmHWM ${result.vmHwmMb.toFixed(0)} MB), ldapts alone ${bare.at(-1)!.seconds.toFixed(2)} s`,
        );
      }
      const oursSeconds = median(ours.map((r) => r.seconds));
      const floorSeconds = median(floors);
      const last = ours.at(-1)!;
      return [
        {
          name: `ldap: full read of ${counts.people.toLocaleString("en")} people, ${counts.groups.toLocaleString("en")} groups (nested, ${last.memberships.toLocaleString("en")} transitive memberships) and ${last.departments.toLocaleString("en")} OUs from slapd`,
          oursSeconds,
          floorSeconds,
          ratio: oursSeconds / floorSeconds,
          peakRssMb: Math.max(...ours.map((r) => r.vmHwmMb)),
          notes: `floor: ldapsearch -x -E pr=${PAGE_SIZE}/noprompt > /dev/null, one search each for OUs, people and groups with the reader's attributes; ours: openLdapDirectory().read() with pageSize ${pageSize} in a child process (node --import tsx), its own wall time and VmHWM; median of ${runs} alternating runs after one ldapsearch warm-up; slapd 2.5 mdb on 127.0.0.1, data loaded by slapadd in ${loadSeconds.toFixed(1)} s`,
        },
        {
          name: `ldap (context): ldapts 8 searchPaginated alone over the same ${bare.at(-1)!.people.toLocaleString("en")} entries, parsed and dropped`,
          oursSeconds: median(bare.map((r) => r.seconds)),
          floorSeconds,
          ratio: median(bare.map((r) => r.seconds)) / floorSeconds,
          peakRssMb: Math.max(...bare.map((r) => r.vmHwmMb)),
          notes: `the client library's own cost (BER parsing, a Buffer and a string per value) without the reader, pageSize ${pageSize}, same runs: how much of the ratio above is ldapts`,
        },
      ];
    } finally {
      if (options.keep) log(`kept ${work}; slapd stopped`);
      await slapd.stop();
    }
  } finally {
    if (!options.keep) rmSync(work, { recursive: true, force: true });
  }
}

const childTarget = process.env[CHILD_ENV];
if (childTarget !== undefined) {
  await child(JSON.parse(childTarget) as Target);
} else if (
  process.argv[1] !== undefined &&
  pathToFileURL(resolve(process.argv[1])).href === import.meta.url
) {
  const { values } = parseArgs({
    options: {
      people: { type: "string", default: "100000" },
      runs: { type: "string", default: "3" },
      "page-size": { type: "string", default: String(PAGE_SIZE) },
      json: { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const rows = await runLdapBench({
    people: Number(values.people),
    runs: Number(values.runs),
    keep: values.keep,
    pageSize: Number(values["page-size"]),
  });
  process.stdout.write(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}\n`,
  );
  for (const row of rows) {
    process.stdout.write(
      `${row.name}\n  ours ${row.oursSeconds.toFixed(2)} s | floor ${row.floorSeconds.toFixed(2)} s | ratio ${row.ratio.toFixed(2)} | peak RSS ${row.peakRssMb.toFixed(0)} MB\n  ${row.notes}\n`,
    );
  }
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(rows, null, 2)}\n`);
}
