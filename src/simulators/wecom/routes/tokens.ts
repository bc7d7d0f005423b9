import express, { type Router } from "express";
import { countCall } from "../../common/control.js";
import { callerIp, sendError, sendOk } from "../errors.js";
import { ownerKey, trustedIpsOf, type Principal, type WeComSimState } from "../state.js";

/**
 * `GET /cgi-bin/gettoken?corpid=&corpsecret=` (WX-DOC 91039): one token per secret (each app and the
 * 通讯录同步 helper), the same token while it is valid, a new one after it expired; 7200 s.
 */
export function tokenRouter(state: WeComSimState): Router {
  const router = express.Router();
  router.get("/gettoken", (req, res) => {
    countCall(state.controls, "/cgi-bin/gettoken");
    const corpid = typeof req.query.corpid === "string" ? req.query.corpid : "";
    const secret = typeof req.query.corpsecret === "string" ? req.query.corpsecret : "";
    if (corpid !== state.corpId) return sendError(state, req, res, 40013);
    if (secret === "") return sendError(state, req, res, 41004);
    let principal: Principal | undefined;
    if (secret === state.contactSecret) principal = { kind: "contact-sync" };
    else {
      const app = state.apps.find((a) => a.secret === secret);
      if (app !== undefined) principal = { kind: "app", app };
    }
    // A revoke-secret fault resets every secret of the corp at once: each is then refused as a wrong one.
    if (principal === undefined || state.controls.faults.secretRevoked)
      return sendError(state, req, res, 40001);
    const trusted = trustedIpsOf(state, principal);
    if (trusted !== undefined && !trusted.has(callerIp(req))) return sendError(state, req, res, 60020);
    const issued = state.appTokens.issue(ownerKey(principal));
    sendOk(res, { access_token: issued.token, expires_in: issued.expiresIn });
  });
  return router;
}
