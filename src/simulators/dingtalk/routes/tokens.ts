import express, { type Router } from "express";
import { overQps, passIpChecks } from "../gate.js";
import { sendApiError, sendApiQpsExceeded } from "../replies.js";
import type { DingTalkSimState } from "../state.js";

/**
 * App access tokens (reference A2): `GET /gettoken`, `POST /v1.0/oauth2/accessToken` and the unified
 * `POST /v1.0/oauth2/{corpId}/token`. All three hand out the same per-app token (TTL 7200 s, the same
 * token and a renewed lifetime when asked again while it is valid).
 */
export function tokenRouter(state: DingTalkSimState): Router {
  const router = express.Router();
  const { appKey, appSecret, corpId } = state.credentials;
  // After a revoke-secret fault the admin has reset the secret: the one we hold is refused like a wrong one.
  const secretAccepted = (secret: unknown): boolean =>
    secret === appSecret && !state.controls.faults.secretRevoked;

  router.get("/gettoken", async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    const key = typeof req.query.appkey === "string" ? req.query.appkey : "";
    const secret = typeof req.query.appsecret === "string" ? req.query.appsecret : "";
    if (overQps(state, key, req.path)) {
      res.json({ errcode: 90018, errmsg: "当前企业调用该接口超过每秒调用次数限制" });
      return;
    }
    if (key !== appKey) {
      // The errcode for a wrong appkey is [unverified]; 40089 is the global table's "不合法的corpid或corpsecret".
      res.json({ errcode: 40089, errmsg: "不合法的corpid或corpsecret" });
      return;
    }
    if (!secretAccepted(secret)) {
      // The errcode for a wrong or reset appsecret is [unverified]; 40001 is the global table's
      // "获取access_token时Secret错误，或者access_token无效".
      res.json({ errcode: 40001, errmsg: "获取access_token时Secret错误，或者access_token无效" });
      return;
    }
    const { token, expiresIn } = state.appTokens.issue(appKey);
    res.json({ errcode: 0, errmsg: "ok", access_token: token, expires_in: expiresIn });
  });

  // The new API takes JSON only; a form body is "body is mandatory" (php-sdk#36).
  router.post("/v1.0/oauth2/accessToken", express.json(), async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    const body = (req.body ?? {}) as { appKey?: unknown; appSecret?: unknown };
    if (req.body === undefined || !req.is("application/json")) {
      sendApiError(res, 400, "MissingBody", "body is mandatory");
      return;
    }
    if (overQps(state, String(body.appKey), req.path)) {
      sendApiQpsExceeded(res);
      return;
    }
    if (body.appKey !== appKey || !secretAccepted(body.appSecret)) {
      sendApiError(res, 400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret");
      return;
    }
    const { token, expiresIn } = state.appTokens.issue(appKey);
    res.json({ accessToken: token, expireIn: expiresIn });
  });

  // Unified internal + ISV token [single source]: errors 400 invalid.client / unsupported.grant.type, 401 unauthorized.client.
  router.post("/v1.0/oauth2/:corpId/token", express.json(), async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    const body = (req.body ?? {}) as { client_id?: unknown; client_secret?: unknown; grant_type?: unknown };
    if (body.grant_type !== "client_credentials") {
      sendApiError(res, 400, "unsupported.grant.type", "不支持的grant_type");
      return;
    }
    if (body.client_id !== appKey || !secretAccepted(body.client_secret)) {
      sendApiError(res, 400, "invalid.client", "无效的client_id或client_secret");
      return;
    }
    if (req.params.corpId !== corpId) {
      sendApiError(res, 401, "unauthorized.client", "应用未被授权访问该企业");
      return;
    }
    const { token, expiresIn } = state.appTokens.issue(appKey);
    res.json({ access_token: token, expires_in: expiresIn });
  });

  return router;
}
