import type { CallOutcome } from "./vendor-call.js";

/** What came back from one HTTP request. */
export type HttpReply =
  | {
      readonly kind: "reply";
      readonly status: number;
      /** Parsed body when it is JSON; undefined for HTML ban pages, empty bodies and garbage. */
      readonly json: unknown;
      /** The raw body (first 2,000 characters), for messages. */
      readonly text: string;
      /** The wait a 429/503 asks for (`Retry-After`, seconds or an HTTP date), in ms. */
      readonly retryAfterMs?: number;
      /** The `ETag` header (RFC 9110 §8.8.3), when sent. */
      readonly etag?: string;
    }
  | { readonly kind: "network-error"; readonly tls: boolean; readonly detail: string };

/** Sends one request with a timeout; never throws for network problems. */
export async function sendRequest(
  url: string,
  init: {
    readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: unknown;
    readonly timeoutMs: number;
    readonly signal?: AbortSignal;
  },
): Promise<HttpReply> {
  const timeout = AbortSignal.timeout(init.timeoutMs);
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  try {
    const response = await fetch(url, {
      method: init.method,
      headers: {
        accept: "application/json",
        ...(init.body === undefined ? {} : { "content-type": "application/json" }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal,
      redirect: "error",
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), Date.now());
    const etag = response.headers.get("etag");
    return {
      kind: "reply",
      status: response.status,
      json,
      text: text.slice(0, 2000),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...(etag === null ? {} : { etag }),
    };
  } catch (error) {
    return describeNetworkError(error, url, timeout.aborted ? init.timeoutMs : undefined);
  }
}

/** `Retry-After` as ms from now: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or past. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

function describeNetworkError(error: unknown, url: string, timedOutAfter: number | undefined): HttpReply {
  const host = safeHost(url);
  if (timedOutAfter !== undefined) {
    return { kind: "network-error", tls: false, detail: `no answer from ${host} within ${timedOutAfter} ms` };
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : "";
  const message = typeof cause?.message === "string" ? cause.message : String(error);
  const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code + " " + message);
  const what =
    code === "ECONNREFUSED"
      ? "connection refused"
      : code === "ENOTFOUND"
        ? "host name not found"
        : code === "ECONNRESET"
          ? "connection reset"
          : message;
  return {
    kind: "network-error",
    tls,
    detail: tls ? `TLS handshake with ${host} failed: ${what}` : `cannot reach ${host}: ${what}`,
  };
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** The outcome for a network error: TLS problems fail at once, the rest are retried as UNREACHABLE. */
export function networkOutcome(reply: Extract<HttpReply, { kind: "network-error" }>): CallOutcome<never> {
  return reply.tls
    ? { kind: "failed", reason: { code: "TLS_FAILED", message: reply.detail } }
    : { kind: "transient", detail: reply.detail, code: "UNREACHABLE" };
}
