import type { RateLimiter } from "../../sources/http/rate-limiter.js";
import { sendRequest, type HttpReply } from "../../sources/http/send.js";
import { RetryBudget, rateLimiterFor, type TargetClock } from "../http/retry.js";
import type { ChangeFailure } from "../target.js";
import type { ScimConfig } from "./config.js";

/** A SCIM answer: status, parsed body (undefined for 204) and the ETag header when sent. */
export interface ScimReply {
  /** HTTP status. */
  readonly status: number;
  /** Parsed body. */
  readonly json: unknown;
  /** Raw body, first characters (SCIM errors do not echo the token). */
  readonly text: string;
  /** `ETag` header (RFC 7644 §3.14), when sent. */
  readonly etag?: string;
}

/** One call's end: a 2xx reply, or a classified failure. */
export type ScimCallResult =
  { readonly ok: true; readonly reply: ScimReply } | { readonly ok: false; readonly failure: ChangeFailure };

/** Options of one call. */
export interface ScimCallOptions {
  /** Query parameters (`filter`, `startIndex`, `count`). */
  readonly query?: Record<string, string>;
  /** JSON body, sent as `application/scim+json`. */
  readonly body?: unknown;
  /** `If-Match` value: the version the write is based on (RFC 7644 §3.14). */
  readonly ifMatch?: string;
  /** false for non-idempotent creates: a dropped connection may have applied the change. */
  readonly retryNetwork?: boolean;
  /** false for non-idempotent creates: a 5xx may come after the change was applied. */
  readonly retryServerErrors?: boolean;
}

const MEDIA_TYPE = "application/scim+json";

/**
 * The HTTP side of the SCIM connector: bearer token, rate limit, retries of 429 (honouring Retry-After),
 * 5xx and network errors, and classification of SCIM error responses (RFC 7644 §3.12) into failure classes.
 */
export class ScimClient {
  private readonly limiter: RateLimiter;
  private readonly base: string;

  constructor(
    private readonly config: ScimConfig,
    private readonly clock: TargetClock,
  ) {
    this.limiter = rateLimiterFor(config.requestsPerSecond, clock);
    this.base = config.baseUrl.replace(/\/+$/, "");
  }

  /** One call, retried on transient answers; a final error is classified. */
  async call(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    options: ScimCallOptions = {},
  ): Promise<ScimCallResult> {
    // Resource ids stay out of messages' endpoint part; the message names the resource where it matters.
    const where = `${method} ${path.replace(/^(\/[^/]+)\/.+$/, "$1/{id}")}`;
    const retries = new RetryBudget(where);
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    for (;;) {
      await this.limiter.take();
      const reply = await sendRequest(url.toString(), {
        method,
        body: options.body,
        timeoutMs: this.config.timeoutMs,
        headers: {
          authorization: `Bearer ${this.config.token}`,
          accept: `${MEDIA_TYPE}, application/json`,
          ...(options.body === undefined ? {} : { "content-type": MEDIA_TYPE }),
          ...(options.ifMatch === undefined ? {} : { "if-match": options.ifMatch }),
        },
      });
      const step = retries.next(reply, messageOf, options);
      if (step.kind === "retry") {
        await this.clock.sleep(step.delayMs);
        continue;
      }
      if (step.kind === "give-up") return { ok: false, failure: step.failure };
      if (step.reply.status >= 200 && step.reply.status < 300)
        return { ok: true, reply: toReply(step.reply) };
      return {
        ok: false,
        failure: classify(step.reply.status, `${where}: ${messageOf(step.reply)}`, scimTypeOf(step.reply)),
      };
    }
  }
}

function toReply(reply: Extract<HttpReply, { kind: "reply" }>): ScimReply {
  return {
    status: reply.status,
    json: reply.json,
    text: reply.text,
    ...(reply.etag === undefined ? {} : { etag: reply.etag }),
  };
}

/** The `scimType` of a SCIM error body, if any. */
export function scimTypeOf(reply: { readonly json: unknown }): string | undefined {
  const scimType = (reply.json as { scimType?: unknown } | undefined)?.scimType;
  return typeof scimType === "string" && scimType !== "" ? scimType : undefined;
}

/** The server's words for an error: SCIM `detail` (with `scimType`), else the raw text. */
export function messageOf(reply: {
  readonly status: number;
  readonly json: unknown;
  readonly text: string;
}): string {
  const json = reply.json as { detail?: unknown } | undefined;
  const scimType = scimTypeOf(reply);
  const detail = typeof json?.detail === "string" && json.detail !== "" ? json.detail : undefined;
  if (detail !== undefined) return scimType === undefined ? detail : `${detail} (${scimType})`;
  return reply.text || `HTTP ${reply.status}`;
}

/**
 * RFC 7644 §3.12 error responses by status and `scimType`: 401/403 = credentials or permission; 409
 * (`uniqueness`) and 412 (`invalidVers`, a stale If-Match) are clashes to resolve by looking again; the rest
 * of 4xx, and 501, are the data or a feature the server lacks.
 */
export function classify(status: number, message: string, scimType?: string): ChangeFailure {
  const code =
    scimType === undefined ? `HTTP_${status}` : scimType.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  if (status === 401) return { class: "auth", code: "AUTH_FAILED", message, http: status };
  if (status === 403) return { class: "auth", code: "FORBIDDEN", message, http: status };
  if (status === 409 || status === 412) return { class: "conflict", code, message, http: status };
  if (status === 404) return { class: "bad-data", code: "NOT_FOUND", message, http: status };
  if (status === 501) return { class: "bad-data", code: "NOT_IMPLEMENTED", message, http: status };
  return { class: "bad-data", code, message, http: status };
}
