import type { ErrorRequestHandler, RequestHandler } from "express";
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

/** 404 for anything no route took. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError("NOT_FOUND", `no route for ${req.method} ${req.path}`, { expose: true }));
};

/**
 * The one error handler. Exposed errors become `{error, error_description}` with their status; anything
 * else becomes a generic `server_error`, with the detail only in the log (under the request id).
 */
export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const http = err as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown };
  let status = 500;
  let body = { error: "server_error", error_description: `internal error (request id ${String(req.id)})` };
  if (isAppError(err) && err.expose) {
    status = err.status;
    body = { error: ERROR_NAMES[err.code] ?? "server_error", error_description: err.message };
  } else if (
    !isAppError(err) &&
    typeof http.status === "number" &&
    http.status < 500 &&
    http.expose === true
  ) {
    // body-parser and similar: a client mistake, already described safely.
    status = http.status;
    body = { error: "invalid_request", error_description: String(http.message) };
  }
  if (status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ code: body.error, reason: body.error_description }, "request rejected");
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(status).json(body);
};
