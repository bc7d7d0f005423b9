import express, { type Request, type Response, type Router } from "express";
import type { SimPerson } from "../../common/org.js";
import { legacyEndpoint, passIpChecks } from "../gate.js";
import { stringParam } from "../params.js";
import { sendApiError } from "../replies.js";
import type { SignedInAccount } from "../sign-in-state.js";
import type { DingTalkSimState } from "../state.js";

// The picker is for people and browser tests, not a directory: beyond this many, pick by URL.
const PICKER_MAX = 200;

/**
 * Sign-in endpoints (reference A3, A5): the OAuth2 page of login.dingtalk.com with a user picker, the
 * code exchange, the user's profile, and the 免登 code lookup. One origin serves login, api and oapi paths.
 *
 * Errors with an [unverified] shape: a bad authCode or refresh token answers HTTP 400 `invalidCode`
 * (the global error table's "无效的授权码"); the page itself answers HTTP 400 with a short HTML message for a
 * client_id or redirect_uri it does not know.
 */
export function loginRouter(state: DingTalkSimState): Router {
  const router = express.Router();
  const { credentials, signIn } = state;
  const homePeople = new Map(state.org.people.map((p) => [p.userid, p]));
  const foreignPeople = new Map(signIn.foreign.org.people.map((p) => [p.userid, p]));

  /** The request's OAuth parameters when the app and redirect URL are known, else the page's refusal. */
  const authorizeRequest = (req: Request, res: Response): URLSearchParams | null => {
    const q = req.query;
    const param = (name: string): string => (typeof q[name] === "string" ? q[name] : "");
    const problem =
      param("client_id") !== credentials.appKey
        ? "client_id 无效 (unknown app)"
        : !signIn.redirectUrls.has(param("redirect_uri"))
          ? "redirect_uri 与应用配置的回调域名不一致 (redirect_uri not registered)"
          : param("response_type") !== "code"
            ? "response_type 必须为 code"
            : !param("scope").split(" ").includes("openid")
              ? "scope 必须包含 openid"
              : param("prompt") !== "consent"
                ? "prompt 必须为 consent"
                : null;
    if (problem !== null) {
      res
        .status(400)
        .type("html")
        .send(page("登录失败", `<p id="error">${escapeHtml(problem)}</p>`));
      return null;
    }
    const kept = new URLSearchParams();
    for (const name of ["client_id", "redirect_uri", "response_type", "scope", "prompt", "state", "corpId"]) {
      if (param(name) !== "") kept.set(name, param(name));
    }
    return kept;
  };

  router.get("/oauth2/auth", (req, res) => {
    const params = authorizeRequest(req, res);
    if (params === null) return;
    const choice = (person: SimPerson, corpId: string, orgName: string): string => {
      const link = new URLSearchParams(params);
      link.set("userid", person.userid);
      link.set("corp", corpId);
      return `<li><a class="user" data-userid="${escapeHtml(person.userid)}" data-corpid="${escapeHtml(corpId)}" href="/oauth2/auth/approve?${escapeHtml(link.toString())}">${escapeHtml(person.name)} (${escapeHtml(person.userid)}, ${escapeHtml(orgName)})</a></li>`;
    };
    const home = [...state.index.people.values()].slice(0, PICKER_MAX);
    const foreign = [...signIn.foreign.index.people.values()];
    res
      .type("html")
      .set("cache-control", "no-store")
      .send(
        page(
          "钉钉登录",
          `<h1>钉钉登录 — 选择账号</h1><ul id="users">` +
            home.map((p) => choice(p, credentials.corpId, state.org.corpName)).join("") +
            foreign.map((p) => choice(p, signIn.foreign.corpId, signIn.foreign.org.corpName)).join("") +
            `</ul><a id="deny" href="/oauth2/auth/deny?${escapeHtml(params.toString())}">拒绝授权</a>`,
        ),
      );
  });

  router.get("/oauth2/auth/approve", (req, res) => {
    const params = authorizeRequest(req, res);
    if (params === null) return;
    const userid = typeof req.query.userid === "string" ? req.query.userid : "";
    const corp = typeof req.query.corp === "string" ? req.query.corp : credentials.corpId;
    // The simulator does not model an account dropping an org it left: people who left still choose it.
    const person = (corp === signIn.foreign.corpId ? foreignPeople : homePeople).get(userid);
    if (person === undefined || (corp !== credentials.corpId && corp !== signIn.foreign.corpId)) {
      res.status(400).type("html").send(page("登录失败", `<p id="error">账号不存在</p>`));
      return;
    }
    // Reference A3: only with scope `corpid` does the token name the organisation chosen.
    const named = params.get("scope")!.split(" ").includes("corpid");
    const code = signIn.issueAuthCode({ person, ...(named ? { corpId: corp } : {}) }, credentials.appKey);
    redirectBack(res, params, { authCode: code });
  });

  router.get("/oauth2/auth/deny", (req, res) => {
    const params = authorizeRequest(req, res);
    if (params === null) return;
    redirectBack(res, params, { error: "access_denied" });
  });

  // The new API takes JSON only; a form body is "body is mandatory" (php-sdk#36).
  router.post("/v1.0/oauth2/userAccessToken", express.json(), async (req, res) => {
    if (!(await passIpChecks(state, req, res))) return;
    if (req.body === undefined || !req.is("application/json")) {
      sendApiError(res, 400, "MissingBody", "body is mandatory");
      return;
    }
    const body = req.body as Record<string, unknown>;
    if (
      body.clientId !== credentials.appKey ||
      body.clientSecret !== credentials.appSecret ||
      state.controls.faults.secretRevoked
    ) {
      sendApiError(res, 400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret");
      return;
    }
    let account: SignedInAccount | null;
    if (body.grantType === "authorization_code") account = signIn.takeAuthCode(body.code, credentials.appKey);
    else if (body.grantType === "refresh_token") account = signIn.takeRefreshToken(body.refreshToken);
    else {
      sendApiError(res, 400, "invalidParameter.grantType", "grantType 参数错误");
      return;
    }
    if (account === null) {
      sendApiError(res, 400, "invalidCode", "无效的授权码");
      return;
    }
    res.json({
      ...signIn.issueUserToken(account),
      ...(account.corpId === undefined ? {} : { corpId: account.corpId }),
    });
  });

  const profile = (req: Request, res: Response, unionId: string | null): void => {
    const account = signIn.checkUserToken(req.get("x-acs-dingtalk-access-token"));
    if (account === null) {
      sendApiError(res, 400, "InvalidAuthentication", "不合法的access_token");
      return;
    }
    const person =
      unionId === null || unionId === account.person.unionid ? account.person : findByUnionid(unionId);
    if (person === undefined) {
      sendApiError(res, 404, "invalidParameter.user.notFound", "找不到该用户");
      return;
    }
    // Reference A3: `email` here is the user's own (personal) email, not the org's — set by the user.
    res.json({
      nick: person.name,
      avatarUrl: "",
      mobile: person.mobile,
      openId: `open${person.unionid.slice(0, 12)}`,
      unionId: person.unionid,
      email: personalEmail(person),
      stateCode: "86",
    });
  };
  const findByUnionid = (unionId: string): SimPerson | undefined =>
    state.org.people.find((p) => p.unionid === unionId) ??
    signIn.foreign.org.people.find((p) => p.unionid === unionId);

  router.get("/v1.0/contact/users/me", async (req, res) => {
    if (await passIpChecks(state, req, res)) profile(req, res, null);
  });
  router.get("/v1.0/contact/users/:unionId", async (req, res) => {
    if (await passIpChecks(state, req, res)) profile(req, res, req.params.unionId);
  });

  // Reference A5: the 免登 code → userid; 40078 for an unknown, used or expired code.
  router.post(
    "/topapi/v2/user/getuserinfo",
    express.json(),
    express.urlencoded({ extended: false }),
    legacyEndpoint(state, null, (body) => {
      const person = signIn.takeInAppCode(stringParam(body, "code"));
      if (person === null) return { errcode: 40078, errmsg: "不存在的临时授权码" };
      const admin = state.index.boss === person.userid;
      return {
        payload: {
          result: {
            userid: person.userid,
            unionid: person.unionid,
            associated_unionid: "",
            name: person.name,
            device_id: `dev${person.unionid.slice(0, 8)}`,
            sys: admin,
            sys_level: admin ? 1 : 0,
          },
        },
      };
    }),
  );

  return router;
}

/** The address a person set in their own DingTalk profile: proves nothing about them. */
export function personalEmail(person: SimPerson): string {
  return `${person.userid}.personal@example.net`;
}

function redirectBack(res: Response, params: URLSearchParams, add: Record<string, string>): void {
  const target = new URL(params.get("redirect_uri")!);
  for (const [k, v] of Object.entries(add)) target.searchParams.set(k, v);
  const state = params.get("state");
  if (state !== null) target.searchParams.set("state", state);
  res.redirect(302, target.toString());
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
