import { SourceReadError } from "../builder.js";
import type { IncompleteCode, IncompleteReason } from "../snapshot.js";
import type { TokenCache } from "./token-cache.js";

/**
 * What one attempt of a vendor call came to, as the vendor's folder classifies it (DingTalk errcode,
 * 88/sub_code, HTTP {code}; WeCom errcode). The loop below decides what to do with it.
 */
export type CallOutcome<T> =
  | { readonly kind: "ok"; readonly value: T }
  /** The token was rejected (expired, revoked): fetch a new one and repeat the same request. */
  | { readonly kind: "token-rejected"; readonly detail: string }
  /** Throttled: wait at least `waitMs`, then repeat, with growing waits and a cap. */
  | { readonly kind: "throttled"; readonly waitMs: number; readonly detail: string }
  /** Busy, 5xx or a network error: repeat a few times with backoff; `code` is reported if that fails. */
  | { readonly kind: "transient"; readonly detail: string; readonly code?: IncompleteCode }
  /**
   * Cannot succeed by repeating (permission, not found, banned, malformed): ends this part of the read.
   * The message is prefixed with the source id.
   */
  | { readonly kind: "failed"; readonly reason: IncompleteReason };

/** Limits of the retry loop. */
export interface RetryPolicy {
  /** Repeats after transient errors (busy, 5xx, network): DingTalk and WeCom advise at most 3. */
  readonly transientRetries: number;
  /** Repeats after throttling before the call is given up as RATE_LIMITED. */
  readonly throttledRetries: number;
  /** Token refreshes for one call; a token rejected right after a refresh is an auth problem. */
  readonly tokenRefreshes: number;
  /** First backoff; doubles per repeat. */
  readonly baseDelayMs: number;
  /** Longest wait of our own backoff (a wait the vendor asks for is kept even when longer). */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  transientRetries: 3,
  throttledRetries: 8,
  tokenRefreshes: 2,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
};

/** One call with token refresh, backoff and caps; throws a SourceReadError naming `where`. */
export async function callVendor<T>(options: {
  /** Source id, for messages. */
  readonly sourceId: string;
  /** The endpoint and page, for messages (`POST /topapi/v2/user/list dept 42 cursor 100`). */
  readonly where: string;
  /** The app token; absent for the token call itself (the attempt then gets ""). */
  readonly tokens?: TokenCache;
  readonly policy?: RetryPolicy;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly signal?: AbortSignal;
  /** Makes one attempt with the given token. */
  readonly attempt: (token: string) => Promise<CallOutcome<T>>;
}): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  let transient = 0;
  let throttled = 0;
  let refreshes = 0;
  const give = (code: IncompleteCode, message: string): never => {
    throw new SourceReadError({ code, message: `${options.sourceId}: ${message}`, where: options.where });
  };
  // The vendor's own wait (WeCom's 60 s minute block) is honoured even above maxDelayMs.
  const backoff = (n: number, atLeast = 0): number =>
    Math.max(atLeast, Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** n));

  for (;;) {
    if (options.signal?.aborted) give("ABORTED", "read aborted");
    const token = options.tokens === undefined ? "" : await options.tokens.get();
    const outcome = await options.attempt(token);
    switch (outcome.kind) {
      case "ok":
        return outcome.value;
      case "failed":
        throw new SourceReadError({
          ...outcome.reason,
          message: `${options.sourceId}: ${outcome.reason.message}`,
          where: outcome.reason.where ?? options.where,
        });
      case "token-rejected":
        options.tokens?.invalidate(token);
        if (options.tokens === undefined || refreshes++ >= policy.tokenRefreshes) {
          give(
            "AUTH_FAILED",
            `the access token was rejected again right after a refresh (${outcome.detail}); check the app's credentials`,
          );
        }
        break;
      case "throttled":
        if (throttled >= policy.throttledRetries) {
          give(
            "RATE_LIMITED",
            `still rate-limited after ${throttled} waits (${outcome.detail}); read again later or lower the request rate`,
          );
        }
        await options.sleep(backoff(throttled++, outcome.waitMs), options.signal);
        break;
      case "transient":
        if (transient >= policy.transientRetries) {
          give(outcome.code ?? "SERVER_ERROR", `${outcome.detail}, still failing after ${transient} retries`);
        }
        await options.sleep(backoff(transient++), options.signal);
        break;
    }
  }
}
