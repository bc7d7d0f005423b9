import type { z } from "zod";
import { RateLimiter } from "../http/rate-limiter.js";
import { sendRequest, type HttpReply } from "../http/send.js";
import { TokenCache, type IssuedToken } from "../http/token-cache.js";
import { callVendor, type CallOutcome, type RetryPolicy } from "../http/vendor-call.js";
import type { SourceContext } from "../source.js";
import type { WeComConfig } from "./config.js";
import { classifyReply, replyErrcode, type CallSite, type SecretKind } from "./errors.js";
import { tokenReply } from "./schemas.js";

/**
 * WeCom blocks an API for 60 s after its per-minute limit (WX-DOC 90454), so throttled waits start at a
 * minute and may reach two; busy and 5xx are retried at most 3 times as the reference advises.
 */
const WECOM_RETRY_POLICY: RetryPolicy = {
  transientRetries: 3,
  throttledRetries: 8,
  tokenRefreshes: 2,
  baseDelayMs: 1_000,
  maxDelayMs: 120_000,
};

/**
 * A 45009 that outlasts this is not the 60 s minute block but the 60 min hour block (150,000 calls per API
 * per hour) or a day block: the read stops as BANNED instead of waiting an hour.
 */
const BLOCK_GIVE_UP_MS = 5 * 60_000;

/** A request: GET with query parameters, or POST with a JSON body. */
export type WeComRequest =
  | { readonly method: "GET"; readonly query?: Readonly<Record<string, string>> }
  | { readonly method: "POST"; readonly body: unknown };

/** How a client differs from the directory reader's. */
export interface WeComClientOptions {
  /**
   * Which secret to use; default: the 通讯录同步 secret when configured, else the app's. Sign-in asks for
   * the app's: login codes belong to the app.
   */
  readonly secret?: SecretKind;
  /** Retry limits; default: the reader's (minutes of waiting are fine for a sync, not for a sign-in). */
  readonly policy?: RetryPolicy;
}

/** Calls the WeCom API for one source: one cached token, one rate limiter per API, retries. */
export class WeComClient {
  readonly kind: SecretKind;
  private readonly tokens: TokenCache;
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly base: string;
  private readonly policy: RetryPolicy;

  constructor(
    private readonly context: SourceContext,
    private readonly config: WeComConfig,
    options: WeComClientOptions = {},
  ) {
    this.kind = options.secret ?? (config.contactSecret !== undefined ? "contact-sync" : "app");
    if (this.kind === "app" && config.secret === undefined)
      throw new TypeError("WeComClient: an app client needs config.secret (the app's Secret)");
    this.policy = options.policy ?? WECOM_RETRY_POLICY;
    this.base = config.baseUrl.replace(/\/+$/, "");
    this.tokens = new TokenCache(() => this.fetchToken(), context.now);
  }

  /** What the secret is, for messages and reports. */
  describeSecret(): string {
    return this.kind === "contact-sync"
      ? "the 通讯录同步 (contact sync) secret"
      : `the secret of app ${this.config.agentId ?? "?"}`;
  }

  /** Fetches (or reuses) the access token; throws a SourceReadError when WeCom refuses it. */
  async token(): Promise<void> {
    await this.tokens.get();
  }

  /** One API call with token refresh, backoff and caps; throws a SourceReadError naming `where`. */
  async call<T, U = never>(
    api: string,
    request: WeComRequest,
    schema: z.ZodType<T>,
    where: string,
    signal?: AbortSignal,
    /** errcodes the caller handles itself (user/list_id: 50100 restarts the listing), with their value. */
    handled?: ReadonlyMap<number, U>,
  ): Promise<T | U> {
    const site: CallSite = {
      api,
      kind: this.kind,
      ...(this.config.agentId === undefined ? {} : { agentId: this.config.agentId }),
    };
    const limiter = this.limiter(api);
    let throttledSince: number | undefined;
    return callVendor<T | U>({
      sourceId: this.context.sourceId,
      where,
      tokens: this.tokens,
      policy: this.policy,
      sleep: this.context.sleep,
      ...(signal === undefined ? {} : { signal }),
      attempt: async (token) => {
        await limiter.take();
        const query = new URLSearchParams({
          access_token: token,
          ...(request.method === "GET" ? request.query : {}),
        });
        const reply = await sendRequest(`${this.base}${api}?${query.toString()}`, {
          method: request.method,
          ...(request.method === "POST" ? { body: request.body } : {}),
          timeoutMs: this.config.timeoutMs,
          ...(signal === undefined ? {} : { signal }),
        });
        const errcode = replyErrcode(reply);
        if (errcode !== undefined && handled?.has(errcode))
          return { kind: "ok", value: handled.get(errcode)! };
        const outcome = classifyReply(reply, site, schema);
        if (errcode !== 45009) return outcome;
        const now = this.context.now().getTime();
        throttledSince ??= now;
        if (now - throttledSince < BLOCK_GIVE_UP_MS) return outcome;
        return {
          kind: "failed",
          reason: {
            code: "BANNED",
            message: `WeCom has refused ${api} with 45009 (api freq out of limit) for more than ${BLOCK_GIVE_UP_MS / 60_000} minutes: the corp passed the hourly limit of 150,000 calls per API (blocked for up to 60 minutes) or a daily limit — read again later, and lower requestsPerMinute if other tools share the corp's quota`,
          },
        };
      },
    });
  }

  private limiter(api: string): RateLimiter {
    let limiter = this.limiters.get(api);
    if (limiter === undefined) {
      // A second of slack over WeCom's minute: a call taken at the end of one minute may reach WeCom in the
      // next one, where its fixed window would count it once more.
      limiter = new RateLimiter(
        this.config.requestsPerMinute,
        61_000,
        () => this.context.now().getTime(),
        (ms) => this.context.sleep(ms),
      );
      this.limiters.set(api, limiter);
    }
    return limiter;
  }

  // gettoken (WX-DOC 91039): one token per secret; busy, 5xx and network errors are retried 3 times.
  private fetchToken(): Promise<IssuedToken> {
    const secret = (this.kind === "contact-sync" ? this.config.contactSecret : this.config.secret) ?? "";
    const url = `${this.base}/cgi-bin/gettoken?${new URLSearchParams({ corpid: this.config.corpId, corpsecret: secret }).toString()}`;
    const site: CallSite = {
      api: "/cgi-bin/gettoken",
      kind: this.kind,
      ...(this.config.agentId === undefined ? {} : { agentId: this.config.agentId }),
    };
    return callVendor<IssuedToken>({
      sourceId: this.context.sourceId,
      where: "GET /cgi-bin/gettoken",
      policy: this.policy,
      sleep: this.context.sleep,
      attempt: async () => {
        const reply = await sendRequest(url, { method: "GET", timeoutMs: this.config.timeoutMs });
        const refused = this.tokenRefusal(reply);
        if (refused !== null) return refused;
        const outcome = classifyReply(reply, site, tokenReply);
        return outcome.kind === "ok"
          ? {
              kind: "ok",
              value: { value: outcome.value.access_token, expiresInSeconds: outcome.value.expires_in },
            }
          : outcome;
      },
    });
  }

  /** gettoken answers that repeating cannot fix: a wrong secret, or gettoken itself throttled (an hour). */
  private tokenRefusal(reply: HttpReply): CallOutcome<never> | null {
    if (reply.kind !== "reply" || reply.status !== 200) return null;
    const errcode = (reply.json as { errcode?: unknown } | undefined)?.errcode;
    if (errcode === 40001 || errcode === 40091 || errcode === 41004) {
      const where =
        this.kind === "contact-sync"
          ? "管理后台 → 安全与管理 → 管理工具 → 通讯录同步"
          : `应用管理 → app ${this.config.agentId ?? "?"} → Secret`;
      return {
        kind: "failed",
        reason: {
          code: "AUTH_FAILED",
          message: `WeCom rejected ${this.describeSecret()} for corp ${this.config.corpId} (errcode ${errcode}) — copy it again from ${where}; a secret that was reset in the console stops working at once`,
        },
      };
    }
    if (errcode === 45009) {
      return {
        kind: "failed",
        reason: {
          code: "RATE_LIMITED",
          message:
            "WeCom throttles gettoken for this secret (errcode 45009) — too many token requests; wait an hour",
        },
      };
    }
    return null;
  }
}
