/**
 * Sign-in at a corporate OpenID Connect IdP (Azure AD, ADFS) with openid-client: authorization code flow
 * with PKCE (S256), state and nonce, and the ID token's signature verified against the IdP's JWKS even
 * though it came straight from the token endpoint. openid-client's errors stay in this folder: callers
 * get a {@link SignInOutcome}.
 */
import * as client from "openid-client";
import { AppError } from "../../domain/errors.js";
import type {
  FlowInput,
  FlowState,
  RedirectSignIn,
  RedirectStart,
  SignInConnector,
  SignInContext,
  SignInFailureCode,
  SignInOutcome,
} from "../sign-in.js";
import { clipUntrusted } from "../http/untrusted-text.js";
import type { SourcePerson } from "../snapshot.js";
import type { OidcConfig } from "./config.js";

type Fetch = (url: string, options: client.CustomFetchOptions) => Promise<Response>;

/** A failure of the transport itself (refused, reset, timed out), told apart from a bad answer. */
class UpstreamUnreachable extends Error {
  override readonly name = "UpstreamUnreachable";
}

/** What one authorization code grant sent to and got back from the token endpoint. */
interface TokenExchange {
  response?: { readonly status: number; readonly headers: Headers; readonly body: ArrayBuffer };
}

/** Opens the sign-in connector of an `oidc` source. */
export function openOidcSignIn(context: SignInContext, config: OidcConfig): SignInConnector {
  const flow = new OidcRedirectFlow(context, config);
  return {
    sourceId: context.sourceId,
    web: flow,
    close: async () => {},
  };
}

class OidcRedirectFlow implements RedirectSignIn {
  readonly kind = "redirect";
  readonly #context: SignInContext;
  readonly #config: OidcConfig;
  readonly #scope: string;
  #metadata: Promise<client.ServerMetadata> | undefined;
  #jwks: client.ExportedJWKSCache | undefined;

  constructor(context: SignInContext, config: OidcConfig) {
    this.#context = context;
    this.#config = config;
    const scopes = config.scopes.includes("openid") ? config.scopes : ["openid", ...config.scopes];
    this.#scope = scopes.join(" ");
  }

  async begin(input: FlowInput): Promise<RedirectStart> {
    let configuration: client.Configuration;
    try {
      configuration = this.#configure(await this.#discover(), this.#fetch());
    } catch (error) {
      throw new AppError("SOURCE_UNAVAILABLE", `${this.#context.sourceId}: ${describeFailure(error)}`, {
        cause: error,
      });
    }
    const codeVerifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(configuration, {
      response_type: "code",
      redirect_uri: input.callbackUrl,
      scope: this.#scope,
      state: input.state,
      nonce,
      // RFC 7636 §4.2: plain is never sent, whatever the IdP advertises
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
    });
    return { url: url.href, keep: { codeVerifier, nonce } };
  }

  async complete(
    input: FlowInput & { readonly params: Readonly<Record<string, string>>; readonly keep: FlowState | null },
  ): Promise<SignInOutcome> {
    const codeVerifier = input.keep?.["codeVerifier"];
    const nonce = input.keep?.["nonce"];
    if (codeVerifier === undefined || nonce === undefined) {
      return this.#fail("INVALID_RESPONSE", "an OIDC response that no sign-in of ours asked for");
    }
    const currentUrl = new URL(input.callbackUrl);
    for (const [name, value] of Object.entries(input.params)) currentUrl.searchParams.append(name, value);
    const checks: client.AuthorizationCodeGrantChecks = {
      pkceCodeVerifier: codeVerifier,
      expectedState: input.state,
      expectedNonce: nonce,
      idTokenExpected: true,
    };

    let metadata: client.ServerMetadata;
    try {
      metadata = await this.#discover();
    } catch (error) {
      return this.#fail("SOURCE_UNAVAILABLE", describeFailure(error));
    }
    const exchange: TokenExchange = {};
    const configuration = this.#configure(metadata, this.#fetch(exchange), this.#jwks);
    try {
      const tokens = await client.authorizationCodeGrant(configuration, currentUrl, checks);
      this.#jwks = client.getJwksCache(configuration) ?? this.#jwks;
      return this.#identify(tokens.claims());
    } catch (error) {
      if (codeOf(error) === "OAUTH_KEY_SELECTION_FAILED" && exchange.response !== undefined) {
        return this.#retryWithFreshKeys(metadata, currentUrl, checks, exchange.response);
      }
      return this.#classify(error);
    }
  }

  /**
   * The ID token names a key our cached JWKS lacks (the IdP rotated its keys) and openid-client refetches
   * a JWKS younger than a minute only on the next call. The code is spent, so the same token response is
   * checked again — every check, signature included — against a JWKS fetched now.
   */
  async #retryWithFreshKeys(
    metadata: client.ServerMetadata,
    currentUrl: URL,
    checks: client.AuthorizationCodeGrantChecks,
    recorded: NonNullable<TokenExchange["response"]>,
  ): Promise<SignInOutcome> {
    const fetchNow = this.#fetch();
    const replay: Fetch = async (url, options) =>
      isCodeGrant(options)
        ? new Response(recorded.body.slice(0), { status: recorded.status, headers: recorded.headers })
        : fetchNow(url, options);
    const configuration = this.#configure(metadata, replay);
    try {
      const tokens = await client.authorizationCodeGrant(configuration, currentUrl, checks);
      this.#jwks = client.getJwksCache(configuration);
      return this.#identify(tokens.claims());
    } catch (error) {
      return this.#classify(error);
    }
  }

  #identify(claims: client.IDToken | undefined): SignInOutcome {
    // idTokenExpected makes openid-client refuse a response without one; this only narrows the type.
    if (claims === undefined) return this.#fail("INVALID_RESPONSE", "the token response has no ID token");
    const { claims: names, emailDomains } = this.#config;
    const person: SourcePerson = {
      subject: claims.sub,
      ...optional("username", pickClaim(claims, names.username)),
      ...optional("name", pickClaim(claims, names.name)),
      ...optional("email", verifiedEmail(claims, emailDomains)),
      ...optional("employeeNo", pickClaim(claims, names.employeeNo)),
      departments: [],
      managers: [],
      status: "active",
      attributes: {},
    };
    return { ok: true, identity: { sourceId: this.#context.sourceId, subject: claims.sub, person } };
  }

  #classify(error: unknown): SignInOutcome {
    if (isUnreachable(error)) return this.#fail("SOURCE_UNAVAILABLE", describeFailure(error));
    if (error instanceof client.AuthorizationResponseError) {
      // RFC 6749 §4.1.2.1: the IdP's own answer on the redirect, after state and iss were checked
      if (error.error === "access_denied") return this.#fail("CANCELLED", "the IdP answered access_denied");
      const code = error.error === "temporarily_unavailable" || error.error === "server_error";
      return this.#fail(
        code ? "SOURCE_UNAVAILABLE" : "INVALID_RESPONSE",
        `the IdP answered ${clipUntrusted(error.error)}`,
      );
    }
    if (error instanceof client.ResponseBodyError) {
      // RFC 6749 §5.2: invalid_client means the IdP refuses our own credentials
      const ours =
        error.error === "invalid_client" || error.error === "unauthorized_client" || error.status >= 500;
      return this.#fail(
        ours ? "SOURCE_UNAVAILABLE" : "INVALID_RESPONSE",
        `the token endpoint answered ${clipUntrusted(error.error)} (HTTP ${error.status})`,
      );
    }
    if (error instanceof client.ClientError) {
      if (error.code === "OAUTH_RESPONSE_IS_NOT_CONFORM" || error.code === "OAUTH_TIMEOUT") {
        return this.#fail("SOURCE_UNAVAILABLE", describeFailure(error));
      }
      return this.#fail("INVALID_RESPONSE", describeFailure(error));
    }
    // A TypeError here is our own mistake (a caller error in openid-client's terms): let it surface.
    throw error;
  }

  #fail(code: SignInFailureCode, reason: string): SignInOutcome {
    return { ok: false, code, reason: `${this.#context.sourceId}: ${reason}` };
  }

  /** Discovery, once; a failure is not cached, so the next attempt asks the IdP again. */
  #discover(): Promise<client.ServerMetadata> {
    if (this.#metadata === undefined) {
      const { issuer, clientId, allowInsecureHttp } = this.#config;
      this.#metadata = client
        .discovery(new URL(issuer), clientId, undefined, undefined, {
          [client.customFetch]: this.#fetch(),
          timeout: Math.ceil(this.#context.timeoutMs / 1000),
          ...(allowInsecureHttp ? { execute: [client.allowInsecureRequests] } : {}),
        })
        .then((configuration) => configuration.serverMetadata());
      this.#metadata.catch(() => {
        this.#metadata = undefined;
      });
    }
    return this.#metadata;
  }

  /**
   * A configuration for one attempt: every attempt records its own token exchange. The JWKS is shared
   * between attempts through openid-client's exported cache.
   */
  #configure(
    metadata: client.ServerMetadata,
    fetch: Fetch,
    jwks?: client.ExportedJWKSCache,
  ): client.Configuration {
    const { clientId, clientSecret, allowInsecureHttp } = this.#config;
    const configuration = new client.Configuration(
      metadata,
      clientId,
      clientSecret,
      clientSecret === undefined ? client.None() : client.ClientSecretPost(clientSecret),
    );
    configuration[client.customFetch] = fetch;
    configuration.timeout = Math.ceil(this.#context.timeoutMs / 1000);
    if (allowInsecureHttp) client.allowInsecureRequests(configuration);
    // openid-client trusts TLS for tokens from the token endpoint and skips their signature by default.
    client.enableNonRepudiationChecks(configuration);
    if (jwks !== undefined) client.setJwksCache(configuration, jwks);
    return configuration;
  }

  /** fetch bounded by the source's timeout; transport failures become {@link UpstreamUnreachable}. */
  #fetch(exchange?: TokenExchange): Fetch {
    const timeoutMs = this.#context.timeoutMs;
    return async (url, options) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
      let response: Response;
      let body: ArrayBuffer;
      try {
        response = await fetch(url, { ...options, signal } as RequestInit);
        // Read here, under the same bound, so a body that trickles in counts as a timeout too.
        body = await response.arrayBuffer();
      } catch (error) {
        const what = timeout.aborted ? `no answer within ${timeoutMs} ms` : "unreachable";
        throw new UpstreamUnreachable(`${new URL(url).host} ${what}`, { cause: error });
      }
      if (exchange !== undefined && isCodeGrant(options)) {
        exchange.response = { status: response.status, headers: response.headers, body };
      }
      return new Response(body.slice(0), { status: response.status, headers: response.headers });
    };
  }
}

/** The token endpoint request of an authorization code grant (RFC 6749 §4.1.3). */
function isCodeGrant(options: client.CustomFetchOptions): boolean {
  return options.body instanceof URLSearchParams && options.body.get("grant_type") === "authorization_code";
}

function isUnreachable(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof UpstreamUnreachable) return true;
  }
  return false;
}

function codeOf(error: unknown): string | undefined {
  return error instanceof client.ClientError ? error.code : undefined;
}

/** One line for the audit log: openid-client's code and message, never tokens or response bodies. */
function describeFailure(error: unknown): string {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof UpstreamUnreachable) return `the IdP is not reachable: ${cause.message}`;
  }
  if (error instanceof client.ClientError) {
    // openid-client's message is generic ("invalid response encountered"); the cause says which check
    // failed. oauth4webapi keeps the compared values in its cause objects, out of these messages.
    const detail =
      error.cause instanceof Error && error.cause.message !== error.message ? `: ${error.cause.message}` : "";
    return `${error.code ?? "OAUTH_ERROR"}: ${error.message}${detail}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function pickClaim(claims: client.IDToken, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = claims[name];
    if (typeof value === "string" && value.trim() !== "") return value.trim();
    if (typeof value === "number") return String(value);
  }
  return undefined;
}

/** OIDC Core §5.1: an email counts only with `email_verified: true`, and only in the organisation's domains. */
function verifiedEmail(claims: client.IDToken, domains: readonly string[] | undefined): string | undefined {
  const email = claims["email"];
  if (claims["email_verified"] !== true || typeof email !== "string") return undefined;
  const at = email.lastIndexOf("@");
  if (at < 1) return undefined;
  if (domains !== undefined && !domains.includes(email.slice(at + 1).toLowerCase())) return undefined;
  return email;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
