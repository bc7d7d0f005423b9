import { randomBytes } from "node:crypto";
import type { Response } from "express";

/**
 * DingTalk's reply envelopes (reference A1, A7). Legacy oapi calls always answer HTTP 200: success is
 * `errcode: 0`, an error comes either direct (`{errcode: 40014, errmsg}`) or wrapped by the gateway
 * (`{errcode: 88, sub_code: "40014", sub_msg, errmsg: "ding talk error[subcode=…]"}`). The new api answers
 * HTTP 4xx/5xx with `{code, requestid, message}`.
 */

/** How legacy errors are shaped: direct errcode, or errcode 88 with sub_code (topapi's gateway). */
export type LegacyErrorShape = "direct" | "wrapped";

/** How the per-IP ban looks: the JSON without errcode, or an HTML page. */
export type BanReply = "json" | "html";

export function requestId(): string {
  return randomBytes(12).toString("base64url");
}

/** Legacy success: `{errcode: 0, errmsg: "ok", …payload, request_id}`. */
export function sendLegacyOk(res: Response, payload: Record<string, unknown>): void {
  res.json({ errcode: 0, errmsg: "ok", ...payload, request_id: requestId() });
}

/** Legacy error, HTTP 200, in the selected shape. */
export function sendLegacyError(
  res: Response,
  shape: LegacyErrorShape,
  errcode: number,
  errmsg: string,
): void {
  if (shape === "direct") {
    res.json({ errcode, errmsg, request_id: requestId() });
    return;
  }
  res.json({
    errcode: 88,
    sub_code: String(errcode),
    sub_msg: errmsg,
    errmsg: `ding talk error[subcode=${errcode},submsg=${errmsg}]`,
    request_id: requestId(),
  });
}

/** New-API error: HTTP status with `{code, requestid, message}`. */
export function sendApiError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ code, requestid: requestId().toUpperCase(), message });
}

/** The new API's answer to a call over the per-app-per-API QPS limit (reference A7). */
export function sendApiQpsExceeded(res: Response): void {
  sendApiError(
    res,
    403,
    "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    "应用调用该接口的请求数超过限流阈值",
  );
}

/**
 * The per-IP ban (reference A7): no errcode at all. The JSON is the documented body; the HTTP status of
 * either form is [unverified] — we answer the JSON with 200 (clients see "no errcode") and the page with 403.
 */
export function sendBan(res: Response, reply: BanReply, waitMinutes: number): void {
  if (reply === "json") {
    res.json({ status: 1111, wait: waitMinutes, source: "x5", punish: "deny", uuid: requestId() });
    return;
  }
  res
    .status(403)
    .type("html")
    .send(
      `<!DOCTYPE html><html><head><meta charset="utf-8"><title>访问被拒绝</title></head>` +
        `<body><h1>访问被拒绝</h1><p>您的访问过于频繁，请${waitMinutes}分钟后再试。</p></body></html>`,
    );
}

/** A gateway failure (fault `5xx@PATH`): HTTP 502 with an HTML body, as a proxy in front would send. */
export function sendBadGateway(res: Response): void {
  res.status(502).type("html").send("<html><body><h1>502 Bad Gateway</h1></body></html>");
}
