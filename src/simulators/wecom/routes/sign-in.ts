import { randomBytes } from "node:crypto";
import { parse as parseCookies } from "cookie";
import express, { type Request, type Response, type Router } from "express";
import { escapeHtml as e } from "../../hesi/routes/page.js";
import { sendError, sendOk } from "../errors.js";
import { guardApi, principal } from "../guard.js";
import type { SimApp, SimSignedIn, WeComSimState } from "../state.js";
import { canSeePerson, renderUser } from "../users.js";

/** WX-DOC 91022: a code lives 5 minutes and is used once. */
const CODE_TTL_MS = 5 * 60_000;
/** WX-DOC 96442: user_ticket lives 1800 s. */
const TICKET_TTL_MS = 1_800_000;
/** Reference B2: `state` is at most 128 bytes of [a-zA-Z0-9]. */
const STATE_RULE = /^[A-Za-z0-9]{0,128}$/;
/** People shown on the picker at most (a benchmark corp has 100,000; the form takes any userid). */
const PICKER_MAX = 300;
/** Without configured trusted domains the simulator trusts loopback at any port. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The cookie that says who is "signed in to the WeCom app" for the silent in-app OAuth. */
export const SIM_USER_COOKIE = "wecom_sim_user";

/** A member of a linked corp (上下游 / 互联企业) offered on the picker: getuserinfo gives `CorpId/userid`. */
const LINKED_SAMPLE = "wwlinkedcorp0000001/lisi";

/** What a login URL asks for, once checked. */
interface LoginRequest {
  /** The app named by `agentid`; undefined on an OAuth URL without one. */
  readonly app: SimApp | undefined;
  readonly redirect: URL;
  readonly state: string | undefined;
  readonly privateInfo: boolean;
}

type Checked = LoginRequest | { readonly page: string; readonly errcode?: number };

const text = (req: Request, name: string): string | undefined =>
  typeof req.query[name] === "string" ? req.query[name] : undefined;

/**
 * The login pages (hosts login.work.weixin.qq.com, open.work.weixin.qq.com and open.weixin.qq.com, all on
 * the simulator's one origin — their paths do not overlap): web login with a user picker, the old QR login,
 * the silent in-app OAuth, and `GET /sim/sign-in-as?userid=` to set who is in the WeCom app.
 */
export function signInPagesRouter(state: WeComSimState): Router {
  const router = express.Router();

  const apps = (app: SimApp | undefined): readonly SimApp[] => (app === undefined ? state.apps : [app]);

  // Reference B2: the redirect's host must match a trusted domain exactly, port included; scheme and path
  // do not matter. Otherwise the page says "redirect_uri参数错误" (API: 50001).
  const trusted = (app: SimApp | undefined, url: URL): boolean =>
    apps(app).some((a) =>
      a.trustedDomains === undefined ? LOOPBACK.has(url.hostname) : a.trustedDomains.has(url.host),
    );

  function check(req: Request, flow: "web" | "qr" | "oauth"): Checked {
    if (flow === "web" && text(req, "login_type") !== "CorpApp")
      return { page: "login_type参数错误（模拟器只支持 CorpApp）" };
    if (text(req, "appid") !== state.corpId) return { page: "appid参数错误", errcode: 40013 };
    let privateInfo = false;
    if (flow === "oauth") {
      if (text(req, "response_type") !== "code") return { page: "response_type参数错误" };
      const scope = text(req, "scope");
      if (scope !== "snsapi_base" && scope !== "snsapi_privateinfo") return { page: "scope参数错误" };
      privateInfo = scope === "snsapi_privateinfo";
    }
    const agentid = text(req, "agentid");
    let app: SimApp | undefined;
    if (agentid !== undefined && agentid !== "") {
      app = state.apps.find((a) => String(a.agentId) === agentid);
      if (app === undefined) return { page: "agentid参数错误", errcode: 40056 };
    } else if (flow !== "oauth") return { page: "agentid参数错误", errcode: 40056 };
    // Reference B2: snsapi_privateinfo without agentid is silently treated as snsapi_base.
    if (app === undefined) privateInfo = false;
    let redirect: URL;
    try {
      redirect = new URL(text(req, "redirect_uri") ?? "");
    } catch {
      return { page: "redirect_uri参数错误", errcode: 50001 };
    }
    if (!trusted(app, redirect)) return { page: "redirect_uri参数错误", errcode: 50001 };
    const stateParam = text(req, "state");
    // Decision [unverified]: WeCom's page for a state outside the documented rule is not known.
    if (stateParam !== undefined && !STATE_RULE.test(stateParam)) return { page: "state参数错误" };
    return { app, redirect, state: stateParam, privateInfo };
  }

  function back(res: Response, login: LoginRequest, code: string | undefined): void {
    const url = new URL(login.redirect);
    if (code !== undefined) url.searchParams.set("code", code);
    if (login.state !== undefined) url.searchParams.set("state", login.state);
    res.redirect(302, url.toString());
  }

  function issue(login: LoginRequest, who: SimSignedIn): string {
    const code = randomBytes(32).toString("base64url");
    state.loginCodes.set(code, {
      who,
      ...(login.app === undefined ? {} : { agentId: login.app.agentId }),
      privateInfo: login.privateInfo,
      expiresAt: state.controls.clock.now() + CODE_TTL_MS,
    });
    return code;
  }

  /** `userid`, `CorpId/userid` (a linked corp's member) or `openid:<openid>` (a WeChat user). */
  function parseWho(raw: string): SimSignedIn | null {
    if (raw.startsWith("openid:")) return raw.length > 7 ? { kind: "wechat", openid: raw.slice(7) } : null;
    const slash = raw.indexOf("/");
    if (slash > 0 && slash < raw.length - 1)
      return { kind: "linked", corpId: raw.slice(0, slash), userid: raw.slice(slash + 1) };
    return state.index.people.has(raw) ? { kind: "member", userid: raw } : null;
  }

  const webLogin =
    (flow: "web" | "qr") =>
    (req: Request, res: Response): void => {
      const login = check(req, flow);
      if ("page" in login) return errorPage(res, login.page, login.errcode);
      // WeCom comes back without a code when the person declines (reference B2).
      if (text(req, "sim_cancel") !== undefined) return back(res, login, undefined);
      const chosen = text(req, "sim_who");
      if (chosen !== undefined) {
        const who = parseWho(chosen);
        if (who === null) return errorPage(res, `用户不存在：${chosen}`);
        return back(res, login, issue(login, who));
      }
      picker(req, res, login);
    };

  function picker(req: Request, res: Response, login: LoginRequest): void {
    const base = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (typeof v === "string") base.set(k, v);
    const link = (extra: Record<string, string>): string =>
      `${req.baseUrl}${req.path}?${new URLSearchParams({ ...Object.fromEntries(base), ...extra }).toString()}`;
    const people = state.index.org.people.slice(0, PICKER_MAX);
    const rows = people
      .map(
        (p) =>
          `<li><a data-kind="member" data-userid="${e(p.userid)}" data-status="${e(p.status)}" href="${e(link({ sim_who: p.userid }))}">${e(p.name)} (${e(p.userid)})</a>${p.status === "active" ? "" : ` — ${e(p.status)}`}${login.app !== undefined && !canSeePerson(state, { kind: "app", app: login.app }, p) ? " — 不在应用可见范围" : ""}</li>`,
      )
      .join("\n");
    const openid = `oSIM${randomBytes(12).toString("hex")}`;
    const hidden = [...base].map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`).join("");
    res
      .status(200)
      .type("html")
      .send(
        `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>企业微信登录（模拟器）</title></head><body>
<h1>企业微信登录</h1>
<p>${e(state.index.org.corpName)}${login.app === undefined ? "" : ` · 应用 ${login.app.agentId}`}</p>
<p>模拟器：选择扫码登录的用户。</p>
<ul>
${rows}
</ul>
<h2>其他身份</h2>
<ul>
<li><a data-kind="non-member" data-openid="${openid}" href="${e(link({ sim_who: `openid:${openid}` }))}">非企业成员的微信用户</a></li>
<li><a data-kind="linked-corp" data-userid="${e(LINKED_SAMPLE)}" href="${e(link({ sim_who: LINKED_SAMPLE }))}">互联企业成员 ${e(LINKED_SAMPLE)}</a></li>
</ul>
<form method="get" action="${e(req.baseUrl + req.path)}">${hidden}<label>userid <input name="sim_who"></label> <button type="submit">登录</button></form>
<p><a data-cancel href="${e(link({ sim_cancel: "1" }))}">取消</a></p>
</body></html>`,
      );
  }

  router.get("/wwlogin/sso/login", webLogin("web"));
  router.get("/wwopen/sso/qrConnect", webLogin("qr"));

  // WX-DOC 91022: silent inside the WeCom client (snsapi_base); the `#wechat_redirect` fragment never
  // reaches a server, so it cannot be checked here.
  router.get("/connect/oauth2/authorize", (req, res) => {
    const login = check(req, "oauth");
    if ("page" in login) return errorPage(res, login.page, login.errcode);
    const raw = parseCookies(req.headers.cookie ?? "")[SIM_USER_COOKIE];
    if (raw === undefined || raw === "") return errorPage(res, "请在企业微信客户端打开链接");
    const who = parseWho(raw);
    if (who === null) return errorPage(res, `用户不存在：${raw}`);
    back(res, login, issue(login, who));
  });

  // Simulator only: who is "signed in to the WeCom app" in this browser (same grammar as the picker).
  router.get("/sim/sign-in-as", (req, res) => {
    const userid = text(req, "userid") ?? "";
    if (userid === "") {
      res.clearCookie(SIM_USER_COOKIE, { path: "/" });
      res.type("text").send("signed out of the simulated WeCom app\n");
      return;
    }
    if (parseWho(userid) === null) return errorPage(res, `用户不存在：${userid}`);
    res.cookie(SIM_USER_COOKIE, userid, { path: "/", httpOnly: true, sameSite: "lax" });
    res.type("text").send(`signed in to the simulated WeCom app as ${userid}\n`);
  });
  return router;
}

/** What a browser outside the happy path sees: a page, as WeCom shows (not a JSON error). */
function errorPage(res: Response, message: string, errcode?: number): void {
  res
    .status(200)
    .type("html")
    .send(
      `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>企业微信</title></head><body><h1 data-error${errcode === undefined ? "" : ` data-errcode="${errcode}"`}>${e(message)}</h1>${errcode === undefined ? "" : `<p>错误码：${errcode}</p>`}</body></html>`,
    );
}

/**
 * `GET /cgi-bin/auth/getuserinfo`, the legacy `GET /cgi-bin/user/getuserinfo` (capitalised keys) and
 * `POST /cgi-bin/auth/getuserdetail` (reference B3), behind the same guard as the contact APIs. Mounted
 * before the directory router, whose blanket guard would otherwise run twice.
 */
export function signInApiRouter(state: WeComSimState): Router {
  const router = express.Router();
  const guard = guardApi(state);

  /** The code's identity, consumed; null after an error reply was sent. */
  function takeCode(req: Request, res: Response): { who: SimSignedIn; ticket?: string } | null {
    const who = principal(res);
    // The 通讯录同步 secret has no part in OAuth.
    if (who.kind !== "app") {
      sendError(state, req, res, 48002);
      return null;
    }
    const code = text(req, "code") ?? "";
    const entry = state.loginCodes.get(code);
    // 40029 alike for unknown, expired, used and another app's codes (WX-DOC 90455).
    if (
      entry === undefined ||
      entry.expiresAt <= state.controls.clock.now() ||
      (entry.agentId !== undefined && entry.agentId !== who.app.agentId)
    ) {
      if (entry !== undefined && entry.expiresAt <= state.controls.clock.now()) state.loginCodes.delete(code);
      sendError(state, req, res, 40029);
      return null;
    }
    state.loginCodes.delete(code);
    // user_ticket only for snsapi_privateinfo and a member in the app's visible range (WX-DOC 96442).
    const person = entry.who.kind === "member" ? state.index.people.get(entry.who.userid) : undefined;
    if (entry.privateInfo && person !== undefined && canSeePerson(state, who, person)) {
      const ticket = randomBytes(32).toString("base64url");
      state.userTickets.set(ticket, {
        userid: person.userid,
        agentId: who.app.agentId,
        expiresAt: state.controls.clock.now() + TICKET_TTL_MS,
      });
      return { who: entry.who, ticket };
    }
    return { who: entry.who };
  }

  const ticketFields = (ticket: string | undefined): Record<string, unknown> =>
    ticket === undefined ? {} : { user_ticket: ticket, expires_in: TICKET_TTL_MS / 1000 };

  router.get("/auth/getuserinfo", guard, (req, res) => {
    const taken = takeCode(req, res);
    if (taken === null) return;
    const { who } = taken;
    if (who.kind === "wechat") return sendOk(res, { openid: who.openid });
    const userid = who.kind === "linked" ? `${who.corpId}/${who.userid}` : who.userid;
    sendOk(res, { userid, ...ticketFields(taken.ticket) });
  });

  router.get("/user/getuserinfo", guard, (req, res) => {
    const taken = takeCode(req, res);
    if (taken === null) return;
    const { who } = taken;
    const deviceId = randomBytes(8).toString("hex");
    if (who.kind === "wechat") return sendOk(res, { OpenId: who.openid, DeviceId: deviceId });
    const userid = who.kind === "linked" ? `${who.corpId}/${who.userid}` : who.userid;
    sendOk(res, { UserId: userid, DeviceId: deviceId, ...ticketFields(taken.ticket) });
  });

  router.post("/auth/getuserdetail", guard, express.json(), (req, res) => {
    const who = principal(res);
    if (who.kind !== "app") return sendError(state, req, res, 48002);
    const raw = (req.body as { user_ticket?: unknown } | undefined)?.user_ticket;
    const ticket = typeof raw === "string" ? state.userTickets.get(raw) : undefined;
    // [unverified] the errcode for a bad or expired user_ticket; 40029 is its code's.
    if (
      ticket === undefined ||
      ticket.expiresAt <= state.controls.clock.now() ||
      ticket.agentId !== who.app.agentId
    )
      return sendError(state, req, res, 40029);
    const person = state.index.people.get(ticket.userid);
    if (person === undefined) return sendError(state, req, res, 60111);
    // The person consented (snsapi_privateinfo), so the fields come even to apps created after 2022.
    const user = renderUser(state, { kind: "contact-sync" }, person);
    const detail: Record<string, unknown> = { userid: person.userid };
    for (const key of ["gender", "avatar", "qr_code", "mobile", "email", "biz_mail", "address"])
      if (user[key] !== undefined) detail[key] = user[key];
    sendOk(res, detail);
  });
  return router;
}
