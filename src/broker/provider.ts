/**
 * idbridge as an OpenID Connect provider for the finance platforms: oidc-provider configured for the
 * authorization code flow with PKCE (S256) for every client, exact redirect URIs, refresh token rotation,
 * RP-initiated and back-channel logout, artefacts on our Store, our pages and our people.
 * See https://github.com/panva/node-oidc-provider/blob/main/docs/README.md
 *
 * Claims by scope (ID token and userinfo alike):
 * - `openid` → `sub` (the Person id); in the ID token also `acr` (`urn:idbridge:source:<type>`) and
 *   `amr` (`pwd` for AD/LDAP passwords, else the source type)
 * - `profile` → `name`, `employee_no`, `departments`
 * - `email` → `email`
 * - `roles` → `roles` (the client's target roles, from the policy)
 */
// Must come first: it quiets oidc-provider's unstructured runtime warning (see the module).
import "./runtime-notice.js";
import Provider, {
  errors,
  interactionPolicy,
  type ClientMetadata,
  type Configuration,
  type KoaContextWithOIDC,
  type JWK,
} from "oidc-provider";
import type { Logger } from "pino";
import type { ConsoleConfig } from "../admin/config.js";
import type { AuditEvent } from "../audit/chain.js";
import type { Config } from "../config/load.js";
import { SOURCE_TYPES } from "../sources/registry.js";
import type { Store } from "../store/store.js";
import { createOidcAdapter } from "./adapter.js";
import type { ActiveOutcome, PersonDirectory } from "./contracts.js";
import { pickLanguage } from "./messages.js";
import { LiveChecks } from "./people.js";
import { renderLoggedOut, renderLogoutConfirm, renderProviderError, type Page } from "./pages.js";

/** The client id of idbridge's own first-party client (launch, console): a session, never tokens. */
export const FIRST_PARTY_CLIENT_ID = "idbridge";

/** Path of the admin API below the public URL; with the public URL, the resource its tokens are for. */
export const ADMIN_API_PATH = "/api/v1";

/** The only scope of admin API tokens (what a client may do comes from its roles in the config). */
export const ADMIN_API_SCOPE = "admin";

/** Path the provider is mounted at, below the public URL. */
export const PROVIDER_PATH = "/oidc";

/** Cookie names: ours all start with `idb_`. */
export const COOKIE_NAMES = {
  session: "idb_session",
  interaction: "idb_interaction",
  resume: "idb_resume",
} as const;

/** Scopes and the claims each one releases. */
export const SCOPE_CLAIMS = {
  // acr and amr: how the person signed in (ID token only): RFC 8176 `pwd`, or the source type.
  openid: ["sub", "acr", "amr"],
  profile: ["name", "employee_no", "departments"],
  email: ["email"],
  roles: ["roles"],
} as const;

/** What the provider is built from. */
export interface ProviderOptions {
  /** idbridge's public base URL, no trailing slash; the issuer is `<publicUrl>/oidc`. */
  readonly publicUrl: string;
  /** The `signIn:` section. */
  readonly signIn: Config["signIn"];
  /** Codes, sessions, grants and tokens live here. */
  readonly store: Store;
  /** Claims of people. */
  readonly people: PersonDirectory;
  /** Private signing JWKs: the current key first, then retired ones still in their grace period. */
  readonly signingKeys: readonly JWK[];
  /** Cookie signing secrets, newest first (older ones still verify). */
  readonly cookieSecrets: readonly string[];
  /** Trust X-Forwarded-* (the service runs behind a reverse proxy). */
  readonly trustProxy: boolean;
  /** Where errors and logout notices go. */
  readonly logger: Logger;
  /** Appends to the audit log (a session ended because its person is no longer active). */
  readonly audit?: (event: AuditEvent) => Promise<unknown>;
  /** Automation clients of the admin API (client-credentials grant only); none by default. */
  readonly apiClients?: ConsoleConfig["apiClients"];
  /** Records a logout in the audit log. */
  readonly onLogout?: (event: { personId: string; clientId?: string; ip: string; userAgent: string }) => void;
}

/** The `acr` of a sign-in with a source of `type`. */
export function acrOf(type: string): string {
  return `urn:idbridge:source:${type}`;
}

/** The issuer URL of a public base URL. */
export function issuerOf(publicUrl: string): string {
  return `${publicUrl}${PROVIDER_PATH}`;
}

/** The resource indicator (RFC 8707) of the admin API: the audience of its tokens. */
export function adminApiResourceOf(publicUrl: string): string {
  return `${publicUrl}${ADMIN_API_PATH}`;
}

/** The client metadata of the configured platforms and of idbridge's own first-party client. */
export function clientMetadata(
  signIn: Config["signIn"],
  publicUrl: string,
  apiClients: ConsoleConfig["apiClients"] = [],
): ClientMetadata[] {
  const platforms = signIn.clients.map((client): ClientMetadata => {
    const metadata: ClientMetadata = {
      client_id: client.clientId,
      redirect_uris: [...client.redirectUris],
      post_logout_redirect_uris: [...client.postLogoutRedirectUris],
      response_types: ["code"],
      grant_types: ["authorization_code", "refresh_token"],
      ...(client.clientSecret === undefined
        ? { token_endpoint_auth_method: "none" }
        : { client_secret: client.clientSecret, token_endpoint_auth_method: "client_secret_basic" }),
    };
    if (client.name !== undefined) metadata.client_name = client.name;
    if (client.backchannelLogoutUri !== undefined) {
      metadata.backchannel_logout_uri = client.backchannelLogoutUri;
      metadata.backchannel_logout_session_required = true;
    }
    return metadata;
  });
  const firstParty: ClientMetadata = {
    client_id: FIRST_PARTY_CLIENT_ID,
    client_name: "idbridge",
    // response_type=none (OIDC Multiple Response Types §5): the browser comes back with a session, no code.
    response_types: ["none"],
    grant_types: [],
    redirect_uris: [`${publicUrl}/login/return`],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: "none",
  };
  // RFC 6749 §4.4: automation authenticates itself and gets a bearer token; no browser, no redirects.
  const automation = apiClients.map((client): ClientMetadata => ({
    client_id: client.clientId,
    client_secret: client.clientSecret,
    client_name: client.clientId,
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    post_logout_redirect_uris: [],
    token_endpoint_auth_method: "client_secret_basic",
  }));
  return [...platforms, firstParty, ...automation];
}

/** Page → koa response, with its own CSP (the app-wide one forbids what the provider's redirects need). */
function send(ctx: KoaContextWithOIDC, page: Page): void {
  ctx.type = "html";
  ctx.set("Content-Security-Policy", page.csp);
  ctx.set("Cache-Control", "no-store");
  ctx.body = page.html;
}

function languageOf(ctx: KoaContextWithOIDC): ReturnType<typeof pickLanguage> {
  const lang = ctx.query.lang;
  const uiLocales = ctx.oidc?.params?.ui_locales;
  return pickLanguage({
    lang: typeof lang === "string" ? lang : undefined,
    uiLocales: typeof uiLocales === "string" ? uiLocales : undefined,
    acceptLanguage: ctx.get("accept-language"),
  });
}

/** Where a session or its tokens were used when the person's state was checked. */
type LiveUse = "authorize" | "refresh" | "userinfo";

/** Builds the provider; mount `provider.callback()` at {@link PROVIDER_PATH}. */
export function createProvider(options: ProviderOptions): Provider {
  const { signIn, people, logger } = options;
  const live = new LiveChecks(people, options.store, { cacheSeconds: signIn.session.liveCheckSeconds });

  /**
   * A session or token used by a person who is no longer active (or whose sources cannot say so now):
   * audited; on a refusal (not an unreachable source) the grants go, so their tokens stop at once.
   */
  async function refused(
    ctx: KoaContextWithOIDC,
    personId: string,
    use: LiveUse,
    outcome: Extract<ActiveOutcome, { ok: false }>,
    grantIds: readonly string[],
  ): Promise<void> {
    const definite = outcome.code !== "SOURCE_UNAVAILABLE";
    if (definite)
      for (const grantId of grantIds) {
        await options.store.revokeOidcGrant(grantId);
        await options.store.destroyOidcArtifact("Grant", grantId);
      }
    const clientId = ctx.oidc?.client?.clientId;
    await options
      .audit?.({
        actor: personId,
        action: "session.ended",
        subject: personId,
        details: {
          personId,
          code: outcome.code,
          reason: outcome.reason.slice(0, 1024),
          use,
          grantsRevoked: definite ? grantIds.length : 0,
          ...(clientId === undefined ? {} : { clientId }),
          ip: ctx.ip,
          userAgent: ctx.get("user-agent").slice(0, 512),
        },
      })
      .catch((err: unknown) => logger.error({ err }, "audit of an ended session failed"));
  }

  // A session is used silently (no sign-in page) only while its person is active now: a login prompt
  // check, so an ordinary authorization shows the sign-in page (which asks the sources again) and a
  // prompt=none one answers login_required. Right after an interactive sign-in it has just been asked.
  const policy = interactionPolicy.base();
  policy.get("login")?.checks.add(
    new interactionPolicy.Check(
      "person_inactive",
      "the End-User is no longer active in a linked source",
      "login_required",
      async (ctx) => {
        const { session } = ctx.oidc;
        const personId = session?.accountId;
        if (session === undefined || personId === undefined || ctx.oidc.result?.login !== undefined)
          return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const outcome = await live.check(personId, { strict: true });
        if (outcome.ok) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const grantIds = Object.values(session.authorizations ?? {}).flatMap((a) =>
          typeof a.grantId === "string" ? [a.grantId] : [],
        );
        await refused(ctx, personId, "authorize", outcome, grantIds);
        // Silent: no sign-in follows in this request, so the session can go now (the next authorization
        // is interactive). Otherwise the sign-in about to happen replaces it.
        const prompts = ctx.oidc.prompts;
        if (outcome.code !== "SOURCE_UNAVAILABLE" && prompts.has("none")) await session.destroy();
        return interactionPolicy.Check.REQUEST_PROMPT;
      },
    ),
  );
  const targets = new Map(signIn.clients.map((c) => [c.clientId, c.target]));
  const apiClientIds = new Set((options.apiClients ?? []).map((c) => c.clientId));
  const apiResource = adminApiResourceOf(options.publicUrl);
  const idleSeconds = signIn.session.idleMinutes * 60;
  const absoluteSeconds = signIn.session.absoluteHours * 3600;
  const secure = options.publicUrl.startsWith("https:");
  const cookie = { httpOnly: true, sameSite: "lax", secure, signed: true } as const;

  const configuration: Configuration = {
    adapter: createOidcAdapter(options.store),
    clients: clientMetadata(signIn, options.publicUrl, options.apiClients),
    jwks: { keys: options.signingKeys.map((key) => ({ ...key, use: "sig" })) },
    cookies: { names: { ...COOKIE_NAMES }, long: cookie, short: cookie, keys: [...options.cookieSecrets] },
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    scopes: ["openid", "offline_access", ...Object.keys(SCOPE_CLAIMS).filter((s) => s !== "openid")],
    responseTypes: ["code", "none"],
    acrValues: SOURCE_TYPES.map(acrOf),
    // Scope claims go into the ID token too, not only userinfo: platforms read roles from the ID token.
    conformIdTokenClaims: false,
    // RFC 9700 §2.1.1: PKCE for every client, confidential or not; oidc-provider only knows S256.
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // Every platform may refresh; without offline_access the refresh token ends with the session
    // (oidc-provider's expiresWithSession), so a logout or a session timeout ends it too.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    ttl: {
      AccessToken: signIn.tokens.accessTokenSeconds,
      AuthorizationCode: 60,
      IdToken: signIn.tokens.idTokenSeconds,
      RefreshToken: signIn.tokens.refreshTokenDays * 86_400,
      Grant: signIn.tokens.refreshTokenDays * 86_400,
      ClientCredentials: signIn.tokens.accessTokenSeconds,
      Interaction: 600,
      // Saved again at every use, so the idle timeout restarts; never beyond login + absolute.
      Session: (_ctx, session) => {
        const now = Math.floor(Date.now() / 1000);
        const loginTs = typeof session.loginTs === "number" ? session.loginTs : now;
        return Math.max(1, Math.min(idleSeconds, loginTs + absoluteSeconds - now));
      },
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      // RFC 8707: an API client's token is for the admin API only, opaque (looked up in the Store, so it
      // can be revoked and its client checked at each use). Platforms ask for no resource: unchanged.
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client, oneOf) =>
          oneOf ?? (apiClientIds.has(client.clientId) ? apiResource : undefined),
        getResourceServerInfo: (_ctx, resource, client) => {
          if (resource !== apiResource || !apiClientIds.has(client.clientId))
            throw new errors.InvalidTarget();
          return {
            audience: apiResource,
            scope: ADMIN_API_SCOPE,
            accessTokenFormat: "opaque",
            accessTokenTTL: signIn.tokens.accessTokenSeconds,
          };
        },
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => send(ctx, renderLogoutConfirm(languageOf(ctx), form)),
        postLogoutSuccessSource: (ctx) => send(ctx, renderLoggedOut(languageOf(ctx))),
      },
    },
    interactions: { policy, url: (_ctx, interaction) => `/login/${interaction.uid}` },
    // No consent screen: the platforms are the organisation's own; grant what they ask for.
    loadExistingGrant: async (ctx) => {
      const { client, session } = ctx.oidc;
      if (client === undefined || session?.accountId === undefined) return undefined;
      // Each authorization counts as use of the session and restarts its idle timeout.
      (session as typeof session & { touched: boolean }).touched = true;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      let grant = grantId === undefined ? undefined : await ctx.oidc.provider.Grant.find(grantId);
      if (grant === undefined || grant.accountId !== session.accountId)
        grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      const scope = ctx.oidc.params?.scope;
      grant.addOIDCScope(typeof scope === "string" ? scope : "openid");
      grant.addOIDCClaims(["amr", "acr", "auth_time"]);
      await grant.save();
      return grant;
    },
    findAccount: async (ctx, sub, token) => {
      // A refresh or a userinfo call uses the session's tokens without the person: they must be active
      // now, as a silent sign-in must (strict: a source that cannot be asked refuses). A code has just
      // been issued by an authorization that checked.
      if (token !== undefined && (token.kind === "RefreshToken" || token.kind === "AccessToken")) {
        const outcome = await live.check(sub, { strict: true });
        if (!outcome.ok) {
          const grantId = (token as { grantId?: unknown }).grantId;
          const use = token.kind === "RefreshToken" ? "refresh" : "userinfo";
          await refused(ctx, sub, use, outcome, typeof grantId === "string" ? [grantId] : []);
          return undefined;
        }
      }
      const clientId = ctx.oidc.client?.clientId;
      const claims = await people.claims(sub, clientId === undefined ? undefined : targets.get(clientId));
      // Unknown or no longer active: the session stops working and refresh tokens are refused.
      if (claims === null) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          ...(claims.name === undefined ? {} : { name: claims.name }),
          ...(claims.email === undefined ? {} : { email: claims.email }),
          ...(claims.employee_no === undefined ? {} : { employee_no: claims.employee_no }),
          departments: [...claims.departments],
          roles: [...claims.roles],
        }),
      };
    },
    renderError: (ctx, out, error) => {
      // The OAuth error and its description stay in the log; the person reads one plain sentence.
      logger.info({ error: out.error, description: out.error_description, err: error }, "oidc error page");
      send(ctx, renderProviderError(languageOf(ctx)));
    },
    clientBasedCORS: (_ctx, origin, client) =>
      client.redirectUris?.some((uri) => new URL(uri).origin === origin) ?? false,
    // Clients are the operator's own configuration, and finance platforms often sit on the internal
    // network: back-channel logout may reach private addresses, which oidc-provider's fetch refuses.
    fetch: (input, init) => {
      const { dispatcher: _dispatcher, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return fetch(input, rest);
    },
  };

  const provider = new Provider(issuerOf(options.publicUrl), configuration);
  provider.proxy = options.trustProxy;
  provider.on("server_error", (_ctx, err) => logger.error({ err }, "oidc provider error"));
  provider.on("backchannel.error", (_ctx, err, client) =>
    logger.warn({ err, clientId: client.clientId }, "back-channel logout failed"),
  );
  provider.on("end_session.success", (ctx) => {
    const personId = ctx.oidc.session?.accountId;
    if (personId === undefined) return;
    options.onLogout?.({
      personId,
      ...(ctx.oidc.client?.clientId === undefined ? {} : { clientId: ctx.oidc.client.clientId }),
      ip: ctx.ip,
      userAgent: ctx.get("user-agent"),
    });
  });
  return provider;
}
