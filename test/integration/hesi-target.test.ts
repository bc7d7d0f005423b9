import { afterEach, describe, expect, it } from "vitest";
import { generateOrg } from "../../src/simulators/common/org.js";
import {
  demoExistingData,
  existingFromOrg,
  startHesiSimulator,
  type HesiSimulatorOptions,
} from "../../src/simulators/hesi/index.js";
import { hesiConfigSchema, openHesiTarget } from "../../src/targets/hesi/index.js";
import type { ChangeResult, TargetChange, TargetConnector } from "../../src/targets/target.js";

type Running = Awaited<ReturnType<typeof startHesiSimulator>>;

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(options: HesiSimulatorOptions = {}): Promise<Running> {
  const sim = await startHesiSimulator({ corpId: "corp1", existing: demoExistingData(), ...options });
  running.push(sim);
  return sim;
}

/** A connector on the simulator's clock; waits are recorded and shortened so tests stay fast. */
function connect(
  sim: Running,
  extra: Record<string, unknown> = {},
): { target: TargetConnector; waits: number[] } {
  const waits: number[] = [];
  const config = hesiConfigSchema.parse({
    ...sim.targetConfig(),
    requestsPerSecond: 100,
    timeoutMs: 2000,
    ...extra,
  });
  const target = openHesiTarget("hesi-test", config, {
    now: () => sim.controls.clock.now(),
    sleep: (ms) => {
      waits.push(ms);
      return new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5)));
    },
  });
  return { target, waits };
}

const byName = (sim: Running, name: string) => sim.staff().filter((s) => s.name === name);
const deptId = (sim: Running, name: string): string =>
  sim.departments().find((d) => d.name === name && d.active)!.id;

function applied(result: ChangeResult | undefined): string {
  if (result?.status !== "applied") throw new Error(`expected applied, got ${JSON.stringify(result)}`);
  return result.targetId!;
}

describe("hesi target: reading", () => {
  it("reads staff, departments and role rows across pages of 100, disabled staff included", async () => {
    const org = generateOrg({ people: 250, seed: 3 });
    const sim = await start({ existing: existingFromOrg(org), edition: "dingtalk" });
    const { target } = connect(sim);
    const state = await target.readState();
    expect(Object.keys(state.users)).toHaveLength(sim.staff().length);
    expect(sim.staff().length).toBeGreaterThan(200);
    expect(Object.keys(state.departments)).toHaveLength(sim.departments().length);
    expect(Object.values(state.users).some((u) => !u.active)).toBe(sim.staff().some((s) => !s.active));
    const one = sim.staff()[0]!;
    expect(state.users[one.id]).toMatchObject({ externalId: one.userId, name: one.name, active: one.active });
    expect(state.departments["corp1"]?.parentId).toBeNull();
    expect(Object.keys(state.roles)).toContain("corp1:admin");
  });

  it("states that a rolesOnly tenant manages no users or departments", async () => {
    const sim = await start({ edition: "wecom" });
    const { target } = connect(sim);
    expect(target.capabilities()).toMatchObject({ users: false, departments: false, scopedRoles: true });
    const result = await target.apply({ kind: "disable-user", targetId: "corp1:legacy-1" });
    expect(result).toMatchObject({ status: "failed", failure: { class: "bad-data", code: "UNSUPPORTED" } });
  });
});

describe("hesi target: staff", () => {
  it("creates a staff with our external id as userid, and a second create adopts it instead of duplicating", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const user = {
      name: "新出纳",
      mobile: "13800000001",
      email: "Cashier@Example.cn",
      departmentIds: [deptId(sim, "出纳组")],
    };
    const first = await target.apply({ kind: "create-user", externalId: "p-1", user });
    expect(applied(first)).toBe("corp1:p-1");
    const second = await target.apply({
      kind: "create-user",
      externalId: "p-1",
      user: { ...user, name: "新出纳2" },
    });
    expect(second).toEqual({ status: "applied", targetId: "corp1:p-1", adopted: true });
    expect(byName(sim, "新出纳")).toHaveLength(0);
    expect(byName(sim, "新出纳2")).toHaveLength(1);
  });

  it("adopts an active staff found by phone when the userid differs", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const result = await target.apply({
      kind: "create-user",
      externalId: "p-legacy",
      user: { name: "老财务", mobile: "13900000001", departmentIds: [deptId(sim, "财务部")] },
    });
    expect(result).toEqual({ status: "applied", targetId: "corp1:legacy-1", adopted: true });
    expect(sim.staff().filter((s) => s.cellphone === "13900000001")).toHaveLength(1);
  });

  it("does not silently re-enable a disabled staff whose phone a create reuses: DISABLED_MATCH names that staff", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const result = await target.apply({
      kind: "create-user",
      externalId: "p-new",
      user: { name: "新人", mobile: "13900000002", departmentIds: [deptId(sim, "销售部")] },
    });
    expect(result).toMatchObject({
      status: "failed",
      failure: { class: "conflict", code: "DISABLED_MATCH", targetId: "corp1:legacy-2" },
    });
    const legacy = sim.staff().find((s) => s.id === "corp1:legacy-2")!;
    expect(legacy).toMatchObject({ active: false, name: "离职员工" });
    expect(byName(sim, "新人")).toHaveLength(0);
  });

  it("still refuses to revive a staff this connector disabled earlier in the run", async () => {
    const sim = await start();
    const { target } = connect(sim);
    await target.readState();
    applied(await target.apply({ kind: "disable-user", targetId: "corp1:legacy-1" }));
    const result = await target.apply({
      kind: "create-user",
      externalId: "p-again",
      user: { name: "回来了", mobile: "13900000001", departmentIds: [deptId(sim, "财务部")] },
    });
    expect(result).toMatchObject({
      status: "failed",
      failure: { code: "DISABLED_MATCH", targetId: "corp1:legacy-1" },
    });
    expect(sim.staff().find((s) => s.id === "corp1:legacy-1")?.active).toBe(false);
  });

  it("enable-user re-enables a disabled staff and licenses it again", async () => {
    const sim = await start();
    const { target } = connect(sim);
    expect(applied(await target.apply({ kind: "enable-user", targetId: "corp1:legacy-2" }))).toBe(
      "corp1:legacy-2",
    );
    expect(sim.staff().find((s) => s.id === "corp1:legacy-2")).toMatchObject({
      active: true,
      authState: true,
    });
  });

  it("updates name, phone and departments of a staff", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const sales = deptId(sim, "销售部");
    applied(
      await target.apply({
        kind: "update-user",
        targetId: "corp1:legacy-1",
        user: { name: "老财务(改)", mobile: "13900000099", employeeNo: "E9", departmentIds: [sales] },
      }),
    );
    expect(sim.staff().find((s) => s.id === "corp1:legacy-1")).toMatchObject({
      name: "老财务(改)",
      cellphone: "13900000099",
      code: "E9",
      departments: [sales],
    });
  });

  it("fails the disable of a staff with pending approvals with PENDING_APPROVALS by default, and leaves it active", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const result = await target.apply({ kind: "disable-user", targetId: "corp1:legacy-3" });
    expect(result).toMatchObject({
      status: "failed",
      failure: { class: "conflict", code: "PENDING_APPROVALS" },
    });
    expect(sim.staff().find((s) => s.id === "corp1:legacy-3")?.active).toBe(true);
  });

  it("forces the disable of a staff with pending approvals when onPendingApprovals is force", async () => {
    const sim = await start();
    const { target } = connect(sim, { onPendingApprovals: "force" });
    applied(await target.apply({ kind: "disable-user", targetId: "corp1:legacy-3" }));
    expect(sim.staff().find((s) => s.id === "corp1:legacy-3")?.active).toBe(false);
  });

  it("reports disabling an unknown staff as NOT_FOUND instead of success", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const result = await target.apply({ kind: "disable-user", targetId: "corp1:nobody" });
    expect(result).toMatchObject({ status: "failed", failure: { class: "bad-data", code: "NOT_FOUND" } });
  });

  it("isolates bad data per item: the other changes of the batch apply", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const dept = deptId(sim, "财务部");
    const changes: TargetChange[] = [
      {
        kind: "create-user",
        externalId: "a",
        user: { name: "甲", mobile: "13811111111", departmentIds: [dept] },
      },
      { kind: "create-user", externalId: "b", user: { name: "乙", mobile: "phone?", departmentIds: [dept] } },
      {
        kind: "create-user",
        externalId: "c",
        user: { name: "丙", email: "c@example.cn", departmentIds: [dept] },
      },
    ];
    const results = await target.applyAll(changes);
    expect(results.map((r) => r.status)).toEqual(["applied", "failed", "applied"]);
    expect(results[1]).toMatchObject({ failure: { class: "bad-data", http: 400 } });
  });
});

describe("hesi target: batched updates", () => {
  it("updates a run of staff in one batch call, and splits a failing batch so only the bad item fails", async () => {
    const org = generateOrg({ people: 120, seed: 9 });
    const sim = await start({ existing: existingFromOrg(org) });
    const { target } = connect(sim);
    const staff = sim
      .staff()
      .filter((s) => s.active)
      .slice(0, 8);
    const changes: TargetChange[] = staff.map((s, i) => ({
      kind: "update-user",
      targetId: s.id,
      user: { name: `改名${i}`, departmentIds: s.departments, ...(i === 5 ? { mobile: "bad phone" } : {}) },
    }));
    const results = await target.applyAll(changes);
    expect(results.map((r) => r.status)).toEqual([
      "applied",
      "applied",
      "applied",
      "applied",
      "applied",
      "failed",
      "applied",
      "applied",
    ]);
    expect(results[5]).toMatchObject({ failure: { class: "bad-data", http: 400 } });
    for (const [i, s] of staff.entries())
      expect(sim.staff().find((x) => x.id === s.id)?.name).toBe(i === 5 ? s.name : `改名${i}`);
    expect(sim.controls.calls.get("/api/openapi/v1.1/staffs/batch/update")).toBeGreaterThan(1);
  });

  it("sends 8 good updates as a single call", async () => {
    const org = generateOrg({ people: 120, seed: 9 });
    const sim = await start({ existing: existingFromOrg(org) });
    const { target } = connect(sim);
    const staff = sim
      .staff()
      .filter((s) => s.active)
      .slice(0, 8);
    await target.applyAll(
      staff.map((s) => ({
        kind: "update-user",
        targetId: s.id,
        user: { name: "同名", departmentIds: s.departments },
      })),
    );
    expect(sim.controls.calls.get("/api/openapi/v1.1/staffs/batch/update")).toBe(1);
    expect(sim.staff().filter((s) => s.name === "同名")).toHaveLength(8);
  });
});

describe("hesi target: runs of creates", () => {
  it("looks a run of creates up with one call per key type, adopting, refusing and creating as single creates do", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const dept = deptId(sim, "财务部");
    const changes: TargetChange[] = [
      ...Array.from({ length: 5 }, (_, i) => ({
        kind: "create-user" as const,
        externalId: `n-${i}`,
        user: { name: `新${i}`, mobile: `1360000000${i}`, departmentIds: [dept] },
      })),
      {
        kind: "create-user",
        externalId: "x",
        user: { name: "老财务", mobile: "13900000001", departmentIds: [dept] },
      },
      {
        kind: "create-user",
        externalId: "y",
        user: { name: "复活?", mobile: "13900000002", departmentIds: [dept] },
      },
    ];
    const results = await target.applyAll(changes);
    expect(results.slice(0, 5).map((r) => r.status)).toEqual(Array(5).fill("applied"));
    expect(results[5]).toEqual({ status: "applied", targetId: "corp1:legacy-1", adopted: true });
    expect(results[6]).toMatchObject({ status: "failed", failure: { code: "DISABLED_MATCH" } });
    expect(sim.controls.calls.get("/api/openapi/v1/staffs/getStaffIds")).toBe(2); // USERID, CELLPHONE
    expect(sim.staff().find((s) => s.id === "corp1:legacy-2")?.active).toBe(false);
  });
});

describe("hesi target: departments", () => {
  it("creates departments top-down and adopts an existing sibling of the same name", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const parent = applied(
      await target.apply({
        kind: "create-department",
        externalId: "d1",
        department: { parentId: null, name: "研发部" },
      }),
    );
    const child = applied(
      await target.apply({
        kind: "create-department",
        externalId: "d2",
        department: { parentId: parent, name: "平台组" },
      }),
    );
    expect(sim.departments().find((d) => d.id === child)?.parentId).toBe(parent);
    const again = await target.apply({
      kind: "create-department",
      externalId: "d2",
      department: { parentId: parent, name: "平台组" },
    });
    expect(again).toEqual({ status: "applied", targetId: child, adopted: true });
    expect(sim.departments().filter((d) => d.name === "平台组")).toHaveLength(1);
  });

  it("fails disabling a department with active staff as DEPARTMENT_NOT_EMPTY, and disables it once they are gone", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const finance = deptId(sim, "财务部");
    const refused = await target.apply({ kind: "disable-department", targetId: finance });
    expect(refused).toMatchObject({
      status: "failed",
      failure: { class: "conflict", code: "DEPARTMENT_NOT_EMPTY" },
    });
    applied(await target.apply({ kind: "disable-user", targetId: "corp1:legacy-1" }));
    applied(await target.apply({ kind: "disable-department", targetId: finance }));
    expect(sim.departments().find((d) => d.id === finance)?.active).toBe(false);
  });
});

describe("hesi target: role members", () => {
  it("writes the full row set of a department role: removed scopes are emptied, a repeat is a noop", async () => {
    const sim = await start();
    const role = sim.tenant.createRole({ name: "部门审批人", scope: "部门角色", sourceChannel: "API" });
    const { target } = connect(sim);
    const finance = deptId(sim, "财务部");
    const sales = deptId(sim, "销售部");
    const rows = [
      { scope: { kind: "department" as const, departmentId: finance }, memberIds: ["corp1:legacy-1"] },
      { scope: { kind: "department" as const, departmentId: sales }, memberIds: ["corp1:legacy-3"] },
    ];
    applied(await target.apply({ kind: "set-role-members", roleId: role.id, rows }));
    expect(await target.apply({ kind: "set-role-members", roleId: role.id, rows })).toEqual({
      status: "noop",
      targetId: role.id,
    });
    applied(await target.apply({ kind: "set-role-members", roleId: role.id, rows: rows.slice(0, 1) }));
    const state = await target.readState();
    expect(state.roles[role.id]?.rows).toEqual([rows[0]]);
  });

  it("creates a role definition once: a second create of the same name adopts it", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const id = applied(await target.apply({ kind: "create-role", name: "费用审批人", scoped: true }));
    expect(sim.roles().find((r) => r.id === id)).toMatchObject({ scope: "部门角色", sourceChannel: "API" });
    expect(await target.apply({ kind: "create-role", name: "费用审批人", scoped: true })).toEqual({
      status: "applied",
      targetId: id,
      adopted: true,
    });
    expect(sim.roles().filter((r) => r.name === "费用审批人")).toHaveLength(1);
  });

  it("serialises concurrent writes to one role: the later request reads the earlier one's result", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const roleId = sim.roles().find((r) => r.name === "出纳")!.id;
    const global = { kind: "global" as const };
    // Unserialised, both would read [legacy-1]; the second would then see nothing to do and the first would win.
    const [a, b] = await Promise.all([
      target.apply({
        kind: "set-role-members",
        roleId,
        rows: [{ scope: global, memberIds: ["corp1:legacy-3"] }],
      }),
      target.apply({
        kind: "set-role-members",
        roleId,
        rows: [{ scope: global, memberIds: ["corp1:legacy-1"] }],
      }),
    ]);
    expect([a?.status, b?.status]).toEqual(["applied", "applied"]);
    expect(sim.roles().find((r) => r.id === roleId)?.rows[0]?.staffs).toEqual(["corp1:legacy-1"]);
  });

  it("manages role members on a DingTalk-edition tenant", async () => {
    const org = generateOrg({ people: 20, seed: 5 });
    const sim = await start({ existing: existingFromOrg(org), edition: "dingtalk" });
    const { target } = connect(sim);
    const member = sim.staff().find((s) => s.active)!;
    const roleId = "corp1:admin";
    applied(
      await target.apply({
        kind: "set-role-members",
        roleId,
        rows: [{ scope: { kind: "global" }, memberIds: [member.id] }],
      }),
    );
    expect(sim.roles().find((r) => r.id === roleId)?.rows[0]?.staffs).toEqual([member.id]);
  });

  it("reports a row naming an unknown staff as a whole-request 412 without writing", async () => {
    const sim = await start();
    const { target } = connect(sim);
    const roleId = sim.roles().find((r) => r.name === "出纳")!.id;
    const result = await target.apply({
      kind: "set-role-members",
      roleId,
      rows: [{ scope: { kind: "global" }, memberIds: ["corp1:ghost"] }],
    });
    expect(result).toMatchObject({ status: "failed", failure: { class: "conflict", http: 412 } });
    expect(sim.roles().find((r) => r.id === roleId)?.rows[0]?.staffs).toEqual(["corp1:legacy-1"]);
  });
});

describe("hesi target: transport", () => {
  it("fetches a new token when the current one expires mid-run", async () => {
    const sim = await start();
    const { target } = connect(sim);
    await target.readState();
    sim.controls.clock.advance(7_200_001);
    const state = await target.readState();
    expect(Object.keys(state.users).length).toBeGreaterThan(0);
    sim.expireTokens();
    applied(await target.apply({ kind: "enable-user", targetId: "corp1:legacy-2" }));
  });

  it("refreshes a token about to expire with its refresh token (32 days) instead of logging in again", async () => {
    const sim = await start();
    const { target } = connect(sim);
    await target.readState();
    sim.controls.clock.advance(7_200_000 - 60_000 * 4); // inside the 5-minute margin, before expiry
    await target.readState();
    sim.controls.clock.advance(86_400_000); // a day later: the refreshed token still lives
    await target.readState();
    expect(sim.controls.calls.get("/api/openapi/v1/auth/getAccessToken")).toBe(1);
    expect(sim.controls.calls.get("/api/openapi/v2/auth/refreshToken")).toBe(1);
  });

  it("waits and repeats with the same token when a fresh token is refused right after issue (changelog 1.17.0)", async () => {
    const sim = await start({ freshTokenDelayMs: 1500 });
    const config = hesiConfigSchema.parse({ ...sim.targetConfig(), requestsPerSecond: 100 });
    const target = openHesiTarget("hesi-test", config, {
      now: () => sim.controls.clock.now(),
      sleep: (ms) => {
        sim.controls.clock.advance(ms);
        return Promise.resolve();
      },
    });
    await target.readState();
    expect(sim.statuses.get(403)).toBeGreaterThan(0);
    expect(sim.controls.calls.get("/api/openapi/v1/auth/getAccessToken")).toBe(1);
  });

  it("waits as long as Retry-After asks on 429, then succeeds", async () => {
    const sim = await start({ faults: "rate-limit-after=0*2" });
    const { target, waits } = connect(sim);
    await target.readState();
    expect(sim.statuses.get(429)).toBe(2);
    expect(waits.filter((ms) => ms >= 1000)).toHaveLength(2);
  });

  it("keeps under the configured requests per second, so a tenant limiting at that rate never answers 429", async () => {
    const org = generateOrg({ people: 250, seed: 4 });
    const sim = await start({ existing: existingFromOrg(org), requestsPerSecond: 3 });
    const config = hesiConfigSchema.parse({ ...sim.targetConfig(), requestsPerSecond: 3 });
    const target = openHesiTarget("hesi-test", config, {
      now: () => sim.controls.clock.now(),
      sleep: (ms) => {
        sim.controls.clock.advance(ms);
        return Promise.resolve();
      },
    });
    await target.readState();
    expect([...sim.statuses.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(6);
    expect(sim.statuses.get(429) ?? 0).toBe(0);
  });

  it("retries a 502 and succeeds", async () => {
    const sim = await start({ faults: "5xx@/api/openapi/v1/departments*2" });
    const { target } = connect(sim);
    const state = await target.readState();
    expect(sim.statuses.get(502)).toBe(2);
    expect(Object.keys(state.departments).length).toBe(sim.departments().length);
  });

  it("converges without duplicates under 20% random failures, timeouts after apply included", async () => {
    const sim = await start({ failures: { rate: 0.2, seed: 11 }, timeoutMs: 50 });
    const { target } = connect(sim, { timeoutMs: 500 });
    const dept = deptId(sim, "财务部");
    const wanted = Array.from({ length: 30 }, (_, i) => ({
      kind: "create-user" as const,
      externalId: `p-${i}`,
      user: { name: `员工${i}`, mobile: `1370000${String(i).padStart(4, "0")}`, departmentIds: [dept] },
    }));
    let pending: TargetChange[] = wanted;
    for (let round = 0; round < 10 && pending.length > 0; round++) {
      const results = await target.applyAll(pending);
      for (const r of results) if (r.status === "failed") expect(r.failure.class).toBe("retryable");
      pending = pending.filter((_, i) => results[i]?.status === "failed");
    }
    expect(pending).toHaveLength(0);
    for (let i = 0; i < 30; i++) expect(byName(sim, `员工${i}`)).toHaveLength(1);
    expect(sim.statuses.get(0) ?? 0).toBeGreaterThan(0);
  }, 60_000);
});
