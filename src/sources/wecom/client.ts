import type { z } from "zod";
import { SourceReadError } from "../builder.js";
import { RateLimiter } from "../http/rate-limiter.js";
import { sendRequest } from "../http/send.js";
import { TokenCache } from "../http/token-cache.js";
import { callVendor, type RetryPolicy } from "../http/vendor-call.js";
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

/** Calls the WeCom API for one source: one cached token, one rate limiter per API, retries. */
export class WeComClient {
  readonly kind: SecretKind;
  private readonly tokens: TokenCache;
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly base: string;

  constructor(
    private readonly context: SourceContext,
    private readonly config: WeComConfig,
  ) {
    this.kind = config.contactSecret !== undefined ? "contact-sync" : "app";
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
      policy: WECOM_RETRY_POLICY,
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
  private async fetchToken(): Promise<{ value: string; expiresInSeconds: number }> {
    const secret = this.config.contactSecret ?? this.config.secret ?? "";
    const url = `${this.base}/cgi-bin/gettoken?${new URLSearchParams({ corpid: this.config.corpId, corpsecret: secret }).toString()}`;
    const site: CallSite = {
      api: "/cgi-bin/gettoken",
      kind: this.kind,
      ...(this.config.agentId === undefined ? {} : { agentId: this.config.agentId }),
    };
    const fail = (code: SourceReadError["reason"]["code"], message: string): never => {
      throw new SourceReadError({
        code,
        message: `${this.context.sourceId}: ${message}`,
        where: "GET /cgi-bin/gettoken",
      });
    };
    for (let attempt = 0; ; attempt++) {
      const reply = await sendRequest(url, { method: "GET", timeoutMs: this.config.timeoutMs });
      if (reply.kind === "reply" && reply.status === 200) {
        const errcode = (reply.json as { errcode?: unknown } | undefined)?.errcode;
        if (errcode === 40001 || errcode === 40091 || errcode === 41004) {
          fail(
            "AUTH_FAILED",
            `WeCom rejected ${this.describeSecret()} for corp ${this.config.corpId} (errcode ${errcode}) — copy it again from ${
              this.kind === "contact-sync"
                ? "管理后台 → 安全与管理 → 管理工具 → 通讯录同步"
                : `应用管理 → app ${this.config.agentId ?? "?"} → Secret`
            }; a secret that was reset in the console stops working at once`,
          );
        }
        if (errcode === 45009) {
          fail(
            "RATE_LIMITED",
            "WeCom throttles gettoken for this secret (errcode 45009) — too many token requests; wait an hour",
          );
        }
      }
      const outcome = classifyReply(reply, site, tokenReply);
      if (outcome.kind === "ok")
        return { value: outcome.value.access_token, expiresInSeconds: outcome.value.expires_in };
      if (outcome.kind === "transient" && attempt < WECOM_RETRY_POLICY.transientRetries) {
        await this.context.sleep(WECOM_RETRY_POLICY.baseDelayMs * 2 ** attempt);
        continue;
      }
      if (outcome.kind === "failed") return fail(outcome.reason.code, outcome.reason.message);
      if (outcome.kind === "transient")
        return fail(
          outcome.code ?? "SERVER_ERROR",
          `${outcome.detail} at gettoken, still failing after 3 retries`,
        );
      return fail("SERVER_ERROR", `gettoken failed: ${outcome.detail}`);
    }
  }
}
