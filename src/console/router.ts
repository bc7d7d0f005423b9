/**
 * The console (`/console`): server-rendered pages for security admins, auditors and viewers, over the
 * same {@link AdminService} as the admin API — every page and form calls it with the signed-in caller,
 * and the service checks the caller's permission itself, so hiding a button is never the protection.
 *
 * People sign in through idbridge's own provider (the first-party client, as /launch does). Every POST
 * carries the session's CSRF token (src/http/admin-auth.ts) and answers with a redirect (POST-redirect-GET),
 * whose `done` parameter names the message to show (a message key, never text from the request).
 *
 * Page groups register their routes through {@link ConsoleRoutes} (./pages/*.ts): a handler gets the
 * request and a {@link ConsoleContext} and renders, redirects or streams a download through it.
 */
import { pipeline } from "node:stream/promises";
import { parseCookie } from "cookie";
import express, { type Request, type Response, type Router } from "express";
import type { TFunction } from "i18next";
import { can, type Caller, type Permission } from "../admin/access.js";
import type { AdminService, ExportDownload } from "../admin/contracts.js";
import type { FirstParty } from "../broker/first-party.js";
import { PROVIDER_PATH } from "../broker/provider.js";
import { AppError, isAppError, type ErrorCode } from "../domain/errors.js";
import type { AdminAuth, Authenticated } from "../http/admin-auth.js";
import { overlongQuery, requestFailure, sendFailure } from "../http/errors.js";
import { consoleLanguage, consoleTranslator, LANGUAGE_COOKIE, LANGUAGES, type Language } from "./i18n.js";
import {
  CONSOLE_CSP,
  CONSOLE_PATH,
  page,
  STYLESHEET,
  view,
  type Frame,
  type Notice,
  type PageContent,
} from "./layout.js";
import { PAGE_GROUPS } from "./pages/index.js";

/** Largest form body accepted (a comment is at most 2,000 characters). */
export const MAX_FORM_BYTES = 16 * 1024;

/** What the console needs. */
export interface ConsoleOptions {
  readonly service: AdminService;
  /** Who is calling (the session's caller and its CSRF token). */
  readonly auth: Pick<AdminAuth, "authenticate" | "checkCsrf">;
  /** Sends a browser without a session to sign in. */
  readonly firstParty: Pick<FirstParty, "beginFirstPartySignIn">;
  /** True when people reach idbridge over https (the language cookie is then Secure). */
  readonly https: boolean;
}

/** What a page handler works with. */
export interface ConsoleContext {
  readonly service: AdminService;
  readonly caller: Caller;
  readonly t: TFunction;
  readonly lang: Language;
  /** The session's CSRF token, for forms (templates see it as `it.csrf`). */
  readonly csrf: string;
  /** The message named by `?done=` after a redirect, if it is one of ours. */
  readonly notice: Notice | undefined;
  /** True when the caller holds `permission` (for hiding what they cannot use; the service still checks). */
  can(permission: Permission): boolean;
  /** A query parameter as text (trimmed, empty → undefined); INPUT_INVALID when repeated or longer than `max`. */
  query(name: string, max?: number): string | undefined;
  /** A form field of a POST, the same way. */
  field(name: string, max?: number): string | undefined;
  /** Renders the page template `@name` with `data`, for {@link ConsoleContext.render}'s body. */
  view(name: string, data: Record<string, unknown>): string;
  /** Sends a page. */
  render(content: PageContent, status?: number): void;
  /**
   * POST-redirect-GET: 303 to `path` (under /console, with its own query) showing the message `done`
   * (a message key such as `sync.done.approved`; kind ok unless it starts with `error.`).
   */
  redirect(path: string, done?: string): void;
  /** Streams a download (never held in memory), as an attachment. */
  download(file: ExportDownload): Promise<void>;
}

/** A page handler: renders, redirects or downloads through the context. */
export type ConsoleHandler = (req: Request, ctx: ConsoleContext) => Promise<void>;

/** How page groups register their routes (paths under /console). */
export interface ConsoleRoutes {
  get(path: string, handler: ConsoleHandler): void;
  /** A form post: the CSRF token is checked before the handler runs. */
  post(path: string, handler: ConsoleHandler): void;
}

/** A group of pages. */
export type PageGroup = (routes: ConsoleRoutes) => void;

interface Locals {
  lang: Language;
  t: TFunction;
  auth?: Extract<Authenticated, { kind: "session" }>;
  /** Signed in, whether or not with a role. */
  signedIn?: boolean;
}

const localsOf = (res: Response): Locals => res.locals as unknown as Locals;

function single(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw new AppError("INPUT_INVALID", `${name} must be given once, as text`, { expose: true });
  if (value.length > max)
    throw new AppError("INPUT_INVALID", `${name} is longer than ${max} characters`, { expose: true });
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function frameOf(req: Request, res: Response): Frame {
  const locals = localsOf(res);
  const query = new URLSearchParams(req.originalUrl.split("?")[1] ?? "");
  query.delete("lang");
  query.delete("done");
  return {
    lang: locals.lang,
    t: locals.t,
    caller: locals.auth?.caller ?? null,
    signedIn: locals.signedIn === true,
    csrf: locals.auth?.csrfToken ?? "",
    path: req.path,
    query: query.toString(),
    signOutHref: `${PROVIDER_PATH}/session/end`,
  };
}

function send(req: Request, res: Response, content: PageContent, status = 200): void {
  res.status(status);
  res.setHeader("Content-Security-Policy", CONSOLE_CSP);
  res.setHeader("Cache-Control", "no-store");
  res.type("html").send(page(frameOf(req, res), content));
}

/** The error page: what the code means in the reader's language, and the safe detail. */
function sendError(req: Request, res: Response, err: unknown): void {
  const failure = requestFailure(err, req.id);
  const { t } = localsOf(res);
  const csrf = isAppError(err, "ACCESS_DENIED") && err.message.includes("CSRF");
  const code: ErrorCode | "CSRF" = csrf ? "CSRF" : failure.code;
  const known = ["ACCESS_DENIED", "NOT_FOUND", "INPUT_INVALID", "PLAN_STATE", "PLAN_STALE", "CSRF"];
  const text = t(`error.${known.includes(code) ? code : "INTERNAL"}`);
  sendFailure(req, res, err, failure, () =>
    send(
      req,
      res,
      {
        title: t("error.title"),
        body: view(frameOf(req, res), "console-error", {
          text,
          detail: failure.message,
          code,
        }),
      },
      failure.status,
    ),
  );
}

/** The console's router, mounted at {@link CONSOLE_PATH}. */
export function consoleRouter(options: ConsoleOptions, groups: readonly PageGroup[] = PAGE_GROUPS): Router {
  const router = express.Router();
  const forms = express.urlencoded({ extended: false, limit: MAX_FORM_BYTES, parameterLimit: 50 });

  router.get(`/assets/${STYLESHEET.name}`, (_req, res) => {
    res.setHeader("Cache-Control", "public, max-age=31536000, immutable");
    res.type("css").send(STYLESHEET.body);
  });

  // The language: chosen with ?lang= (kept in a cookie), else the cookie, else the browser's.
  router.use((req, res, next) => {
    const asked = typeof req.query.lang === "string" ? req.query.lang : undefined;
    const cookie = parseCookie(req.headers.cookie ?? "")[LANGUAGE_COOKIE];
    const lang = consoleLanguage({ lang: asked, cookie, acceptLanguage: req.get("accept-language") });
    if (asked !== undefined && (LANGUAGES as readonly string[]).includes(asked))
      res.cookie(LANGUAGE_COOKIE, lang, {
        path: CONSOLE_PATH,
        sameSite: "lax",
        httpOnly: true,
        secure: options.https,
        maxAge: 365 * 24 * 3600 * 1000,
      });
    localsOf(res).lang = lang;
    localsOf(res).t = consoleTranslator(lang);
    next();
  });

  router.use((req, _res, next) => {
    const overlong = overlongQuery(req);
    next(overlong === null ? undefined : new AppError("INPUT_INVALID", overlong, { expose: true }));
  });

  // Who is calling: a browser session with a console role. Without a session, sign in and come back.
  router.use((req, res, next) => {
    if (req.headers.authorization !== undefined) {
      next(
        new AppError("INPUT_INVALID", "the console takes browser sessions; send bearer tokens to /api/v1", {
          expose: true,
        }),
      );
      return;
    }
    options.auth
      .authenticate(req, res)
      .then((outcome) => {
        if (!outcome.ok || outcome.auth.kind !== "session") {
          // A form posted after the session ended is not replayed: sign in, then start again from home.
          const back = req.method === "GET" ? req.originalUrl : `${CONSOLE_PATH}/`;
          options.firstParty.beginFirstPartySignIn(res, back);
          return;
        }
        const { caller } = outcome.auth;
        localsOf(res).signedIn = true;
        if (caller.roles.size === 0) {
          const { t } = localsOf(res);
          send(
            req,
            res,
            {
              title: t("error.noRole.title"),
              body: view(frameOf(req, res), "console-error", {
                text: t("error.noRole.text", { name: caller.name }),
                code: "NO_ROLE",
              }),
            },
            403,
          );
          return;
        }
        localsOf(res).auth = outcome.auth;
        next();
      })
      .catch(next);
  });

  const contextOf = (req: Request, res: Response): ConsoleContext => {
    const locals = localsOf(res);
    const auth = locals.auth!;
    const { caller } = auth;
    const frame = frameOf(req, res);
    const done = typeof req.query.done === "string" ? req.query.done : undefined;
    const notice: Notice | undefined =
      done !== undefined && /^[a-zA-Z_.]{1,80}$/.test(done) && locals.t(done) !== done
        ? { kind: done.startsWith("error.") ? "error" : "ok", text: locals.t(done) }
        : undefined;
    return {
      service: options.service,
      caller,
      t: locals.t,
      lang: locals.lang,
      csrf: auth.csrfToken,
      notice,
      can: (permission) => can(caller, permission),
      query: (name, max = 200) => single(req.query[name], name, max),
      field: (name, max = 2000) =>
        single((req.body as Record<string, unknown> | undefined)?.[name], name, max),
      view: (name, data) => view(frame, name, data),
      render: (content, status) => send(req, res, { ...content, notice: content.notice ?? notice }, status),
      redirect: (path, doneKey) => {
        const [pathname = "/", search = ""] = path.split("?");
        const params = new URLSearchParams(search);
        if (doneKey !== undefined) params.set("done", doneKey);
        const query = params.toString();
        res.setHeader("Cache-Control", "no-store");
        res.redirect(303, `${CONSOLE_PATH}${pathname}${query === "" ? "" : `?${query}`}`);
      },
      download: async (file) => {
        res.setHeader("Content-Type", file.contentType);
        res.setHeader("Content-Disposition", `attachment; filename="${file.fileName}"`);
        res.setHeader("Cache-Control", "no-store");
        res.setHeader("X-Content-Type-Options", "nosniff");
        await pipeline(file.body, res);
      },
    };
  };

  const handle =
    (handler: ConsoleHandler) =>
    (req: Request, res: Response, next: (err?: unknown) => void): void => {
      handler(req, contextOf(req, res)).catch(next);
    };
  const routes: ConsoleRoutes = {
    get: (path, handler) => router.get(path, handle(handler)),
    post: (path, handler) =>
      router.post(
        path,
        forms,
        (req, res, next) => {
          try {
            options.auth.checkCsrf(req, localsOf(res).auth!);
            next();
          } catch (err) {
            next(err);
          }
        },
        handle(handler),
      ),
  };
  for (const group of groups) group(routes);

  router.use((req, _res, next) => {
    next(new AppError("NOT_FOUND", `no console page at ${req.path}`, { expose: true }));
  });
  router.use((err: unknown, req: Request, res: Response, _next: (err?: unknown) => void) => {
    sendError(req, res, err);
  });
  return router;
}
