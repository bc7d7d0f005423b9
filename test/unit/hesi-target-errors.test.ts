import { describe, expect, it } from "vitest";
import { classify, isTokenRejection, messageOf } from "../../src/targets/hesi/client.js";
import { hesiConfigSchema } from "../../src/targets/hesi/config.js";

describe("hesi target error classification", () => {
  it("treats a 403 about pending approvals as a conflict, not an auth failure", () => {
    expect(classify(403, "员工[张三]有待办事项，不能停用，请先进行离职交接")).toMatchObject({
      class: "conflict",
      code: "PENDING_APPROVALS",
    });
  });

  it("treats a 403 missing permission on a role as auth", () => {
    expect(classify(403, "没有权限同步此角色")).toMatchObject({ class: "auth", code: "FORBIDDEN" });
  });

  it("treats a contacts write on a DingTalk/WeCom edition as bad data for that target", () => {
    expect(classify(403, "当前企业通讯录由第三方平台同步，不支持通过开放接口修改").code).toBe(
      "EDITION_READ_ONLY",
    );
  });

  it("treats 412 as a conflict and 400 as bad data", () => {
    expect(classify(412, "该部门在同级有相同的部门名称").class).toBe("conflict");
    expect(classify(400, "手机号格式不正确").class).toBe("bad-data");
  });

  it("recognises a rejected token by 401 or by a 403 naming the token, but not a pending-approval 403", () => {
    expect(isTokenRejection(403, "accessToken已过期")).toBe(true);
    expect(isTokenRejection(401, "未授权")).toBe(true);
    expect(isTokenRejection(403, "员工[张三]有待办事项，不能停用")).toBe(false);
  });

  it("takes errorMessage from Hesi's error body and falls back to the raw text", () => {
    expect(messageOf({ status: 412, json: { errorMessage: "找不到角色" }, text: "" })).toBe("找不到角色");
    expect(messageOf({ status: 401, json: undefined, text: "未授权" })).toBe("未授权");
  });
});

describe("hesi target config", () => {
  it("fills defaults: not roles-only, fail on pending approvals, 5 requests per second", () => {
    const config = hesiConfigSchema.parse({
      baseUrl: "https://app.ekuaibao.com",
      appKey: "k",
      appSecurity: "s",
    });
    expect(config).toMatchObject({ rolesOnly: false, onPendingApprovals: "fail", requestsPerSecond: 5 });
  });

  it("refuses an unknown key and a missing secret", () => {
    const result = hesiConfigSchema.safeParse({
      baseUrl: "https://app.ekuaibao.com",
      appKey: "k",
      appSecret: "s",
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join(".") || i.message).join(" ")).toMatch(/appSecurity/);
  });
});
