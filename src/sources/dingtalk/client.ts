import pLimit, { type LimitFunction } from "p-limit";
import type { z } from "zod";
import { RateLimiter } from "../http/rate-limiter.js";
import { sendRequest } from "../http/send.js";
import { TokenCache, type IssuedToken } from "../http/token-cache.js";
import { callVendor, type CallOutcome } from "../http/vendor-call.js";
import type { SourceContext } from "../source.js";
import type { DingTalkConfig } from "./config.js";
import { classifyReply, type Endpoint } from "./replies.js";
import { apiTokenSchema, legacyTokenSchema } from "./schemas.js";

// The vendor counts in fixed one-second windows on its own clock; a slightly longer sliding window here
// absorbs the network's jitter so a window boundary never sees one call too many (which costs a 1 s wait).
const API_WINDOW_MS = 1025;
const IP_WINDOW_MS = 20_000;

const LEGACY_TOKEN: Endpoint = { path: "/gettoken", token: true };
const API_TOKEN: Endpoint = { path: "/v1.0/oauth2/accessToken", token: true };

/**
 * Calls DingTalk for one reader: one app token (cached, refreshed before expiry and when rejected), and
 * per API a rate limit (`requestsPerSecond`, DingTalk counts per app and API) and a cap on calls in
 * flight, under one per-IP limit over all APIs.
 */
export class DingTalkClient {
  readonly tokens: TokenCache;
  private readonly lanes = new Map<string, { limiter: RateLimiter; limit: LimitFunction }>();
  private readonly ipLimiter: RateLimiter;

  constructor(
    private readonly context: SourceContext,
    private readonly config: DingTalkConfig,
    private readonly signal?: AbortSignal,
  ) {
    this.ipLimiter = new RateLimiter(config.callsPer20sPerIp, IP_WINDOW_MS, this.nowMs, this.sleep);
    // The token call goes through the same retry loop (without a token of its own).
    this.tokens = new TokenCache(
      () =>
        callVendor({
          sourceId: context.sourceId,
          where: config.tokenApi === "api" ? `POST ${API_TOKEN.path}` : `GET ${LEGACY_TOKEN.path}`,
          sleep: context.sleep,
          signal,
          attempt: () => this.fetchToken(),
        }),
      context.now,
    );
  }

  /**
   * POSTs `body` to a legacy topapi endpoint with the app token; throws a SourceReadError naming `where`.
   * `signal` (default: the client's) ends the retries too: sign-in bounds a whole attempt with it.
   */
  post<T>(
    endpoint: Endpoint,
    body: Record<string, unknown>,
    where: string,
    schema: z.ZodType<T>,
    signal: AbortSignal | undefined = this.signal,
  ): Promise<T> {
    const lane = this.lane(endpoint.path);
    return lane.limit(() =>
      callVendor({
        sourceId: this.context.sourceId,
        where,
        tokens: this.tokens,
        sleep: this.context.sleep,
        signal,
        attempt: async (token) => {
          await this.pace(lane.limiter);
          const url = `${this.config.oapiBaseUrl.replace(/\/$/, "")}${endpoint.path}?access_token=${encodeURIComponent(token)}`;
          const reply = await sendRequest(url, {
            method: "POST",
            body,
            timeoutMs: this.config.timeoutMs,
            signal,
          });
          return classifyReply(reply, endpoint, where, schema);
        },
      }),
    );
  }

  private async fetchToken(): Promise<CallOutcome<IssuedToken>> {
    const { config } = this;
    if (config.tokenApi === "api") {
      await this.pace(this.lane(API_TOKEN.path).limiter);
      const reply = await sendRequest(`${config.apiBaseUrl.replace(/\/$/, "")}${API_TOKEN.path}`, {
        method: "POST",
        body: { appKey: config.appKey, appSecret: config.appSecret },
        timeoutMs: config.timeoutMs,
        signal: this.signal,
      });
      const outcome = classifyReply(reply, API_TOKEN, `POST ${API_TOKEN.path}`, apiTokenSchema);
      return outcome.kind === "ok"
        ? {
            kind: "ok",
            value: { value: outcome.value.accessToken, expiresInSeconds: outcome.value.expireIn },
          }
        : outcome;
    }
    await this.pace(this.lane(LEGACY_TOKEN.path).limiter);
    const query = new URLSearchParams({ appkey: config.appKey, appsecret: config.appSecret });
    const reply = await sendRequest(`${config.oapiBaseUrl.replace(/\/$/, "")}${LEGACY_TOKEN.path}?${query}`, {
      method: "GET",
      timeoutMs: config.timeoutMs,
      signal: this.signal,
    });
    const outcome = classifyReply(reply, LEGACY_TOKEN, `GET ${LEGACY_TOKEN.path}`, legacyTokenSchema);
    return outcome.kind === "ok"
      ? {
          kind: "ok",
          value: { value: outcome.value.access_token, expiresInSeconds: outcome.value.expires_in },
        }
      : outcome;
  }

  private async pace(limiter: RateLimiter): Promise<void> {
    await limiter.take();
    await this.ipLimiter.take();
  }

  private lane(path: string): { limiter: RateLimiter; limit: LimitFunction } {
    let lane = this.lanes.get(path);
    if (lane === undefined) {
      lane = {
        limiter: new RateLimiter(this.config.requestsPerSecond, API_WINDOW_MS, this.nowMs, this.sleep),
        limit: pLimit(this.config.concurrency),
      };
      this.lanes.set(path, lane);
    }
    return lane;
  }

  private readonly nowMs = (): number => this.context.now().getTime();
  private readonly sleep = (ms: number): Promise<void> => this.context.sleep(ms, this.signal);
}
