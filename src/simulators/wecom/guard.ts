import type { NextFunction, Request, RequestHandler, Response } from "express";
import { countCall } from "../common/control.js";
import { callerIp, sendError } from "./errors.js";
import { principalOf, trustedIpsOf, type Principal, type WeComSimState } from "./state.js";

/** The APIs the 2022-08-15 rule closes to 通讯录同步 IPs added after that date (WX-DOC 96067). */
const CLOSED_TO_NEW_CONTACT_IPS = new Set([
  "/cgi-bin/user/get",
  "/cgi-bin/user/list",
  "/cgi-bin/department/list",
  "/cgi-bin/department/get",
]);

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** The principal a guarded route runs for. */
export function principal(res: Response): Principal {
  return res.locals.principal as Principal;
}

/**
 * The checks in front of every API call, in the order WeCom applies them as far as clients can tell:
 * count, injected faults, access_token, trusted IP, the 2022 contact-sync IP rule, blocks, per-minute and
 * per-hour limits per corp and API, concurrency.
 */
export function guardApi(state: WeComSimState): RequestHandler {
  const { controls } = state;
  return async (req: Request, res: Response, next: NextFunction) => {
    const path = req.path === "/" ? req.baseUrl : `${req.baseUrl}${req.path}`;
    countCall(controls, path);
    const fault = controls.faults.next(path);
    const latency = controls.faults.latencyMs;
    state.inFlight++;
    let released = false;
    const release = (): void => {
      if (!released) state.inFlight--;
      released = true;
    };
    res.on("finish", release);
    res.on("close", release);
    if (state.inFlight > state.limits.concurrent) {
      sendError(state, req, res, 45033);
      return;
    }
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    if (fault?.kind === "http-5xx") {
      res
        .status(502)
        .type("html")
        .send("<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>");
      return;
    }
    if (fault?.kind === "busy") return sendError(state, req, res, -1);
    if (fault?.kind === "expire-tokens") for (const store of controls.tokenStores) store.expireAll();

    const token = typeof req.query.access_token === "string" ? req.query.access_token : undefined;
    if (token === undefined || token === "") return sendError(state, req, res, 41001);
    // After a revoke-secret fault no issued token is valid: WeCom answers a revoked token like a forged one.
    const checked = controls.faults.secretRevoked
      ? ({ problem: "invalid" } as const)
      : state.appTokens.check(token);
    if ("problem" in checked) {
      return sendError(state, req, res, checked.problem === "expired" ? state.expiredTokenErrcode : 40014);
    }
    const who = principalOf(state, checked.owner);
    if (who === undefined) return sendError(state, req, res, 40014);
    const ip = callerIp(req);
    const trusted = trustedIpsOf(state, who);
    if (trusted !== undefined && !trusted.has(ip)) {
      return sendError(state, req, res, 60020);
    }
    // Decision: the 2022-08-15 refusal is answered with 60020 ("not allow to access from your ip"): the
    // rule is about the caller's IP, and 48002 is kept for "this secret may never call this API".
    if (who.kind === "contact-sync" && state.contactSyncNewIp && CLOSED_TO_NEW_CONTACT_IPS.has(path)) {
      return sendError(state, req, res, 60020);
    }
    if (fault?.kind === "ban") state.bans.ban(`api:${path}`, HOUR_MS);
    if (fault?.kind === "rate-limit" || fault?.kind === "ban") return sendError(state, req, res, 45009);
    if (state.bans.remaining(`api:${path}`) > 0) return sendError(state, req, res, 45009);
    // WX-DOC 90454: per corp per API 10,000/min → blocked 60 s; 150,000/h → blocked 60 min.
    if (state.windows.exceeded(`hour:${path}`, state.limits.perHour, HOUR_MS)) {
      state.bans.ban(`api:${path}`, HOUR_MS);
      return sendError(state, req, res, 45009);
    }
    if (state.windows.exceeded(`minute:${path}`, state.limits.perMinute, MINUTE_MS)) {
      state.bans.ban(`api:${path}`, MINUTE_MS);
      return sendError(state, req, res, 45009);
    }
    res.locals.principal = who;
    next();
  };
}
