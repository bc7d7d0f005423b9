/**
 * A tiny relying party — the demo finance app, and the "test finance platform" of the sign-in tests:
 * authorization code + PKCE + state + nonce with openid-client, a session of its own, RP-initiated logout
 * and back-channel logout. It is what a real finance platform does when idbridge is its OpenID Provider;
 * its page says who is signed in with which roles. Two instances make "a second client".
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as client from "openid-client";
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import { parseCookie, stringifySetCookie } from "cookie";

/** Options of a finance client. */
export interface FinanceClientOptions {
  /**
   * The OpenID Provider's issuer, discovered on first use, so the provider may start after this client; a
   * function when the provider's port is not known yet either (a peer that picks its own port).
   */
  readonly issuer: string | (() => string);
  /** The client_id registered at the provider. */
  readonly clientId: string;
  /** The client secret; without it the client is public (auth method `none`). */
  readonly clientSecret?: string;
  /** How the secret goes to the token endpoint; `client_secret_basic` by default. */
  readonly secretMethod?: "client_secret_basic" | "client_secret_post";
  /** Shown on its pages and prefixes its cookies (every port of 127.0.0.1 shares one cookie jar). */
  readonly name?: string;
  /** Scopes asked for; `openid profile email` by default. */
  readonly scope?: string;
  /** Port on 127.0.0.1; a free one by default. */
  readonly port?: number;
}

/** A back-channel logout token the client received, whether or not it was accepted. */
export interface ReceivedLogoutToken {
  /** True when the token verified (signature, issuer, audience, events, no nonce, sub or sid, new jti). */
  readonly accepted: boolean;
  /** Why it was refused (when not accepted). */
  readonly reason?: string;
  /** The verified claims (when accepted). */
  readonly claims?: JWTPayload;
  /** How many local sessions it ended. */
  readonly endedSessions: number;
}

/** A running finance client. */
export interface FinanceClient {
  /** Its base URL, `http://127.0.0.1:PORT`; `/` says who is signed in. */
  readonly url: string;
  /** The redirect_uri to register at the provider. */
  readonly redirectUri: string;
  /** The post_logout_redirect_uri to register at the provider. */
  readonly postLogoutRedirectUri: string;
  /** The backchannel_logout_uri to register at the provider. */
  readonly backchannelLogoutUri: string;
  /** Logout tokens received at the back-channel endpoint so far, oldest first. */
  received(): readonly ReceivedLogoutToken[];
  /** Stops the server. */
  stop(): Promise<void>;
}

/** One signed-in browser. */
interface Session {
  readonly claims: client.IDToken;
  readonly idToken: string;
}

/** One sign-in in flight, from /login to /callback. */
interface Pending {
  readonly codeVerifier: string;
  readonly state: string;
  readonly nonce: string;
}

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the event a logout token must carry. */
const BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";
/** Parameters /login passes on to the authorization request (tests ask for prompt=login, a login hint…). */
const PASSED_ON = ["prompt", "login_hint", "ui_locales", "max_age", "acr_values"] as const;

/** Starts a finance client on 127.0.0.1. */
export async function startFinanceClient(options: FinanceClientOptions): Promise<FinanceClient> {
  // A fixed issuer is checked now, so a wrong one fails the test that starts the client, not its first sign-in.
  if (typeof options.issuer === "string") issuerUrl(options.issuer);
  const name = options.name ?? "test finance platform";
  const prefix = name.toLowerCase().replace(/[^a-z0-9]+/g, "_");
  const cookies = { session: `${prefix}_sid`, pending: `${prefix}_tx` };
  const scope = options.scope ?? "openid profile email";

  const sessions = new Map<string, Session>();
  const pending = new Map<string, Pending>();
  const received: ReceivedLogoutToken[] = [];
  const seenJtis = new Set<string>();

  let discovered: Promise<client.Configuration> | undefined;
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  /** The provider's configuration, discovered once; a failed discovery is tried again next time. */
  function configuration(): Promise<client.Configuration> {
    if (discovered !== undefined) return discovered;
    const issuer = issuerUrl(typeof options.issuer === "string" ? options.issuer : options.issuer());
    discovered = client
      .discovery(issuer, options.clientId, {}, clientAuth(options), {
        // Verify the ID token's signature against the JWKS too: over plain http on loopback there is no TLS
        // to vouch for the token endpoint.
        execute: [
          client.enableNonRepudiationChecks,
          ...(issuer.protocol === "http:" ? [client.allowInsecureRequests] : []),
        ],
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      });
    return discovered;
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) page(res, 500, "Error", `<p id="error">${html(describe(error))}</p>`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const redirectUri = `${url}/callback`;
  const postLogoutRedirectUri = `${url}/logged-out`;
  const backchannelLogoutUri = `${url}/backchannel-logout`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const here = new URL(req.url ?? "/", url);
    const jar = parseCookie(req.headers.cookie ?? "");
    const sessionId = jar[cookies.session];
    const session = sessionId === undefined ? undefined : sessions.get(sessionId);
    const route = `${req.method ?? "GET"} ${here.pathname}`;

    switch (route) {
      case "GET /":
        if (session === undefined) {
          page(res, 200, name, `<p id="status">not signed in</p><p><a href="/login">Sign in</a></p>`);
        } else {
          const roles = rolesOf(session.claims);
          page(
            res,
            200,
            name,
            `<p id="status">signed in as <span id="name">${html(String(session.claims.name ?? ""))}</span> ` +
              `(<span id="sub">${html(session.claims.sub)}</span>) with roles ` +
              `<span id="roles">${html(roles.length === 0 ? "none" : roles.join(", "))}</span></p>` +
              `<p><a href="/logout">Sign out</a></p>`,
          );
        }
        return;

      case "GET /me":
        // The ID token's claims as JSON, for tests that check more than the page shows.
        send(
          res,
          session === undefined ? 401 : 200,
          "application/json",
          JSON.stringify(session?.claims ?? null),
        );
        return;

      case "GET /login": {
        const config = await configuration();
        const codeVerifier = client.randomPKCECodeVerifier();
        const flight: Pending = {
          codeVerifier,
          state: client.randomState(),
          nonce: client.randomNonce(),
        };
        const parameters: Record<string, string> = {
          redirect_uri: redirectUri,
          scope,
          response_type: "code",
          // RFC 7636 §4.2
          code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: "S256",
          state: flight.state,
          nonce: flight.nonce,
        };
        for (const key of PASSED_ON) {
          const value = here.searchParams.get(key);
          if (value !== null) parameters[key] = value;
        }
        const id = token();
        pending.set(id, flight);
        res.setHeader("Set-Cookie", cookie(cookies.pending, id));
        redirect(res, client.buildAuthorizationUrl(config, parameters).href);
        return;
      }

      case "GET /callback": {
        const txId = jar[cookies.pending];
        const flight = txId === undefined ? undefined : pending.get(txId);
        if (txId !== undefined) pending.delete(txId);
        const clearTx = cookie(cookies.pending, "", 0);
        if (flight === undefined) {
          res.setHeader("Set-Cookie", clearTx);
          page(res, 400, name, `<p id="error">no sign-in in progress</p>`);
          return;
        }
        let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
        try {
          tokens = await client.authorizationCodeGrant(await configuration(), here, {
            pkceCodeVerifier: flight.codeVerifier,
            expectedState: flight.state,
            expectedNonce: flight.nonce,
            idTokenExpected: true,
          });
        } catch (error) {
          res.setHeader("Set-Cookie", clearTx);
          page(res, 400, name, `<p id="error">${html(describe(error))}</p>`);
          return;
        }
        const claims = tokens.claims();
        if (claims === undefined || tokens.id_token === undefined) {
          res.setHeader("Set-Cookie", clearTx);
          page(res, 400, name, `<p id="error">no ID token</p>`);
          return;
        }
        const id = token();
        sessions.set(id, { claims, idToken: tokens.id_token });
        res.setHeader("Set-Cookie", [clearTx, cookie(cookies.session, id)]);
        redirect(res, "/");
        return;
      }

      case "GET /logout": {
        if (session === undefined || sessionId === undefined) {
          redirect(res, "/");
          return;
        }
        // The local session ends first: whatever the provider does next, this browser is signed out here.
        sessions.delete(sessionId);
        res.setHeader("Set-Cookie", cookie(cookies.session, "", 0));
        // OpenID Connect RP-Initiated Logout 1.0 §2
        const end = client.buildEndSessionUrl(await configuration(), {
          id_token_hint: session.idToken,
          post_logout_redirect_uri: postLogoutRedirectUri,
        });
        redirect(res, end.href);
        return;
      }

      case "GET /logged-out":
        page(res, 200, name, `<p id="status">signed out</p><p><a href="/login">Sign in</a></p>`);
        return;

      case "POST /backchannel-logout": {
        const body = new URLSearchParams(await readBody(req, 64 * 1024));
        const outcome = await acceptLogoutToken(body.get("logout_token"));
        received.push(outcome);
        // Back-Channel Logout §2.8: 200 when done, 400 when the token is not valid.
        res.setHeader("Cache-Control", "no-store");
        if (outcome.accepted) {
          send(res, 200, "text/plain", "");
        } else {
          const error = { error: "invalid_request", error_description: outcome.reason };
          send(res, 400, "application/json", JSON.stringify(error));
        }
        return;
      }

      default:
        page(res, 404, name, `<p id="error">not found</p>`);
    }
  }

  /** Back-Channel Logout §2.6: validates a logout token and ends the sessions it names. */
  async function acceptLogoutToken(logoutToken: string | null): Promise<ReceivedLogoutToken> {
    const refuse = (reason: string): ReceivedLogoutToken => ({ accepted: false, reason, endedSessions: 0 });
    if (logoutToken === null || logoutToken === "") return refuse("no logout_token");
    const config = await configuration();
    const metadata = config.serverMetadata();
    if (metadata.jwks_uri === undefined) return refuse("the provider publishes no jwks_uri");
    jwks ??= createRemoteJWKSet(new URL(metadata.jwks_uri));
    let claims: JWTPayload;
    try {
      const verified = await jwtVerify(logoutToken, jwks, {
        issuer: metadata.issuer,
        audience: options.clientId,
        requiredClaims: ["iat", "jti"],
      });
      // §2.4: explicit typing is recommended; a token typed as something else is not a logout token.
      const typ = verified.protectedHeader.typ;
      if (typ !== undefined && typ.toLowerCase() !== "logout+jwt") return refuse(`typ ${typ}`);
      claims = verified.payload;
    } catch (error) {
      return refuse(describe(error));
    }
    const events = claims.events as Record<string, unknown> | undefined;
    if (typeof events !== "object" || events === null || !(BACKCHANNEL_LOGOUT_EVENT in events)) {
      return refuse("no back-channel logout event");
    }
    if ("nonce" in claims) return refuse("a logout token must not carry a nonce");
    const sid = typeof claims.sid === "string" ? claims.sid : undefined;
    if (sid === undefined && claims.sub === undefined) return refuse("neither sub nor sid");
    // §2.6 step 10: a jti seen before is a replay.
    const jti = claims.jti!;
    if (seenJtis.has(jti)) return refuse("replayed jti");
    seenJtis.add(jti);

    let ended = 0;
    for (const [id, s] of sessions) {
      const matches =
        (sid === undefined || s.claims.sid === sid) &&
        (claims.sub === undefined || s.claims.sub === claims.sub);
      if (matches) {
        sessions.delete(id);
        ended += 1;
      }
    }
    return { accepted: true, claims, endedSessions: ended };
  }

  function cookie(cookieName: string, value: string, maxAge?: number): string {
    return stringifySetCookie(cookieName, value, {
      path: "/",
      httpOnly: true,
      // Lax, not Strict: the provider's redirect back to /callback is a cross-site top-level navigation
      // when the provider runs on another host.
      sameSite: "lax",
      secure: false,
      ...(maxAge === undefined ? {} : { maxAge }),
    });
  }

  return {
    url,
    redirectUri,
    postLogoutRedirectUri,
    backchannelLogoutUri,
    received: () => [...received],
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** The token endpoint authentication of the options. */
function clientAuth(options: FinanceClientOptions): client.ClientAuth {
  if (options.clientSecret === undefined) return client.None();
  return options.secretMethod === "client_secret_post"
    ? client.ClientSecretPost(options.clientSecret)
    : client.ClientSecretBasic(options.clientSecret);
}

/** The issuer as a URL: https, or plain http only on the loopback interface (the tests' peers). */
function issuerUrl(text: string): URL {
  const issuer = new URL(text);
  const loopback = issuer.hostname === "127.0.0.1" || issuer.hostname === "localhost";
  if (issuer.protocol !== "https:" && !(issuer.protocol === "http:" && loopback)) {
    throw new TypeError(`issuer must be https, or http on the loopback interface: ${text}`);
  }
  return issuer;
}

/** The `roles` claim as a list of strings (absent or malformed: none). */
function rolesOf(claims: client.IDToken): string[] {
  const roles = claims.roles;
  return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === "string") : [];
}

/** A short description of an error: openid-client's and jose's stable codes first. */
function describe(error: unknown): string {
  if (error instanceof client.AuthorizationResponseError)
    return `${error.error}: ${error.error_description ?? ""}`;
  if (error instanceof client.ResponseBodyError) return `${error.error}: ${error.error_description ?? ""}`;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === "string" ? `${code}: ${message}` : message;
}

function token(): string {
  return randomBytes(24).toString("base64url");
}

function html(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  send(
    res,
    status,
    "text/html; charset=utf-8",
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title></head>` +
      `<body><h1>${html(title)}</h1>${body}</body></html>`,
  );
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
  res.end(body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { Location: location, "Cache-Control": "no-store" });
  res.end();
}

/** The request body as text, refused past `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error("request body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
