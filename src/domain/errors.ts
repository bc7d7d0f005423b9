/**
 * Stable error codes. Callers `switch (err.code)`; messages are for people and may change.
 */
export type ErrorCode =
  | "CONFIG_INVALID"
  | "POLICY_INVALID"
  | "STORE_UNAVAILABLE"
  | "STORE_INCOMPATIBLE"
  | "STORE_LOCKED"
  | "KEYS_INVALID"
  | "AUDIT_CHAIN_BROKEN"
  | "EXPORT_INVALID"
  | "INPUT_INVALID"
  | "NOT_FOUND"
  | "ACCESS_DENIED"
  /** A source could not be read (unreachable, refused our credentials). */
  | "SOURCE_UNAVAILABLE"
  /** A target could not be read or written at all (unreachable, auth). */
  | "TARGET_UNAVAILABLE"
  /** The target no longer matches what a plan was computed from: re-plan. */
  | "PLAN_STALE"
  /** The plan is not in a state that allows this (approving an applied plan, applying a pending one). */
  | "PLAN_STATE"
  /** Another sync holds the target's lease. */
  | "SYNC_BUSY"
  | "INTERNAL";

/** HTTP status used when an error with this code reaches the HTTP layer. */
const HTTP_STATUS: Record<ErrorCode, number> = {
  CONFIG_INVALID: 500,
  POLICY_INVALID: 500,
  STORE_UNAVAILABLE: 503,
  STORE_INCOMPATIBLE: 503,
  STORE_LOCKED: 503,
  KEYS_INVALID: 500,
  AUDIT_CHAIN_BROKEN: 500,
  EXPORT_INVALID: 400,
  INPUT_INVALID: 400,
  NOT_FOUND: 404,
  ACCESS_DENIED: 403,
  SOURCE_UNAVAILABLE: 503,
  TARGET_UNAVAILABLE: 503,
  PLAN_STALE: 409,
  PLAN_STATE: 409,
  SYNC_BUSY: 409,
  INTERNAL: 500,
};

export interface AppErrorOptions {
  /** Whether `message` may be shown to a remote caller (HTTP). CLI users always see it. */
  expose?: boolean;
  /** The underlying error, kept for the log; never shown to remote callers. */
  cause?: unknown;
  /** Extra lines shown under the message (for example every problem in a config file). */
  details?: readonly string[];
}

/** The one error type of idbridge: a stable `code`, a one-line message, an optional cause. */
export class AppError extends Error {
  override readonly name = "AppError";
  readonly code: ErrorCode;
  readonly expose: boolean;
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.expose = options.expose ?? false;
    this.details = options.details ?? [];
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/** True if `err` is an AppError, optionally with one of the given codes. */
export function isAppError(err: unknown, ...codes: ErrorCode[]): err is AppError {
  return err instanceof AppError && (codes.length === 0 || codes.includes(err.code));
}

/** A short description of an unknown thrown value, for one-line messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
