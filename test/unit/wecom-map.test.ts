import { describe, expect, it } from "vitest";
import { toDepartment, toPerson } from "../../src/sources/wecom/map.js";
import type { WeComUser } from "../../src/sources/wecom/schemas.js";

const base: WeComUser = { userid: "zhangsan", name: "张三", department: [3, 7], status: 1 };

describe("wecom user mapping", () => {
  it("maps status 1, 2, 4 and 5 to active, disabled, active (not activated) and left", () => {
    expect(toPerson({ ...base, status: 1 }, "工号").status).toBe("active");
    expect(toPerson({ ...base, status: 2 }, "工号").status).toBe("disabled");
    const notActivated = toPerson({ ...base, status: 4 }, "工号");
    expect(notActivated.status).toBe("active");
    expect(notActivated.attributes.activated).toBe("false");
    expect(toPerson({ ...base, status: 5 }, "工号").status).toBe("left");
  });

  it("uses main_department for the main flag and is_leader_in_dept index by index", () => {
    const person = toPerson(
      { ...base, main_department: 7, is_leader_in_dept: [1, 0], direct_leader: ["lisi"] },
      "工号",
    );
    expect(person.departments).toEqual([
      { departmentId: "3", main: false, leader: true },
      { departmentId: "7", main: true, leader: false },
    ]);
    expect(person.managers).toEqual(["lisi"]);
  });

  it("takes the first department as main when main_department is missing", () => {
    expect(toPerson(base, "工号").departments.map((d) => d.main)).toEqual([true, false]);
  });

  it("leaves fields absent when WeCom sends them empty or not at all", () => {
    const person = toPerson({ ...base, mobile: "", email: "", position: " ", gender: "" }, "工号");
    for (const field of ["mobile", "email", "title", "employeeNo"]) expect(person).not.toHaveProperty(field);
    expect(person.attributes).toEqual({});
    expect(person).toMatchObject({ subject: "zhangsan", username: "zhangsan", name: "张三" });
  });

  it("reads the employee number from the configured extattr and falls back to biz_mail for email", () => {
    const person = toPerson(
      {
        ...base,
        biz_mail: "zhangsan@corp.wecom.work",
        extattr: {
          attrs: [
            { name: "爱好", text: { value: "旅游" } },
            { name: "员工编号", text: { value: "E42" } },
          ],
        },
      },
      "员工编号",
    );
    expect(person.employeeNo).toBe("E42");
    expect(person.email).toBe("zhangsan@corp.wecom.work");
  });
});

describe("wecom department mapping", () => {
  it("makes the root and departments whose parent was not read roots", () => {
    const known = new Set([1, 2]);
    expect(toDepartment({ id: 1, name: "公司", parentid: 0, order: 0 }, known).parentId).toBeNull();
    expect(
      toDepartment({ id: 2, name: "财务部", parentid: 1, order: 5, department_leader: ["a"] }, known),
    ).toEqual({
      id: "2",
      parentId: "1",
      name: "财务部",
      order: 5,
      leaders: ["a"],
    });
    expect(toDepartment({ id: 9, name: "外部", parentid: 8 }, known)).toMatchObject({
      parentId: null,
      order: 0,
      leaders: [],
    });
  });
});
