import { randomBytes } from "node:crypto";
import type { Request, Response } from "express";
import type { WeComSimState } from "./state.js";

/**
 * WeCom errcodes the simulator answers with and their English errmsg (WX-DOC 90313 / 90455; WXJ
 * WxCpErrorMsgEnum). Clients must key on errcode only.
 */
export const ERRMSG = {
  [-1]: "system busy",
  40001: "invalid credential",
  40003: "invalid userid",
  40013: "invalid corpid",
  40014: "invalid access_token",
  40029: "invalid code",
  40056: "invalid agentid",
  // [unverified] the errcode for an out-of-range `limit` on user/list_id; 40058 is WeCom's generic
  // "invalid parameter" neighbour.
  40058: "invalid Request Parameter",
  40068: "invalid tagid",
  41001: "access_token missing",
  41004: "corpsecret missing",
  41009: "missing userid",
  42001: "access_token expired",
  45009: "api freq out of limit",
  45033: "api concurrent out of limit",
  48002: "api forbidden",
  50001: "redirect_uri unauthorized",
  50100: "invalid cursor",
  60003: "department not found",
  60011: "no privilege to access/modify contact/party/agent",
  60020: "not allow to access from your ip",
  60111: "userid not found",
  60123: "invalid party id",
} as const satisfies Record<number, string>;

export type WeComErrcode = keyof typeof ERRMSG;

/** The caller's IP as WeCom would see it (IPv4-mapped addresses unwrapped). */
export function callerIp(req: Request): string {
  const raw = req.socket.remoteAddress ?? "0.0.0.0";
  return raw.startsWith("::ffff:") ? raw.slice(7) : raw;
}

/**
 * An error reply: always HTTP 200 with `{errcode, errmsg}`, the errmsg in WeCom's real format
 * `"<text>, hint: [<ts>_<seq>_<hex>], from ip: <ip>, more info at https://open.work.weixin.qq.com/devtool/query?e=<code>"`.
 */
export function sendError(state: WeComSimState, req: Request, res: Response, errcode: WeComErrcode): void {
  state.errcodes.set(errcode, (state.errcodes.get(errcode) ?? 0) + 1);
  const ts = Math.floor(state.controls.clock.now() / 1000);
  const hint = `${ts}_${++state.hintSeq}_${randomBytes(16).toString("hex")}`;
  res.status(200).json({
    errcode,
    errmsg:
      `${ERRMSG[errcode]}, hint: [${hint}], from ip: ${callerIp(req)}, ` +
      `more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}`,
  });
}

/** A success reply: HTTP 200, `errcode: 0, errmsg: "ok"` first, then the payload. */
export function sendOk(res: Response, payload: Record<string, unknown>): void {
  res.status(200).json({ errcode: 0, errmsg: "ok", ...payload });
}
