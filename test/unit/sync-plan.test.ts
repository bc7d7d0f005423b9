/**
 * The planner and the apply engine together against an in-memory target: what a first sync creates,
 * that a second plans nothing, what leaving does, and the guardrails (incomplete reads, thresholds,
 * sensitive grants, revived accounts, held people, unmanaged holders, stale plans, exactly-once audit).
 */
import { describe, expect, it } from "vitest";
import type { Person } from "../../src/identity/person.js";
import { parsePolicyText } from "../../src/policy/load.js";
import type { Policy } from "../../src/policy/schema.js";
import { proveComplete, type DirectorySnapshot, type SourcePerson } from "../../src/sources/snapshot.js";
import { applyPlan, type ApplyReport } from "../../src/sync/apply.js";
import { planSync, type PlanInput } from "../../src/sync/diff.js";
import { formatPlan } from "../../src/sync/format.js";
import { affectedPeople, mergeIncremental } from "../../src/sync/merge.js";
import type { Plan } from "../../src/sync/plan.js";
import { AD, DINGTALK, linked } from "../fixtures/policy/directory.js";
import { MemorySyncStore, MemoryTarget } from "../helpers/memory-target.js";

const POLICY = `
version: 1
target: hesi-main
roles:
  submitter: { targetRole: 报销提交人 }
  approver: { targetRole: 部门审批人, scope: department }
  cashier: { targetRole: 出纳, sensitive: true }
  accountant: { targetRole: 会计 }
rules:
  - id: everyone-submits
    when: { status: active }
    grant: submitter
  - id: leaders-approve-their-departments
    when: { leaderOf: any }
    grant: approver
    scope: ledDepartments
  - id: ad-cashiers
    when: { group: "ad-hq:CN=Cashiers,OU=Finance,DC=corp,DC=example,DC=test" }
    grant: cashier
  - id: finance-accountants
    when:
      all:
        - department: { source: dingtalk-hq, path: 财务部 }
        - title: 会计
    grant: accountant
separationOfDuties:
  - id: cashier-is-not-approver
    roles: [approver, cashier]
    effect: block
`;

function policyOf(text: string): Policy {
  const parsed = parsePolicyText(text, "policies/hesi-main.yaml");
  expect(parsed.problems).toEqual([]);
  return parsed.policy!;
}

const policy = policyOf(POLICY);
const PEOPLE: Person[] = [
  linked("zhangwei", "guid-zhangwei"),
  linked("lina", "guid-lina"),
  linked("wangfang", "guid-wangfang"),
  linked("chenjie", "guid-chenjie"),
  linked("zhaolei"),
];

/** A copy of a snapshot that went through proveComplete (the fixtures are plain objects). */
function complete(snapshot: DirectorySnapshot): DirectorySnapshot {
  return proveComplete(structuredClone(snapshot))!;
}

function withPeople(
  snapshot: DirectorySnapshot,
  edit: (people: SourcePerson[]) => SourcePerson[],
): DirectorySnapshot {
  return { ...structuredClone(snapshot), people: edit(structuredClone([...snapshot.people])) };
}

let planNo = 0;
async function plan(
  target: MemoryTarget,
  store: MemorySyncStore,
  overrides: Partial<PlanInput> = {},
): Promise<Plan> {
  return planSync({
    id: `plan_${++planNo}`,
    now: new Date("2026-11-28T00:00:00Z"),
    policy,
    target: { id: target.id, capabilities: target.capabilities(), state: await target.readState() },
    snapshots: [complete(DINGTALK), complete(AD)],
    people: PEOPLE,
    heldPeople: [],
    links: await store.listTargetLinks(),
    orgChartSource: "dingtalk-hq",
    profileSources: ["dingtalk-hq", "ad-hq"],
    ...overrides,
  });
}

async function apply(p: Plan, target: MemoryTarget, store: MemorySyncStore): Promise<ApplyReport> {
  return applyPlan({ plan: p, approvedBy: "security-admin", connector: target, store, maxFailures: 10 });
}

async function synced(): Promise<{ target: MemoryTarget; store: MemorySyncStore }> {
  const target = new MemoryTarget();
  const store = new MemorySyncStore();
  const report = await apply(await plan(target, store), target, store);
  expect(report.failed).toEqual([]);
  expect(report.mismatches).toEqual([]);
  return { target, store };
}

const kinds = (p: Plan) => p.changes.map((c) => `${c.kind} ${c.key}`);

describe("sync plan: a first sync into an empty target", () => {
  it("creates departments top-down, roles, users and grants with lineage, in apply order", async () => {
    const p = await plan(new MemoryTarget(), new MemorySyncStore());
    const departments = p.changes
      .filter((c) => c.kind === "create-department")
      .map((c) => (c.kind === "create-department" ? c.path : ""));
    expect(departments).toEqual([
      "财务部",
      "研发中心",
      "财务部/华东区",
      "研发中心/华东区",
      "财务部/华东区/一组",
    ]);
    expect(p.changes[0]).toMatchObject({
      kind: "link-department",
      department: "dingtalk-hq:1",
      targetId: "root",
    });
    const order = p.changes.map((c) => c.kind);
    expect(order.indexOf("create-user")).toBeGreaterThan(order.lastIndexOf("create-department"));
    expect(order.indexOf("grant")).toBeGreaterThan(order.lastIndexOf("create-role"));
    // wangfang left: nothing for her.
    expect(p.changes.filter((c) => "person" in c).map((c) => ("person" in c ? c.person : ""))).not.toContain(
      "p-wangfang",
    );
    const approver = p.changes.find(
      (c) => c.kind === "grant" && c.person === "p-zhangwei" && c.role === "approver",
    );
    expect(approver).toMatchObject({
      scope: { pending: "dingtalk-hq:2" },
      scopeLabel: "财务部",
      lineage: [{ rule: "leaders-approve-their-departments", facts: ["leader of 财务部 in dingtalk-hq"] }],
    });
    expect(p.sod).toEqual([
      {
        person: "p-zhangwei",
        name: "张伟",
        constraint: "cashier-is-not-approver",
        effect: "block",
        roles: ["approver", "cashier"],
        withheld: "cashier",
      },
    ]);
    expect(p.blocked).toEqual([]);
    expect(p.risk).toEqual([]);
  });

  it("converges: after applying, a second plan has no changes", async () => {
    const { target, store } = await synced();
    expect(target.holders("部门审批人")).toEqual(["张伟 [财务部]", "赵磊 [一组]"]);
    expect(target.holders("报销提交人")).toEqual(["张伟", "李娜", "赵磊", "陈杰"]);
    expect(target.holders("会计")).toEqual(["李娜", "赵磊"]);
    expect(target.holders("出纳")).toEqual([]);
    const again = await plan(target, store);
    expect(kinds(again)).toEqual([]);
    expect(again.problems).toEqual([]);
  });

  it("records exactly one audit entry per change, carrying the plan, the lineage and the approver", async () => {
    const target = new MemoryTarget();
    const store = new MemorySyncStore();
    const p = await plan(target, store);
    await apply(p, target, store);
    expect(store.audit).toHaveLength(p.changes.length);
    const grant = store.audit.find(
      (r) => r.action === "role.granted" && r.subject === "p-zhangwei" && r.details.role === "approver",
    );
    expect(grant?.details).toMatchObject({
      plan: p.id,
      approvedBy: "security-admin",
      scope: "财务部",
      lineage: [{ rule: "leaders-approve-their-departments" }],
    });
    // Applying the same plan again writes nothing and records nothing.
    const writes = target.writes.length;
    const again = await apply(p, target, store);
    expect(again).toMatchObject({ applied: 0, observed: 0, skipped: p.changes.length });
    expect(target.writes).toHaveLength(writes);
    expect(store.audit).toHaveLength(p.changes.length);
  });
});

describe("sync plan: people leaving and guardrails", () => {
  const left = (snapshot: DirectorySnapshot, subject: string) =>
    withPeople(snapshot, (people) =>
      people.map((p) => (p.subject === subject ? { ...p, status: "left" as const } : p)),
    );

  it("revokes every role and disables the user when a person leaves, with the reason", async () => {
    const { target, store } = await synced();
    const p = await plan(target, store, { snapshots: [complete(left(DINGTALK, "zhaolei")), complete(AD)] });
    expect(kinds(p)).toEqual([
      "revoke revoke:p-zhaolei:submitter:",
      `revoke revoke:p-zhaolei:approver:${target.departmentsNamed("一组")[0]}`,
      "revoke revoke:p-zhaolei:accountant:",
      "disable-user user:disable:p-zhaolei",
    ]);
    const disable = p.changes.find((c) => c.kind === "disable-user");
    expect(disable).toMatchObject({ reason: "no rule grants any role any more (left in dingtalk-hq)" });
    const revoke = p.changes.find((c) => c.kind === "revoke" && c.role === "submitter");
    expect(revoke).toMatchObject({ reason: expect.stringContaining("no rule grants 报销提交人 any more") });
    await apply(p, target, store);
    expect(target.holders("报销提交人")).toEqual(["张伟", "李娜", "陈杰"]);
    expect([...target.users.values()].find((u) => u.name === "赵磊")?.active).toBe(false);
  });

  it("plans no removal from a snapshot that was not read completely, but still grants", async () => {
    const { target, store } = await synced();
    const partial: DirectorySnapshot = {
      ...withPeople(DINGTALK, (people) => people.filter((p) => p.subject !== "zhaolei")),
      completeness: {
        complete: false,
        reasons: [{ code: "RATE_LIMITED", message: "dingtalk-hq: rate limited" }],
      },
    };
    const p = await plan(target, store, { snapshots: [partial, complete(AD)] });
    expect(p.changes.filter((c) => c.kind === "revoke" || c.kind === "disable-user")).toEqual([]);
    expect(p.blocked.map((b) => b.change.kind).sort()).toEqual([
      "disable-user",
      "revoke",
      "revoke",
      "revoke",
    ]);
    expect(p.blocked[0]!.sources).toContain("dingtalk-hq");
    expect(p.sources.find((s) => s.id === "dingtalk-hq")).toMatchObject({
      complete: false,
      reasons: ["dingtalk-hq: rate limited"],
    });
  });

  it("does not count a snapshot as complete unless it was proven complete", async () => {
    const { target, store } = await synced();
    // complete: true written by hand, not through proveComplete: removals stay blocked.
    const unproven = structuredClone(left(DINGTALK, "zhaolei"));
    const p = await plan(target, store, { snapshots: [unproven, complete(AD)] });
    expect(p.changes.filter((c) => c.kind === "disable-user")).toEqual([]);
    expect(p.blocked.some((b) => b.change.kind === "disable-user")).toBe(true);
  });

  it("needs approval when revocations pass the threshold, and names the figures", async () => {
    const { target, store } = await synced();
    const strict = policyOf(
      POLICY.replace(
        "separationOfDuties:",
        "guardrails:\n  maxRevocations: { count: 200, percent: 10 }\nseparationOfDuties:",
      ).replace(/ {2}- id: everyone-submits\n {4}when: \{ status: active \}\n {4}grant: submitter\n/, ""),
    );
    const p = await plan(target, store, { policy: strict });
    // Everyone loses 报销提交人; 陈杰 held nothing else, so he is disabled too.
    expect(p.changes.filter((c) => c.kind === "revoke")).toHaveLength(4);
    expect(p.risk).toEqual([
      {
        code: "THRESHOLD_DISABLES",
        message:
          "1 user disables (25.0% of 4) exceed the guardrail of 50 or 5% in policies/hesi-main.yaml; a security admin must approve",
      },
      {
        code: "THRESHOLD_REVOCATIONS",
        message:
          "4 role revocations (50.0% of 8) exceed the guardrail of 200 or 10% in policies/hesi-main.yaml; a security admin must approve",
      },
    ]);
  });

  it("needs approval for a grant of a sensitive role", async () => {
    const { target, store } = await synced();
    const ad = structuredClone(AD);
    const group = ad.groups.find((g) => g.id === "g-fin")!;
    (group.members as string[]).push("guid-chenjie");
    const p = await plan(target, store, { snapshots: [complete(DINGTALK), complete(ad)] });
    expect(kinds(p)).toEqual(["grant grant:p-chenjie:cashier:"]);
    expect(p.risk.map((r) => r.code)).toEqual(["SENSITIVE_GRANT"]);
  });

  it("leaves people in identity review unchanged", async () => {
    const { target, store } = await synced();
    const p = await plan(target, store, {
      snapshots: [complete(left(DINGTALK, "zhaolei")), complete(AD)],
      heldPeople: ["p-zhaolei"],
    });
    expect(kinds(p)).toEqual([]);
    expect(p.heldPeople).toEqual(["p-zhaolei"]);
  });
});

describe("sync plan: existing accounts in the target", () => {
  it("takes over an active user with the same mobile instead of creating one, and revives a disabled one only with approval", async () => {
    const dingtalk = withPeople(DINGTALK, (people) =>
      people.map((p) =>
        p.subject === "chenjie"
          ? { ...p, mobile: "+86 138 0000 0001" }
          : p.subject === "zhaolei"
            ? { ...p, mobile: "13800000002" }
            : p,
      ),
    );
    const target = new MemoryTarget();
    target.addUser({ id: "h1", name: "陈杰", mobile: "13800000001" });
    target.addUser({ id: "h2", name: "赵磊", mobile: "13800000002", active: false });
    const p = await plan(target, new MemorySyncStore(), { snapshots: [complete(dingtalk), complete(AD)] });
    expect(p.changes.filter((c) => c.kind === "link-user" || c.kind === "enable-user")).toMatchObject([
      { kind: "link-user", person: "p-chenjie", targetId: "h1", matchedBy: "mobile" },
      { kind: "link-user", person: "p-zhaolei", targetId: "h2", matchedBy: "mobile" },
      { kind: "enable-user", person: "p-zhaolei", targetId: "h2", revives: true },
    ]);
    expect(
      p.changes.filter((c) => c.kind === "create-user").map((c) => ("person" in c ? c.person : "")),
    ).toEqual(["p-lina", "p-zhangwei"]);
    expect(p.risk.map((r) => r.code)).toEqual(["REENABLE_MATCH"]);
  });

  it("leaves holders of a managed role that nobody links alone, and reports them", async () => {
    const { target, store } = await synced();
    const stranger = target.addUser({ id: "h9", name: "外部顾问" });
    const role = [...target.roles.values()].find((r) => r.name === "会计")!;
    target.roles.set(role.id, {
      ...role,
      rows: [{ scope: { kind: "global" }, memberIds: [...role.rows[0]!.memberIds, stranger.id] }],
    });
    const p = await plan(target, store);
    expect(kinds(p)).toEqual([]);
    expect(p.problems).toEqual([
      {
        code: "UNMANAGED_HOLDERS",
        message: expect.stringMatching(/^1 hesi-main user\(s\) hold 会计 but are not linked/),
      },
    ]);
  });

  it("refuses a stale plan before writing anything", async () => {
    const { target, store } = await synced();
    const dingtalk = withPeople(DINGTALK, (people) =>
      people.map((p) => (p.subject === "lina" ? { ...p, name: "李娜娜" } : p)),
    );
    const p = await plan(target, store, { snapshots: [complete(dingtalk), complete(AD)] });
    expect(kinds(p)).toEqual(["update-user user:update:p-lina"]);
    const lina = [...target.users.values()].find((u) => u.name === "李娜")!;
    target.users.set(lina.id, { ...lina, name: "李娜 (财务)" });
    const writes = target.writes.length;
    await expect(apply(p, target, store)).rejects.toMatchObject({ code: "PLAN_STALE" });
    expect(target.writes).toHaveLength(writes);
  });
});

describe("apply: failures", () => {
  it("records a failed change as failed, and the dependent grants as failed with the cause", async () => {
    const target = new MemoryTarget();
    const store = new MemorySyncStore();
    target.failWith = (c) =>
      c.kind === "create-user" && c.user.name === "陈杰"
        ? { status: "failed", failure: { class: "bad-data", code: "HTTP_400", message: "手机号格式错误" } }
        : undefined;
    const p = await plan(target, store);
    const report = await apply(p, target, store);
    expect(report.failed.map((f) => f.key)).toEqual(["user:create:p-chenjie", "grant:p-chenjie:submitter:"]);
    expect(report.failed[1]!.failure.code).toBe("DEPENDENCY_FAILED");
    expect(store.audit.filter((r) => r.action === "sync.change.failed")).toHaveLength(2);
    // The next plan tries again; once it works, each effective change has exactly one success entry.
    target.failWith = undefined;
    const next = await plan(target, store);
    expect(kinds(next)).toEqual(["create-user user:create:p-chenjie", "grant grant:p-chenjie:submitter:"]);
    await apply(next, target, store);
    expect(
      store.audit.filter((r) => r.action === "target.user.created" && r.subject === "p-chenjie"),
    ).toHaveLength(1);
  });

  it("stops at once when the target refuses the credentials", async () => {
    const target = new MemoryTarget();
    const store = new MemorySyncStore();
    target.failWith = () => ({
      status: "failed",
      failure: { class: "auth", code: "HTTP_401", message: "token expired" },
    });
    const p = await plan(target, store);
    const report = await apply(p, target, store);
    expect(report.failed).toHaveLength(1);
    expect(report.stoppedBecause).toMatch(/refused our credentials/);
    expect(report.notAttempted).toBe(p.changes.length - 2); // the root link and the failed create
  });
});

describe("sync show", () => {
  it("prints what needs approval and each person's changes with their lineage and reasons", async () => {
    const { target, store } = await synced();
    const ad = structuredClone(AD);
    (ad.groups.find((g) => g.id === "g-fin")!.members as string[]).push("guid-chenjie");
    const dingtalk = withPeople(DINGTALK, (people) =>
      people.map((p) => (p.subject === "zhaolei" ? { ...p, status: "left" as const } : p)),
    );
    const p = await plan(target, store, { snapshots: [complete(dingtalk), complete(ad)] });
    const text = formatPlan({ status: "pending", hash: "abc", decision: null, needsApproval: true }, p);
    expect(text).toContain("Plan plan_");
    expect(text).toMatch(/! SENSITIVE_GRANT: 1 grant\(s\) of sensitive roles \(出纳\): 陈杰 \(出纳\)/);
    expect(text).toContain(
      `  陈杰 (p-chenjie)\n    + 出纳 — rule ad-cashiers: member of CN=Cashiers,OU=Finance,DC=corp,DC=example,DC=test in ad-hq (sensitive)`,
    );
    expect(text).toMatch(
      / {2}赵磊 \(p-zhaolei\)\n {4}- 报销提交人 — no rule grants 报销提交人 any more \(rule everyone-submits: /,
    );
    expect(text).toMatch(/- disable account t\d+: no rule grants any role any more \(left in dingtalk-hq\)/);
  });
});

describe("incremental snapshots", () => {
  it("lay changes over the last full read but stay incremental, so nothing is removed on their account", async () => {
    const { target, store } = await synced();
    const delta: DirectorySnapshot = {
      ...structuredClone(DINGTALK),
      mode: "incremental",
      people: [{ ...structuredClone(DINGTALK.people.find((p) => p.subject === "zhaolei")!), status: "left" }],
      departments: [],
    };
    const merged = mergeIncremental(complete(DINGTALK), delta);
    expect(merged.mode).toBe("incremental");
    expect(merged.people).toHaveLength(DINGTALK.people.length);
    expect(proveComplete(merged)).toBeNull();
    const p = await plan(target, store, { snapshots: [merged, complete(AD)] });
    expect(p.changes).toEqual([]);
    expect(p.blocked.map((b) => b.change.kind)).toEqual(["revoke", "revoke", "revoke", "disable-user"]);
  });
});

describe("a roles-only target (合思's DingTalk edition)", () => {
  it("finds staff by their DingTalk userid, manages only role members, and waits for staff it cannot find", async () => {
    const target = new MemoryTarget("hesi-main", {
      users: false,
      departments: false,
      scopedRoles: true,
      reenable: false,
    });
    target.addUser({ id: "s1", name: "张伟", externalId: "zhangwei" });
    target.addUser({ id: "s2", name: "李娜", externalId: "lina" });
    const store = new MemorySyncStore();
    const p = await plan(target, store);
    expect(
      p.changes.filter((c) => c.kind.endsWith("-user") || c.kind.endsWith("-department")).map((c) => c.kind),
    ).toEqual(["link-user", "link-user"]);
    expect(p.changes.find((c) => c.kind === "link-user")).toMatchObject({ matchedBy: "dingtalk-hq userid" });
    expect(p.problems.filter((x) => x.code === "NOT_IN_TARGET").map((x) => x.person)).toEqual([
      "p-chenjie",
      "p-zhaolei",
    ]);
    // The approver role is per department, and departments are not mirrored: reported, not granted.
    expect(p.problems.some((x) => x.code === "SCOPE_OUTSIDE_ORG_CHART" && x.person === "p-zhangwei")).toBe(
      true,
    );
    const report = await apply(p, target, store);
    expect(report.failed).toEqual([]);
    expect(target.holders("报销提交人")).toEqual(["张伟", "李娜"]);
    expect(target.writes.some((w) => w.kind === "create-user" || w.kind === "create-department")).toBe(false);
  });
});

describe("incremental runs: the people to re-plan", () => {
  it("are those the changes list, who joined or left a changed group or leadership, and those whose links changed", () => {
    const acct = AD.groups.find((g) => g.id === "g-acct")!;
    const delta: DirectorySnapshot = {
      ...structuredClone(AD),
      mode: "incremental",
      people: [structuredClone(AD.people.find((p) => p.subject === "guid-chenjie")!)],
      // guid-lina leaves Accountants, guid-zhangwei joins; the unchanged Finance Cashiers list adds nobody.
      groups: [
        { ...structuredClone(acct), members: ["guid-zhangwei"], directMembers: ["guid-zhangwei"] },
        structuredClone(AD.groups.find((g) => g.id === "g-fin")!),
      ],
    };
    const yizu = DINGTALK.departments.find((d) => d.id === "4")!;
    const dingtalkDelta: DirectorySnapshot = {
      ...structuredClone(DINGTALK),
      mode: "incremental",
      people: [],
      groups: [],
      // 一组 renamed and led by lina instead of zhaolei.
      departments: [{ ...structuredClone(yizu), name: "一组（新）", leaders: ["lina"] }],
    };
    const affected = affectedPeople(
      [
        { base: AD, delta },
        { base: DINGTALK, delta: dingtalkDelta },
      ],
      PEOPLE,
      [{ kind: "person-created", personId: "p-new", account: { sourceId: "ad-hq", subject: "guid-new" } }],
    );
    expect([...affected].sort()).toEqual(["p-chenjie", "p-lina", "p-new", "p-zhangwei", "p-zhaolei"]);
    expect(affected.has("p-wangfang")).toBe(false);
  });

  it("a scoped plan diffs only the affected people", async () => {
    const { target, store } = await synced();
    const dingtalk = withPeople(DINGTALK, (people) =>
      people.map((p) =>
        p.subject === "zhaolei" || p.subject === "lina" ? { ...p, status: "left" as const } : p,
      ),
    );
    const p = await plan(target, store, {
      snapshots: [complete(dingtalk), complete(AD)],
      affected: new Set(["p-zhaolei"]),
    });
    expect(new Set(p.changes.map((c) => ("person" in c ? c.person : "")))).toEqual(new Set(["p-zhaolei"]));
    expect(p.problems).toEqual([]);
  });
});
