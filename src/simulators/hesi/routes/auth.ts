import express, { type Router } from "express";
import { gate } from "../gate.js";
import { fail } from "../model.js";
import { bodyOf, queryString } from "../params.js";
import { endpoint } from "../replies.js";
import type { HesiSimState } from "../state.js";

/**
 * `POST /api/openapi/v1/auth/getAccessToken` and `POST /api/openapi/v2/auth/refreshToken[/expireDate]`
 * (auth.md, refresh-auth.md, refresh-auth-expireDate.md).
 */
export function authRouter(state: HesiSimState): Router {
  const router = express.Router();
  const { appKey, appSecurity, corpId } = state.credentials;

  router.post(
    "/api/openapi/v1/auth/getAccessToken",
    gate(state, { token: false }),
    endpoint(state, (req) => {
      const body = bodyOf(req);
      if (body.appKey !== appKey || body.appSecurity !== appSecurity) fail(403, "密钥无效");
      const pair = state.tokens.issue();
      return { value: { ...pair, corporationId: corpId } };
    }),
  );

  const refresh = (withDays: boolean): express.RequestHandler =>
    endpoint(state, (req) => {
      const accessToken = queryString(req, "accessToken") ?? "";
      const refreshToken = queryString(req, "refreshToken") ?? "";
      let days: number | undefined;
      if (withDays) {
        days = Number(queryString(req, "expireDate"));
        if (!Number.isInteger(days) || days < 1) fail(400, "expireDate必须是正整数天数");
      }
      const pair =
        queryString(req, "powerCode") === "219904"
          ? state.tokens.refresh(accessToken, refreshToken, days)
          : null;
      if (pair === null) {
        // refresh-auth.md: an expired token cannot be refreshed; the answer is the text 未授权 (status [unverified]).
        return { status: 401, text: "未授权" };
      }
      return { value: { ...pair, corporationId: corpId } };
    });
  router.post("/api/openapi/v2/auth/refreshToken", gate(state, { token: false }), refresh(false));
  router.post("/api/openapi/v2/auth/refreshToken/expireDate", gate(state, { token: false }), refresh(true));
  return router;
}
