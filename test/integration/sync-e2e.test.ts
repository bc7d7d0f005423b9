/**
 * The permission sync end to end: the DingTalk simulator (with WeCom linked to it by userid) read for
 * real, linked, planned, approved and applied into the 合思 simulator and into an independent SCIM peer
 * (scimmy). What the target must hold afterwards is worked out here from the generated company and what
 * the policy says — never by asking the planner — and read from the target's own state.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/errors.js";
import type { HesiStaff } from "../../src/simulators/hesi/index.js";
import type { AuditRecord } from "../../src/store/store.js";
import { HESI_ROLES, SCIM_POLICY, SCIM_ROLES, hesiPolicy } from "../fixtures/sync/policies.js";
import {
  DINGTALK_ID,
  WECOM_ID,
  counts,
  departmentPaths,
  expectedGrants,
  hesiHoldings,
  hesiPaths,
  listedPeople,
  startSyncEnv,
  type SyncEnv,
} from "../helpers/sync-env.js";

async function expectPlanState(work: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe("PLAN_STATE");
  expect((error as AppError).message).toMatch(pattern);
}

describe("sync from DingTalk (and WeCom linked by userid) into the 合思 simulator", () => {
  let env: SyncEnv;
  let firstPlanId: string;
  beforeAll(async () => {
    env = await startSyncEnv({
      people: 160,
      wecom: true,
      target: { kind: "hesi" },
      policies: { "hesi-main.yaml": hesiPolicy() },
    });
  });
  afterAll(() => env?.close());

  it("creates exactly the expected departments, staff and role rows, and a second run plans nothing", async () => {
    const hesi = env.hesi!;
    const expected = expectedGrants(env.org, HESI_ROLES);
    // The company must exercise every rule, or this test proves less than it says.
    const all = [...expected.values()].flatMap((s) => [...s]);
    for (const role of ["报销提交人", "部门审批人", "会计", "出纳"])
      expect(all.some((g) => g.split("|")[1] === role)).toBe(true);

    const planned = await env.sync.plan(env.targetId);
    firstPlanId = planned.id;
    expect(planned.status).toBe("pending");
    expect(planned.needsApproval).toBe(true); // 出纳 is sensitive
    await env.sync.approve(planned.id, "alice");
    const { plan, report } = await env.sync.apply(planned.id);
    expect(report.failed).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(plan.status).toBe("applied");

    // Departments: the DingTalk tree below the company, mirrored below 合思's root, nothing else.
    const departments = hesi.departments();
    const paths = hesiPaths(departments);
    const orgPaths = departmentPaths(env.org);
    const activePaths = departments.filter((d) => d.active && d.parentId !== "").map((d) => paths.get(d.id)!);
    expect(activePaths.sort()).toEqual([...orgPaths.values()].filter((p) => p !== "").sort());
    expect(new Set(activePaths).size).toBe(activePaths.length);

    // Staff: one per person with a grant, with the DingTalk profile, main department first.
    const listed = listedPeople(env.org);
    const staff = hesi.staff();
    expect(staff.every((s) => s.active)).toBe(true);
    expect(staff.map((s) => s.code).sort()).toEqual(
      [...expected.keys()].map((u) => listed.get(u)!.jobNumber).sort(),
    );
    const byCode = new Map(staff.map((s) => [s.code, s]));
    const userOf = new Map<string, HesiStaff>();
    for (const userid of expected.keys()) {
      const person = listed.get(userid)!;
      const s = byCode.get(person.jobNumber)!;
      userOf.set(userid, s);
      expect({
        name: s.name,
        cellphone: s.cellphone,
        email: s.email,
        main: paths.get(s.defaultDepartment),
        departments: s.departments.map((d) => paths.get(d)).sort(),
      }).toEqual({
        name: person.name,
        cellphone: person.mobile,
        email: person.email,
        main: orgPaths.get(person.departments[0]!),
        departments: person.departments.map((d) => orgPaths.get(d)).sort(),
      });
    }

    // The WeCom account of each of them is linked to the same person, whose id 合思 holds as userId.
    const people = await env.store.listPeople();
    for (const [userid, s] of userOf) {
      const person = people.find((p) =>
        p.accounts.some((a) => a.sourceId === DINGTALK_ID && a.subject === userid),
      )!;
      expect(person.accounts.map((a) => `${a.sourceId}:${a.subject}`).sort()).toEqual([
        `${DINGTALK_ID}:${userid}`,
        `${WECOM_ID}:${userid}`,
      ]);
      expect(s.userId).toBe(person.id);
    }

    // Role rows: exactly the expected (person, role, department) grants.
    expect(hesiHoldings(hesi, env.org).grants).toEqual(all.sort());

    const again = await env.sync.plan(env.targetId);
    expect(again.status).toBe("empty");
    expect((await env.planOf(again.id)).changes).toEqual([]);
  });

  it("sync show prints every grant with its lineage, policy explain the rules that did and did not match", async () => {
    const finance = env.org.departments.find((d) => d.name === "财务部" && d.parentId === 1)!;
    const leader = env.org.people.find((p) => p.userid === finance.leaders[0])!;

    const shown = await env.cli("sync", "show", firstPlanId);
    expect(shown.stderr).toBe("");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /^Plan plan_\w+ for hesi-main: applied \(needs a person's approval\) — approved by alice/m,
    );
    expect(shown.stdout).toContain(`  ${leader.name} (p_`);
    expect(shown.stdout).toContain(
      `    + 部门审批人 [财务部] — rule leaders-approve-their-departments: leader of 财务部 in ${DINGTALK_ID}`,
    );
    expect(shown.stdout).toMatch(/^ {2}! SENSITIVE_GRANT: \d+ grant\(s\) of sensitive roles \(出纳\)/m);

    const explained = await env.cli("policy", "explain", `${DINGTALK_ID}:${leader.userid}`);
    expect(explained.stderr).toBe("");
    expect(explained.code).toBe(0);
    expect(explained.stdout).toContain(`  ${DINGTALK_ID}: ${leader.name} (${leader.userid}), active\n`);
    expect(explained.stdout).toContain(`  ${WECOM_ID}: ${leader.name} (${leader.userid}), active\n`);
    expect(explained.stdout).toContain(
      "+ 部门审批人 [财务部] — rule leaders-approve-their-departments: leader of 财务部",
    );
    expect(explained.stdout).toMatch(/^ {2}\+ 报销提交人 — rule everyone-submits: /m);
    // The finance leader is no cashier: the rule that did not match says why.
    expect(explained.stdout).toContain(
      `Rules not matched:\n  · rule finance-accountants (会计): not matched: group 职务/会计 not held in ${DINGTALK_ID}\n  · rule cashiers (出纳): not matched: group 职务/出纳 not held in ${DINGTALK_ID}\n`,
    );
  });
});

describe("sync from DingTalk into the SCIM peer (scimmy)", () => {
  let env: SyncEnv;
  beforeAll(async () => {
    env = await startSyncEnv({
      people: 120,
      seed: 3,
      target: { kind: "scim" },
      policies: { "scim-main.yaml": SCIM_POLICY },
    });
  });
  afterAll(() => env?.close());

  it("provisions exactly the expected active users and groups with exactly the expected members", async () => {
    const scim = env.scim!;
    const expected = expectedGrants(env.org, SCIM_ROLES);
    const planned = await env.sync.plan(env.targetId);
    expect(planned.status).toBe("pending");
    await env.sync.approve(planned.id, "alice");
    const { report } = await env.sync.apply(planned.id);
    expect(report.failed).toEqual([]);
    expect(report.mismatches).toEqual([]);

    const listed = listedPeople(env.org);
    const people = await env.store.listPeople();
    const personOf = (userid: string) =>
      people.find((p) => p.accounts.some((a) => a.sourceId === DINGTALK_ID && a.subject === userid))!.id;
    const users = [...scim.users.values()];
    expect(
      users
        .map((u) => ({ externalId: u.externalId, userName: u.userName, active: u.active }))
        .sort((a, b) => String(a.externalId).localeCompare(String(b.externalId))),
    ).toEqual(
      [...expected.keys()]
        .map((u) => ({ externalId: personOf(u), userName: listed.get(u)!.email, active: true }))
        .sort((a, b) => a.externalId.localeCompare(b.externalId)),
    );

    const useridById = new Map(
      users.map((u) => [u.id, listed.get(String(u.userName).split("@")[0]!)!.userid]),
    );
    const held: string[] = [];
    for (const group of scim.groups.values())
      for (const m of (group.members as { value: string }[] | undefined) ?? [])
        held.push(`${useridById.get(m.value) ?? m.value}|${String(group.displayName)}|`);
    expect(held.sort()).toEqual([...expected.values()].flatMap((s) => [...s]).sort());
    expect([...scim.groups.values()].map((g) => g.displayName).sort()).toEqual(
      ["Accountants", "Cashiers", "Expense Submitters"].filter((name) =>
        held.some((h) => h.includes(`|${name}|`)),
      ),
    );

    const again = await env.sync.plan(env.targetId);
    expect(again.status).toBe("empty");
  });
});

describe("approving, rejecting and superseding plans", () => {
  let env: SyncEnv;
  beforeAll(async () => {
    env = await startSyncEnv({
      people: 100,
      seed: 2,
      target: { kind: "hesi" },
      policies: { "hesi-main.yaml": hesiPolicy() },
    });
  });
  afterAll(() => env?.close());

  it("applies only an approved current plan, and audits every decision", async () => {
    const hesi = env.hesi!;
    const first = await env.sync.plan(env.targetId);
    expect(first).toMatchObject({ status: "pending", needsApproval: true });
    await expectPlanState(env.sync.apply(first.id), /is pending: it needs approval first/);

    const second = await env.sync.plan(env.targetId);
    expect((await env.sync.getPlan(first.id)).status).toBe("superseded");
    await expectPlanState(env.sync.apply(first.id), /is superseded: a newer plan replaced it/);
    await expectPlanState(env.sync.approve(first.id, "alice"), /is superseded; only a pending plan/);

    await env.sync.reject(second.id, "bob", "not today");
    await expectPlanState(env.sync.apply(second.id), /is rejected: it was rejected/);
    expect(hesi.staff()).toEqual([]);

    const [outcome] = await env.sync.run("cli", { fresh: "all", incremental: false });
    expect(outcome!.run.status).toBe("needs-approval");
    expect(hesi.staff()).toEqual([]);
    const third = outcome!.plan;
    await env.sync.approve(third.id, "alice");
    await expectPlanState(env.sync.approve(third.id, "carol"), /is approved \(approved by alice\)/);
    const { plan } = await env.sync.apply(third.id);
    expect(plan.status).toBe("applied");
    expect(hesi.staff().length).toBeGreaterThan(0);
    await expectPlanState(env.sync.apply(third.id), /is applied: it was applied already/);

    const entries = (await env.auditEntries()).filter((e: AuditRecord) => e.action.startsWith("plan."));
    const seen = entries.map((e) => `${e.action} ${e.subject}`);
    expect(counts(seen)).toEqual(
      new Map([
        [`plan.created ${first.id}`, 1],
        [`plan.created ${second.id}`, 1],
        [`plan.rejected ${second.id}`, 1],
        [`plan.created ${third.id}`, 1],
        [`plan.refused ${third.id}`, 1],
        [`plan.approved ${third.id}`, 1],
        [`plan.applied ${third.id}`, 1],
      ]),
    );
    expect(entries.find((e) => e.action === "plan.rejected")).toMatchObject({
      actor: "person:bob",
      details: { comment: "not today" },
    });
    expect(
      entries.find((e) => e.action === "plan.created" && e.subject === second.id)?.details,
    ).toMatchObject({
      superseded: [first.id],
    });
  });

  it("pauses automatic runs while a plan waits for a decision, and lets a person plan anew", async () => {
    // Department leaders become cashiers too: sensitive grants, so the plan waits for a person.
    env.writePolicy(
      "hesi-main.yaml",
      hesiPolicy({ rules: "  - id: leaders-pay\n    when: { leaderOf: any }\n    grant: cashier\n" }),
    );
    const waiting = await env.sync.plan(env.targetId);
    expect(waiting).toMatchObject({ status: "pending", needsApproval: true });
    for (const trigger of ["schedule", "callback"] as const) {
      const [outcome] = await env.sync.run(trigger, { fresh: "all", incremental: false });
      expect(outcome!.run).toMatchObject({
        status: "needs-approval",
        planId: waiting.id,
        summary: { waitingFor: waiting.id },
      });
      expect((await env.sync.getPlan(waiting.id)).status).toBe("pending");
    }
    const [manual] = await env.sync.run("cli", { fresh: "all", incremental: false });
    expect(manual!.plan.id).not.toBe(waiting.id);
    expect((await env.sync.getPlan(waiting.id)).status).toBe("superseded");
  });
});
