import type { ErrorRequestHandler, Request, RequestHandler, Response } from "express";
import { AppError, isAppError, type ErrorCode } from "../domain/errors.js";

/** OAuth-style `error` values for exposed AppErrors (RFC 6749 §5.2 style). */
const ERROR_NAMES: Partial<Record<ErrorCode, string>> = {
  INPUT_INVALID: "invalid_request",
  EXPORT_INVALID: "invalid_request",
  NOT_FOUND: "not_found",
  ACCESS_DENIED: "access_denied",
  STORE_UNAVAILABLE: "temporarily_unavailable",
  STORE_LOCKED: "temporarily_unavailable",
};

/** Longest query string the admin API and the console accept (RFC 9110 §15.5.15: 414 past it). */
export const MAX_QUERY_LENGTH = 4096;

/** Why the request's query string is too long to read, or null when it is not. */
export function overlongQuery(req: Request): string | null {
  const query = req.originalUrl.indexOf("?");
  return query >= 0 && req.originalUrl.length - query - 1 > MAX_QUERY_LENGTH
    ? `the query string is longer than ${MAX_QUERY_LENGTH} characters`
    : null;
}

/** 404 for anything no route took. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError("NOT_FOUND", `no route for ${req.method} ${req.path}`, { expose: true }));
};

/** What a failed request may tell its caller; anything not meant for it stays in the log. */
export interface RequestFailure {
  readonly status: number;
  /** INTERNAL for anything not exposed; INPUT_INVALID for a body parser's refusal. */
  readonly code: ErrorCode;
  /** Safe to show. */
  readonly message: string;
  /** The body parser's error type (`entity.too.large`, `entity.parse.failed`), for a refused body. */
  readonly parserType?: string;
}

/**
 * Classifies an error reaching the HTTP layer: an exposed AppError keeps its status, code and message;
 * a client mistake already described safely (body-parser: too large, not JSON) is INPUT_INVALID;
 * anything else is a generic 500 naming the request id.
 */
export function requestFailure(err: unknown, requestId: unknown): RequestFailure {
  if (isAppError(err) && err.expose) return { status: err.status, code: err.code, message: err.message };
  const http = err as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown };
  if (!isAppError(err) && typeof http.status === "number" && http.status < 500 && http.expose === true)
    return {
      status: http.status,
      code: "INPUT_INVALID",
      message: String(http.message),
      ...(typeof http.type === "string" ? { parserType: http.type } : {}),
    };
  return { status: 500, code: "INTERNAL", message: `internal error (request id ${String(requestId)})` };
}

/**
 * Logs a failure (errors at error level with the cause, refusals at info) and sends `body` as JSON with
 * the failure's status, or calls `body` to send something else (the console's error page).
 */
export function sendFailure(
  req: Request,
  res: Response,
  err: unknown,
  failure: RequestFailure,
  body: object | (() => void),
): void {
  if (failure.status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ code: failure.code, reason: failure.message }, "request rejected");
  // A response already under way (a streamed download) cannot change its status: cut it off instead.
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (typeof body === "function") body();
  else res.status(failure.status).json(body);
}

/**
 * The one error handler. Exposed errors become `{error, error_description}` with their status; anything
 * else becomes a generic `server_error`, with the detail only in the log (under the request id).
 */
export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const failure = requestFailure(err, req.id);
  sendFailure(req, res, err, failure, {
    error: ERROR_NAMES[failure.code] ?? "server_error",
    error_description: failure.message,
  });
};
