import { describe, expect, it } from "vitest";
import type { HttpReply } from "../../src/sources/http/send.js";
import { classifyReply, errcodeOutcome, type CallSite } from "../../src/sources/wecom/errors.js";
import { userListReply } from "../../src/sources/wecom/schemas.js";

const contact: CallSite = { api: "/cgi-bin/user/list", kind: "contact-sync" };
const app: CallSite = { api: "/cgi-bin/user/list", kind: "app", agentId: 1000002 };
const errmsg = (text: string, code: number) =>
  `${text}, hint: [1622539468_161_abc], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e=${code}`;
const reply = (json: unknown, status = 200): HttpReply => ({
  kind: "reply",
  status,
  json,
  text: JSON.stringify(json) ?? "",
});

describe("wecom errcode classification", () => {
  it("refreshes the token on 40014, 42001 and 40001", () => {
    for (const code of [40014, 42001, 40001])
      expect(errcodeOutcome(code, "x", contact).kind).toBe("token-rejected");
  });

  it("waits a minute on 45009 and a second on 45033", () => {
    expect(errcodeOutcome(45009, errmsg("api freq out of limit", 45009), contact)).toMatchObject({
      kind: "throttled",
      waitMs: 60_000,
    });
    expect(errcodeOutcome(45033, "api concurrent out of limit", contact)).toMatchObject({
      kind: "throttled",
      waitMs: 1_000,
    });
  });

  it("retries -1 (system busy)", () => {
    expect(errcodeOutcome(-1, "system busy", contact).kind).toBe("transient");
  });

  it("names the wrong kind of secret on 48002 from user/list_id", () => {
    const outcome = errcodeOutcome(48002, errmsg("api forbidden", 48002), {
      api: "/cgi-bin/user/list_id",
      kind: "contact-sync",
    });
    expect(outcome).toMatchObject({ kind: "failed", reason: { code: "PERMISSION_DENIED" } });
    if (outcome.kind !== "failed") throw new Error("unreachable");
    expect(outcome.reason.message).toMatch(
      /^the secret in contactSecret is an app secret, but user\/list_id needs the 通讯录同步 secret \(errcode 48002 "api forbidden"\)/,
    );
    expect(outcome.reason.message).not.toContain("hint:");
  });

  it("tells an app to widen its visible range on 60011 and the 通讯录同步 secret to check its permission", () => {
    const forApp = errcodeOutcome(60011, "no privilege", app);
    const forContact = errcodeOutcome(60011, "no privilege", contact);
    expect(forApp.kind === "failed" && forApp.reason.message).toContain("可见范围");
    expect(forContact.kind === "failed" && forContact.reason.message).toContain("通讯录同步 → 权限");
  });

  it("names the caller's IP on 60020 and the 2022-08-15 rule for the 通讯录同步 secret", () => {
    const forApp = errcodeOutcome(60020, errmsg("not allow to access from your ip", 60020), app);
    expect(forApp).toMatchObject({ kind: "failed", reason: { code: "PERMISSION_DENIED" } });
    expect(forApp.kind === "failed" && forApp.reason.message).toMatch(/from 203\.0\.113\.7 .*企业可信IP/);
    const forContact = errcodeOutcome(60020, errmsg("not allow to access from your ip", 60020), contact);
    expect(forContact.kind === "failed" && forContact.reason.message).toContain("2022-08-15");
  });

  it("reports unknown errcodes as SERVER_ERROR with the code", () => {
    expect(errcodeOutcome(12345, "strange", contact)).toMatchObject({
      kind: "failed",
      reason: { code: "SERVER_ERROR", message: '/cgi-bin/user/list failed with errcode 12345 "strange"' },
    });
  });
});

describe("wecom reply classification", () => {
  it("retries HTTP 5xx", () => {
    expect(classifyReply(reply(undefined, 502), contact, userListReply).kind).toBe("transient");
  });

  it("retries network errors but fails TLS errors at once", () => {
    expect(
      classifyReply({ kind: "network-error", tls: false, detail: "refused" }, contact, userListReply),
    ).toMatchObject({ kind: "transient", code: "UNREACHABLE" });
    expect(
      classifyReply({ kind: "network-error", tls: true, detail: "bad cert" }, contact, userListReply),
    ).toMatchObject({ kind: "failed", reason: { code: "TLS_FAILED" } });
  });

  it("makes a body without errcode MALFORMED_RESPONSE", () => {
    expect(classifyReply(reply({ userlist: [] }), contact, userListReply)).toMatchObject({
      kind: "failed",
      reason: { code: "MALFORMED_RESPONSE" },
    });
    expect(classifyReply(reply(undefined), contact, userListReply)).toMatchObject({
      kind: "failed",
      reason: { code: "MALFORMED_RESPONSE" },
    });
  });

  it("names the field when a success reply does not match", () => {
    const outcome = classifyReply(
      reply({
        errcode: 0,
        errmsg: "ok",
        userlist: [{ userid: "a", name: "甲", department: ["x"], status: 1 }],
      }),
      contact,
      userListReply,
    );
    expect(outcome.kind === "failed" && outcome.reason.message).toContain("userlist[0].department[0]");
  });

  it("passes a matching success through", () => {
    const outcome = classifyReply(reply({ errcode: 0, errmsg: "ok", userlist: [] }), contact, userListReply);
    expect(outcome).toEqual({ kind: "ok", value: { errcode: 0, errmsg: "ok", userlist: [] } });
  });
});
