/**
 * The login pages over HTTP (`/login`, `/saml`): request parsing, cookies, CSRF tokens, rate limits and
 * rendering. What happens in a sign-in is decided by src/broker/login.ts.
 */
import express, { type Request, type Response, type Router } from "express";
import { rateLimit } from "express-rate-limit";
import { parseCookie, stringifySetCookie } from "cookie";
import type Provider from "oidc-provider";
import type { Logger } from "pino";
import type { Binder } from "../broker/binding.js";
import type { SignInSources } from "../broker/connectors.js";
import type { FirstParty } from "../broker/first-party.js";
import type { InteractionInfo, LoginResult, LoginService, RequestMeta } from "../broker/login.js";
import { pickLanguage, type FailureCode, type Language } from "../broker/messages.js";
import {
  renderDingTalkInApp,
  renderFailure,
  renderLogin,
  sourceTypeLabel,
  type Page,
} from "../broker/pages.js";

/** Cookie binding a browser to the interaction it started a sign-in flow in. */
const BINDING_COOKIE = "idb_login";

/** Limits of the password form. */
export interface PasswordLimits {
  /** Attempts per client IP per window. */
  readonly perIp: number;
  /** Attempts per source and login name per window. */
  readonly perLogin: number;
  /** Window length in ms. */
  readonly windowMs: number;
}

/** Defaults: a person mistyping a few times is never stopped; a guesser is after ten. */
export const DEFAULT_PASSWORD_LIMITS: PasswordLimits = { perIp: 30, perLogin: 10, windowMs: 15 * 60_000 };

/** What the login router needs. */
export interface LoginRouterOptions {
  /** The orchestration. */
  readonly login: LoginService;
  /** The provider whose interactions the pages belong to. */
  readonly provider: Provider;
  /** Opened sign-in sources (for labels and SAML metadata). */
  readonly sources: SignInSources;
  /** First-party session helpers (`/login/return`). */
  readonly firstParty: FirstParty;
  /** Signs binding cookies and CSRF tokens. */
  readonly binder: Binder;
  /** Cookies get Secure when idbridge is reached over https. */
  readonly secureCookies: boolean;
  /** Server log. */
  readonly logger: Logger;
  /** Rate limits of the password form. */
  readonly passwordLimits?: PasswordLimits;
}

const KNOWN_FAILURES = new Set<string>([
  "INVALID_CREDENTIALS",
  "ACCOUNT_LOCKED",
  "PASSWORD_EXPIRED",
  "MUST_CHANGE_PASSWORD",
  "ACCOUNT_DISABLED",
  "ACCOUNT_EXPIRED",
  "ACCOUNT_LEFT",
  "LOGON_HOURS",
  "LOGON_WORKSTATION",
  "FOREIGN_ORGANISATION",
  "NOT_A_MEMBER",
  "CANCELLED",
  "INVALID_RESPONSE",
  "SOURCE_UNAVAILABLE",
  "FLOW_INVALID",
  "INTERACTION_EXPIRED",
  "RATE_LIMITED",
  "FORM_INVALID",
  "SOURCE_UNKNOWN",
  "REQUEST_INVALID",
  "INTERNAL",
]);
/** Failures about the person rather than the attempt get a page of their own, not the form again. */
const PERSON_FAILURES = new Set<FailureCode>(["NOT_PROVISIONED", "IN_REVIEW", "IGNORED"]);

function send(res: Response, status: number, page: Page): void {
  res
    .status(status)
    .set({ "Content-Security-Policy": page.csp, "Cache-Control": "no-store" })
    .type("html")
    .send(page.html);
}

function meta(req: Request): RequestMeta {
  return { ip: req.ip ?? "", userAgent: req.get("user-agent") ?? "" };
}

function single(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** A path parameter as one string (express types them loosely once middlewares are chained). */
function param(req: Request, name: string): string {
  return single((req.params as Record<string, unknown>)[name]) ?? "";
}

/** The `/login` router. */
export function loginRouter(options: LoginRouterOptions): Router {
  const { login, provider, sources, binder, logger } = options;
  const limits = options.passwordLimits ?? DEFAULT_PASSWORD_LIMITS;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: "16kb", parameterLimit: 20 });
  // SAML responses are posted here: larger, but still bounded.
  const callbackForm = express.urlencoded({ extended: false, limit: "256kb", parameterLimit: 20 });

  const language = (req: Request, uiLocales?: string): Language =>
    pickLanguage({ lang: single(req.query.lang), uiLocales, acceptLanguage: req.get("accept-language") });
  const labelOf = (lang: Language, sourceId: string | undefined): string | undefined => {
    const type = sourceId === undefined ? undefined : sources.get(sourceId)?.type;
    return type === undefined ? undefined : sourceTypeLabel(lang, type);
  };
  const bind = (res: Response, uid: string): void => {
    res.append(
      "Set-Cookie",
      stringifySetCookie({
        name: BINDING_COOKIE,
        value: binder.sign("login-binding", uid),
        path: "/login",
        httpOnly: true,
        sameSite: "lax",
        secure: options.secureCookies,
        maxAge: 600,
      }),
    );
  };
  const boundUid = (req: Request): string | null =>
    binder.open("login-binding", parseCookie(req.get("cookie") ?? "")[BINDING_COOKIE]);

  /** The interaction of this browser, when it is the one in the path. */
  async function interaction(req: Request, res: Response): Promise<InteractionInfo | null> {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid !== req.params.uid) return null;
      const clientId = details.params.client_id;
      const uiLocales = details.params.ui_locales;
      return {
        uid: details.uid,
        clientId: typeof clientId === "string" ? clientId : "",
        ...(typeof uiLocales === "string" ? { uiLocales } : {}),
      };
    } catch {
      return null;
    }
  }

  function expired(req: Request, res: Response): void {
    send(res, 400, renderFailure({ language: language(req), code: "INTERACTION_EXPIRED" }));
  }

  async function showLogin(
    req: Request,
    res: Response,
    info: InteractionInfo,
    status: number,
    error?: { code: FailureCode; sourceId?: string | undefined },
    typedLogin?: string,
  ): Promise<void> {
    const lang = language(req, info.uiLocales);
    // Once something failed, offer the list: never loop through a failing silent in-app flow.
    const view = await login.view(info, error === undefined ? (req.get("user-agent") ?? "") : "");
    const csrf = binder.sign("login-csrf", info.uid);
    bind(res, info.uid);
    if (view.kind === "redirect") {
      res.set("Cache-Control", "no-store").redirect(303, view.url);
      return;
    }
    if (view.kind === "dingtalk-in-app") {
      const action = `/login/${encodeURIComponent(info.uid)}/dingtalk/${encodeURIComponent(view.sourceId)}/code?lang=${lang}`;
      send(res, status, renderDingTalkInApp({ language: lang, action, csrf, ...view.page }));
      return;
    }
    send(
      res,
      status,
      renderLogin({
        language: lang,
        uid: info.uid,
        ...(view.clientName === undefined ? {} : { clientName: view.clientName }),
        redirects: view.redirects,
        passwords: view.passwords,
        csrf,
        ...(error === undefined
          ? {}
          : {
              error: {
                code: error.code,
                ...(labelOf(lang, error.sourceId) === undefined
                  ? {}
                  : { sourceLabel: labelOf(lang, error.sourceId) }),
              },
            }),
        ...(typedLogin === undefined ? {} : { login: typedLogin }),
      }),
    );
  }

  /** Where a finished step goes: back into the provider, the form with a sentence, or a page of its own. */
  function conclude(req: Request, res: Response, result: LoginResult): void {
    if (result.ok) {
      res.set("Cache-Control", "no-store").redirect(303, result.returnTo);
      return;
    }
    const lang = language(req);
    if (result.uid !== undefined && !PERSON_FAILURES.has(result.code)) {
      const query = new URLSearchParams({ error: result.code, lang });
      if (result.sourceId !== undefined) query.set("source", result.sourceId);
      res.set("Cache-Control", "no-store").redirect(303, `/login/${encodeURIComponent(result.uid)}?${query}`);
      return;
    }
    send(
      res,
      PERSON_FAILURES.has(result.code) ? 403 : 400,
      renderFailure({
        language: lang,
        code: result.code,
        ...(labelOf(lang, result.sourceId) === undefined
          ? {}
          : { sourceLabel: labelOf(lang, result.sourceId) }),
        ...(result.uid === undefined
          ? {}
          : { again: `/login/${encodeURIComponent(result.uid)}?lang=${lang}` }),
      }),
    );
  }

  // First-party sign-in comes back here (response_type=none): on to the page it started from.
  router.get("/return", (req, res) => {
    const path = options.firstParty.returnPath(req.query.state);
    if (path === null || req.query.error !== undefined) {
      send(res, 400, renderFailure({ language: language(req), code: "REQUEST_INVALID" }));
      return;
    }
    res.set("Cache-Control", "no-store").redirect(303, path);
  });

  // A cross-site POST (SAML) carries no SameSite=Lax cookie: keep its fields and come back as a GET.
  router.post("/callback/:sourceId", callbackForm, async (req, res) => {
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, unknown>))
      if (typeof value === "string") fields[key] = value;
    const ref = await login.stashPost(fields);
    res
      .set("Cache-Control", "no-store")
      .redirect(303, `/login/callback/${encodeURIComponent(req.params.sourceId)}?posted=${ref}`);
  });

  router.get("/callback/:sourceId", async (req, res) => {
    let params: Record<string, string> | null;
    const posted = single(req.query.posted);
    if (posted !== undefined) params = await login.takePosted(posted);
    else {
      params = {};
      for (const [key, value] of Object.entries(req.query))
        if (typeof value === "string") params[key] = value;
    }
    const result =
      params === null
        ? ({ ok: false, code: "FLOW_INVALID" } as const)
        : await login.callback(req.params.sourceId, params, boundUid(req), meta(req));
    conclude(req, res, result);
  });

  router.get("/:uid", async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const error = single(req.query.error);
    await showLogin(
      req,
      res,
      info,
      200,
      error !== undefined && KNOWN_FAILURES.has(error)
        ? { code: error as FailureCode, sourceId: single(req.query.source) }
        : undefined,
    );
  });

  router.get("/:uid/source/:sourceId", async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const started = await login.begin(info, req.params.sourceId, "web");
    if (!started.ok)
      return showLogin(req, res, info, 400, { code: started.code, sourceId: started.sourceId });
    bind(res, info.uid);
    res.set("Cache-Control", "no-store").redirect(303, started.url);
  });

  const perIp = rateLimit({
    windowMs: limits.windowMs,
    limit: limits.perIp,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    // server.trustProxy is the operator saying a proxy in front sets X-Forwarded-For.
    validate: { trustProxy: false },
    handler: (req, res) => void limited(req, res, "per IP"),
  });
  const perLogin = rateLimit({
    windowMs: limits.windowMs,
    limit: limits.perLogin,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    keyGenerator: (req) =>
      `${param(req, "sourceId")}\u0000${(single((req.body as Record<string, unknown> | undefined)?.login) ?? "").trim().toLowerCase()}`,
    handler: (req, res) => void limited(req, res, "per login"),
  });
  async function limited(req: Request, res: Response, which: string): Promise<void> {
    const info = await interaction(req, res);
    const typed = single((req.body as Record<string, unknown> | undefined)?.login);
    await login.refused(meta(req), {
      sourceId: param(req, "sourceId"),
      code: "RATE_LIMITED",
      reason: `too many password attempts ${which}`,
      ...(info === null ? {} : { clientId: info.clientId }),
      ...(typed === undefined ? {} : { subject: typed.slice(0, 256) }),
    });
    if (info === null) return expired(req, res);
    await showLogin(req, res, info, 429, { code: "RATE_LIMITED" }, typed);
  }

  router.post("/:uid/password/:sourceId", form, perIp, perLogin, async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = single(body.login)?.trim() ?? "";
    if (!binder.check("login-csrf", info.uid, single(body.csrf))) {
      await login.refused(meta(req), {
        sourceId: param(req, "sourceId"),
        code: "FORM_INVALID",
        reason: "missing or wrong CSRF token",
        clientId: info.clientId,
      });
      return showLogin(req, res, info, 403, { code: "FORM_INVALID" }, typed);
    }
    const result = await login.password(
      info,
      param(req, "sourceId"),
      { login: typed, password: single(body.password) ?? "" },
      meta(req),
    );
    if (result.ok || result.uid === undefined || PERSON_FAILURES.has(result.code))
      return conclude(req, res, result);
    await showLogin(req, res, info, 401, { code: result.code, sourceId: result.sourceId }, typed);
  });

  router.post("/:uid/dingtalk/:sourceId/code", form, async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!binder.check("login-csrf", info.uid, single(body.csrf)))
      return showLogin(req, res, info, 403, { code: "FORM_INVALID" });
    const code = single(body.code) ?? "";
    // No JSAPI (not really inside DingTalk) or the JSAPI refused: offer the list instead.
    if (code === "" || code.length > 512)
      return showLogin(req, res, info, 200, { code: "CANCELLED", sourceId: req.params.sourceId });
    conclude(req, res, await login.jsapiCode(info, req.params.sourceId, code, meta(req)));
  });

  // Body too large, malformed form: a sentence, not a stack.
  router.use((err: unknown, req: Request, res: Response, _next: express.NextFunction) => {
    const status = (err as { status?: unknown }).status;
    if (typeof status === "number" && status >= 400 && status < 500) {
      send(res, status, renderFailure({ language: language(req), code: "REQUEST_INVALID" }));
      return;
    }
    logger.error({ err }, "login page failed");
    send(res, 500, renderFailure({ language: language(req), code: "INTERNAL" }));
  });
  return router;
}

/** The `/saml` router: SP metadata of each SAML source. */
export function samlRouter(options: { readonly sources: SignInSources; readonly publicUrl: string }): Router {
  const router = express.Router();
  router.get("/:sourceId/metadata", (req, res) => {
    const connector = options.sources.get(req.params.sourceId)?.connector;
    if (connector?.metadata === undefined) {
      res.status(404).type("text/plain").send("no SAML source with this id");
      return;
    }
    const callbackUrl = `${options.publicUrl}/login/callback/${encodeURIComponent(req.params.sourceId)}`;
    res.type("application/samlmetadata+xml").send(connector.metadata({ callbackUrl }));
  });
  return router;
}
