import { afterEach, describe, expect, it } from "vitest";
import { generateOrg } from "../../src/simulators/common/org.js";
import {
  demoExistingData,
  existingFromOrg,
  startHesiSimulator,
  type HesiSimulatorOptions,
} from "../../src/simulators/hesi/index.js";

type Running = Awaited<ReturnType<typeof startHesiSimulator>>;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(options: HesiSimulatorOptions = {}): Promise<Running> {
  const sim = await startHesiSimulator({ corpId: "corp1", ...options });
  running.push(sim);
  return sim;
}

interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

async function call(sim: Running, method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${sim.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: Json = {};
  try {
    parsed = text === "" ? {} : (JSON.parse(text) as Json);
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

async function token(sim: Running): Promise<Json> {
  const { appKey, appSecurity } = sim.credentials;
  const answer = await call(sim, "POST", "/api/openapi/v1/auth/getAccessToken", { appKey, appSecurity });
  expect(answer.status).toBe(200);
  return answer.body.value as Json;
}

/** A client bound to one token. */
async function client(sim: Running) {
  const { accessToken } = await token(sim);
  const q = (path: string): string => `${path}${path.includes("?") ? "&" : "?"}accessToken=${accessToken}`;
  return {
    get: (path: string) => call(sim, "GET", q(path)),
    post: (path: string, body: unknown) => call(sim, "POST", q(path), body),
    put: (path: string, body?: unknown) => call(sim, "PUT", q(path), body ?? {}),
    del: (path: string) => call(sim, "DELETE", q(path)),
  };
}
type Client = Awaited<ReturnType<typeof client>>;

async function createDept(c: Client, name: string, parentId = ""): Promise<string> {
  const answer = await c.post("/api/openapi/v1/departments", { code: "", name, parentId });
  expect(answer.status).toBe(200);
  return answer.body.value.id as string;
}

describe("Hesi simulator: auth", () => {
  it("issues {accessToken, refreshToken, expireTime 2 h ahead, corporationId} and answers a wrong secret with 403 密钥无效", async () => {
    const sim = await start();
    const before = sim.controls.clock.now();
    const value = await token(sim);
    expect(value.corporationId).toBe("corp1");
    expect(value.expireTime - before).toBeGreaterThanOrEqual(7_200_000 - 1000);
    expect(value.expireTime - before).toBeLessThanOrEqual(7_200_000 + 1000);
    const bad = await call(sim, "POST", "/api/openapi/v1/auth/getAccessToken", {
      appKey: sim.credentials.appKey,
      appSecurity: "x",
    });
    expect(bad.status).toBe(403);
    expect(bad.body.errorMessage).toBe("密钥无效");
  });

  it("refuses an expired token with 403 and accepts a fresh one", async () => {
    const sim = await start();
    const c = await client(sim);
    expect((await c.get("/api/openapi/v1/departments?start=0&count=10")).status).toBe(200);
    sim.controls.clock.advance(7_200_001);
    const expired = await c.get("/api/openapi/v1/departments?start=0&count=10");
    expect(expired.status).toBe(403);
    expect((await (await client(sim)).get("/api/openapi/v1/departments?start=0&count=10")).status).toBe(200);
  });

  it("refreshes before expiry into a rotated pair valid 32 days; the old token stops working; after expiry refresh is 未授权", async () => {
    const sim = await start();
    const first = await token(sim);
    const refreshed = await call(
      sim,
      "POST",
      `/api/openapi/v2/auth/refreshToken?accessToken=${first.accessToken}&refreshToken=${first.refreshToken}&powerCode=219904`,
    );
    expect(refreshed.status).toBe(200);
    const second = refreshed.body.value as Json;
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.expireTime - sim.controls.clock.now()).toBeGreaterThan(31 * 86_400_000);
    expect(
      (await call(sim, "GET", `/api/openapi/v1/departments?accessToken=${first.accessToken}`)).status,
    ).toBe(403);
    expect(
      (await call(sim, "GET", `/api/openapi/v1/departments?accessToken=${second.accessToken}`)).status,
    ).toBe(200);

    const third = await token(sim);
    sim.controls.clock.advance(7_200_001);
    const late = await call(
      sim,
      "POST",
      `/api/openapi/v2/auth/refreshToken?accessToken=${third.accessToken}&refreshToken=${third.refreshToken}&powerCode=219904`,
    );
    expect(late.status).toBe(401);
    expect(late.body.text).toBe("未授权");
  });

  it("refuses a token used right after issue when freshTokenDelayMs is set (changelog 1.17.0)", async () => {
    const sim = await start({ freshTokenDelayMs: 1000 });
    const c = await client(sim);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(403);
    sim.controls.clock.advance(1000);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(200);
  });
});

describe("Hesi simulator: departments", () => {
  it('starts empty: only the root (id = corpId, parentId "") and the main admin role <corpId>:admin', async () => {
    const sim = await start();
    const c = await client(sim);
    const list = await c.get("/api/openapi/v1/departments?start=0&count=100");
    expect(list.body).toMatchObject({ count: 1, items: [{ id: "corp1", parentId: "", active: true }] });
    expect((await c.get("/api/openapi/v1.1/staffs?start=0&count=100")).body).toEqual({ count: 0, items: [] });
    const groups = await c.get("/api/openapi/v1/roleDefGroups");
    expect(groups.body.items[0].roleDefs).toEqual([
      { id: "corp1:admin", name: "主管理员", sourceType: "organization.RoleDef" },
    ]);
  });

  it("creates top-down with ids corpId:…, refuses a duplicate sibling name with 412, finds by path, moves by parentId", async () => {
    const sim = await start();
    const c = await client(sim);
    const fin = await createDept(c, "财务部");
    expect(fin).toMatch(/^corp1:/);
    const cash = await createDept(c, "出纳组", fin);
    const dup = await c.post("/api/openapi/v1/departments", { code: "", name: "财务部", parentId: "" });
    expect(dup.status).toBe(412);
    expect(dup.body.errorMessage).toBe("该部门在同级有相同的部门名称");
    expect(
      (await c.post("/api/openapi/v1/departments", { code: "", name: "x", parentId: "corp1:nope" })).status,
    ).toBe(412);
    const byPath = await c.get(
      `/api/openapi/v1/departments/getDepartmentByPath?path=${encodeURIComponent("示例科技有限公司/财务部/出纳组")}`,
    );
    expect(byPath.body.value.id).toBe(cash);
    const sales = await createDept(c, "销售部");
    const moved = await c.put(`/api/openapi/v1/departments/update/$${cash}`, {
      name: "出纳组",
      parentId: sales,
      code: "",
    });
    expect(moved.body.value.parentId).toBe(sales);
    expect((await c.put(`/api/openapi/v1/departments/update/${cash}`, { name: "y" })).status).toBe(400); // no $ prefix
  });

  it("refuses to disable a department while active staff remain (412), then disables it with its descendants; enabling does not cascade", async () => {
    const sim = await start();
    const c = await client(sim);
    const fin = await createDept(c, "财务部");
    const cash = await createDept(c, "出纳组", fin);
    const staff = await c.post("/api/openapi/v1.1/staffs", {
      name: "张三",
      cellphone: "13800000001",
      departments: [cash],
      defaultDepartment: cash,
    });
    const refused = await c.put(`/api/openapi/v1/departments/disableOrEnableDepartment/$${fin}?active=false`);
    expect(refused.status).toBe(412);
    expect(refused.body.errorMessage).toBe("要停用部门下的员工，才能停用此部门");
    await c.put(`/api/openapi/v1.1/staffs/disableOrEnableStaff/[${staff.body.value.id}]?active=false`);
    const done = await c.put(`/api/openapi/v1/departments/disableOrEnableDepartment/$${fin}?active=false`);
    expect(done.status).toBe(200);
    expect(
      sim
        .departments()
        .filter((d) => !d.active)
        .map((d) => d.id)
        .sort(),
    ).toEqual([fin, cash].sort());
    await c.put(`/api/openapi/v1/departments/disableOrEnableDepartment/$${fin}?active=true`);
    expect(sim.tenant.departments.get(fin)!.active).toBe(true);
    expect(sim.tenant.departments.get(cash)!.active).toBe(false);
    // The list includes disabled departments; get by id does not.
    expect((await c.get("/api/openapi/v1/departments")).body.count).toBe(3);
    expect((await c.get(`/api/openapi/v1/departments/$${cash}`)).status).toBe(412);
  });

  it("lets a code equal to a disabled department's create a new one, and refuses one equal to an active department's", async () => {
    const sim = await start();
    const c = await client(sim);
    const a = await c.post("/api/openapi/v1/departments", { code: "D1", name: "甲", parentId: "" });
    expect(
      (await c.post("/api/openapi/v1/departments", { code: "D1", name: "乙", parentId: "" })).status,
    ).toBe(412);
    await c.put(`/api/openapi/v1/departments/disableOrEnableDepartment/$${a.body.value.id}?active=false`);
    expect(
      (await c.post("/api/openapi/v1/departments", { code: "D1", name: "乙", parentId: "" })).status,
    ).toBe(200);
  });
});

describe("Hesi simulator: staff", () => {
  it("creates a staff with id corpId:userid, lists and finds it by USERID, CELLPHONE and MAIL (lower-cased)", async () => {
    const sim = await start();
    const c = await client(sim);
    const fin = await createDept(c, "财务部");
    const created = await c.post("/api/openapi/v1.1/staffs", {
      name: "张三",
      cellphone: "13800000001",
      email: "Zhang.San@Example.com",
      userid: "u-zhangsan",
      code: "E100",
      departments: [fin],
      defaultDepartment: "not-in-departments",
    });
    expect(created.status).toBe(200);
    expect(created.body.value).toMatchObject({
      id: "corp1:u-zhangsan",
      userId: "u-zhangsan",
      email: "zhang.san@example.com",
      showEmail: "Zhang.San@Example.com",
      defaultDepartment: fin,
      active: true,
    });
    expect(created.body.value.updateTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    for (const [type, id] of [
      ["USERID", "u-zhangsan"],
      ["CELLPHONE", "13800000001"],
      ["MAIL", "ZHANG.SAN@example.com"],
      ["STAFFID", "corp1:u-zhangsan"],
      ["CODE", "E100"],
    ]) {
      const found = await c.post("/api/openapi/v1/staffs/getStaffIds", { type, conditionIds: [id] });
      expect(found.body.items.map((s: Json) => s.id)).toEqual(["corp1:u-zhangsan"]);
    }
    expect(
      (await c.post("/api/openapi/v1/staffs/getStaffIds", { type: "USERID", conditionIds: [] })).status,
    ).toBe(400);
  });

  it('validates: email "" and a bad phone are 400, no departments is 403 部门不能为空, a taken active phone is 400', async () => {
    const sim = await start();
    const c = await client(sim);
    const fin = await createDept(c, "财务部");
    const base = { name: "李四", departments: [fin], defaultDepartment: fin };
    expect(
      (await c.post("/api/openapi/v1.1/staffs", { ...base, cellphone: "13800000002", email: "" })).status,
    ).toBe(400);
    expect((await c.post("/api/openapi/v1.1/staffs", { ...base, cellphone: "+86 138" })).status).toBe(400);
    expect((await c.post("/api/openapi/v1.1/staffs", { ...base, cellphone: "(852)91234567" })).status).toBe(
      200,
    );
    const noDept = await c.post("/api/openapi/v1.1/staffs", {
      name: "王五",
      cellphone: "13800000003",
      departments: [],
    });
    expect(noDept.status).toBe(403);
    expect(noDept.body.errorMessage).toBe("部门不能为空");
    const taken = await c.post("/api/openapi/v1.1/staffs", {
      ...base,
      cellphone: "(852)91234567",
      userid: "other",
    });
    expect(taken.status).toBe(400);
    expect(sim.staff()).toHaveLength(1);
  });

  it("trap: creating with a disabled staff's phone re-enables and overwrites that staff, ignoring the new userid", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const fin = sim.departments().find((d) => d.name === "财务部")!.id;
    const created = await c.post("/api/openapi/v1.1/staffs", {
      name: "新员工",
      cellphone: "13900000002", // the phone of 离职员工 (disabled, userid legacy-2)
      userid: "u-new",
      departments: [fin],
      defaultDepartment: fin,
    });
    expect(created.status).toBe(200);
    expect(created.body.value).toMatchObject({
      id: "corp1:legacy-2",
      userId: "legacy-2",
      name: "新员工",
      active: true,
      authState: false,
    });
    expect(sim.staff().some((s) => s.userId === "u-new")).toBe(false);
    // getStaffIds finds active staff only: before the create, the disabled one was invisible to it.
  });

  it("trap: getStaffIds never returns disabled staff; the list with active=false does", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    expect(
      (
        await c.post("/api/openapi/v1/staffs/getStaffIds", {
          type: "CELLPHONE",
          conditionIds: ["13900000002"],
        })
      ).body.items,
    ).toEqual([]);
    const disabled = await c.get("/api/openapi/v1.1/staffs?start=0&count=100&active=false");
    expect(disabled.body.items.map((s: Json) => s.userId)).toEqual(["legacy-2"]);
    expect((await c.get("/api/openapi/v1.1/staffs?active=true")).body.count).toBe(2);
    expect((await c.get("/api/openapi/v1.1/staffs")).body.count).toBe(3);
  });

  it("useNewAccount=true creates a new staff instead of re-enabling the disabled one", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const fin = sim.departments().find((d) => d.name === "财务部")!.id;
    const created = await c.post("/api/openapi/v1.1/staffs", {
      name: "新员工",
      cellphone: "13900000002",
      useNewAccount: true,
      departments: [fin],
    });
    expect(created.body.value.id).not.toBe("corp1:legacy-2");
    expect(sim.tenant.staff.get("corp1:legacy-2")!.active).toBe(false);
  });

  it("trap: a phone already registered in Hesi keeps its userId; the supplied userid is ignored", async () => {
    const sim = await start({
      existing: { registeredPhones: [{ cellphone: "13700000000", userId: "elsewhere-9" }] },
    });
    const c = await client(sim);
    const created = await c.post("/api/openapi/v1.1/staffs", {
      name: "赵六",
      cellphone: "13700000000",
      userid: "u-ours",
      departments: ["corp1"],
    });
    expect(created.body.value).toMatchObject({ id: "corp1:elsewhere-9", userId: "elsewhere-9" });
  });

  it("a userid taken by an active staff is 400 该账号已被其他员工使用; by a disabled staff with another phone a Duplicate entry error", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const active = await c.post("/api/openapi/v1.1/staffs", {
      name: "a",
      cellphone: "13600000001",
      userid: "legacy-1",
      departments: ["corp1"],
    });
    expect(active.status).toBe(400);
    expect(active.body.errorMessage).toBe("该账号已被其他员工使用，请勿重复绑定");
    const disabled = await c.post("/api/openapi/v1.1/staffs", {
      name: "b",
      cellphone: "13600000002",
      userid: "legacy-2",
      departments: ["corp1"],
    });
    expect(disabled.status).toBe(400);
    expect(disabled.body.errorMessage).toContain("Duplicate entry");
  });

  it("update: name is required, custom fields merge, and a new phone is ignored unless modifyAccountPhone=true", async () => {
    const sim = await start();
    const c = await client(sim);
    const s = await c.post("/api/openapi/v1.1/staffs", {
      name: "张三",
      cellphone: "13800000001",
      userid: "u1",
      departments: ["corp1"],
      staffCustomForm: { u_a: "1" },
    });
    const id = s.body.value.id as string;
    expect((await c.put(`/api/openapi/v1.1/staffs/update/$${id}`, { code: "X" })).status).toBe(400);
    const silent = await c.put(`/api/openapi/v1.1/staffs/update/$${id}`, {
      name: "张三丰",
      cellphone: "13800000009",
      staffCustomForm: { u_b: "2" },
    });
    expect(silent.body.value).toMatchObject({
      name: "张三丰",
      cellphone: "13800000001",
      staffCustomForm: { u_a: "1", u_b: "2" },
    });
    const changed = await c.put(`/api/openapi/v1.1/staffs/update/$${id}`, {
      name: "张三丰",
      cellphone: "13800000009",
      modifyAccountPhone: true,
    });
    expect(changed.body.value.cellphone).toBe("13800000009");
    expect((await c.put("/api/openapi/v1.1/staffs/update/$corp1:nobody", { name: "x" })).status).toBe(403);
  });

  it("custom fields merge through customFields, by id or by 工号, on every edition", async () => {
    const sim = await start({ edition: "wecom", existing: demoExistingData() });
    const c = await client(sim);
    await c.put("/api/openapi/v1.1/staffs/$corp1:legacy-1/customFields", { u_成本中心: "CC1" });
    const second = await c.put("/api/openapi/v1.1/staffs/$E0001/customFields?type=code", { rankType: "R2" });
    expect(second.status).toBe(200);
    expect(second.body.value.staffCustomForm).toEqual({ u_成本中心: "CC1", rankType: "R2" });
  });

  it("update by 工号 (type=code) names departments by their code, which must find exactly one department", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const moved = await c.put("/api/openapi/v1.1/staffs/update/$E0001?type=code", {
      name: "老财务",
      departments: ["SALES"],
      defaultDepartment: "SALES",
    });
    expect(moved.status).toBe(200);
    expect(moved.body.value.defaultDepartment).toBe(sim.departments().find((d) => d.code === "SALES")!.id);
    const unknown = await c.put("/api/openapi/v1.1/staffs/update/$E0001?type=code", {
      name: "老财务",
      departments: ["NOPE"],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errorMessage).toBe("根据字段[departments]的code[NOPE]不能定位到唯一部门");
  });

  it("disable: 403 with doCheck while approvals are pending; doCheck=false forces; relay hands over first; unknown ids are skipped silently", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const pending = "corp1:legacy-3";
    const refused = await c.put(`/api/openapi/v1.1/staffs/disableOrEnableStaff/[${pending}]?active=false`);
    expect(refused.status).toBe(403);
    expect(sim.tenant.staff.get(pending)!.active).toBe(true);
    const relay = await c.post("/api/openapi/v2.1/flows/relay", {
      staffId: "corp1:legacy-1",
      originApproverId: pending,
      relayApproverId: "corp1:legacy-1",
      unboundInvoice: true,
      shareWaitingInvoice: true,
      dataLinkFlag: true,
    });
    expect(relay.body).toMatchObject({ totalCount: 1, successCount: 1, failCount: 0 });
    const notAdmin = await c.post("/api/openapi/v2.1/flows/relay", {
      staffId: pending,
      originApproverId: pending,
      relayApproverId: "corp1:legacy-1",
    });
    expect(notAdmin.status).toBe(403);
    const done = await c.put(
      `/api/openapi/v1.1/staffs/disableOrEnableStaff/[${pending},corp1:ghost]?active=false`,
    );
    expect(done.status).toBe(200);
    expect(done.body.items.map((s: Json) => s.id)).toEqual([pending]);
    sim.tenant.pendingApprovals.add("corp1:legacy-1");
    const forced = await c.put(
      "/api/openapi/v1.1/staffs/disableOrEnableStaff/[corp1:legacy-1]?active=false&doCheck=false",
    );
    expect(forced.body.items[0].active).toBe(false);
    expect((await c.put("/api/openapi/v1.1/staffs/disableOrEnableStaff/[corp1:legacy-1]")).status).toBe(400);
  });

  it("re-enabled staff are unlicensed until charge/powers/authStaff, which respects the seats", async () => {
    const sim = await start({ existing: demoExistingData(), seats: 3 });
    const c = await client(sim);
    const enabled = await c.put("/api/openapi/v1.1/staffs/disableOrEnableStaff/[corp1:legacy-2]?active=true");
    expect(enabled.body.items[0]).toMatchObject({ active: true, authState: false });
    const auth = await c.post("/api/openapi/v1/charge/powers/authStaff", {
      type: "id",
      addStaff: ["corp1:legacy-2"],
      delStaff: [],
    });
    expect(auth.status).toBe(200);
    expect(sim.tenant.staff.get("corp1:legacy-2")!.authState).toBe(true);
    const extra = await c.post("/api/openapi/v1.1/staffs", {
      name: "n",
      cellphone: "13500000000",
      departments: ["corp1"],
    });
    expect(extra.body.value.authState).toBe(false); // no seat left
    expect(
      (await c.post("/api/openapi/v1/charge/powers/authStaff", { addStaff: [extra.body.value.id] })).status,
    ).toBe(412);
  });

  it("pages 0-based with at most 100 per page and the total in count", async () => {
    const sim = await start();
    const c = await client(sim);
    for (let b = 0; b < 3; b++) {
      const staffList = Array.from({ length: b < 2 ? 100 : 50 }, (_, i) => ({
        name: `员工${b}-${i}`,
        cellphone: `13${String(b * 1000 + i).padStart(9, "0")}`,
        departments: ["corp1"],
      }));
      expect((await c.post("/api/openapi/v1.1/staffs/batch/create", { staffList })).status).toBe(200);
    }
    const big = await c.get("/api/openapi/v1.1/staffs?start=0&count=1000");
    expect(big.body.count).toBe(250);
    expect(big.body.items).toHaveLength(100);
    const last = await c.get("/api/openapi/v1.1/staffs?start=200&count=100");
    expect(last.body.items).toHaveLength(50);
    expect(last.body.items[0].name).toBe("员工2-0");
    expect((await c.get("/api/openapi/v1.1/staffs?start=-1&count=10")).status).toBe(400);
  });

  it("batch create is capped at 100 and all-or-nothing; batch create needs cellphone", async () => {
    const sim = await start();
    const c = await client(sim);
    const many = Array.from({ length: 101 }, (_, i) => ({
      name: `x${i}`,
      cellphone: `13${String(i).padStart(9, "0")}`,
      departments: ["corp1"],
    }));
    expect((await c.post("/api/openapi/v1.1/staffs/batch/create", { staffList: many })).status).toBe(400);
    const bad = await c.post("/api/openapi/v1.1/staffs/batch/create", {
      staffList: [
        { name: "ok", cellphone: "13000000001", departments: ["corp1"] },
        { name: "no phone", email: "a@b.c", departments: ["corp1"] },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errorMessage).toContain("第2条");
    expect(sim.staff()).toHaveLength(0);
    expect(
      (
        await c.post("/api/openapi/v1/staffs/getStaffIds", {
          type: "CELLPHONE",
          conditionIds: many.map((m) => m.cellphone),
        })
      ).status,
    ).toBe(400);
  });

  it("the DingTalk edition refuses staff and department writes but accepts role rows", async () => {
    const sim = await start({ edition: "dingtalk", existing: { roles: [{ name: "出纳" }] } });
    const c = await client(sim);
    expect(
      (
        await c.post("/api/openapi/v1.1/staffs", {
          name: "a",
          cellphone: "13000000001",
          departments: ["corp1"],
        })
      ).status,
    ).toBe(403);
    expect((await c.post("/api/openapi/v1/departments", { name: "a", parentId: "", code: "" })).status).toBe(
      403,
    );
    const role = sim.roles().find((r) => r.name === "出纳")!;
    expect(
      (await c.put(`/api/openapi/v1/roledefs/$${role.id}/staffs`, { contents: [{ staffs: [] }] })).status,
    ).toBe(204);
    expect(sim.targetConfig()).toMatchObject({ rolesOnly: true });
  });
});

describe("Hesi simulator: editions and existing data", () => {
  it("mirrors a generated org as the DingTalk edition holds it: staff found by DingTalk userid, leavers disabled, role rows by sourceId", async () => {
    const org = generateOrg({ people: 60, seed: 3 });
    const sim = await start({ edition: "dingtalk", existing: existingFromOrg(org) });
    const c = await client(sim);
    const active = org.people.find((p) => p.status === "active")!;
    const found = await c.post("/api/openapi/v1/staffs/getStaffIds", {
      type: "USERID",
      conditionIds: [active.userid],
    });
    expect(found.body.items).toMatchObject([{ id: `corp1:${active.userid}`, code: active.jobNumber }]);
    const gone = org.people.filter((p) => p.status === "left" || p.status === "disabled");
    expect(sim.staff().filter((s) => !s.active)).toHaveLength(gone.length);
    const role = await c.post("/api/openapi/v1/roledefs", {
      name: "出纳",
      scope: "普通角色",
      sourceChannel: "API",
    });
    const put = await c.put(`/api/openapi/v1/roledefs/$${role.body.value.id}/staffs?staffBy=sourceId`, {
      contents: [{ staffs: [active.userid] }],
    });
    expect(put.status).toBe(204);
    const mainDept = org.departments.find((d) => d.id === active.departments[0])!;
    const dept = sim
      .departments()
      .find((d) => d.id === sim.tenant.staff.get(`corp1:${active.userid}`)!.defaultDepartment)!;
    expect(dept.name).toBe(mainDept.parentId === 0 ? "示例科技有限公司" : mainDept.name);
  });

  it("frees the old login phone when a staff's phone changes with modifyAccountPhone", async () => {
    const sim = await start();
    const c = await client(sim);
    await c.post("/api/openapi/v1.1/staffs", {
      name: "甲",
      cellphone: "13000000001",
      userid: "a",
      departments: ["corp1"],
    });
    await c.put("/api/openapi/v1.1/staffs/update/$corp1:a", {
      name: "甲",
      cellphone: "13000000009",
      modifyAccountPhone: true,
    });
    const other = await c.post("/api/openapi/v1.1/staffs", {
      name: "乙",
      cellphone: "13000000001",
      userid: "b",
      departments: ["corp1"],
    });
    expect(other.body.value.id).toBe("corp1:b");
  });
});

describe("Hesi simulator: roles", () => {
  async function setup(sim: Running) {
    const c = await client(sim);
    const fin = await createDept(c, "财务部");
    const sales = await createDept(c, "销售部");
    const a = (
      await c.post("/api/openapi/v1.1/staffs", {
        name: "甲",
        cellphone: "13000000001",
        userid: "a",
        departments: [fin],
      })
    ).body.value.id as string;
    const b = (
      await c.post("/api/openapi/v1.1/staffs", {
        name: "乙",
        cellphone: "13000000002",
        userid: "b",
        departments: [sales],
      })
    ).body.value.id as string;
    const role = await c.post("/api/openapi/v1/roledefs", {
      name: "部门审批人",
      scope: "部门角色",
      sourceChannel: "API",
    });
    expect(role.status).toBe(200);
    return { c, fin, sales, a, b, roleId: role.body.value.id as string };
  }

  it("creates role definitions with unique names (412 on a duplicate) and lists them in the default group", async () => {
    const sim = await start();
    const { c, roleId } = await setup(sim);
    expect(
      (
        await c.post("/api/openapi/v1/roledefs", {
          name: "部门审批人",
          scope: "部门角色",
          sourceChannel: "API",
        })
      ).status,
    ).toBe(412);
    const groups = await c.get("/api/openapi/v1/roleDefGroups");
    expect(groups.body.items[0].roleDefs.map((r: Json) => r.id)).toContain(roleId);
  });

  it("writes rows per department (204), reads them by name path or id, overwrites a sent row, keeps unsent rows, deletes a row with staffs []", async () => {
    const sim = await start();
    const { c, fin, sales, a, b, roleId } = await setup(sim);
    const put = (contents: unknown, staffBy = "id") =>
      c.put(`/api/openapi/v1/roledefs/$${roleId}/staffs?staffBy=${staffBy}`, { contents });
    const first = await put([
      { pathType: "id", path: [fin], staffs: [a] },
      { pathType: "name", path: ["示例科技有限公司", "销售部"], staffs: [b] },
    ]);
    expect(first.status).toBe(204);
    const read = await c.get(`/api/openapi/v1/roledefs/$${roleId}?staffBy=sourceId&pathType=name`);
    expect(read.body.value.contents).toEqual([
      { path: ["示例科技有限公司", "财务部"], staffs: ["a"] },
      { path: ["示例科技有限公司", "销售部"], staffs: ["b"] },
    ]);
    // A row sent again replaces that row only; the other row is kept.
    expect((await put([{ pathType: "id", path: [fin], staffs: ["b"] }], "sourceId")).status).toBe(204);
    const ids = await c.get(`/api/openapi/v1/roledefs/$${roleId}?pathType=id`);
    expect(ids.body.value.contents).toEqual([
      { path: ["corp1", fin], staffs: [b] },
      { path: ["corp1", sales], staffs: [b] },
    ]);
    expect((await put([{ pathType: "id", path: [sales], staffs: [] }])).status).toBe(204);
    expect(sim.roles().find((r) => r.id === roleId)!.rows).toEqual([{ departmentId: fin, staffs: [b] }]);
    expect((await c.del(`/api/openapi/v1.1/roledefs/$${roleId}/staffs`)).status).toBe(204);
    expect(sim.roles().find((r) => r.id === roleId)!.rows).toEqual([]);
  });

  it("rejects the whole write with 412 数据错误 when a path or a staff does not exist", async () => {
    const sim = await start();
    const { c, fin, a, roleId } = await setup(sim);
    const bad = await c.put(`/api/openapi/v1/roledefs/$${roleId}/staffs`, {
      contents: [
        { pathType: "id", path: [fin], staffs: [a] },
        { pathType: "name", path: ["nowhere"], staffs: ["corp1:ghost"] },
      ],
    });
    expect(bad.status).toBe(412);
    expect(bad.body.errorMessage).toBe("数据错误:[1:路径不存在[部门], 1:人员不存在[corp1:ghost]]");
    expect(sim.roles().find((r) => r.id === roleId)!.rows).toEqual([]);
    expect(
      (
        await c.put(`/api/openapi/v1/roledefs/$${roleId}/staffs`, {
          contents: [{ path: [fin], staffs: null }],
        })
      ).status,
    ).toBe(412);
    expect((await c.put("/api/openapi/v1/roledefs/$nope/staffs", { contents: [] })).status).toBe(412);
  });

  it("v1 writes only API roles (403 没有权限同步此角色 on a MANUAL one), v1.1 writes MANUAL ones too; plain roles have no path", async () => {
    const sim = await start();
    const { c, a } = await setup(sim);
    const manual = (
      await c.post("/api/openapi/v1/roledefs", { name: "出纳", scope: "普通角色", sourceChannel: "MANUAL" })
    ).body.value.id as string;
    const v1 = await c.put(`/api/openapi/v1/roledefs/$${manual}/staffs`, { contents: [{ staffs: [a] }] });
    expect(v1.status).toBe(403);
    expect(v1.body.errorMessage).toBe("没有权限同步此角色");
    expect(
      (await c.put(`/api/openapi/v1.1/roledefs/$${manual}/staffs`, { contents: [{ staffs: [a] }] })).status,
    ).toBe(204);
    expect((await c.get(`/api/openapi/v1/roledefs/$${manual}`)).body.value.contents).toEqual([
      { staffs: [a] },
    ]);
    // getStaffIds shows the roles a staff holds.
    const found = await c.post("/api/openapi/v1/staffs/getStaffIds", { type: "STAFFID", conditionIds: [a] });
    expect(found.body.items[0].roles).toEqual([{ roleDefId: manual, properties: [] }]);
  });
});

describe("Hesi simulator: faults", () => {
  it("answers rate-limit faults with 429 and Retry-After, and 5xx faults with 502", async () => {
    const sim = await start();
    const c = await client(sim);
    await fetch(`${sim.url}/__simulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ spec: "rate-limit-after=0,5xx@/api/openapi/v1/departments" }),
    });
    const limited = await c.get("/api/openapi/v1.1/staffs");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(502);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(200);
  });

  it("enforces requestsPerSecond with 429 until the second rolls over", async () => {
    const sim = await start({ requestsPerSecond: 3, now: () => 1_000_000 });
    const c = await client(sim); // 1 call
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(200);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(200);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(429);
    sim.controls.clock.advance(1000);
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(200);
  });

  it("drops the connection on a timeout; timeout-after-apply makes the change and still drops the answer", async () => {
    const sim = await start({ timeoutMs: 20 });
    const c = await client(sim);
    sim.setRandomFailures({ rate: 1, kinds: ["timeout"] });
    await expect(
      c.post("/api/openapi/v1/departments", { name: "甲", parentId: "", code: "" }),
    ).rejects.toThrow();
    expect(sim.departments()).toHaveLength(1);
    sim.setRandomFailures({ rate: 1, kinds: ["timeout-after-apply"] });
    await expect(
      c.post("/api/openapi/v1/departments", { name: "甲", parentId: "", code: "" }),
    ).rejects.toThrow();
    expect(sim.departments().map((d) => d.name)).toContain("甲");
  });

  it("a create retried blindly after timeout-after-apply is refused as taken (400), not duplicated", async () => {
    const sim = await start({ timeoutMs: 20 });
    const c = await client(sim);
    const body = { name: "甲", cellphone: "13000000001", userid: "a", departments: ["corp1"] };
    sim.setRandomFailures({ rate: 1, kinds: ["timeout-after-apply"] });
    await expect(c.post("/api/openapi/v1.1/staffs", body)).rejects.toThrow();
    sim.setRandomFailures(null);
    const retry = await c.post("/api/openapi/v1.1/staffs", body);
    expect(retry.status).toBe(400);
    expect(sim.staff()).toHaveLength(1);
    expect(sim.statuses.get(0)).toBe(1);
  });

  it("fails about the configured share of calls, the same calls for the same seed", async () => {
    const outcomes = async (seed: number): Promise<number[]> => {
      const sim = await start({ failures: { rate: 0.2, seed, kinds: ["429", "5xx"] } });
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++)
        statuses.push((await call(sim, "GET", "/api/openapi/v1/departments")).status);
      return statuses;
    };
    const a = await outcomes(7);
    expect(a).toEqual(await outcomes(7));
    const failed = a.filter((s) => s === 429 || s === 502).length;
    expect(failed).toBeGreaterThan(8);
    expect(failed).toBeLessThan(35);
    expect(await outcomes(8)).not.toEqual(a);
  });

  it("expire-tokens makes the next call 403", async () => {
    const sim = await start();
    const c = await client(sim);
    await fetch(`${sim.url}/__simulator/expire-tokens`, { method: "POST" });
    expect((await c.get("/api/openapi/v1/departments")).status).toBe(403);
  });
});

describe("Hesi simulator: the read-only page", () => {
  it("lists departments, staff and role members with names escaped", async () => {
    const sim = await start({
      existing: {
        departments: [{ path: "<b>财务&部" }],
        staff: [
          {
            name: '<script>alert("x")</script>',
            cellphone: "13000000001",
            userid: "x1",
            departments: ["<b>财务&部"],
          },
        ],
        roles: [{ name: "出纳 & 审批", rows: [{ staff: ["x1"] }] }],
      },
    });
    const response = await fetch(`${sim.url}/`);
    expect(response.headers.get("content-type")).toContain("text/html");
    const html = await response.text();
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).toContain("&lt;b&gt;财务&amp;部");
    expect(html).toContain("出纳 &amp; 审批");
    expect(html).toContain("corp1:x1");
  });
});

describe("Hesi simulator: provisional access links and the address prefix", () => {
  it('hands out a login URL whose code is the string "true"; authType CODE works once; a disabled staff gets no link', async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const once = await c.post("/api/openapi/v1.1/provisional/getProvisionalAuth", {
      userId: "legacy-1",
      pageType: "approve",
      authType: "CODE",
      expireDate: 120,
    });
    expect(once.status).toBe(200);
    expect(once.body.value.code).toBe("true");
    const url = new URL(once.body.value.message as string);
    expect(url.pathname).toBe("/web/thirdparty.html");
    expect(url.searchParams.get("ekbCorpId")).toBe("corp1");
    const first = await (await fetch(url)).text();
    expect(first).toContain("老财务");
    expect(await (await fetch(url)).text()).toContain("临时访问地址已过期");
    expect(sim.launches).toEqual([
      expect.objectContaining({ staffId: "corp1:legacy-1", pageType: "approve" }),
    ]);

    const disabled = await c.post("/api/openapi/v1.1/provisional/getProvisionalAuth", {
      uid: "corp1:legacy-2",
      pageType: "home",
      expireDate: 120,
    });
    expect(disabled.body.value.code).toBe("false");
    const tooLong = await c.post("/api/openapi/v1.1/provisional/getProvisionalAuth", {
      uid: "corp1:legacy-1",
      pageType: "home",
      expireDate: 604_801,
    });
    expect(tooLong.body.value).toEqual({ code: "false", message: "expireDate最多只能指定7天内的秒数！" });
  });

  it("a reusable link works until it expires, then redirects to overdueTokenRedirect", async () => {
    const sim = await start({ existing: demoExistingData() });
    const c = await client(sim);
    const answer = await c.post("/api/openapi/v1.1/provisional/getProvisionalAuth", {
      uid: "corp1:legacy-1",
      pageType: "home",
      expireDate: "60",
      isApplet: true,
      overdueTokenRedirect: "https://example.test/again",
    });
    const url = answer.body.value.message as string;
    expect(url).toContain("/applet/thirdparty.html");
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(url)).status).toBe(200);
    sim.controls.clock.advance(60_000);
    const late = await fetch(url, { redirect: "manual" });
    expect(late.status).toBe(302);
    expect(late.headers.get("location")).toBe("https://example.test/again");
    expect(sim.launches).toHaveLength(2);
  });

  it("answers the address prefix for its corpId with its own base URL", async () => {
    const sim = await start();
    const answer = await call(sim, "GET", "/api/openapi/v2/location?corpId=corp1");
    expect(answer.body).toEqual({ value: `${sim.url}/` });
    expect((await call(sim, "GET", "/api/openapi/v2/location?corpId=other")).status).toBe(412);
  });

  it("lists staff changed since startDate, oldest change first with orderBy=updateTime", async () => {
    const sim = await start({ now: () => 1_700_000_000_000 });
    const c = await client(sim);
    for (const [i, name] of ["甲", "乙", "丙"].entries()) {
      await c.post("/api/openapi/v1.1/staffs", {
        name,
        cellphone: `1300000000${i}`,
        userid: name,
        departments: ["corp1"],
      });
      sim.controls.clock.advance(60_000);
    }
    const since = sim.controls.clock.now();
    await c.put(`/api/openapi/v1.1/staffs/update/$corp1:甲`, { name: "甲2" });
    const changed = await c.get(
      `/api/openapi/v1.1/staffs?start=0&count=100&startDate=${since}&orderBy=updateTime`,
    );
    expect(changed.body.items.map((s: Json) => s.name)).toEqual(["甲2"]);
    const ordered = await c.get("/api/openapi/v1.1/staffs?start=0&count=100&orderBy=updateTime");
    expect(ordered.body.items.map((s: Json) => s.name)).toEqual(["乙", "丙", "甲2"]);
  });
});
