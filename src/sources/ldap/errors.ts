/**
 * The one place where ldapts and Node socket/TLS errors are turned into incomplete-read reasons. Nothing
 * outside this folder sees an ldapts error.
 */
import {
  AdminLimitExceededError,
  BusyError,
  ConfidentialityRequiredError,
  InappropriateAuthError,
  InsufficientAccessError,
  InvalidCredentialsError,
  InvalidDNSyntaxError,
  NoSuchObjectError,
  ResultCodeError,
  SizeLimitExceededError,
  StrongAuthRequiredError,
  TimeLimitExceededError,
  UnavailableError,
  UnwillingToPerformError,
} from "ldapts";
import { SourceReadError } from "../builder.js";
import type { IncompleteReason } from "../snapshot.js";

// AD puts a sub-code in the diagnostic message of result 49: "AcceptSecurityContext error, data 52e, v4563".
const AD_BIND_SUBCODES: Record<string, string> = {
  "525": "the account does not exist",
  "52e": "the password is wrong (or the account name)",
  "530": "the account may not log on at this time",
  "531": "the account may not log on from this workstation",
  "532": "the account's password has expired",
  "533": "the account is disabled",
  "568": "the account has too many security ids",
  "701": "the account has expired",
  "773": "the account's password must be reset before it can log on",
  "775": "the account is locked out",
};

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
]);

/** What we were doing when an error happened, for the message. */
export interface FailureContext {
  /** Source id from the config. */
  readonly sourceId: string;
  /** Server URL. */
  readonly url: string;
  /** What failed, as a phrase: `binding as cn=svc,…`, `searching users under OU=Staff,…`. */
  readonly action: string;
  /** The DN or page concerned. */
  readonly where?: string;
}

/** The AD bind sub-code (52e, 533, …) in a result-49 message, with its meaning. */
export function adBindSubcode(message: string): { code: string; meaning: string } | null {
  const match = /\bdata ([0-9a-f]{3}),/i.exec(message);
  if (!match) return null;
  const code = match[1]!.toLowerCase();
  return { code, meaning: AD_BIND_SUBCODES[code] ?? "see Microsoft's list of LDAP bind sub-codes" };
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Turns any error of an LDAP operation into a reason with a sentence naming the source and the cause. */
export function describeLdapFailure(error: unknown, context: FailureContext): IncompleteReason {
  const head = `source ${context.sourceId} (${context.url}): ${context.action} failed`;
  const where = context.where === undefined ? {} : { where: context.where };
  const message = error instanceof Error ? error.message : String(error);
  const reason = (code: IncompleteReason["code"], text: string): IncompleteReason => ({
    code,
    message: `${head}: ${text}`,
    ...where,
  });

  if (error instanceof InvalidCredentialsError) {
    const sub = adBindSubcode(message);
    return reason(
      "AUTH_FAILED",
      sub === null
        ? `the server rejected the bind DN or password (LDAP result 49, invalid credentials)`
        : `the server rejected the credentials: ${sub.meaning} (LDAP result 49, AD sub-code ${sub.code})`,
    );
  }
  if (error instanceof StrongAuthRequiredError || error instanceof ConfidentialityRequiredError) {
    return reason(
      "AUTH_FAILED",
      `the server requires an encrypted connection for this bind (LDAP result ${(error as ResultCodeError).code}); use ldaps:// or startTls: true`,
    );
  }
  if (error instanceof InappropriateAuthError) {
    return reason(
      "AUTH_FAILED",
      `the server does not accept a simple bind for this account (LDAP result 48)`,
    );
  }
  if (error instanceof InsufficientAccessError) {
    return reason(
      "PERMISSION_DENIED",
      `the service account lacks the right to read this (LDAP result 50, insufficient access rights)`,
    );
  }
  if (error instanceof NoSuchObjectError) {
    return reason(
      "NOT_FOUND",
      `${context.where ?? "the base DN"} does not exist on the server, or the service account cannot see it (LDAP result 32, no such object); check the configured base DNs`,
    );
  }
  if (error instanceof InvalidDNSyntaxError) {
    return reason("NOT_FOUND", `${context.where ?? "a DN"} is not a valid DN (LDAP result 34)`);
  }
  if (
    error instanceof SizeLimitExceededError ||
    error instanceof AdminLimitExceededError ||
    error instanceof TimeLimitExceededError
  ) {
    return reason(
      "LIMIT_EXCEEDED",
      `the server stopped the search at one of its limits (LDAP result ${(error as ResultCodeError).code}: ${message}); lower pageSize/rangeSize or raise the server's limits`,
    );
  }
  if (error instanceof BusyError || error instanceof UnavailableError) {
    return reason("UNREACHABLE", `the server is busy or unavailable (LDAP result ${error.code}): ${message}`);
  }
  if (error instanceof UnwillingToPerformError) {
    return reason(
      "SERVER_ERROR",
      `the server is unwilling to perform the operation (LDAP result 53): ${message}`,
    );
  }
  if (error instanceof ResultCodeError) {
    return reason("SERVER_ERROR", `LDAP result ${error.code}: ${message}`);
  }

  const code = codeOf(error);
  if (
    (code !== undefined && TLS_CODES.has(code)) ||
    /certificate|self[- ]signed|\bSSL\b|\bTLS\b/i.test(message)
  ) {
    const why =
      code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? "the server's certificate is not valid for this host name"
        : "the server's certificate could not be verified against the configured CA (caFile) or the system CAs";
    return reason("TLS_FAILED", `TLS failed: ${why} (${code ?? message})`);
  }
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return reason("UNREACHABLE", `cannot reach the server (${code}): ${message}`);
  }
  if (/Connection timeout|timed out/i.test(message)) {
    return reason(
      "UNREACHABLE",
      `the server did not answer in time (${message}); check the host, port and timeouts`,
    );
  }
  if (/Socket error|Connection closed|socket/i.test(message)) {
    return reason("UNREACHABLE", `the connection broke: ${message}`);
  }
  return reason("SERVER_ERROR", `unexpected error: ${message}`);
}

/** Wraps an error of an LDAP operation in a {@link SourceReadError}. */
export function ldapReadError(error: unknown, context: FailureContext): SourceReadError {
  if (error instanceof SourceReadError) return error;
  return new SourceReadError(describeLdapFailure(error, context), { cause: error });
}
