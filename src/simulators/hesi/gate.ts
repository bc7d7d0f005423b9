import type { NextFunction, Request, RequestHandler, Response } from "express";
import { countCall } from "../common/control.js";
import { dropConnection, sendBadGateway, sendFailure, sendTooMany } from "./replies.js";
import type { HesiSimState } from "./state.js";

const BAN_MS = 5 * 60_000;

/**
 * The checks in front of every API call: counting and latency, bans, random failures, injected faults,
 * the per-tenant rate limit (429 with Retry-After), then the `accessToken` query parameter (403 when
 * missing, unknown, expired or too fresh). Token calls pass `{token: false}`.
 */
export function gate(
  state: HesiSimState,
  options: { readonly token: boolean } = { token: true },
): RequestHandler {
  const { controls } = state;
  return async (req: Request, res: Response, next: NextFunction) => {
    const path = req.path === "/" ? req.baseUrl : `${req.baseUrl}${req.path}`;
    countCall(controls, path);
    const latency = controls.faults.latencyMs;
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const banned = state.bans.remaining("tenant");
    if (banned > 0) return sendTooMany(state, res, Math.ceil(banned / 1000));

    const random = state.failures?.next() ?? null;
    if (random === "429") return sendTooMany(state, res, 1);
    if (random === "5xx") return sendBadGateway(state, res);
    if (random === "timeout") return dropConnection(state, req);
    if (random === "timeout-after-apply") res.locals.dropReply = true;

    const fault = controls.faults.next(path);
    switch (fault?.kind) {
      case "rate-limit":
        return sendTooMany(state, res, 1);
      case "ban":
        state.bans.ban("tenant", BAN_MS);
        return sendTooMany(state, res, BAN_MS / 1000);
      case "busy":
        res.set("Retry-After", "1");
        return sendFailure(state, res, 503, "服务繁忙，请稍后再试");
      case "http-5xx":
        return sendBadGateway(state, res);
      case "expire-tokens":
        state.tokens.expireAll();
        break;
      case undefined:
        break;
    }
    if (
      state.requestsPerSecond !== undefined &&
      state.windows.exceeded("tenant", state.requestsPerSecond, 1000)
    )
      return sendTooMany(state, res, 1);

    if (options.token) {
      const token = typeof req.query.accessToken === "string" ? req.query.accessToken : undefined;
      const checked = state.tokens.check(token);
      if (checked !== true) {
        // Hesi answers a bad or expired token with 403 (reference §1.2, §5); the text is [unverified].
        const message =
          checked === "expired"
            ? "accessToken已过期"
            : checked === "too-fresh"
              ? "accessToken尚未生效"
              : "accessToken无效";
        return sendFailure(state, res, 403, message);
      }
    }
    next();
  };
}

/** Refuses contact writes on the DingTalk and WeCom editions (their address book comes from that platform). */
export function standaloneOnly(state: HesiSimState): RequestHandler {
  return (_req, res, next) => {
    if (state.edition === "standalone") return next();
    sendFailure(state, res, 403, "当前企业通讯录由第三方平台同步，不支持通过开放接口修改");
  };
}
