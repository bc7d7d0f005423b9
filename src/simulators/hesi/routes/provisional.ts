import { randomBytes } from "node:crypto";
import express, { type Response, type Router } from "express";
import { gate } from "../gate.js";
import { bodyOf, queryString } from "../params.js";
import { countStatus, endpoint } from "../replies.js";
import type { HesiSimState } from "../state.js";
import { escapeHtml } from "./page.js";

/** getProvisionalAuth: `expireDate` is at most 7 days in seconds (temp-auth.md). */
const MAX_EXPIRE_SECONDS = 604_800;
const EXPIRED_TEXT = "临时访问地址已过期，请重新获取访问临时授权";
const PAGE_CSP = "default-src 'none'";
/** What the landing page says it opened, by pageType (an open set: others are shown as they came). */
const PAGE_LABELS: Readonly<Record<string, string>> = {
  frontPage: "首页 (home page)",
  home: "我的单据 (my bills)",
  approve: "待办列表 (to-do list)",
  form: "单据 (bill)",
  backlogDetail: "待办详情 (to-do)",
};

/**
 * 访问临时授权 (reference §1.6b): `POST /api/openapi/v1(.1)/provisional/getProvisionalAuth` hands out a
 * time-limited login URL for one staff (`uid`, else `userId`); `authType: "CODE"` makes it work once.
 * Answers are HTTP 200 with `{value: {code: "true"|"false", message}}` — `code` is a string. The URL lands on
 * `/applet/thirdparty.html` (app) or `/web/thirdparty.html` (web), which "signs in" and records a launch.
 */
export function provisionalRouter(state: HesiSimState): Router {
  const router = express.Router();
  const { tenant } = state;
  const no = (message: string) => ({ value: { code: "false", message } });

  for (const version of ["v1", "v1.1"]) {
    router.post(
      `/api/openapi/${version}/provisional/getProvisionalAuth`,
      gate(state),
      endpoint(state, (req) => {
        const body = bodyOf(req);
        const pageType = typeof body.pageType === "string" ? body.pageType : "";
        if (pageType === "") return no("pageType不能为空");
        const seconds = Number(body.expireDate);
        if (body.expireDate === undefined || !Number.isFinite(seconds) || seconds <= 0)
          return no("expireDate不能为空");
        if (seconds > MAX_EXPIRE_SECONDS) return no("expireDate最多只能指定7天内的秒数！");
        // uid wins over userId when both are given.
        const staff =
          typeof body.uid === "string" && body.uid !== ""
            ? tenant.staff.get(body.uid)
            : typeof body.userId === "string"
              ? tenant.staff.get(`${tenant.corpId}:${body.userId}`)
              : undefined;
        // [unverified] what Hesi answers for an unknown or disabled staff; no link is the safe reading.
        if (staff === undefined || !staff.active) return no("员工不存在或已停用");
        const flowId = typeof body.flowId === "string" ? body.flowId : undefined;
        if ((pageType === "form" || pageType === "backlogDetail") && !flowId) return no("flowId不能为空");
        const token = randomBytes(16).toString("base64url");
        const isApplet = body.isApplet === true;
        const overdue = typeof body.overdueTokenRedirect === "string" ? body.overdueTokenRedirect : undefined;
        state.links.set(token, {
          staffId: staff.id,
          pageType,
          ...(flowId === undefined ? {} : { flowId }),
          expiresAt: state.controls.clock.now() + seconds * 1000,
          once: body.authType === "CODE",
          used: false,
          ...(overdue === undefined ? {} : { overdueTokenRedirect: overdue }),
          isApplet,
        });
        const base = `${req.protocol}://${req.get("host") ?? "127.0.0.1"}`;
        const query = new URLSearchParams({ accessToken: token, ekbCorpId: tenant.corpId, pageType });
        if (flowId !== undefined) query.set("flowId", flowId);
        if (overdue !== undefined) query.set("overdueTokenRedirect", overdue);
        const page = isApplet ? "/applet/thirdparty.html" : "/web/thirdparty.html";
        return { value: { message: `${base}${page}?${query.toString()}`, code: "true" } };
      }),
    );
  }

  router.get(["/applet/thirdparty.html", "/web/thirdparty.html"], (req, res) => {
    const token = queryString(req, "accessToken") ?? "";
    const link = state.links.get(token);
    const now = state.controls.clock.now();
    // The link carries a bearer token: the page must not be cached or leak it onward.
    res
      .set("Cache-Control", "no-store")
      .set("Referrer-Policy", "no-referrer")
      .set("Content-Security-Policy", PAGE_CSP);
    if (link === undefined || link.expiresAt <= now || (link.once && link.used)) {
      if (link?.overdueTokenRedirect !== undefined && link.expiresAt <= now) {
        countStatus(state, 302);
        res.redirect(302, link.overdueTokenRedirect);
        return;
      }
      return sendPage(state, res, `<p>${EXPIRED_TEXT}</p>`);
    }
    link.used = true;
    const staff = tenant.staff.get(link.staffId);
    // Disabled after the link was issued: no sign-in either.
    if (staff === undefined || !staff.active) return sendPage(state, res, `<p>${EXPIRED_TEXT}</p>`);
    state.launches.push({
      staffId: staff.id,
      pageType: link.pageType,
      ...(link.flowId === undefined ? {} : { flowId: link.flowId }),
      at: now,
    });
    const e = escapeHtml;
    sendPage(
      state,
      res,
      `<p>已登录 · signed in as <strong>${e(staff.name)}</strong> (<code>${e(staff.id)}</code>)</p>` +
        `<p>页面 · page: ${pageLabel(link.pageType, link.flowId)}</p>`,
    );
  });

  // 获取地址前缀 (origin.md): the simulator is its own prefix.
  router.get("/api/openapi/v2/location", gate(state, { token: false }), (req, res) => {
    if (queryString(req, "corpId") !== tenant.corpId) {
      countStatus(state, 412);
      res
        .status(412)
        .json({ errorCode: 412, errorMessage: "企业不存在", errorDetails: null, code: null, data: null });
      return;
    }
    countStatus(state, 200);
    res.json({ value: `${req.protocol}://${req.get("host") ?? "127.0.0.1"}/` });
  });
  return router;
}

function pageLabel(pageType: string, flowId: string | undefined): string {
  const label = escapeHtml(Object.hasOwn(PAGE_LABELS, pageType) ? PAGE_LABELS[pageType]! : pageType);
  return flowId === undefined ? label : `${label} <code>${escapeHtml(flowId)}</code>`;
}

/** The landing page's HTML (always 200, like Hesi's own page). */
function sendPage(state: HesiSimState, res: Response, body: string): void {
  countStatus(state, 200);
  res
    .status(200)
    .type("html")
    .send(`<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>合思模拟器</title>${body}</html>`);
}
