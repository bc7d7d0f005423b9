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
import { renderJsapiInApp, renderFailure, renderLogin, sourceTypeLabel, type Page } from "../broker/pages.js";

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

/** Limits of the cross-site POST callback (SAML). */
export interface CallbackLimits {
  /** Posts per client IP per window. */
  readonly perIp: number;
  /** Window length in ms. */
  readonly windowMs: number;
}

/** Defaults: a browser posts one SAML response per sign-in; sixty a minute is a whole office behind one NAT. */
export const DEFAULT_CALLBACK_LIMITS: CallbackLimits = { perIp: 60, windowMs: 60_000 };

/**
 * Body limit of the POST callback. A signed SAML response is typically 5-20 KB (more with an encrypted
 * assertion and a certificate chain); 64 KB leaves room for those and keeps what a stranger can make
 * the Store hold small.
 */
export const CALLBACK_BODY_LIMIT = "64kb";

/** At most this many keys are tracked per failure window; the oldest are dropped beyond it. */
const MAX_TRACKED_KEYS = 100_000;

/**
 * Failures per key in a fixed window, counted only when the caller says an attempt failed, so that
 * posts refused before the password was checked never lock anyone out. Remembers whether the refusal
 * of a key was audited in the current window (once is enough; the rest only go to the server log).
 */
export class FailureWindow {
  private readonly entries = new Map<string, { count: number; resetAt: number; audited: boolean }>();

  constructor(private readonly windowMs: number) {}

  /** Failures of `key` in its current window. */
  count(key: string, now = Date.now()): number {
    const entry = this.entries.get(key);
    return entry === undefined || entry.resetAt <= now ? 0 : entry.count;
  }

  /** Counts one failure of `key`. */
  add(key: string, now = Date.now()): void {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.resetAt > now) {
      entry.count += 1;
      return;
    }
    this.entries.delete(key);
    if (this.entries.size >= MAX_TRACKED_KEYS) this.prune(now);
    this.entries.set(key, { count: 1, resetAt: now + this.windowMs, audited: false });
  }

  /** True the first time it is asked for `key` in its current window: audit that refusal only. */
  firstRefusal(key: string, now = Date.now()): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.resetAt <= now || entry.audited) return false;
    entry.audited = true;
    return true;
  }

  private prune(now: number): void {
    for (const [key, entry] of this.entries) if (entry.resetAt <= now) this.entries.delete(key);
    // Still full of live keys (a spray of names): drop the oldest, Map iterates in insertion order.
    for (const key of this.entries.keys()) {
      if (this.entries.size < MAX_TRACKED_KEYS) break;
      this.entries.delete(key);
    }
  }
}

/**
 * The bucket of a typed login: `CORP\Alice`, `alice@corp.example` and ` alice ` are one person trying,
 * so a guesser cannot triple the allowance by spelling the name three ways.
 */
export function loginBucket(typed: string): string {
  let name = typed.trim().toLowerCase();
  const slash = name.lastIndexOf("\\");
  if (slash >= 0) name = name.slice(slash + 1);
  const at = name.lastIndexOf("@");
  if (at > 0) name = name.slice(0, at);
  return name;
}

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
  /** Rate limit of the POST callback (SAML). */
  readonly callbackLimits?: CallbackLimits;
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
  const callbackForm = express.urlencoded({
    extended: false,
    limit: CALLBACK_BODY_LIMIT,
    parameterLimit: 20,
  });
  const passwordFailures = new FailureWindow(limits.windowMs);
  const ipFailures = new FailureWindow(limits.windowMs);

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
    if (view.kind === "jsapi-in-app") {
      const action = `/login/${encodeURIComponent(info.uid)}/in-app/${encodeURIComponent(view.sourceId)}/code?lang=${lang}`;
      const sourceLabel = labelOf(lang, view.sourceId) ?? view.sourceId;
      send(res, status, renderJsapiInApp({ language: lang, action, csrf, page: view.page, sourceLabel }));
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

  const callbackLimits = options.callbackLimits ?? DEFAULT_CALLBACK_LIMITS;
  // Bounds what strangers can make the Store hold and the audit log record through the callback path.
  const callbackPerIp = rateLimit({
    windowMs: callbackLimits.windowMs,
    limit: callbackLimits.perIp,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    // server.trustProxy is the operator saying a proxy in front sets X-Forwarded-For.
    validate: { trustProxy: false },
    handler: (req, res) => {
      logger.warn({ ip: req.ip, path: "/login/callback" }, "login callback rate limit reached");
      send(res, 429, renderFailure({ language: language(req), code: "RATE_LIMITED" }));
    },
  });

  // A cross-site POST (SAML) carries no SameSite=Lax cookie: keep its fields and come back as a GET.
  // Only for a POST-callback source and a RelayState naming a live flow of it; anything else is no write.
  router.post("/callback/:sourceId", callbackPerIp, callbackForm, async (req, res) => {
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, unknown>))
      if (typeof value === "string") fields[key] = value;
    const sourceId = param(req, "sourceId");
    const ref = await login.stashPost(sourceId, fields, meta(req));
    if (ref === null) {
      send(res, 400, renderFailure({ language: language(req), code: "FLOW_INVALID" }));
      return;
    }
    res
      .set("Cache-Control", "no-store")
      .redirect(303, `/login/callback/${encodeURIComponent(sourceId)}?posted=${ref}`);
  });

  router.get("/callback/:sourceId", callbackPerIp, async (req, res) => {
    const sourceId = param(req, "sourceId");
    let params: Record<string, string> | null;
    const posted = single(req.query.posted);
    if (posted !== undefined) params = await login.takePosted(posted);
    else {
      params = {};
      for (const [key, value] of Object.entries(req.query))
        if (typeof value === "string") params[key] = value;
    }
    if (params === null) {
      const bound = boundUid(req);
      await login.refused(meta(req), {
        sourceId,
        code: "FLOW_INVALID",
        reason: "unknown, used or expired posted callback",
      });
      return conclude(req, res, {
        ok: false,
        code: "FLOW_INVALID",
        ...(bound === null ? {} : { uid: bound }),
      });
    }
    conclude(req, res, await login.callback(sourceId, params, boundUid(req), meta(req)));
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

  /**
   * A refusal before anything was checked, from this IP: audited while the IP is under its limit (so
   * junk cannot flood the log), counted against the IP only, never against an account.
   */
  async function refuseForm(
    req: Request,
    input: { sourceId: string; code: FailureCode; reason: string; clientId: string },
  ): Promise<void> {
    const ip = req.ip ?? "";
    const over = ipFailures.count(ip) >= limits.perIp;
    ipFailures.add(ip);
    if (over) logger.warn({ ip, code: input.code }, "login refusal not audited: IP over its limit");
    else await login.refused(meta(req), input);
  }

  /** Which limit, if any, stops this password attempt before the source is asked. */
  function passwordLimit(
    req: Request,
    sourceId: string,
    typed: string,
  ): { key: string; which: string } | null {
    const loginKey = `login\u0000${sourceId}\u0000${loginBucket(typed)}`;
    if (passwordFailures.count(loginKey) >= limits.perLogin) return { key: loginKey, which: "per login" };
    const ip = req.ip ?? "";
    if (ipFailures.count(ip) >= limits.perIp) return { key: `ip\u0000${ip}`, which: "per IP" };
    return null;
  }

  router.post("/:uid/password/:sourceId", form, async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typed = single(body.login)?.trim() ?? "";
    const sourceId = param(req, "sourceId");
    // Form and interaction first: a post that fails them says nothing about any account.
    if (!binder.check("login-csrf", info.uid, single(body.csrf))) {
      await refuseForm(req, {
        sourceId,
        code: "FORM_INVALID",
        reason: "missing or wrong CSRF token",
        clientId: info.clientId,
      });
      return showLogin(req, res, info, 403, { code: "FORM_INVALID" }, typed);
    }
    const limit = passwordLimit(req, sourceId, typed);
    if (limit !== null) {
      const window = limit.which === "per IP" ? ipFailures : passwordFailures;
      const windowKey = limit.which === "per IP" ? (req.ip ?? "") : limit.key;
      if (window.firstRefusal(windowKey))
        await login.refused(meta(req), {
          sourceId,
          code: "RATE_LIMITED",
          reason: `too many failed password attempts ${limit.which}`,
          clientId: info.clientId,
          subject: typed.slice(0, 256),
        });
      else
        logger.warn({ ip: req.ip, sourceId, which: limit.which }, "password attempt refused by rate limit");
      // The same sentence whether or not the account exists.
      return showLogin(req, res, info, 429, { code: "RATE_LIMITED" }, typed);
    }
    const result = await login.password(
      info,
      sourceId,
      { login: typed, password: single(body.password) ?? "" },
      meta(req),
    );
    if (!result.ok && result.code === "INVALID_CREDENTIALS") {
      passwordFailures.add(`login\u0000${sourceId}\u0000${loginBucket(typed)}`);
      ipFailures.add(req.ip ?? "");
    }
    if (result.ok || result.uid === undefined || PERSON_FAILURES.has(result.code))
      return conclude(req, res, result);
    await showLogin(req, res, info, 401, { code: result.code, sourceId: result.sourceId }, typed);
  });

  router.post("/:uid/in-app/:sourceId/code", form, async (req, res) => {
    const info = await interaction(req, res);
    if (info === null) return expired(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const sourceId = param(req, "sourceId");
    if (!binder.check("login-csrf", info.uid, single(body.csrf))) {
      await refuseForm(req, {
        sourceId,
        code: "FORM_INVALID",
        reason: "missing or wrong CSRF token",
        clientId: info.clientId,
      });
      return showLogin(req, res, info, 403, { code: "FORM_INVALID" });
    }
    const code = single(body.code) ?? "";
    // No JSAPI (not really inside the app) or the JSAPI refused: offer the list instead.
    if (code === "" || code.length > 512) {
      await refuseForm(req, {
        sourceId,
        code: "CANCELLED",
        reason: code === "" ? "no code from the app's JSAPI" : "JSAPI code too long",
        clientId: info.clientId,
      });
      return showLogin(req, res, info, 200, { code: "CANCELLED", sourceId });
    }
    conclude(req, res, await login.jsapiCode(info, sourceId, code, meta(req)));
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
