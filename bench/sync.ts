/**
 * Sync benchmark (issue 4 "Benchmark"), in one run, side by side:
 *
 * 1. Full plan for N people (three generated sources, 50 rules; the inputs of bench/plan-inputs.ts):
 *    identity linking, indexing, then planSync against an empty target (first sync: everything created)
 *    and against a converged one (the first plan applied to an in-memory TargetState). Time per phase
 *    and peak RSS.
 * 2. Incremental: 1% of the people changed (title, main department or a role) in an incremental read of
 *    the primary source, merged and planned again against the converged target as SyncService does it
 *    (merge, link, index, the people the changes touch, planSync of only them) — as a fraction of the
 *    full plan.
 * 3. Apply throughput: the Hesi simulator in-process with a rate limit, a plan of M changes applied through
 *    applyPlan with the Hesi target at the same requestsPerSecond; HTTP calls counted at the simulator.
 *
 * Each scenario of 1 and 2 runs in a child process of its own (the same command with `--scenario`), so
 * its time and peak RSS are not those of the scenarios before it; the first writes the converged target
 * to a temporary file the others read.
 *
 *   node --import tsx bench/sync.ts [--people 100000] [--seed 1] [--apply-changes 600] [--qps 20]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { linkPeople, type LinkResult } from "../src/identity/link.js";
import type { Person } from "../src/identity/person.js";
import { evaluatePolicy } from "../src/policy/evaluate.js";
import { buildDirectoryFacts, buildPersonFacts } from "../src/policy/facts.js";
import type { Policy } from "../src/policy/schema.js";
import { generateOrg } from "../src/simulators/common/org.js";
import { startHesiSimulator } from "../src/simulators/hesi/index.js";
import { proveComplete, type DirectorySnapshot, type SourcePerson } from "../src/sources/snapshot.js";
import type { TargetLink } from "../src/store/store.js";
import { applyPlan } from "../src/sync/apply.js";
import { planSync } from "../src/sync/diff.js";
import { affectedPeople, mergeIncremental } from "../src/sync/merge.js";
import { countChanges, type Plan, type RecordRef } from "../src/sync/plan.js";
import { hesiConfigSchema, openHesiTarget } from "../src/targets/hesi/index.js";
import type {
  TargetCapabilities,
  TargetDepartment,
  TargetRole,
  TargetState,
  TargetUser,
} from "../src/targets/target.js";
import { MemorySyncStore } from "../test/helpers/memory-target.js";
import { PLAN_IDENTITY, planInputs, planPolicy, planSnapshots } from "./plan-inputs.js";

const LATER = "2026-11-28T00:00:00.000Z";
const TARGET = "hesi-main";
const PRIMARY = "dingtalk-hq";
const CAPABILITIES: TargetCapabilities = {
  users: true,
  departments: true,
  scopedRoles: true,
  reenable: true,
};

/** A target holding only its root department, as Hesi starts. */
function emptyTarget(): TargetState {
  const root: TargetDepartment = {
    id: "root",
    parentId: null,
    name: "示例科技有限公司",
    code: "",
    order: 0,
    active: true,
  };
  return { users: {}, departments: { root }, roles: {} };
}

/**
 * The target after `plan` was applied to `state`, with the link table the apply engine would have written
 * (the write semantics of test/helpers/memory-target.ts, with maps instead of scans so 100,000 users fit).
 */
export function convergeTarget(
  state: TargetState,
  links: readonly TargetLink[],
  plan: Plan,
): { state: TargetState; links: TargetLink[] } {
  const users = new Map(Object.entries(state.users));
  const departments = new Map(Object.entries(state.departments));
  const roles = new Map(
    Object.entries(state.roles).map(([id, r]) => [
      id,
      {
        ...r,
        rows: new Map(
          r.rows.map((row) => [
            row.scope.kind === "global" ? "" : row.scope.departmentId,
            new Set(row.memberIds),
          ]),
        ),
      },
    ]),
  );
  const linked = new Map(links.map((l) => [`${l.kind}:${l.key}`, l]));
  const link = (kind: TargetLink["kind"], key: string, id: string) =>
    linked.set(`${kind}:${key}`, { kind, key, targetRecordId: id, linkedAt: LATER });
  const resolve = (kind: TargetLink["kind"], ref: RecordRef): string =>
    "id" in ref ? ref.id : linked.get(`${kind}:${ref.pending}`)!.targetRecordId;
  let next = 1;
  for (const change of plan.changes) {
    switch (change.kind) {
      case "link-department":
        link("department", change.department, change.targetId);
        break;
      case "create-department":
      case "update-department": {
        const id = change.kind === "create-department" ? `d${next++}` : change.targetId;
        departments.set(id, {
          id,
          parentId: resolve("department", change.fields.parent),
          name: change.fields.name,
          code: "",
          order: change.fields.order,
          active: true,
        });
        link("department", change.department, id);
        break;
      }
      case "disable-department":
        departments.set(change.targetId, { ...departments.get(change.targetId)!, active: false });
        break;
      case "link-user":
        link("user", change.person, change.targetId);
        break;
      case "create-user":
      case "update-user": {
        const id = change.kind === "create-user" ? `u${next++}` : change.targetId;
        const old = users.get(id);
        const departmentIds = change.fields.departments.map((d) => resolve("department", d));
        const user: TargetUser = {
          id,
          externalId: old?.externalId ?? change.person,
          name: change.fields.name,
          email: change.fields.email || (old?.email ?? ""),
          mobile: change.fields.mobile || (old?.mobile ?? ""),
          employeeNo: change.fields.employeeNo || (old?.employeeNo ?? ""),
          departmentIds,
          primaryDepartmentId: departmentIds[0] ?? "",
          active: old?.active ?? true,
        };
        users.set(id, user);
        link("user", change.person, id);
        break;
      }
      case "enable-user":
      case "disable-user":
        users.set(change.targetId, { ...users.get(change.targetId)!, active: change.kind === "enable-user" });
        if (change.kind === "enable-user") link("user", change.person, change.targetId);
        break;
      case "create-role": {
        const id = `r${next++}`;
        roles.set(id, { id, name: change.targetRole, scoped: change.scoped, rows: new Map() });
        link("role", change.role, id);
        break;
      }
      case "grant":
      case "revoke": {
        const role = roles.get(resolve("role", { pending: change.role }))!;
        const scope = change.scope === null ? "" : resolve("department", change.scope);
        const user = resolve("user", change.user);
        let members = role.rows.get(scope);
        if (members === undefined) role.rows.set(scope, (members = new Set()));
        if (change.kind === "grant") members.add(user);
        else members.delete(user);
        break;
      }
    }
  }
  const roleRecords: Record<string, TargetRole> = {};
  for (const [id, role] of roles)
    roleRecords[id] = {
      id,
      name: role.name,
      scoped: role.scoped,
      rows: [...role.rows].map(([scope, members]) => ({
        scope:
          scope === "" ? { kind: "global" as const } : { kind: "department" as const, departmentId: scope },
        memberIds: [...members],
      })),
    };
  return {
    state: {
      users: Object.fromEntries(users),
      departments: Object.fromEntries(departments),
      roles: roleRecords,
    },
    links: [...linked.values()],
  };
}

/**
 * An incremental read of the primary source in which every hundredth current person changed: in turn a
 * new title, a move to another main department, or joining another role.
 */
export function changeOnePercent(base: DirectorySnapshot): { delta: DirectorySnapshot; changed: number } {
  const titles = [...new Set(base.people.map((p) => p.title ?? ""))].filter((t) => t !== "").sort();
  const departmentIds = base.departments.map((d) => d.id);
  const joins = new Map<string, string[]>(); // group id → new members
  const people: SourcePerson[] = [];
  base.people.forEach((person, i) => {
    if (i % 100 !== 0) return;
    const turn = (i / 100) % 3;
    if (turn === 0) {
      const at = titles.indexOf(person.title ?? "");
      people.push({ ...person, title: titles[(at + 1) % titles.length]! });
    } else if (turn === 1) {
      const main = departmentIds[(i * 7919) % departmentIds.length]!;
      people.push({
        ...person,
        departments: [
          { departmentId: main, main: true, leader: false },
          ...person.departments.filter((d) => !d.main && d.departmentId !== main),
        ],
      });
    } else {
      const group = base.groups[(i / 100) % base.groups.length]!;
      if (group.members.includes(person.subject)) return;
      joins.set(group.id, [...(joins.get(group.id) ?? []), person.subject]);
      people.push(person);
    }
  });
  const groups = base.groups
    .filter((g) => joins.has(g.id))
    .map((g) => ({
      ...g,
      members: [...g.members, ...joins.get(g.id)!],
      directMembers: [...g.directMembers, ...joins.get(g.id)!],
    }));
  return {
    delta: {
      ...base,
      mode: "incremental",
      startedAt: LATER,
      finishedAt: LATER,
      people,
      departments: [],
      groups,
    },
    changed: people.length,
  };
}

interface Row {
  readonly phase: string;
  readonly seconds: number;
  readonly rssMb: number;
  readonly notes: string;
}

function timed<T>(rows: Row[], phase: string, run: () => T, notes: (t: T) => string): T {
  const started = performance.now();
  const result = run();
  const seconds = (performance.now() - started) / 1000;
  rows.push({ phase, seconds, rssMb: process.resourceUsage().maxRSS / 1024, notes: notes(result) });
  return result;
}

const changeSummary = (plan: Plan): string => {
  const counts = Object.entries(countChanges(plan))
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
  return `${plan.changes.length} changes${counts === "" ? "" : ` (${counts})`}`;
};

function plan(
  policy: Policy,
  snapshots: readonly DirectorySnapshot[],
  linked: LinkResult,
  directories: ReturnType<typeof buildDirectoryFacts>,
  target: { state: TargetState; links: readonly TargetLink[] },
  affected?: ReadonlySet<string>,
): Plan {
  return planSync({
    id: "plan_bench",
    now: new Date(LATER),
    policy,
    target: { id: TARGET, capabilities: CAPABILITIES, state: target.state },
    snapshots,
    directories,
    people: linked.people,
    heldPeople: linked.held.personIds,
    links: target.links,
    orgChartSource: PRIMARY,
    profileSources: [PRIMARY, ...snapshots.map((s) => s.sourceId)],
    ...(affected ? { affected } : {}),
  });
}

function link(snapshots: readonly DirectorySnapshot[], existing: readonly Person[]): LinkResult {
  let next = existing.length;
  return linkPeople({
    snapshots,
    config: PLAN_IDENTITY,
    existing,
    now: new Date(LATER),
    newId: () => `p_${(next++).toString(36).padStart(6, "0")}`,
  });
}

const GENERATE = "generate 3 sources (not part of the plan)";
const SCENARIOS = ["first", "evaluate", "converged", "incremental"] as const;
type Scenario = (typeof SCENARIOS)[number];

/** What a first sync leaves behind: the people as stored and the target as the plan made it. */
interface Converged {
  readonly people: readonly Person[];
  readonly state: TargetState;
  readonly links: TargetLink[];
}

/**
 * One scenario in this process (each runs in its own child, so one scenario's plan does not weigh on the
 * next one's garbage collection and peak RSS is the scenario's own). `first` writes the converged target
 * to `stateFile`; `converged` and `incremental` read it, as the service reads people from its store and the
 * state from the target.
 */
function runScenario(scenario: Scenario, people: number, seed: number, stateFile: string): Row[] {
  const rows: Row[] = [];
  const { snapshots, policy } = timed(
    rows,
    GENERATE,
    () => {
      const generated = planInputs(people, seed);
      return { ...generated, snapshots: generated.snapshots.map((s) => proveComplete(s) ?? s) };
    },
    (g) =>
      `${g.snapshots.map((s) => `${s.sourceId} ${s.people.length}`).join(", ")}; ${g.policy.rules.length} rules`,
  );
  const linkNotes = (r: LinkResult) =>
    `${r.people.length} people, ${r.changes.length} link changes, ${r.reviewQueue.length} in review`;
  const indexNotes = (d: ReturnType<typeof buildDirectoryFacts>) => `${d.size} sources`;

  if (scenario === "first" || scenario === "evaluate") {
    const linked = timed(rows, "identity linking", () => link(snapshots, []), linkNotes);
    const directories = timed(rows, "index directories", () => buildDirectoryFacts(snapshots), indexNotes);
    if (scenario === "evaluate") {
      // planSync evaluates everyone itself; the same evaluation alone shows what the rest of planSync costs.
      timed(
        rows,
        "policy evaluation alone, as planSync does it",
        () => {
          const held = new Set(linked.held.personIds);
          let grants = 0;
          for (const person of linked.people)
            if (!held.has(person.id))
              grants += evaluatePolicy(policy, buildPersonFacts(person, directories), { explain: false })
                .grants.length;
          return grants;
        },
        (grants) => `${grants} grants`,
      );
      return rows;
    }
    const empty = { state: emptyTarget(), links: [] as TargetLink[] };
    const first = timed(
      rows,
      "planSync, empty target",
      () => plan(policy, snapshots, linked, directories, empty),
      changeSummary,
    );
    const converged = convergeTarget(empty.state, empty.links, first);
    const saved: Converged = { people: linked.people, ...converged };
    writeFileSync(stateFile, JSON.stringify(saved));
    return rows;
  }

  const saved = JSON.parse(readFileSync(stateFile, "utf8")) as Converged;
  const target = { state: saved.state, links: saved.links };
  if (scenario === "converged") {
    const linked = timed(
      rows,
      "identity linking (people stored)",
      () => link(snapshots, saved.people),
      linkNotes,
    );
    const directories = timed(rows, "index directories", () => buildDirectoryFacts(snapshots), indexNotes);
    timed(
      rows,
      "planSync, converged target",
      () => plan(policy, snapshots, linked, directories, target),
      changeSummary,
    );
    return rows;
  }

  // Incremental: 1% of the primary source's people changed, read incrementally and merged.
  const primary = snapshots.find((s) => s.sourceId === PRIMARY)!;
  const { delta, changed } = changeOnePercent(primary);
  const merged = timed(
    rows,
    "merge the incremental read into the last full one",
    () => snapshots.map((s) => (s.sourceId === PRIMARY ? mergeIncremental(s, delta) : s)),
    () => `${changed} of ${primary.people.length} people changed in ${PRIMARY}`,
  );
  const linked = timed(rows, "identity linking (people stored)", () => link(merged, saved.people), linkNotes);
  const directories = timed(rows, "index directories", () => buildDirectoryFacts(merged), indexNotes);
  const affected = timed(
    rows,
    "people to re-plan (affectedPeople)",
    () => affectedPeople([{ base: primary, delta }], linked.people, linked.changes),
    (set) => `${set.size} people`,
  );
  timed(
    rows,
    "planSync of those people, converged target",
    () => plan(policy, merged, linked, directories, target, affected),
    changeSummary,
  );
  return rows;
}

/** Part 1 and 2: every scenario in a child process of its own, one after the other. */
function planBenchmark(people: number, seed: number): { rows: Row[]; summary: string[] } {
  const stateFile = join(mkdtempSync(join(os.tmpdir(), "bench-sync-")), "converged.json");
  const results = new Map<Scenario, { rows: Row[]; peakRssMb: number }>();
  try {
    for (const scenario of SCENARIOS) {
      const child = spawnSync(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          "--scenario",
          scenario,
          "--people",
          String(people),
          "--seed",
          String(seed),
          "--state",
          stateFile,
        ],
        { encoding: "utf8", maxBuffer: 1 << 24, stdio: ["ignore", "pipe", "inherit"] },
      );
      if (child.status !== 0) throw new Error(`scenario ${scenario} failed (exit ${child.status})`);
      results.set(scenario, JSON.parse(child.stdout) as { rows: Row[]; peakRssMb: number });
    }
  } finally {
    rmSync(dirname(stateFile), { recursive: true, force: true });
  }
  const rows: Row[] = [];
  for (const [scenario, result] of results)
    for (const row of result.rows) rows.push({ ...row, phase: `${scenario}: ${row.phase}` });
  const timedSum = (scenario: Scenario) =>
    results
      .get(scenario)!
      .rows.filter((r) => r.phase !== GENERATE)
      .reduce((total, r) => total + r.seconds, 0);
  // Peak RSS at the end of the last timed phase (the first scenario writes the converged target after it).
  const peak = (scenario: Scenario) =>
    Math.max(...results.get(scenario)!.rows.map((r) => r.rssMb)).toFixed(0);
  const phase = (scenario: Scenario, name: string) =>
    results.get(scenario)!.rows.find((r) => r.phase.startsWith(name))?.seconds ?? Number.NaN;
  const evaluation = phase("evaluate", "policy evaluation");
  const first = timedSum("first");
  const steady = timedSum("converged");
  const inc = timedSum("incremental");
  return {
    rows,
    summary: [
      `full plan, first sync (link + index + planSync): ${first.toFixed(2)} s, peak RSS ${peak("first")} MB (aim ≤ 10 s, ≤ 1024 MB)`,
      `full plan, converged target (link + index + planSync): ${steady.toFixed(2)} s, peak RSS ${peak("converged")} MB`,
      `planSync besides evaluating everyone (planSync − evaluation alone, ${evaluation.toFixed(2)} s): first sync ${(phase("first", "planSync") - evaluation).toFixed(2)} s, converged ${(phase("converged", "planSync") - evaluation).toFixed(2)} s`,
      `incremental, 1% changed (merge + link + index + affected + scoped planSync): ${inc.toFixed(2)} s, peak RSS ${peak("incremental")} MB = ${((inc / steady) * 100).toFixed(0)}% of the converged full plan, ${((inc / first) * 100).toFixed(0)}% of the first sync (aim ≤ 10%)`,
    ],
  };
}

/** Part 3: a plan of `size` changes applied to the Hesi simulator limited to `qps` calls per second. */
async function applyBenchmark(size: number, qps: number, seed: number): Promise<string[]> {
  const sim = await startHesiSimulator({ corpId: "corp-bench", requestsPerSecond: qps });
  try {
    const config = hesiConfigSchema.parse({ ...sim.targetConfig(), requestsPerSecond: qps });
    const connector = openHesiTarget(TARGET, config);
    // Enough people that the first plan has at least `size` changes; its first `size` (in apply order,
    // so every pending reference points to an earlier change) are applied.
    const org = generateOrg({ people: Math.max(20, Math.ceil(size / 4)), seed });
    const snapshots = planSnapshots(org).map((s) => proveComplete(s) ?? s);
    const linked = link(snapshots, []);
    const store = new MemorySyncStore();
    const state = await connector.readState();
    const full = plan(planPolicy(org), snapshots, linked, buildDirectoryFacts(snapshots), {
      state,
      links: [],
    });
    if (full.changes.length < size)
      throw new Error(`the plan has only ${full.changes.length} changes; ask for fewer`);
    const part: Plan = { ...full, changes: full.changes.slice(0, size) };
    const before = [...sim.controls.calls.values()].reduce((a, b) => a + b, 0);
    const throttledBefore = sim.statuses.get(429) ?? 0;
    const started = performance.now();
    const report = await applyPlan({
      plan: part,
      approvedBy: "bench",
      connector,
      store,
      maxFailures: size,
    });
    const seconds = (performance.now() - started) / 1000;
    const calls = [...sim.controls.calls.values()].reduce((a, b) => a + b, 0) - before;
    const throttled = (sim.statuses.get(429) ?? 0) - throttledBefore;
    const rate = calls / seconds;
    return [
      `apply: ${size} changes ${changeSummary(part).replace(/^\d+ changes /, "")} to the Hesi simulator limited to ${qps} calls/s, target requestsPerSecond ${qps}`,
      `apply: ${report.applied} applied, ${report.observed} observed, ${report.failed.length} failed, ${report.mismatches.length} mismatches after read-back`,
      `apply: ${calls} HTTP calls in ${seconds.toFixed(2)} s = ${rate.toFixed(2)} calls/s = ${((rate / qps) * 100).toFixed(1)}% of the limit (aim ≥ 90%); ${throttled} answered 429; ${(report.applied / seconds).toFixed(2)} changes/s`,
    ];
  } finally {
    await sim.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      people: { type: "string", default: "100000" },
      seed: { type: "string", default: "1" },
      "apply-changes": { type: "string", default: "600" },
      qps: { type: "string", default: "20" },
      "skip-apply": { type: "boolean", default: false },
      scenario: { type: "string" },
      state: { type: "string" },
    },
  });
  const people = Number(values.people);
  const size = Number(values["apply-changes"]);
  const qps = Number(values.qps);
  const seed = Number(values.seed);
  if (![people, size, qps].every((n) => Number.isFinite(n) && n > 0)) {
    process.stderr.write(
      "usage: bench/sync.ts [--people N] [--seed S] [--apply-changes M] [--qps Q] [--skip-apply]\n",
    );
    process.exit(2);
  }
  if (values.scenario !== undefined) {
    const scenario = SCENARIOS.find((s) => s === values.scenario);
    if (scenario === undefined || values.state === undefined) throw new TypeError("--scenario needs --state");
    const rows = runScenario(scenario, people, seed, values.state);
    process.stdout.write(JSON.stringify({ rows, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
    return;
  }
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
  process.stdout.write(
    `machine: ${os.cpus().length} × ${cpu}, Node ${process.version}, load ${load()}; ${people} people\n\n`,
  );
  const { rows, summary } = planBenchmark(people, seed);
  process.stdout.write(
    "| phase | seconds | peak RSS so far (MB) | notes |\n| --- | --- | --- | --- |\n" +
      rows
        .map((r) => `| ${r.phase} | ${r.seconds.toFixed(2)} | ${r.rssMb.toFixed(0)} | ${r.notes} |`)
        .join("\n") +
      "\n\n" +
      summary.map((s) => `- ${s}`).join("\n") +
      "\n",
  );
  if (!values["skip-apply"]) {
    const lines = await applyBenchmark(size, qps, seed);
    process.stdout.write(lines.map((s) => `- ${s}`).join("\n") + "\n");
  }
  process.stdout.write(`\nload at the end: ${load()}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
