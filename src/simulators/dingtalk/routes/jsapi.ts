import express, { type Request, type Response, type Router } from "express";
import type { DingTalkSimState } from "../state.js";

/** The simulator cookie naming who is signed in to the DingTalk app on this "device". */
export const DINGTALK_SIM_USER_COOKIE = "dingtalk_sim_user";

/**
 * A stand-in for the DingTalk client's JSAPI (reference A5): `GET /jsapi/dingtalk.open.js` defines
 * `dd.requestAuthCode` and `dd.runtime.permission.requestAuthCode`, which fetch a 免登 code from
 * `GET /jsapi/request-auth-code?corpId=` with the simulator cookie `dingtalk_sim_user=<userid>` (set by a
 * test with playwright's addCookies, or by `GET /jsapi/sign-in-as?userid=`). The code is single-use and
 * lives 5 minutes, like DingTalk's. The simulator does not model the client dropping an org the person
 * left: anyone of the org gets a code, so the server's check at user/get is what refuses them.
 */
export function jsapiRouter(state: DingTalkSimState): Router {
  const router = express.Router();
  const people = new Map(state.org.people.map((p) => [p.userid, p]));

  router.get("/jsapi/dingtalk.open.js", (req, res) => {
    const base = `${req.protocol}://${req.get("host") ?? ""}`;
    res.type("application/javascript").set("cache-control", "no-store").send(script(base));
  });

  router.get("/jsapi/sign-in-as", (req, res) => {
    const userid = typeof req.query.userid === "string" ? req.query.userid : "";
    if (!people.has(userid)) {
      res.status(404).json({ errorCode: "userNotFound", errorMessage: "no such person in the org" });
      return;
    }
    res.cookie(DINGTALK_SIM_USER_COOKIE, userid, { httpOnly: true, sameSite: "lax", path: "/" });
    res.json({ userid });
  });

  router.options("/jsapi/request-auth-code", (req, res) => {
    allowOrigin(req, res);
    res.status(204).end();
  });

  router.get("/jsapi/request-auth-code", (req, res) => {
    allowOrigin(req, res);
    res.set("cache-control", "no-store");
    const corpId = typeof req.query.corpId === "string" ? req.query.corpId : "";
    if (corpId !== state.credentials.corpId) {
      res.status(400).json({ errorCode: "7", errorMessage: "corpId 无效或当前用户不在该组织" });
      return;
    }
    const person = people.get(readCookie(req, DINGTALK_SIM_USER_COOKIE) ?? "");
    if (person === undefined) {
      res.status(401).json({ errorCode: "3", errorMessage: "未登录钉钉" });
      return;
    }
    res.json({ code: state.signIn.issueInAppCode(person) });
  });

  return router;
}

// The JSAPI runs in the page's origin and calls the simulator cross-origin with its cookie.
function allowOrigin(req: Request, res: Response): void {
  const origin = req.get("origin");
  if (origin === undefined) return;
  res.set({
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    vary: "Origin",
  });
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

function script(base: string): string {
  return `(function () {
  var base = ${JSON.stringify(base)};
  function requestAuthCode(options) {
    options = options || {};
    var done = fetch(base + "/jsapi/request-auth-code?corpId=" + encodeURIComponent(options.corpId || ""), {
      credentials: "include"
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw body;
        return { code: body.code };
      });
    });
    done.then(function (result) {
      if (options.onSuccess) options.onSuccess(result);
    }, function (error) {
      if (options.onFail) options.onFail(error && error.errorCode ? error : { errorCode: "-1", errorMessage: String(error) });
    });
    return done;
  }
  window.dd = {
    env: { platform: "simulator" },
    ready: function (callback) { callback(); },
    error: function () {},
    requestAuthCode: requestAuthCode,
    runtime: { permission: { requestAuthCode: requestAuthCode } }
  };
})();
`;
}
