import { RateLimiter } from "../../sources/http/rate-limiter.js";
import type { HttpReply } from "../../sources/http/send.js";
import type { ChangeFailure } from "../target.js";

/** How a target's HTTP client waits and reads the clock (tests pin both). */
export interface TargetClock {
  /** Now, in epoch ms. */
  readonly now: () => number;
  /** Waits `ms`. */
  readonly sleep: (ms: number) => Promise<void>;
}

/** The real clock. */
export const systemClock: TargetClock = {
  now: Date.now,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Limits of one call's retries. */
export interface RetryLimits {
  /** Repeats after 5xx and network errors. */
  readonly transient: number;
  /** Repeats after 429. */
  readonly throttled: number;
  /** First backoff; doubles per repeat. */
  readonly baseDelayMs: number;
  /** Longest wait of our own backoff (a longer `Retry-After` is still honoured). */
  readonly maxDelayMs: number;
}

/** Reference finance-targets.md §6.4: base 250 ms, doubling, cap 30 s, a few tries. */
export const DEFAULT_RETRY_LIMITS: RetryLimits = {
  transient: 4,
  throttled: 8,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
};

/** What to do after one attempt. */
export type RetryStep =
  /** Wait, then repeat the same request. */
  | { readonly kind: "retry"; readonly delayMs: number }
  /** Repeating is spent (or unsafe): the call fails with this retryable failure. */
  | { readonly kind: "give-up"; readonly failure: ChangeFailure }
  /** Not a transient answer: the caller handles the reply (2xx or a final error). */
  | { readonly kind: "final"; readonly reply: Extract<HttpReply, { kind: "reply" }> };

/**
 * The retry budget of one call, shared by the targets' clients: 429 waits at least `Retry-After`, 5xx and
 * network errors back off with jitter (§6.4). `retryNetwork: false` is for non-idempotent creates: a dropped
 * connection may have applied the change, so the caller looks up before trying again; `retryServerErrors:
 * false` likewise for a 5xx, which some servers send after the change was made. A 429 was not processed and
 * is always repeated.
 */
export class RetryBudget {
  private transient = 0;
  private throttled = 0;

  constructor(
    /** `METHOD /path` without ids or tokens, for messages. */
    private readonly where: string,
    private readonly limits: RetryLimits = DEFAULT_RETRY_LIMITS,
  ) {}

  /** Decides after one attempt; `describe` turns an error reply into a readable reason. */
  next(
    reply: HttpReply,
    describe: (reply: Extract<HttpReply, { kind: "reply" }>) => string,
    options: { readonly retryNetwork?: boolean; readonly retryServerErrors?: boolean } = {},
  ): RetryStep {
    if (reply.kind === "network-error") {
      if (reply.tls || options.retryNetwork === false || this.transient >= this.limits.transient)
        return giveUp(reply.tls ? "TLS_FAILED" : "UNREACHABLE", `${this.where}: ${reply.detail}`);
      return { kind: "retry", delayMs: this.backoff(this.transient++) };
    }
    if (reply.status === 429) {
      if (this.throttled >= this.limits.throttled)
        return giveUp("RATE_LIMITED", `${this.where}: ${describe(reply)}`, 429);
      return { kind: "retry", delayMs: Math.max(reply.retryAfterMs ?? 0, this.backoff(this.throttled++)) };
    }
    // 501 Not Implemented stays so however often it is asked.
    if (reply.status >= 500 && reply.status !== 501) {
      if (options.retryServerErrors === false || this.transient >= this.limits.transient)
        return giveUp("SERVER_ERROR", `${this.where}: ${describe(reply)}`, reply.status);
      return { kind: "retry", delayMs: Math.max(reply.retryAfterMs ?? 0, this.backoff(this.transient++)) };
    }
    return { kind: "final", reply };
  }

  private backoff(n: number): number {
    const base = Math.min(this.limits.maxDelayMs, this.limits.baseDelayMs * 2 ** n);
    return base / 2 + Math.random() * (base / 2); // jitter, §6.4
  }
}

function giveUp(code: string, message: string, http?: number): RetryStep {
  return {
    kind: "give-up",
    failure: { class: "retryable", code, message, ...(http === undefined ? {} : { http }) },
  };
}

/** A limiter never above `requestsPerSecond`: 2.5/s becomes 2 per second, 0.5/s one per 2 seconds. */
export function rateLimiterFor(requestsPerSecond: number, clock: TargetClock): RateLimiter {
  const rps = requestsPerSecond;
  return new RateLimiter(
    rps >= 1 ? Math.floor(rps) : 1,
    rps >= 1 ? 1000 : Math.ceil(1000 / rps),
    clock.now,
    clock.sleep,
  );
}
