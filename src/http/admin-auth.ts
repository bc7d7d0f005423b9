/**
 * Who is calling the admin API (`/api/v1`) or the console (`/console`): an API client with a bearer token
 * from idbridge's own provider (client-credentials grant, RFC 6749 §4.4; RFC 6750 header), or a person
 * signed in to idbridge in this browser (the first-party session) with their console roles. Both become
 * a {@link Caller}; what the caller may do is checked by the AdminService itself.
 *
 * A session is an ambient credential, so a state-changing request made with it must carry the CSRF token
 * of that session (header `X-CSRF-Token`, or form field `_csrf`): an HMAC of the session id signed with
 * the cookie secrets (src/broker/binding.ts, as the login forms do). A bearer token is never sent by a
 * browser on its own, so it needs none.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseCookie } from "cookie";
import type { Request, RequestHandler, Response } from "express";
import type Provider from "oidc-provider";
import type { Caller } from "../admin/access.js";
import { accessPolicy, clientCaller, consoleRolesOf, personCaller } from "../admin/callers.js";
import type { ConsoleConfig } from "../admin/config.js";
import { createBinder, type Binder } from "../broker/binding.js";
import type { PersonDirectory } from "../broker/contracts.js";
import type { FirstParty } from "../broker/first-party.js";
import { adminApiResourceOf, COOKIE_NAMES } from "../broker/provider.js";
import { AppError } from "../domain/errors.js";

/** Header carrying the CSRF token of a session-authenticated API call. */
export const CSRF_HEADER = "x-csrf-token";
/** Form field carrying the CSRF token of a console form. */
export const CSRF_FIELD = "_csrf";

/** Longest bearer token looked up: ours are 43 characters; anything far longer is not one of ours. */
const MAX_TOKEN_LENGTH = 512;
/** RFC 9110 §9.2.1: these do not change state, so they need no CSRF token. */
const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
// RFC 6750 §2.1: b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** A caller and how they authenticated. */
export type Authenticated =
  | {
      readonly kind: "bearer";
      readonly caller: Caller;
      /** The API client (`console.apiClients[].clientId`). */
      readonly clientId: string;
    }
  | {
      readonly kind: "session";
      readonly caller: Caller;
      /** The signed-in person. */
      readonly personId: string;
      /** The CSRF token of this session, for forms and the `X-CSRF-Token` header. */
      readonly csrfToken: string;
    };

/** Why a request is not authenticated. */
export type AuthFailure =
  /** No credential: no Authorization header and no signed-in session. */
  | { readonly reason: "none"; readonly message: string }
  /** An Authorization header that is not a valid, current admin API token of a configured client. */
  | { readonly reason: "invalid_token"; readonly message: string };

/** The outcome of {@link AdminAuth.authenticate}. */
export type AuthOutcome =
  { readonly ok: true; readonly auth: Authenticated } | ({ readonly ok: false } & AuthFailure);

/** What {@link createAdminAuth} needs. */
export interface AdminAuthOptions {
  /** idbridge's provider: issues and looks up the client-credentials tokens, holds the sessions. */
  readonly provider: Provider;
  /** The first-party session helpers (who is signed in). */
  readonly firstParty: Pick<FirstParty, "currentPersonId">;
  /** People: their facts, for `when` rules of `console.access`. */
  readonly people: Pick<PersonDirectory, "facts">;
  /** The `console:` config section. */
  readonly console: ConsoleConfig;
  /** idbridge's public base URL, no trailing slash (the API tokens' audience is derived from it). */
  readonly publicUrl: string;
  /** Cookie secrets, newest first: they sign the CSRF tokens. */
  readonly cookieSecrets: readonly string[];
}

/** Authentication of admin API and console requests. */
export interface AdminAuth {
  /**
   * Who is calling: a bearer token when an Authorization header is present (never falling back to the
   * session then), else the browser's idbridge session. A caller may hold no role: callers decide.
   */
  authenticate(req: IncomingMessage, res: ServerResponse): Promise<AuthOutcome>;
  /**
   * Throws ACCESS_DENIED (HTTP 403) for a state-changing session request without its session's CSRF token
   * in the `X-CSRF-Token` header or the `_csrf` field of an already parsed body. Bearer and safe requests pass.
   */
  checkCsrf(req: Request, auth: Authenticated): void;
  /**
   * Middleware for JSON APIs: authenticates (401 with `WWW-Authenticate: Bearer` when there is no
   * credential or a bad token), refuses a caller with no role (403), checks CSRF, and puts the
   * {@link Authenticated} on `res.locals.auth` (read it with {@link authOf}).
   */
  requireCaller(): RequestHandler;
}

/** The authenticated caller of a request that passed {@link AdminAuth.requireCaller}. */
export function authOf(res: Response): Authenticated {
  const auth = (res.locals as { auth?: Authenticated }).auth;
  if (auth === undefined) throw new TypeError("authOf: the request did not pass requireCaller()");
  return auth;
}

/** Admin authentication on idbridge's provider and sessions. */
export function createAdminAuth(options: AdminAuthOptions): AdminAuth {
  const binder: Binder = createBinder(options.cookieSecrets);
  const audience = adminApiResourceOf(options.publicUrl);
  const policy = accessPolicy(options.console.access);
  // The token of a session is the signature of a digest of its id, so the page never shows the id itself
  // (it is the session cookie's value).
  const sessionKey = (sessionId: string): string =>
    createHash("sha256").update(sessionId).digest("base64url").slice(0, 22);

  async function bearer(header: string): Promise<AuthOutcome> {
    const match = header.length <= MAX_TOKEN_LENGTH + 7 ? BEARER.exec(header.trim()) : null;
    if (match === null)
      return {
        ok: false,
        reason: "invalid_token",
        message: "the Authorization header is not a Bearer token",
      };
    // find() refuses unknown and expired tokens; other kinds of token (a platform's) are other models.
    const token = await options.provider.ClientCredentials.find(match[1]!);
    const aud = token?.aud as string | readonly string[] | undefined;
    const forApi = typeof aud === "string" ? aud === audience : (aud?.includes(audience) ?? false);
    const clientId = token?.clientId;
    if (token === undefined || token.isExpired || !forApi || clientId === undefined)
      return {
        ok: false,
        reason: "invalid_token",
        message: "the bearer token is unknown, expired or not for this API",
      };
    // A client removed from the config loses access at once, whatever tokens it still holds.
    const caller = clientCaller(clientId, options.console.apiClients);
    if (caller === null)
      return { ok: false, reason: "invalid_token", message: "the token's client is no longer an API client" };
    return { ok: true, auth: { kind: "bearer", caller, clientId } };
  }

  async function session(req: IncomingMessage, res: ServerResponse): Promise<AuthOutcome> {
    const none = { ok: false, reason: "none", message: "sign in, or send a Bearer token" } as const;
    if (parseCookie(req.headers.cookie ?? "")[COOKIE_NAMES.session] === undefined) return none;
    const personId = await options.firstParty.currentPersonId(req, res);
    if (personId === null) return none;
    const { provider } = options;
    const current = await provider.Session.get(provider.createContext(req, res));
    // Signed out between the two reads.
    if (current.accountId !== personId || typeof current.jti !== "string") return none;
    const found = (await options.people.facts?.(personId)) ?? null;
    const roles =
      found === null
        ? new Set<never>()
        : consoleRolesOf(found.person, found.facts, options.console.access, policy);
    return {
      ok: true,
      auth: {
        kind: "session",
        caller: personCaller(personId, found?.name, roles),
        personId,
        csrfToken: binder.sign("admin-csrf", sessionKey(current.jti)),
      },
    };
  }

  const auth: AdminAuth = {
    authenticate(req, res) {
      const header = req.headers.authorization;
      return header !== undefined ? bearer(header) : session(req, res);
    },

    checkCsrf(req, authenticated) {
      if (authenticated.kind !== "session" || SAFE_METHODS.has(req.method)) return;
      const header = req.get(CSRF_HEADER);
      const field = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
      const given = header ?? (typeof field === "string" ? field : undefined);
      const key = binder.open("admin-csrf", authenticated.csrfToken);
      if (given === undefined || key === null || !binder.check("admin-csrf", key, given))
        throw new AppError(
          "ACCESS_DENIED",
          given === undefined
            ? `a signed-in request that changes something needs the session's CSRF token (header X-CSRF-Token or field ${CSRF_FIELD}); GET /api/v1/me gives it`
            : "the CSRF token is not this session's: reload the page, or GET /api/v1/me again",
          { expose: true },
        );
    },

    requireCaller() {
      return (req, res, next) => {
        auth
          .authenticate(req, res)
          .then((outcome) => {
            if (!outcome.ok) {
              // RFC 6750 §3: a challenge always; error=invalid_token only when a token was sent.
              res.setHeader(
                "WWW-Authenticate",
                outcome.reason === "invalid_token"
                  ? `Bearer realm="idbridge", error="invalid_token", error_description="${outcome.message}"`
                  : 'Bearer realm="idbridge"',
              );
              res.status(401).json({
                error: {
                  code: outcome.reason === "invalid_token" ? "TOKEN_INVALID" : "UNAUTHENTICATED",
                  message: outcome.message,
                },
              });
              return;
            }
            if (outcome.auth.caller.roles.size === 0)
              throw new AppError(
                "ACCESS_DENIED",
                `${outcome.auth.caller.name} holds no console role (console.access in the config names who may use the console and the API)`,
                { expose: true },
              );
            auth.checkCsrf(req, outcome.auth);
            res.locals.auth = outcome.auth;
            next();
          })
          .catch(next);
      };
    },
  };
  return auth;
}
