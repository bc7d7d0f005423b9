/** DingTalk people and config as the reader maps and validates them. */
import { describe, expect, it } from "vitest";
import { dingtalkConfigSchema } from "../../src/sources/dingtalk/config.js";
import { fromUserDetail, fromUserList } from "../../src/sources/dingtalk/person.js";

const listed = {
  userid: "zhangsan",
  unionid: "z21HjQ",
  name: "张三",
  state_code: "86",
  mobile: "18500000000",
  job_number: "4",
  title: "技术总监",
  email: "a@x.com",
  org_email: "a@corp.com",
  dept_id_list: [2, 3],
  active: true,
  admin: false,
  boss: false,
  leader: true,
};

describe("dingtalk person mapping", () => {
  it("maps user/list fields, the queried department's leader flag and the first department as main", () => {
    const person = fromUserList(listed, 3);
    expect(person).toEqual({
      subject: "zhangsan",
      altIds: { unionid: "z21HjQ" },
      username: "zhangsan",
      name: "张三",
      email: "a@corp.com",
      mobile: "18500000000",
      employeeNo: "4",
      title: "技术总监",
      departments: [
        { departmentId: "2", main: true, leader: false },
        { departmentId: "3", main: false, leader: true },
      ],
      managers: [],
      status: "active",
      attributes: {
        activated: "true",
        admin: "false",
        boss: "false",
        stateCode: "86",
        personalEmail: "a@x.com",
      },
    });
  });

  it("leaves fields DingTalk did not send (or sent empty) absent, never blank", () => {
    const person = fromUserList(
      { userid: "lisi", name: "李四", dept_id_list: [2], mobile: "", title: "" },
      2,
    );
    for (const field of ["mobile", "email", "title", "employeeNo", "altIds"])
      expect(person).not.toHaveProperty(field);
  });

  it("keeps a person who has not activated DingTalk active, marked activated=false", () => {
    const person = fromUserList({ ...listed, active: false }, 2);
    expect(person.status).toBe("active");
    expect(person.attributes.activated).toBe("false");
  });

  it("takes the manager and every department's leader flag from user/get", () => {
    const person = fromUserDetail({
      ...listed,
      manager_userid: "boss1",
      leader_in_dept: [
        { dept_id: 2, leader: true },
        { dept_id: 3, leader: false },
      ],
    });
    expect(person.managers).toEqual(["boss1"]);
    expect(person.departments.map((d) => d.leader)).toEqual([true, false]);
  });
});

describe("dingtalk config", () => {
  it("fills the documented defaults", () => {
    expect(dingtalkConfigSchema.parse({ appKey: "dingabc", appSecret: "s" })).toEqual({
      appKey: "dingabc",
      appSecret: "s",
      oapiBaseUrl: "https://oapi.dingtalk.com",
      apiBaseUrl: "https://api.dingtalk.com",
      loginBaseUrl: "https://login.dingtalk.com",
      jsapiScriptUrl: "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js",
      tokenApi: "api",
      rootDepartmentId: 1,
      requestsPerSecond: 20,
      callsPer20sPerIp: 9000,
      concurrency: 4,
      timeoutMs: 15_000,
      readRoles: true,
      fetchUserDetails: false,
    });
  });

  it("names every problem by its path", () => {
    const result = dingtalkConfigSchema.safeParse({
      appKey: "",
      oapiBaseUrl: "oapi.dingtalk.com/x",
      extra: 1,
    });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join(".") || i.message);
    expect(paths).toEqual(expect.arrayContaining(["appKey", "appSecret", "oapiBaseUrl"]));
    expect(result.error!.issues.some((i) => i.code === "unrecognized_keys")).toBe(true);
  });
});
