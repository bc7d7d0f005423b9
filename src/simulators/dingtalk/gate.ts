import type { Request, RequestHandler, Response } from "express";
import { countCall } from "../common/control.js";
import type { FaultAction } from "../common/faults.js";
import type { TokenStore } from "../common/tokens.js";
import {
  sendApiError,
  sendApiQpsExceeded,
  sendBadGateway,
  sendBan,
  sendLegacyError,
  sendLegacyOk,
} from "./replies.js";
import type { DingTalkPermissions, DingTalkSimState } from "./state.js";

/**
 * The checks every call goes through, in the order DingTalk's gateway applies them: the per-IP ban and
 * limit, injected faults, the access token, the per-app-per-API QPS limit, the permission point. Each
 * router (directory now, sign-in later) declares its endpoints through {@link legacyEndpoint} or
 * {@link apiEndpoint} and gets the same behaviour.
 */

/** What a legacy handler answers: a payload merged into `{errcode: 0, errmsg: "ok"}`, or an error. */
export type LegacyResult =
  { readonly payload: Record<string, unknown> } | { readonly errcode: number; readonly errmsg: string };

/** A contact permission point that gates an API. */
export type PermissionPoint = Exclude<keyof DingTalkPermissions, "mobile" | "email">;

const PERMISSION_NAMES: Record<PermissionPoint, string> = {
  qyapi_get_member: "成员信息读权限",
  qyapi_get_department_list: "通讯录部门信息读权限",
  qyapi_get_department_member: "通讯录部门成员读权限",
};

/** A legacy oapi endpoint (`?access_token=`, HTTP 200 + errcode); `permission` null: no contact point. */
export function legacyEndpoint(
  state: DingTalkSimState,
  permission: PermissionPoint | null,
  handle: (body: Record<string, unknown>, req: Request) => LegacyResult,
): RequestHandler {
  return async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    const body = bodyOf(req);
    const result = answerLegacy(state, permission, req, res, () => handle(body, req));
    if (result === "sent") {
      state.journal?.push({ path: req.path, body, answer: `HTTP ${res.statusCode}` });
      return;
    }
    state.journal?.push({ path: req.path, body, answer: "payload" in result ? 0 : result.errcode });
    if ("payload" in result) sendLegacyOk(res, result.payload);
    else sendLegacyError(res, state.legacyErrors, result.errcode, result.errmsg);
  };
}

/** The gateway's checks, then the handler; "sent" when a fault already answered (ban page, 502). */
function answerLegacy(
  state: DingTalkSimState,
  permission: PermissionPoint | null,
  req: Request,
  res: Response,
  handle: () => LegacyResult,
): LegacyResult | "sent" {
  const path = req.path;
  const fault = state.controls.faults.next(path);
  if (fault !== null) {
    const faulted = applyLegacyFault(state, fault, req, res);
    if (faulted !== null) return faulted;
  }
  const token = typeof req.query.access_token === "string" ? req.query.access_token : undefined;
  const check = checkAppToken(state, token);
  if ("problem" in check) {
    return check.problem === "expired" && state.expiredTokenErrcode === 42001
      ? { errcode: 42001, errmsg: "access_token超时" }
      : { errcode: 40014, errmsg: "不合法的access_token" };
  }
  if (overQps(state, check.owner, path)) return QPS_EXCEEDED;
  if (permission !== null && !state.permissions[permission]) {
    return {
      errcode: 60011,
      errmsg: `应用尚未开通所需的权限：[${permission}]（${PERMISSION_NAMES[permission]}）`,
    };
  }
  return handle();
}

const QPS_EXCEEDED = { errcode: 90018, errmsg: "当前企业调用该接口超过每秒调用次数限制" } as const;

/** A new-api endpoint taking the app token in `x-acs-dingtalk-access-token` (HTTP 4xx + {code}). */
export function apiEndpoint(
  state: DingTalkSimState,
  handle: (req: Request, res: Response) => void,
): RequestHandler {
  return async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    const path = req.path;
    const fault = state.controls.faults.next(path);
    if (fault !== null && applyApiFault(state, fault, req, res)) return;
    const header = req.get("x-acs-dingtalk-access-token");
    const check = checkAppToken(state, header);
    if ("problem" in check) {
      sendApiError(res, 400, "InvalidAuthentication", "不合法的access_token");
      return;
    }
    if (overQps(state, check.owner, path)) {
      sendApiQpsExceeded(res);
      return;
    }
    handle(req, res);
  };
}

/** Per-IP ban and limit, call counting and latency: every call, token calls included. */
export async function passIpChecks(state: DingTalkSimState, req: Request, res: Response): Promise<boolean> {
  countCall(state.controls, req.path);
  const latency = state.controls.faults.latencyMs;
  if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
  const ip = req.socket.remoteAddress ?? "unknown";
  const banned = state.bans.remaining(ip);
  if (banned > 0) {
    sendBan(res, state.banReply, Math.ceil(banned / 60_000));
    return false;
  }
  const { calls, windowMs, banMs } = state.ipLimit;
  if (state.windows.exceeded(`ip ${ip}`, calls, windowMs)) {
    state.bans.ban(ip, banMs);
    sendBan(res, state.banReply, Math.ceil(banMs / 60_000));
    return false;
  }
  return true;
}

/** The app token's owner, or why it is refused: after a revoke-secret fault no issued token is valid. */
function checkAppToken(state: DingTalkSimState, token: string | undefined): ReturnType<TokenStore["check"]> {
  return state.controls.faults.secretRevoked ? { problem: "invalid" } : state.appTokens.check(token);
}

/** Counts a call against the per-app-per-API limit; true when over it (and records the throttling). */
export function overQps(state: DingTalkSimState, appKey: string, path: string): boolean {
  if (!state.windows.exceeded(`qps ${appKey} ${path}`, state.qps, 1000)) return false;
  state.throttled.set(path, (state.throttled.get(path) ?? 0) + 1);
  return true;
}

/** Applies a fault to a legacy call: an error to answer, "sent", or null when the call goes on. */
function applyLegacyFault(
  state: DingTalkSimState,
  fault: FaultAction,
  req: Request,
  res: Response,
): LegacyResult | "sent" | null {
  switch (fault.kind) {
    case "expire-tokens":
      state.appTokens.expireAll();
      return null;
    case "rate-limit":
      state.throttled.set(req.path, (state.throttled.get(req.path) ?? 0) + 1);
      return QPS_EXCEEDED;
    case "ban":
      banCaller(state, req, res);
      return "sent";
    case "busy":
      return { errcode: -1, errmsg: "系统繁忙" };
    case "http-5xx":
      sendBadGateway(res);
      return "sent";
  }
}

function applyApiFault(state: DingTalkSimState, fault: FaultAction, req: Request, res: Response): boolean {
  switch (fault.kind) {
    case "expire-tokens":
      state.appTokens.expireAll();
      return false;
    case "rate-limit":
      state.throttled.set(req.path, (state.throttled.get(req.path) ?? 0) + 1);
      sendApiQpsExceeded(res);
      return true;
    case "ban":
      banCaller(state, req, res);
      return true;
    case "busy":
      // The new API's "busy" body is [unverified]; 503 with a code in the documented envelope.
      sendApiError(res, 503, "ServiceUnavailable", "系统繁忙");
      return true;
    case "http-5xx":
      sendBadGateway(res);
      return true;
  }
}

function banCaller(state: DingTalkSimState, req: Request, res: Response): void {
  state.bans.ban(req.socket.remoteAddress ?? "unknown", state.ipLimit.banMs);
  sendBan(res, state.banReply, Math.ceil(state.ipLimit.banMs / 60_000));
}

function bodyOf(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  return body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
}
