/**
 * Plan-input benchmark (issue 4 "Benchmark", the pure part of a plan): three sources' snapshots for N
 * people, identity linking across them, then policy evaluation with 50 rules for everyone. Prints time and
 * peak RSS per stage, so linking and evaluation can be held to the plan budget (≤ 10 s, ≤ 1 GB for
 * 100,000 people).
 *
 *   node --import tsx bench/plan-inputs.ts --people 100000 [--seed 1] [--explain]
 *
 * `--explain` evaluates with full reasons (what `policy explain` does); the default is the sync's mode
 * (grants, lineage and separation of duties only). The inputs are exported for tests.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { identityConfigSchema, type IdentityConfig } from "../src/identity/config.js";
import { linkPeople } from "../src/identity/link.js";
import { evaluatePolicy } from "../src/policy/evaluate.js";
import { buildDirectoryFacts, buildPersonFacts } from "../src/policy/facts.js";
import { parsePolicyText } from "../src/policy/load.js";
import type { Policy } from "../src/policy/schema.js";
import { generateOrg, type SimOrg } from "../src/simulators/common/org.js";
import {
  orgDepartments,
  orgPerson,
  orgSnapshot,
  orgSnapshotBase,
} from "../src/simulators/common/org-snapshot.js";
import type { DirectorySnapshot } from "../src/sources/snapshot.js";

const AT = "2026-11-27T00:00:00.000Z";
const POLICY = fileURLToPath(new URL("../policies/hesi-main.yaml", import.meta.url));

/** Everything a plan's pure part reads. */
export interface PlanInputs {
  readonly org: SimOrg;
  readonly snapshots: readonly DirectorySnapshot[];
  readonly identity: IdentityConfig;
  readonly policy: Policy;
}

/** DingTalk (roles as groups), WeCom (roles as tags, every fifth person disabled) and AD (DN groups). */
export function planSnapshots(org: SimOrg): DirectorySnapshot[] {
  const current = org.people.filter((p) => p.status !== "left");
  const dingtalk = orgSnapshot(org, "dingtalk-hq", AT);
  const wecom: DirectorySnapshot = {
    ...orgSnapshotBase("wecom-hq", "wecom", AT),
    departments: orgDepartments(org),
    people: current.map((p, i) => ({
      ...orgPerson(p, `wx-${p.userid}`, i % 5 === 4 ? "disabled" : "active"),
      // WeCom's userid is the AD sAMAccountName, in upper case here to exercise normalisation.
      username: p.userid.toUpperCase(),
    })),
    groups: org.roles.map((r) => ({
      id: `tag-${r.id}`,
      name: r.name,
      kind: "tag" as const,
      members: r.members.map((m) => `wx-${m}`),
      directMembers: r.members.map((m) => `wx-${m}`),
    })),
  };
  // AD: one OU per top-level department; everyone in Finance's 出纳 role is in the Finance Cashiers group.
  const cashiers = org.roles.find((r) => r.name === "出纳")?.members ?? [];
  const adSubject = (userid: string): string => `guid-${userid}`;
  const ad: DirectorySnapshot = {
    ...orgSnapshotBase("ad-hq", "ad", AT),
    departments: [],
    people: current.map((p) => ({
      ...orgPerson(p, adSubject(p.userid), p.status === "disabled" ? "disabled" : "active"),
      departments: [],
      attributes: { employeeID: p.jobNumber, sAMAccountName: p.userid },
    })),
    groups: [
      {
        id: "cashiers-finance",
        name: "Cashiers",
        path: "CN=Cashiers,OU=Finance,OU=Groups,DC=corp,DC=example,DC=test",
        kind: "security-group" as const,
        members: cashiers.map(adSubject),
        directMembers: cashiers.map(adSubject),
      },
      {
        id: "all-staff",
        name: "All Staff",
        path: "CN=All Staff,OU=Groups,DC=corp,DC=example,DC=test",
        kind: "security-group" as const,
        members: current.map((p) => adSubject(p.userid)),
        directMembers: current.map((p) => adSubject(p.userid)),
      },
    ],
  };
  return [dingtalk, wecom, ad];
}

/** DingTalk job_number = AD employeeID; WeCom userid = AD sAMAccountName. */
export const PLAN_IDENTITY: IdentityConfig = identityConfigSchema.parse({
  primarySource: "dingtalk-hq",
  rules: [
    {
      id: "employee-no",
      match: [
        { source: "dingtalk-hq", attribute: "employeeNo" },
        { source: "ad-hq", attribute: "attributes.employeeID" },
      ],
    },
    {
      id: "username",
      compare: "username",
      match: [
        { source: "wecom-hq", attribute: "username" },
        { source: "ad-hq", attribute: "attributes.sAMAccountName" },
      ],
    },
  ],
});

/**
 * The shipped policy's roles, separation of duties and guardrails with `count` rules: its own six rules,
 * then generated ones cycling through every kind of condition over the company's departments and roles.
 */
export function planPolicy(org: SimOrg, count = 50): Policy {
  const shipped = readFileSync(POLICY, "utf8");
  const [head, rest] = shipped.split(/^rules:\n/m) as [string, string];
  const sod = rest.slice(rest.search(/^separationOfDuties:/m));
  const ownRules = rest.slice(0, rest.search(/^separationOfDuties:/m));
  const tops = org.departments.filter((d) => d.parentId === 1).map((d) => d.name);
  const roles = org.roles.map((r) => r.name);
  const titles = [...new Set(org.people.map((p) => p.title))].sort();
  const grants = ["submitter", "approver", "accountant", "cashier", "finance-manager", "budget-admin"];
  const scoped = new Set(["approver", "budget-admin"]);
  const generated: string[] = [];
  for (let i = 0; generated.length + 6 < count; i++) {
    const top = tops[i % tops.length]!;
    const role = roles[i % roles.length]!;
    const title = titles[i % titles.length]!;
    const grant = grants[i % grants.length]!;
    const conditions = [
      `{ department: { source: dingtalk-hq, path: "${top}" } }`,
      `{ all: [{ group: { source: wecom-hq, name: "${role}" } }, { title: "${title}" }] }`,
      `{ any: [{ leaderOf: { source: dingtalk-hq, path: "${top}" } }, { title: { in: ["${title}", "${titles[(i + 1) % titles.length]!}"] } }] }`,
      `{ all: [{ status: [active] , statusSource: ad-hq }, { not: { department: { source: wecom-hq, path: "${top}", includeSubDepartments: false } } }] }`,
      `{ attribute: { name: activated, source: dingtalk-hq, matches: "^t" } }`,
      `{ all: [{ group: "ad-hq:CN=All Staff,OU=Groups,DC=corp,DC=example,DC=test" }, { leaderOf: any }] }`,
      `{ group: "dingtalk-hq:${role}" }`,
    ];
    const when = conditions[i % conditions.length]!;
    const scope = scoped.has(grant) ? (i % 2 === 0 ? "ledDepartments" : "mainDepartment") : undefined;
    generated.push(
      `  - id: generated-${i + 1}\n    when: ${when}\n    grant: ${grant}\n` +
        (scope === undefined ? "" : `    scope: ${scope}\n`),
    );
  }
  const text = `${head}rules:\n${ownRules}${generated.join("")}\n${sod}`;
  const parsed = parsePolicyText(text, "bench-policy.yaml");
  if (parsed.policy === null) throw new Error(`generated policy is invalid:\n${parsed.problems.join("\n")}`);
  return parsed.policy;
}

/** The inputs of a plan for a company of `people` (seeded, deterministic). */
export function planInputs(people: number, seed = 1, rules = 50): PlanInputs {
  const org = generateOrg({ people, seed });
  return { org, snapshots: planSnapshots(org), identity: PLAN_IDENTITY, policy: planPolicy(org, rules) };
}

function mb(kb: number): string {
  return (kb / 1024).toFixed(0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      people: { type: "string", default: "100000" },
      seed: { type: "string", default: "1" },
      explain: { type: "boolean", default: false },
    },
  });
  const people = Number(values.people);
  if (!Number.isInteger(people) || people < 1) {
    process.stderr.write("usage: bench/plan-inputs.ts [--people N] [--seed S] [--explain]\n");
    process.exit(2);
  }
  const rows: string[] = [];
  const stage = <T>(name: string, run: () => T, notes: (t: T) => string): T => {
    const started = performance.now();
    const result = run();
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    rows.push(`| ${name} | ${seconds} | ${mb(process.resourceUsage().maxRSS)} | ${notes(result)} |`);
    return result;
  };
  const inputs = stage(
    "generate inputs",
    () => planInputs(people, Number(values.seed)),
    (i) =>
      `${i.snapshots.map((s) => `${s.sourceId} ${s.people.length}`).join(", ")}; ${i.policy.rules.length} rules`,
  );
  let next = 0;
  const linked = stage(
    "identity linking",
    () =>
      linkPeople({
        snapshots: inputs.snapshots,
        config: inputs.identity,
        existing: [],
        now: new Date(AT),
        newId: () => `p_${(next++).toString(36)}`,
      }),
    (r) => `${r.people.length} people, ${r.reviewQueue.length} in review`,
  );
  const directories = stage(
    "index directories",
    () => buildDirectoryFacts(inputs.snapshots),
    (d) => `${d.size} sources`,
  );
  const explain = values.explain;
  const totals = stage(
    `policy evaluation (${explain ? "explain" : "sync"} mode)`,
    () => {
      let grants = 0;
      let withheld = 0;
      for (const person of linked.people) {
        const evaluation = evaluatePolicy(inputs.policy, buildPersonFacts(person, directories), { explain });
        grants += evaluation.grants.length;
        withheld += evaluation.withheld.length;
      }
      return { grants, withheld };
    },
    (t) => `${t.grants} grants, ${t.withheld} withheld`,
  );
  void totals;
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  process.stdout.write(
    `machine: ${os.cpus().length} × ${cpu}, Node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}; ${people} people\n\n` +
      "| stage | seconds | peak RSS so far (MB) | notes |\n| --- | --- | --- | --- |\n" +
      rows.join("\n") +
      "\n",
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
