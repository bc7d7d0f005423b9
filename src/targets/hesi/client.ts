import type { RateLimiter } from "../../sources/http/rate-limiter.js";
import { sendRequest, type HttpReply } from "../../sources/http/send.js";
import { TokenCache, type IssuedToken } from "../../sources/http/token-cache.js";
import { RetryBudget, rateLimiterFor, type TargetClock } from "../http/retry.js";
import type { ChangeFailure } from "../target.js";
import type { HesiConfig } from "./config.js";

/** A Hesi answer: the status and the parsed JSON body (undefined for 204 and non-JSON bodies). */
export interface HesiReply {
  /** HTTP status. */
  readonly status: number;
  /** Parsed body. */
  readonly json: unknown;
  /** Raw body, first characters (no tokens: Hesi does not echo them). */
  readonly text: string;
}

/** One call's end: a 2xx reply, or a classified failure. */
export type HesiCallResult =
  { readonly ok: true; readonly reply: HesiReply } | { readonly ok: false; readonly failure: ChangeFailure };

/** How the client waits and reads the clock (tests pin both). */
export type HesiClock = TargetClock;

const TOKEN_ATTEMPTS = 5;

/**
 * The HTTP side of the Hesi connector: token (with refresh), rate limit, retries of transient failures, and
 * classification of what is left (reference §1.2, §1.7, §6.3). The token goes in the query string, so URLs
 * are never put into messages.
 */
export class HesiClient {
  private readonly tokens: TokenCache;
  private readonly limiter: RateLimiter;
  private refresh: { accessToken: string; refreshToken: string; expireTime: number } | null = null;
  private issuedAt = 0;

  constructor(
    private readonly config: HesiConfig,
    private readonly clock: HesiClock,
  ) {
    this.tokens = new TokenCache(
      () => this.fetchToken(),
      () => new Date(clock.now()),
    );
    this.limiter = rateLimiterFor(config.requestsPerSecond, clock);
  }

  /**
   * One API call with the token, retried on 429 (honouring Retry-After), 5xx, network errors and a rejected
   * token. `retryNetwork: false` for non-idempotent creates: a dropped connection may have applied the
   * change, so the caller looks up before trying again.
   */
  async call(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    options: { query?: Record<string, string>; body?: unknown; retryNetwork?: boolean } = {},
  ): Promise<HesiCallResult> {
    let refreshes = 0;
    let fresh = 0;
    const where = `${method} ${path.replace(/\$[^/?]+|\[[^\]]*\]/g, (m) => (m.startsWith("$") ? "$…" : "[…]"))}`;
    const retries = new RetryBudget(where);
    for (;;) {
      let token: string;
      try {
        token = await this.tokens.get();
      } catch (error) {
        return { ok: false, failure: asFailure(error) };
      }
      const step = retries.next(
        await this.send(method, path, { ...options.query, accessToken: token }, options.body),
        messageOf,
        options,
      );
      if (step.kind === "retry") {
        await this.clock.sleep(step.delayMs);
        continue;
      }
      if (step.kind === "give-up") return { ok: false, failure: step.failure };
      const reply = step.reply;
      if (reply.status >= 200 && reply.status < 300) return { ok: true, reply };
      const message = messageOf(reply);
      if (isTokenRejection(reply.status, message)) {
        // Changelog 1.17.0: a token used right after issue may be refused; wait and repeat with the same one.
        if (this.refresh?.accessToken === token && this.clock.now() - this.issuedAt < 5_000 && fresh++ < 2) {
          await this.clock.sleep(1000);
          continue;
        }
        this.tokens.invalidate(token);
        if (this.refresh?.accessToken === token) this.refresh = null;
        if (refreshes++ >= 2)
          return {
            ok: false,
            failure: {
              class: "auth",
              code: "AUTH_FAILED",
              message: `${where}: token rejected after a refresh (${message})`,
              http: reply.status,
            },
          };
        continue;
      }
      return { ok: false, failure: classify(reply.status, `${where}: ${message}`) };
    }
  }

  /** A new token: refreshed while the current one still lives (32 days, both rotate), else a fresh login. */
  private async fetchToken(): Promise<IssuedToken> {
    const now = this.clock.now();
    if (this.refresh !== null && this.refresh.expireTime > now + 60_000) {
      const reply = await this.send("POST", "/api/openapi/v2/auth/refreshToken", {
        accessToken: this.refresh.accessToken,
        refreshToken: this.refresh.refreshToken,
        powerCode: "219904",
      });
      const value = reply.kind === "reply" && reply.status === 200 ? tokenValue(reply.json) : null;
      if (value !== null) return this.remember(value);
      this.refresh = null; // refused or unreadable: log in again below
    }
    const retries = new RetryBudget("POST getAccessToken");
    for (let attempt = 1; ; attempt++) {
      const reply = await this.send("POST", "/api/openapi/v1/auth/getAccessToken", undefined, {
        appKey: this.config.appKey,
        appSecurity: this.config.appSecurity,
      });
      if (reply.kind === "reply") {
        const value = reply.status === 200 ? tokenValue(reply.json) : null;
        if (value !== null) return this.remember(value);
        if (reply.status !== 429 && reply.status < 500)
          throw failureError(
            "auth",
            "AUTH_FAILED",
            `getAccessToken refused (${reply.status} ${messageOf(reply)}); check appKey, appSecurity and baseUrl`,
            reply.status,
          );
      }
      const step = retries.next(reply, messageOf);
      if (step.kind === "give-up" || attempt >= TOKEN_ATTEMPTS)
        throw failureError("retryable", "UNREACHABLE", `getAccessToken failed ${attempt} times`);
      if (step.kind === "retry") await this.clock.sleep(step.delayMs);
    }
  }

  private remember(value: { accessToken: string; refreshToken: string; expireTime: number }): IssuedToken {
    this.refresh = value;
    this.issuedAt = this.clock.now();
    return {
      value: value.accessToken,
      expiresInSeconds: Math.max(1, Math.floor((value.expireTime - this.clock.now()) / 1000)),
    };
  }

  private async send(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    query: Record<string, string> | undefined,
    body?: unknown,
  ): Promise<HttpReply> {
    await this.limiter.take();
    const url = new URL(path, this.config.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    // The token rides in the query string: sendRequest's messages name the host only, never the URL.
    return sendRequest(url.toString(), { method, body, timeoutMs: this.config.timeoutMs });
  }
}

/** An Error carrying a classified failure (thrown only inside this folder). */
export class HesiFailureError extends Error {
  constructor(readonly failure: ChangeFailure) {
    super(failure.message);
    this.name = "HesiFailureError";
  }
}

function failureError(
  cls: ChangeFailure["class"],
  code: string,
  message: string,
  http?: number,
): HesiFailureError {
  return new HesiFailureError({ class: cls, code, message, ...(http === undefined ? {} : { http }) });
}

function asFailure(error: unknown): ChangeFailure {
  if (error instanceof HesiFailureError) return error.failure;
  return {
    class: "retryable",
    code: "UNREACHABLE",
    message: error instanceof Error ? error.message : String(error),
  };
}

/** The message of an error reply: Hesi's `errorMessage`, else the raw text (the shape is not documented, §1.7). */
export function messageOf(reply: HesiReply): string {
  const json = reply.json as { errorMessage?: unknown; message?: unknown } | undefined;
  if (typeof json?.errorMessage === "string") return json.errorMessage;
  if (typeof json?.message === "string") return json.message;
  return reply.text || `HTTP ${reply.status}`;
}

/** 401, or a 403 that names the token (§1.2: a bad or expired token is 403, like a pending-approval block). */
export function isTokenRejection(status: number, message: string): boolean {
  return status === 401 || (status === 403 && /accessToken|token|未授权/i.test(message));
}

/**
 * Hesi's remaining errors by status + message (§1.7: no documented body shape): 403 means a pending-approval
 * block, a missing permission, a read-only edition or an invalid staff, told apart by the text.
 */
export function classify(status: number, message: string): ChangeFailure {
  if (status === 403) {
    if (/待办|交接/.test(message))
      return { class: "conflict", code: "PENDING_APPROVALS", message, http: status };
    if (/权限/.test(message)) return { class: "auth", code: "FORBIDDEN", message, http: status };
    if (/第三方平台/.test(message))
      return { class: "bad-data", code: "EDITION_READ_ONLY", message, http: status };
    if (/无效的员工/.test(message)) return { class: "bad-data", code: "NOT_FOUND", message, http: status };
    return { class: "bad-data", code: "HTTP_403", message, http: status };
  }
  if (status === 409 || status === 412)
    return { class: "conflict", code: `HTTP_${status}`, message, http: status };
  return { class: "bad-data", code: `HTTP_${status}`, message, http: status };
}

function tokenValue(json: unknown): { accessToken: string; refreshToken: string; expireTime: number } | null {
  const value = (json as { value?: Record<string, unknown> } | undefined)?.value;
  if (typeof value?.accessToken !== "string") return null;
  return {
    accessToken: value.accessToken,
    refreshToken: typeof value.refreshToken === "string" ? value.refreshToken : "",
    expireTime: typeof value.expireTime === "number" ? value.expireTime : 0,
  };
}
