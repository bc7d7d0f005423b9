import type { NextFunction, Request, RequestHandler, Response } from "express";
import { HesiFailure } from "./model.js";
import type { HesiSimState } from "./state.js";

/**
 * Hesi's envelopes (reference §1.7): `{value}` for one object, `{items}` for batch operations, `{count, items}`
 * for lists, 204 without a body for role-member writes; errors are an HTTP status with
 * `{errorCode, errorMessage, errorDetails, code, data}` (the shape the contacts pages show).
 */
export type HesiReply =
  | { readonly value: unknown }
  | { readonly items: readonly unknown[]; readonly count?: number }
  | { readonly noContent: true }
  | { readonly raw: Record<string, unknown> }
  | { readonly status: number; readonly text: string };

/** Records the status of a reply. */
export function countStatus(state: HesiSimState, status: number): void {
  state.statuses.set(status, (state.statuses.get(status) ?? 0) + 1);
}

/** An error reply. */
export function sendFailure(state: HesiSimState, res: Response, status: number, message: string): void {
  countStatus(state, status);
  res
    .status(status)
    .json({ errorCode: status, errorMessage: message, errorDetails: null, code: null, data: null });
}

/** An HTTP 429 with `Retry-After` (seconds). */
export function sendTooMany(state: HesiSimState, res: Response, retryAfterSeconds: number): void {
  res.set("Retry-After", String(retryAfterSeconds));
  sendFailure(state, res, 429, "请求过于频繁，请稍后再试");
}

/** The gateway's 502 page. */
export function sendBadGateway(state: HesiSimState, res: Response): void {
  countStatus(state, 502);
  res
    .status(502)
    .type("html")
    .send("<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>");
}

/** Holds the connection for the timeout, then drops it without an answer. */
export function dropConnection(state: HesiSimState, req: Request): void {
  countStatus(state, 0);
  const timer = setTimeout(() => req.socket.destroy(), state.timeoutMs);
  req.socket.once("close", () => clearTimeout(timer));
}

/** Wraps a handler: its reply is sent in Hesi's envelope, a {@link HesiFailure} as an error reply. */
export function endpoint(
  state: HesiSimState,
  handle: (req: Request, res: Response) => HesiReply,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    let reply: HesiReply;
    try {
      reply = handle(req, res);
    } catch (error) {
      if (error instanceof HesiFailure) {
        if (res.locals.dropReply === true) dropConnection(state, req);
        else sendFailure(state, res, error.status, error.message);
        return;
      }
      next(error);
      return;
    }
    // timeout-after-apply: the change is made, the answer never arrives.
    if (res.locals.dropReply === true) return dropConnection(state, req);
    if ("noContent" in reply) {
      countStatus(state, 204);
      res.status(204).end();
      return;
    }
    if ("text" in reply) {
      countStatus(state, reply.status);
      res.status(reply.status).type("text").send(reply.text);
      return;
    }
    countStatus(state, 200);
    res.status(200).json("raw" in reply ? reply.raw : reply);
  };
}
