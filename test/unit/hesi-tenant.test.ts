import { describe, expect, it } from "vitest";
import { HesiFailure } from "../../src/simulators/hesi/model.js";
import { HesiTenant } from "../../src/simulators/hesi/tenant.js";

const tenant = (): HesiTenant => new HesiTenant("c", "总公司", () => 1_700_000_000_000);

function failure(fn: () => unknown): HesiFailure {
  try {
    fn();
  } catch (error) {
    if (error instanceof HesiFailure) return error;
    throw error;
  }
  throw new Error("expected a HesiFailure");
}

describe("Hesi tenant", () => {
  it("leaves nothing behind when a batch fails: the first item's phone is free again", () => {
    const t = tenant();
    const f = failure(() =>
      t.createStaffBatch({
        staffList: [
          { name: "a", cellphone: "13000000001", departments: ["c"] },
          { name: "b", cellphone: "bad!", departments: ["c"] },
        ],
      }),
    );
    expect(f.status).toBe(400);
    expect(t.staff.size).toBe(0);
    expect(t.registeredPhones.size).toBe(0);
    expect(t.lookupStaff("CELLPHONE", ["13000000001"])).toEqual([]);
    expect(t.createStaff({ name: "a", cellphone: "13000000001", departments: ["c"] }).name).toBe("a");
  });

  it("undoes an overwrite of a disabled staff inside a failed batch (the staff stays disabled with its old name)", () => {
    const t = tenant();
    const old = t.createStaff({ name: "old", cellphone: "13000000001", userid: "u1", departments: ["c"] });
    t.setStaffActive([old.id], "id", false, true);
    failure(() =>
      t.createStaffBatch({
        staffList: [
          { name: "new", cellphone: "13000000001", departments: ["c"] },
          { name: "x", cellphone: "13000000002", departments: ["c:missing"] },
        ],
      }),
    );
    expect(t.staff.get("c:u1")).toMatchObject({ name: "old", active: false });
    expect(t.listStaff({ start: 0, count: 10, active: false }).items.map((s) => s.name)).toEqual(["old"]);
  });

  it("disables a department with its whole subtree and refuses while a staff sits in a sub-department", () => {
    const t = tenant();
    const a = t.createDepartment({ name: "A", parentId: "" });
    const b = t.createDepartment({ name: "B", parentId: a.id });
    const c = t.createDepartment({ name: "C", parentId: b.id });
    const s = t.createStaff({ name: "s", email: "s@x.test", departments: [c.id] });
    expect(failure(() => t.setDepartmentActive(a.id, false)).status).toBe(412);
    t.setStaffActive([s.id], "id", false, true);
    t.setDepartmentActive(a.id, false);
    expect([a, b, c].map((d) => t.departments.get(d.id)!.active)).toEqual([false, false, false]);
    expect(failure(() => t.setDepartmentActive("c", false)).status).toBe(412); // the root
  });

  it("refuses to move a department under its own descendant", () => {
    const t = tenant();
    const a = t.createDepartment({ name: "A", parentId: "" });
    const b = t.createDepartment({ name: "B", parentId: a.id });
    expect(failure(() => t.updateDepartment(a.id, { name: "A", parentId: b.id })).status).toBe(412);
  });

  it("caps a page at 100 and keeps the total", () => {
    const t = tenant();
    for (let i = 0; i < 130; i++)
      t.createStaff({ name: `n${i}`, cellphone: `13${String(i).padStart(9, "0")}`, departments: ["c"] });
    const p = t.listStaff({ start: 0, count: 500 });
    expect(p.count).toBe(130);
    expect(p.items).toHaveLength(100);
    expect(t.listStaff({ start: 100, count: 100 }).items).toHaveLength(30);
  });

  it("mints staff ids corpId:<userid>, or corpId:ID_… without a userid", () => {
    const t = tenant();
    expect(
      t.createStaff({ name: "a", cellphone: "13000000001", userid: "dt-1", departments: ["c"] }).id,
    ).toBe("c:dt-1");
    expect(t.createStaff({ name: "b", cellphone: "13000000002", departments: ["c"] }).id).toMatch(
      /^c:ID_[0-9a-z]{11}$/,
    );
  });
});

describe("Hesi tenant at scale", () => {
  it("writes a role row of 20,000 staff and lists the role for each holder, and no role after the row is deleted", () => {
    const t = tenant();
    const ids: string[] = [];
    for (let i = 0; i < 20_000; i++)
      ids.push(
        t.createStaff({ name: `n${i}`, cellphone: `13${String(i).padStart(9, "0")}`, departments: ["c"] }).id,
      );
    const role = t.createRole({ name: "报销提交人", scope: "普通角色", sourceChannel: "API" });
    t.putRoleRows(role.id, { contents: [{ staffs: ids }] }, "id", "v1");
    for (const id of ids.slice(0, 2000))
      expect(t.rolesOf(id)).toEqual([{ roleDefId: role.id, properties: [] }]);
    t.putRoleRows(role.id, { contents: [{ staffs: [] }] }, "id", "v1");
    expect(t.rolesOf(ids[0]!)).toEqual([]);
  });
});
