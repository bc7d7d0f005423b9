/**
 * A corporate OpenID Connect IdP for tests: a real oidc-provider on 127.0.0.1 with its own minimal login
 * form, auto-consent, PKCE required, and switchable faults served by the real server (a tampered ID token
 * signature, an issuer that differs from the one its tokens carry, a hang). No vitest imports: browser
 * tests and benchmarks use it too.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from "oidc-provider";

/** A person who can sign in at the test IdP. */
export interface OidcIdpUser {
  /** Login name typed into the form. */
  readonly username: string;
  /** Password typed into the form. */
  readonly password: string;
  /** ID token claims; `sub` is the account id. */
  readonly claims: {
    readonly sub: string;
    readonly email?: string;
    readonly email_verified?: boolean;
    readonly name?: string;
    readonly preferred_username?: string;
    readonly [claim: string]: unknown;
  };
}

/** A client registered at the test IdP. */
export interface OidcIdpClient {
  readonly clientId: string;
  /** Absent: a public client (token_endpoint_auth_method none, PKCE only). */
  readonly clientSecret?: string;
  readonly redirectUris: readonly string[];
}

/** Misbehaviour the IdP can be switched into while it runs. */
export interface OidcIdpFaults {
  /** Flip one byte of the signature of every ID token the token endpoint returns. */
  tamperIdTokenSignature: boolean;
  /** Never answer any request (a hung IdP). */
  hang: boolean;
}

/** A running test IdP. */
export interface OidcIdp {
  /** The issuer identifier (no trailing slash). */
  readonly issuer: string;
  /** Base URL of the server (equals the issuer). */
  readonly url: string;
  /** Switch faults on and off. */
  readonly faults: OidcIdpFaults;
  /** Requests seen per path (`/jwks`, `/token`, …), to tell whether a client fetched something again. */
  readonly requests: Map<string, number>;
  /** Kid of the key the IdP signs with now. */
  signingKid(): string;
  /** Starts signing with a new key; the old one stays published for verification. */
  rotateKeys(): Promise<void>;
  /**
   * An issuer alias whose discovery document names `alias` as issuer while tokens keep the real one,
   * and which does not advertise the RFC 9207 `iss` response parameter: a wrong-issuer token.
   */
  readonly misnamedIssuer: string;
  stop(): Promise<void>;
}

/** Options of {@link startOidcIdp}. */
export interface OidcIdpOptions {
  readonly users: readonly OidcIdpUser[];
  readonly clients: readonly OidcIdpClient[];
}

const MISNAMED = "/misnamed";

/** Starts an oidc-provider IdP on 127.0.0.1 at a random port. */
export async function startOidcIdp(options: OidcIdpOptions): Promise<OidcIdp> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const faults: OidcIdpFaults = { tamperIdTokenSignature: false, hang: false };
  const requests = new Map<string, number>();
  const cookieKeys = [randomBytes(32).toString("base64url")];
  const keys: JWK[] = [await newSigningKey()];
  let provider = buildProvider(url, options, keys, cookieKeys, faults);

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", url).pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    if (faults.hang) return;
    if (path.startsWith("/interaction/")) {
      handleInteraction(provider, options.users, req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(error instanceof Error ? error.message : "interaction failed");
      });
      return;
    }
    void provider.callback()(req, res);
  });

  return {
    issuer: url,
    url,
    faults,
    requests,
    misnamedIssuer: `${url}${MISNAMED}`,
    signingKid: () => keys[0]?.kid ?? "",
    rotateKeys: async () => {
      keys.unshift(await newSigningKey());
      // oidc-provider's keys are fixed at construction: the next provider signs with the new key first.
      provider = buildProvider(url, options, keys, cookieKeys, faults);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "RS256", use: "sig" };
}

function buildProvider(
  issuer: string,
  options: OidcIdpOptions,
  keys: readonly JWK[],
  cookieKeys: string[],
  faults: OidcIdpFaults,
): Provider {
  const users = new Map(options.users.map((user) => [user.claims.sub, user]));
  const configuration: Configuration = {
    clients: options.clients.map((client): ClientMetadata => ({
      client_id: client.clientId,
      ...(client.clientSecret === undefined
        ? { token_endpoint_auth_method: "none" }
        : { client_secret: client.clientSecret, token_endpoint_auth_method: "client_secret_post" }),
      redirect_uris: [...client.redirectUris],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    })),
    jwks: { keys: keys.map((key) => ({ ...key })) as never },
    cookies: { keys: cookieKeys },
    pkce: { required: () => true },
    // Like Azure AD: profile and email claims go into the ID token, not only to userinfo.
    conformIdTokenClaims: false,
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "preferred_username", "employee_id"],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const user = users.get(sub);
      if (user === undefined) return undefined;
      return { accountId: sub, claims: () => ({ ...user.claims }) };
    },
    // Auto-consent: every client gets the scopes it asks for.
    loadExistingGrant: async (ctx) => {
      const session = ctx.oidc.session;
      const clientId = ctx.oidc.client?.clientId;
      if (session?.accountId === undefined || clientId === undefined) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId });
      grant.addOIDCScope(String(ctx.oidc.params?.["scope"] ?? "openid"));
      await grant.save();
      return grant;
    },
    renderError: (ctx, out) => {
      ctx.type = "text/plain";
      ctx.body = `${out.error}: ${out.error_description ?? ""}`;
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.use(async (ctx: KoaContextWithOIDC, next) => {
    const misnamed = ctx.path === `${MISNAMED}/.well-known/openid-configuration`;
    if (misnamed) ctx.path = "/.well-known/openid-configuration";
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (misnamed && body !== undefined) {
      body["issuer"] = `${issuer}${MISNAMED}`;
      delete body["authorization_response_iss_parameter_supported"];
    }
    if (faults.tamperIdTokenSignature && ctx.path === "/token" && typeof body?.["id_token"] === "string") {
      body["id_token"] = flipSignatureByte(body["id_token"]);
    }
  });
  return provider;
}

function flipSignatureByte(jwt: string): string {
  const [header, payload, signature] = jwt.split(".");
  const bytes = Buffer.from(signature ?? "", "base64url");
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  return `${header}.${payload}.${bytes.toString("base64url")}`;
}

/** The login form at the interaction URL: GET shows it, POST checks the password or cancels. */
async function handleInteraction(
  provider: Provider,
  users: readonly OidcIdpUser[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (req.method === "GET") {
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(loginPage(details.uid, ""));
    return;
  }
  const form = new URLSearchParams(await readBody(req));
  if (form.has("cancel")) {
    await provider.interactionFinished(req, res, {
      error: "access_denied",
      error_description: "the user cancelled",
    });
    return;
  }
  const user = users.find((u) => u.username === form.get("username") && u.password === form.get("password"));
  if (user === undefined) {
    res.statusCode = 200;
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(loginPage(details.uid, "Wrong user name or password."));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } });
}

function loginPage(uid: string, message: string): string {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1>${message === "" ? "" : `<p role="alert">${message}</p>`}
<form method="post" action="/interaction/${encodeURIComponent(uid)}">
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit" name="login" value="1">Sign in</button>
<button type="submit" name="cancel" value="1">Cancel</button>
</form></body></html>`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
