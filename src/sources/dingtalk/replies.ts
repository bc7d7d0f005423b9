import type { z } from "zod";
import { networkOutcome, type HttpReply } from "../http/send.js";
import type { CallOutcome } from "../http/vendor-call.js";
import type { IncompleteReason } from "../snapshot.js";

/**
 * Turns DingTalk's answers into call outcomes (reference A7). A client must accept all three error shapes:
 * legacy `{errcode, errmsg}`, the gateway's `{errcode: 88, sub_code, sub_msg}`, and the new API's HTTP
 * 4xx `{code, requestid, message}`; plus the per-IP ban, which has no errcode at all. Nothing outside this
 * folder sees a DingTalk code: it becomes ok / token-rejected / throttled / transient / failed here.
 */

/** A contact permission point (reference A6). */
export type PermissionPoint =
  "qyapi_get_member" | "qyapi_get_department_list" | "qyapi_get_department_member";

/** What the developer console calls each point, for the fix in messages. */
const PERMISSION_NAMES: Record<PermissionPoint, string> = {
  qyapi_get_member: "成员信息读权限",
  qyapi_get_department_list: "通讯录部门信息读权限",
  qyapi_get_department_member: "通讯录部门成员读权限",
};

/** An endpoint the reader calls. */
export interface Endpoint {
  /** Path, e.g. `/topapi/v2/user/list`. */
  readonly path: string;
  /** The permission point the endpoint needs, for messages; none for token calls. */
  readonly permission?: PermissionPoint;
  /** True for the token endpoints: any refusal there is a credentials problem. */
  readonly token?: boolean;
  /**
   * Legacy errcodes that answer the question rather than fail the call (sign-in: 60121 "not in this org",
   * 40078 "no such code"): handed to the schema as `{errcode, errmsg}`, unwrapped from 88/sub_code.
   */
  readonly answers?: ReadonlySet<number>;
}

// DingTalk: 90018 app×API QPS, 90002 global per-API QPS, 90005/90006 org call volume — sleep ~1 s, retry.
const THROTTLED = new Set([90018, 90002, 90005, 90006]);
// 40014 invalid (also expired) token, 42001 token timed out, 40001 token invalid or secret wrong.
const TOKEN_REJECTED = new Set([40001, 40014, 42001]);
const THROTTLE_WAIT_MS = 1000;
const BAN_MINUTES = 5;

/** Classifies one reply of `endpoint`; `where` names the call for messages. */
export function classifyReply<T>(
  reply: HttpReply,
  endpoint: Endpoint,
  where: string,
  schema: z.ZodType<T>,
): CallOutcome<T> {
  if (reply.kind === "network-error") return networkOutcome(reply);
  const body = reply.json;
  if (isObject(body) && body.status === 1111 && !("errcode" in body)) return banned(where, "status 1111");
  if (reply.status >= 500) {
    return { kind: "transient", detail: `DingTalk answered HTTP ${reply.status}`, code: "SERVER_ERROR" };
  }
  if (!isObject(body)) {
    if (/^\s*</.test(reply.text)) return banned(where, `an HTML page with HTTP ${reply.status}`);
    return malformed(where, `the body is not JSON (HTTP ${reply.status})`);
  }
  if (typeof body.errcode === "number") return classifyLegacy(body, endpoint, where, schema);
  if (typeof body.code === "string" && reply.status >= 400)
    return classifyApiError(body, reply.status, endpoint);
  if (reply.status !== 200) return malformed(where, `HTTP ${reply.status} without an error code`);
  return parse(body, where, schema);
}

function classifyLegacy<T>(
  body: Record<string, unknown>,
  endpoint: Endpoint,
  where: string,
  schema: z.ZodType<T>,
): CallOutcome<T> {
  let code = body.errcode as number;
  let message = typeof body.errmsg === "string" ? body.errmsg : "";
  if (code === 0) return parse(body, where, schema);
  // The gateway wraps the real error: errcode 88, sub_code "40014", sub_msg.
  if (code === 88 && body.sub_code !== undefined) {
    const sub = Number(body.sub_code);
    if (Number.isInteger(sub)) code = sub;
    if (typeof body.sub_msg === "string") message = body.sub_msg;
  }
  if (endpoint.answers?.has(code)) return parse({ errcode: code, errmsg: message }, where, schema);
  const detail = `errcode ${code}${message ? ` ${message}` : ""}`;
  if (code === -1) return { kind: "transient", detail: `DingTalk is busy (${detail})`, code: "SERVER_ERROR" };
  if (THROTTLED.has(code)) return { kind: "throttled", waitMs: THROTTLE_WAIT_MS, detail };
  if (endpoint.token) return badCredentials(detail);
  if (TOKEN_REJECTED.has(code)) return { kind: "token-rejected", detail };
  return { kind: "failed", reason: legacyFailure(code, message, detail, endpoint) };
}

function legacyFailure(code: number, message: string, detail: string, endpoint: Endpoint): IncompleteReason {
  switch (code) {
    case 60011:
    case 43007: {
      const named = /qyapi_[a-z_]+/.exec(message)?.[0] as PermissionPoint | undefined;
      const point = named !== undefined && named in PERMISSION_NAMES ? named : endpoint.permission;
      const grant =
        point === undefined ? "the contact read permissions" : `${PERMISSION_NAMES[point]} (${point})`;
      return {
        code: "PERMISSION_DENIED",
        message: `the app lacks the contact permission ${point ?? "for " + endpoint.path} (${detail}) — grant ${grant} to the app in the DingTalk developer console (开发者后台 → 权限管理)`,
        // The whole API is refused, not this page: `where` names the endpoint.
        where: endpoint.path,
      };
    }
    case 50004:
      return {
        code: "PERMISSION_DENIED",
        message: `the department is outside the app's contact scope (${detail}) — set the app's 通讯录权限范围 to the whole organisation, or rootDepartmentId to a department inside it`,
      };
    case 60020:
      return {
        code: "PERMISSION_DENIED",
        message: `DingTalk refuses calls from this server's IP address (${detail}) — add the server's egress IP to the app's whitelist (开发者后台 → 安全设置 → 服务器出口IP)`,
        where: endpoint.path,
      };
    case 60003:
      return {
        code: "NOT_FOUND",
        message: `department not found (${detail}); it may have been deleted during the read, or rootDepartmentId is wrong`,
      };
    case 90020:
      return {
        code: "RATE_LIMITED",
        message: `the org's monthly API quota is used up (${detail}); reading can continue next month or after upgrading the DingTalk edition`,
      };
    default:
      return { code: "SERVER_ERROR", message: `DingTalk refused ${endpoint.path} with ${detail}` };
  }
}

function classifyApiError<T>(
  body: Record<string, unknown>,
  status: number,
  endpoint: Endpoint,
): CallOutcome<T> {
  const code = body.code as string;
  const detail = `HTTP ${status} ${code}${typeof body.message === "string" ? ` ${body.message}` : ""}`;
  if (code.startsWith("Forbidden.AccessDenied.Qps"))
    return { kind: "throttled", waitMs: THROTTLE_WAIT_MS, detail };
  // A per-minute quota: waiting a second would only draw the same answer.
  if (code.startsWith("Forbidden.AccessDenied.Qpm")) return { kind: "throttled", waitMs: 60_000, detail };
  if (endpoint.token || /clientid|client\b|invalid\.client|unauthorized\.client/i.test(code)) {
    return badCredentials(detail);
  }
  if (code === "InvalidAuthentication") return { kind: "token-rejected", detail };
  if (code === "Forbidden.AccessDenied.IpNotInWhiteList") {
    return {
      kind: "failed",
      reason: {
        code: "PERMISSION_DENIED",
        message: `DingTalk refuses calls from this server's IP address (${detail}) — add the server's egress IP to the app's whitelist (开发者后台 → 安全设置 → 服务器出口IP)`,
        where: endpoint.path,
      },
    };
  }
  if (code === "Forbidden.AccessDenied.AccessTokenPermissionDenied") {
    return {
      kind: "failed",
      reason: {
        code: "PERMISSION_DENIED",
        message: `the app lacks the permission for ${endpoint.path} (${detail}) — grant it in the DingTalk developer console (开发者后台 → 权限管理)`,
        where: endpoint.path,
      },
    };
  }
  return {
    kind: "failed",
    reason: { code: "SERVER_ERROR", message: `DingTalk refused ${endpoint.path} with ${detail}` },
  };
}

function badCredentials(detail: string): CallOutcome<never> {
  return {
    kind: "failed",
    reason: {
      code: "AUTH_FAILED",
      message: `DingTalk refused the app credentials (${detail}) — check appKey and appSecret of the internal app (开发者后台 → 凭证与基础信息)`,
    },
  };
}

function banned(where: string, seen: string): CallOutcome<never> {
  return {
    kind: "failed",
    reason: {
      code: "BANNED",
      message: `DingTalk has banned this server's IP address for about ${BAN_MINUTES} minutes for too many calls (more than 10,000 in 20 s from one IP; it answered ${seen}) — read again after the ban and lower requestsPerSecond or callsPer20sPerIp, especially when other apps share the IP`,
      where,
    },
  };
}

function malformed(where: string, what: string): CallOutcome<never> {
  return {
    kind: "failed",
    reason: {
      code: "MALFORMED_RESPONSE",
      message: `DingTalk answered ${where} unexpectedly: ${what}`,
      where,
    },
  };
}

function parse<T>(body: unknown, where: string, schema: z.ZodType<T>): CallOutcome<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return { kind: "ok", value: parsed.data };
  const issue = parsed.error.issues[0]!;
  const field = issue.path
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .slice(1);
  return malformed(where, `field ${field || "(body)"}: ${issue.message}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
