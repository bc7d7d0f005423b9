import type { z } from "zod";
import type { HttpReply } from "../http/send.js";
import { networkOutcome } from "../http/send.js";
import type { CallOutcome } from "../http/vendor-call.js";
import { describeIssue } from "./schemas.js";

/** Which kind of secret a source uses; WeCom answers differently to each. */
export type SecretKind = "contact-sync" | "app";

/** What a classification needs to know to explain an errcode. */
export interface CallSite {
  /** The API path, `/cgi-bin/user/list`. */
  readonly api: string;
  readonly kind: SecretKind;
  /** The app's AgentId, for messages. */
  readonly agentId?: number;
}

const secretName = (site: CallSite): string =>
  site.kind === "contact-sync"
    ? "the 通讯录同步 secret (contactSecret)"
    : `the secret of app ${site.agentId ?? "?"}`;

/** errmsg without WeCom's `, hint: [...], from ip: ..., more info at ...` tail. */
export function shortErrmsg(errmsg: unknown): string {
  return typeof errmsg === "string" ? (errmsg.split(", hint:")[0] ?? errmsg) : "";
}

/** The caller's IP as WeCom saw it, when the errmsg says (`from ip: 1.2.3.4`). */
function fromIp(errmsg: unknown): string | undefined {
  return typeof errmsg === "string" ? /from ip: ([0-9a-fA-F.:]+)/.exec(errmsg)?.[1] : undefined;
}

/** The errcode of a WeCom reply (HTTP 200 with a JSON body), if it has one. */
export function replyErrcode(reply: HttpReply): number | undefined {
  if (reply.kind !== "reply" || reply.status !== 200) return undefined;
  const errcode = (reply.json as { errcode?: unknown } | null | undefined)?.errcode;
  return typeof errcode === "number" ? errcode : undefined;
}

/**
 * Turns one WeCom reply into a call outcome: HTTP 200 with `{errcode, errmsg}` always (WX-DOC 90455); 5xx
 * and network errors are transient; a success whose payload does not match `schema` is MALFORMED_RESPONSE
 * naming the field. Keyed on errcode only, never on errmsg.
 */
export function classifyReply<T>(reply: HttpReply, site: CallSite, schema: z.ZodType<T>): CallOutcome<T> {
  if (reply.kind === "network-error") return networkOutcome(reply);
  if (reply.status >= 500)
    return { kind: "transient", detail: `WeCom answered HTTP ${reply.status} to ${site.api}` };
  const body = reply.json as { errcode?: unknown; errmsg?: unknown } | undefined;
  if (reply.status !== 200 || body === null || typeof body !== "object" || typeof body.errcode !== "number") {
    return {
      kind: "failed",
      reason: {
        code: "MALFORMED_RESPONSE",
        message: `${site.api} answered HTTP ${reply.status} without a WeCom {errcode, errmsg} body (${JSON.stringify(reply.text.slice(0, 80))}) — check that baseUrl points at qyapi.weixin.qq.com or a proxy that passes replies through`,
      },
    };
  }
  if (body.errcode === 0) {
    const parsed = schema.safeParse(body);
    if (parsed.success) return { kind: "ok", value: parsed.data };
    return {
      kind: "failed",
      reason: {
        code: "MALFORMED_RESPONSE",
        message: `${site.api} returned an unexpected reply (${describeIssue(parsed.error)}); nothing from this reply was used`,
      },
    };
  }
  return errcodeOutcome(body.errcode, body.errmsg, site);
}

/** What to do about a WeCom errcode (the reference's table B6), with a sentence naming the fix. */
export function errcodeOutcome(errcode: number, errmsg: unknown, site: CallSite): CallOutcome<never> {
  const said = `errcode ${errcode}${shortErrmsg(errmsg) ? ` "${shortErrmsg(errmsg)}"` : ""}`;
  const failed = (
    code: Extract<CallOutcome<never>, { kind: "failed" }>["reason"]["code"],
    message: string,
  ): CallOutcome<never> => ({
    kind: "failed",
    reason: { code, message },
  });
  switch (errcode) {
    case -1:
      return { kind: "transient", detail: `WeCom is busy (${said})` };
    // 40014 is also what expired tokens get in practice (wecom-sdk#22); 40001 on an API call means the
    // token is not the latest one. All three: refresh once and repeat the same request.
    case 40001:
    case 40014:
    case 42001:
      return { kind: "token-rejected", detail: said };
    // Minute block: 60 s (WX-DOC 90454). The hour block is told apart by how long it lasts (see client).
    case 45009:
      return { kind: "throttled", waitMs: 60_000, detail: said };
    case 45033:
      return {
        kind: "throttled",
        waitMs: 1_000,
        detail: `${said}: too many requests in flight, lower concurrency`,
      };
    case 48002:
      if (site.api === "/cgi-bin/user/list_id") {
        return failed(
          "PERMISSION_DENIED",
          `the secret in contactSecret is an app secret, but user/list_id needs the 通讯录同步 secret (${said}) — copy the secret from 管理后台 → 安全与管理 → 管理工具 → 通讯录同步, or configure the app as secret + agentId with listing: department`,
        );
      }
      return failed(
        "PERMISSION_DENIED",
        `${secretName(site)} may not call ${site.api} (${said}) — use a secret that has access to the contacts API`,
      );
    case 60011:
      return failed(
        "PERMISSION_DENIED",
        site.kind === "app"
          ? `app ${site.agentId ?? "?"} may not read this part of the contacts (${said}) at ${site.api} — add the departments and tags to the app's visible range (应用管理 → the app → 可见范围), or use the 通讯录同步 secret`
          : `the 通讯录同步 secret may not read this part of the contacts (${said}) at ${site.api} — check 通讯录同步 → 权限 (read permission on the contacts)`,
      );
    case 60020: {
      const ip = fromIp(errmsg);
      return failed(
        "PERMISSION_DENIED",
        site.kind === "app"
          ? `WeCom refuses calls from ${ip ?? "this server's IP"} (${said}) at ${site.api} — add the IP to the app's 企业可信IP (应用管理 → the app → 开发者接口 → 企业可信IP)`
          : `WeCom refuses ${site.api} from ${ip ?? "this server's IP"} with the 通讯录同步 secret (${said}) — add the IP under 通讯录同步 → 企业可信IP; an IP added there after 2022-08-15 may never call department/list, department/get, user/list or user/get: read with an app's secret (secret + agentId, listing: department) instead`,
      );
    }
    case 40013:
      return failed(
        "AUTH_FAILED",
        `WeCom does not know the corpId (${said}) — copy the CorpID from 管理后台 → 我的企业 → 企业信息`,
      );
    case 41001:
      return failed("AUTH_FAILED", `WeCom saw no access_token at ${site.api} (${said})`);
    case 60003:
    case 60123:
      return failed(
        "NOT_FOUND",
        `the department is gone or invalid (${said}) at ${site.api}; it may have been deleted during the read — read again`,
      );
    case 40003:
    case 60111:
      return failed("NOT_FOUND", `the user is gone (${said}) at ${site.api}`);
    case 50100:
      return failed(
        "MALFORMED_RESPONSE",
        `WeCom rejected its own pagination cursor (${said}) at ${site.api}`,
      );
    default:
      return failed("SERVER_ERROR", `${site.api} failed with ${said}`);
  }
}
