/** How the dingtalk reader classifies DingTalk's replies: all three error shapes, the ban, and bad bodies. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { HttpReply } from "../../src/sources/http/send.js";
import { classifyReply, type Endpoint } from "../../src/sources/dingtalk/replies.js";

const USER_LIST: Endpoint = { path: "/topapi/v2/user/list", permission: "qyapi_get_department_member" };
const TOKEN: Endpoint = { path: "/gettoken", token: true };
const schema = z.object({ result: z.object({ list: z.array(z.object({ userid: z.string() })) }) });
const WHERE = "POST /topapi/v2/user/list dept 2 cursor 100";

function reply(status: number, body: unknown): HttpReply {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { kind: "reply", status, json: typeof body === "string" ? undefined : body, text };
}
const classify = (r: HttpReply, endpoint: Endpoint = USER_LIST) => classifyReply(r, endpoint, WHERE, schema);
const wrapped = (code: number, msg: string) => ({
  errcode: 88,
  sub_code: String(code),
  sub_msg: msg,
  errmsg: `ding talk error[subcode=${code},submsg=${msg}]`,
});

describe("dingtalk replies", () => {
  it("parses a legacy success and returns the payload", () => {
    const outcome = classify(reply(200, { errcode: 0, errmsg: "ok", result: { list: [{ userid: "a" }] } }));
    expect(outcome).toEqual({ kind: "ok", value: { result: { list: [{ userid: "a" }] } } });
  });

  it.each([
    ["direct 40014", { errcode: 40014, errmsg: "不合法的access_token" }],
    ["direct 42001", { errcode: 42001, errmsg: "access_token超时" }],
    ["direct 40001", { errcode: 40001, errmsg: "获取access_token时Secret错误，或者access_token无效" }],
    ["88-wrapped 40014", wrapped(40014, "不合法的access_token")],
    ["88-wrapped 42001", wrapped(42001, "access_token超时")],
  ])("asks for a new token on %s", (_name, body) => {
    expect(classify(reply(200, body)).kind).toBe("token-rejected");
  });

  it("asks for a new token on the new API's HTTP 400 InvalidAuthentication", () => {
    const outcome = classify(
      reply(400, { code: "InvalidAuthentication", requestid: "X", message: "不合法的access_token" }),
    );
    expect(outcome.kind).toBe("token-rejected");
  });

  it.each([
    ["direct 90018", { errcode: 90018, errmsg: "qps" }],
    ["88-wrapped 90018", wrapped(90018, "qps")],
    ["90002", { errcode: 90002, errmsg: "global qps" }],
    ["90006", { errcode: 90006, errmsg: "volume" }],
  ])("waits at least 1 s on %s", (_name, body) => {
    const outcome = classify(reply(200, body));
    expect(outcome).toMatchObject({ kind: "throttled" });
    expect((outcome as { waitMs: number }).waitMs).toBeGreaterThanOrEqual(1000);
  });

  it("waits on the new API's 403 QpsLimitForAppkeyAndApi, and a minute on a per-minute quota", () => {
    const qps = classify(reply(403, { code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", message: "" }));
    expect(qps).toMatchObject({ kind: "throttled", waitMs: 1000 });
    const qpm = classify(reply(403, { code: "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi", message: "" }));
    expect(qpm).toMatchObject({ kind: "throttled", waitMs: 60_000 });
  });

  it("treats system busy (-1) and HTTP 5xx as transient", () => {
    expect(classify(reply(200, { errcode: -1, errmsg: "系统繁忙" })).kind).toBe("transient");
    expect(classify(reply(502, "<html>502 Bad Gateway</html>")).kind).toBe("transient");
    expect(classify(reply(503, { code: "ServiceUnavailable", message: "" })).kind).toBe("transient");
  });

  it("reports the per-IP ban (status 1111 without errcode, or an HTML page) as BANNED for about 5 minutes", () => {
    for (const r of [
      reply(200, { status: 1111, wait: 5, source: "x5", punish: "deny", uuid: "u" }),
      reply(403, "<!DOCTYPE html><html><body>访问被拒绝</body></html>"),
    ]) {
      const outcome = classify(r);
      expect(outcome).toMatchObject({ kind: "failed", reason: { code: "BANNED", where: WHERE } });
      expect((outcome as { reason: { message: string } }).reason.message).toMatch(
        /banned .* about 5 minutes/,
      );
    }
  });

  it("names the missing permission point and the console permission for 60011, wrapped or direct", () => {
    for (const body of [
      wrapped(60011, "应用尚未开通所需的权限：[qyapi_get_department_member]"),
      { errcode: 60011, errmsg: "没有调用该接口的权限" },
    ]) {
      const outcome = classify(reply(200, body));
      expect(outcome).toMatchObject({
        kind: "failed",
        reason: { code: "PERMISSION_DENIED", where: USER_LIST.path },
      });
      const message = (outcome as { reason: { message: string } }).reason.message;
      expect(message).toContain("qyapi_get_department_member");
      expect(message).toContain("通讯录部门成员读权限");
      expect(message).toContain("errcode 60011");
    }
  });

  it("reports 43007 and the IP whitelist (60020, IpNotInWhiteList) as PERMISSION_DENIED with the fix", () => {
    expect(classify(reply(200, { errcode: 43007, errmsg: "需要授权" }))).toMatchObject({
      reason: { code: "PERMISSION_DENIED" },
    });
    for (const r of [
      reply(200, { errcode: 60020, errmsg: "访问ip不在白名单之中" }),
      reply(403, { code: "Forbidden.AccessDenied.IpNotInWhiteList", message: "" }),
    ]) {
      const outcome = classify(r);
      expect(outcome).toMatchObject({ kind: "failed", reason: { code: "PERMISSION_DENIED" } });
      expect((outcome as { reason: { message: string } }).reason.message).toContain("whitelist");
    }
  });

  it("reports refused credentials on the token endpoints as AUTH_FAILED, not as a token to refresh", () => {
    expect(
      classify(reply(200, { errcode: 40089, errmsg: "不合法的corpid或corpsecret" }), TOKEN),
    ).toMatchObject({
      reason: { code: "AUTH_FAILED" },
    });
    expect(classify(reply(200, { errcode: 40001, errmsg: "secret 错误" }), TOKEN)).toMatchObject({
      reason: { code: "AUTH_FAILED" },
    });
    const api = { path: "/v1.0/oauth2/accessToken", token: true };
    expect(classify(reply(400, { code: "invalidClientIdOrSecret", message: "" }), api)).toMatchObject({
      reason: { code: "AUTH_FAILED" },
    });
  });

  it("reports a body that is not the expected shape as MALFORMED_RESPONSE naming the field", () => {
    const outcome = classify(reply(200, { errcode: 0, result: { list: [{ userid: "a" }, { name: "x" }] } }));
    expect(outcome).toMatchObject({ kind: "failed", reason: { code: "MALFORMED_RESPONSE", where: WHERE } });
    expect((outcome as { reason: { message: string } }).reason.message).toContain("result.list[1].userid");
    expect(classify(reply(200, "not json"))).toMatchObject({ reason: { code: "MALFORMED_RESPONSE" } });
    expect(classify(reply(200, { hello: "no errcode" }))).toMatchObject({
      reason: { code: "MALFORMED_RESPONSE" },
    });
  });

  it("retries network errors and fails at once on TLS errors", () => {
    expect(classify({ kind: "network-error", tls: false, detail: "connection refused" })).toMatchObject({
      kind: "transient",
      code: "UNREACHABLE",
    });
    expect(classify({ kind: "network-error", tls: true, detail: "bad cert" })).toMatchObject({
      kind: "failed",
      reason: { code: "TLS_FAILED" },
    });
  });

  it("reports an unknown errcode as SERVER_ERROR with the code and message", () => {
    const outcome = classify(reply(200, { errcode: 40035, errmsg: "不合法的参数" }));
    expect(outcome).toMatchObject({ kind: "failed", reason: { code: "SERVER_ERROR" } });
    expect((outcome as { reason: { message: string } }).reason.message).toContain(
      "errcode 40035 不合法的参数",
    );
  });

  it("reports a department outside the contact scope (50004) for that page only, with the fix", () => {
    const outcome = classify(reply(200, { errcode: 50004, errmsg: "部门不在授权范围" }));
    expect(outcome).toMatchObject({ kind: "failed", reason: { code: "PERMISSION_DENIED" } });
    expect((outcome as { reason: { where?: string } }).reason.where).not.toBe(USER_LIST.path);
    expect((outcome as { reason: { message: string } }).reason.message).toContain("通讯录权限范围");
  });
});
