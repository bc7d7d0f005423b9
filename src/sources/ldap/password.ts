/**
 * Password sign-in against an `ldap` source: find the person with the service account, bind as them on a
 * separate connection, then check their status the way the reader does. Wrong credentials are a result,
 * never an exception, and an unknown login looks exactly like a wrong password.
 */
import { randomBytes, randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidCredentialsError } from "ldapts";
import { isSourceReadError } from "../builder.js";
import type { PersonStatus } from "../snapshot.js";
import type { SourceContext } from "../source.js";
import { activeDirectory } from "./ad.js";
import type { LdapConfig } from "./config.js";
import { LdapConnection } from "./connection.js";
import { first, normalizeDn, type LdapEntry } from "./entry.js";
import { adBindSubcode } from "./errors.js";
import { and, escapeFilterValue } from "./filter.js";
import { openLdap } from "./openldap.js";
import type { LdapVendor } from "./vendor.js";

/** Why a sign-in was refused; stable, for callers to switch on and pages to translate. */
export type PasswordFailureCode =
  | "INVALID_CREDENTIALS"
  | "ACCOUNT_LOCKED"
  | "PASSWORD_EXPIRED"
  | "MUST_CHANGE_PASSWORD"
  | "ACCOUNT_DISABLED"
  | "ACCOUNT_EXPIRED"
  | "LOGON_HOURS"
  | "LOGON_WORKSTATION"
  | "SOURCE_UNAVAILABLE";

/** The person signed in. */
export interface PasswordSuccess {
  readonly ok: true;
  /** The stable subject, as the reader reports it (objectGUID for AD, entryUUID for OpenLDAP). */
  readonly subject: string;
  /** The login name from the directory (the configured username attribute), not as typed. */
  readonly username: string;
  /** The person's DN. */
  readonly dn: string;
}

/** The sign-in was refused. */
export interface PasswordFailure {
  readonly ok: false;
  /** Stable reason code. */
  readonly code: PasswordFailureCode;
  /** A plain English sentence for the log and audit; identical for an unknown login and a wrong password. */
  readonly message: string;
  /** What really happened, for the audit log only (it may tell an unknown login from a wrong password). */
  readonly reason: string;
}

/** The outcome of {@link verifyPassword}. */
export type PasswordResult = PasswordSuccess | PasswordFailure;

/** What the person typed. */
export interface PasswordCredentials {
  /** `user@upn.suffix` (AD userPrincipalName) or the plain login name (sAMAccountName / uid). */
  readonly login: string;
  /** The password, as typed. */
  readonly password: string;
}

const MESSAGES: Record<PasswordFailureCode, string> = {
  INVALID_CREDENTIALS: "The login name or password is wrong.",
  ACCOUNT_LOCKED: "The account is locked after too many failed sign-ins.",
  PASSWORD_EXPIRED: "The account's password has expired.",
  MUST_CHANGE_PASSWORD: "The account's password must be changed before it can be used.",
  ACCOUNT_DISABLED: "The account is disabled.",
  ACCOUNT_EXPIRED: "The account has expired.",
  LOGON_HOURS: "The account may not sign in at this time of day.",
  LOGON_WORKSTATION: "The account may not sign in from this computer.",
  SOURCE_UNAVAILABLE: "The directory cannot be reached to check the password.",
};

// AD puts these in the diagnostic message of a failed bind ([MS-ADTS] / the Win32 error of the logon).
// 525 (no such user) deliberately maps like 52e (wrong password): the account's existence stays hidden.
const AD_SUBCODE_RESULTS: Record<string, PasswordFailureCode> = {
  "525": "INVALID_CREDENTIALS",
  "52e": "INVALID_CREDENTIALS",
  "530": "LOGON_HOURS",
  "531": "LOGON_WORKSTATION",
  "532": "PASSWORD_EXPIRED",
  "533": "ACCOUNT_DISABLED",
  "701": "ACCOUNT_EXPIRED",
  "773": "MUST_CHANGE_PASSWORD",
  "775": "ACCOUNT_LOCKED",
};

const STATUS_RESULTS: Partial<Record<PersonStatus, PasswordFailureCode>> = {
  disabled: "ACCOUNT_DISABLED",
  locked: "ACCOUNT_LOCKED",
  expired: "ACCOUNT_EXPIRED",
  left: "ACCOUNT_DISABLED",
};

/**
 * The least time a wrong login or password takes, from the start of {@link verifyPassword}. The dummy bind
 * alone left a gap (on Samba a wrong password took ~42 ms median, an unknown login ~24 ms: the real DN's
 * bind checks a password hash and bumps badPwdCount), enough to enumerate accounts over many tries. Both
 * now wait until the floor, well above either; a directory slower than the floor still shows its own time.
 */
export const INVALID_CREDENTIALS_FLOOR_MS = 250;
/** Up to this much more at random, so the floor itself is not a sharp edge to measure against. */
const FLOOR_JITTER_MS = 25;

function refuse(code: PasswordFailureCode, reason: string): PasswordFailure {
  return { ok: false, code, message: MESSAGES[code], reason };
}

/**
 * Checks a login and password against the directory (AD or OpenLDAP).
 *
 * Steps: an empty or blank password is refused before any bind (AD treats an empty simple bind as an
 * anonymous success, RFC 4513 §5.1.2); the login is resolved to exactly one person with the service account
 * (escaped filter, RFC 4515); the password is tried in a bind as that DN on its own connection; AD's bind
 * sub-code names the cause of a refusal; after a successful bind the person's status is read again with the
 * service account and a disabled, locked or expired person is refused.
 *
 * An unknown or ambiguous login costs the same round trips as a wrong password (a bind as a DN that does
 * not exist, with a random password), and every INVALID_CREDENTIALS takes at least
 * {@link INVALID_CREDENTIALS_FLOOR_MS}, so neither the answer nor its timing tells whether the account
 * exists. A successful sign-in is not slowed.
 */
export async function verifyPassword(
  context: SourceContext,
  config: LdapConfig,
  credentials: PasswordCredentials,
): Promise<PasswordResult> {
  // Wall-clock time on purpose: what an attacker measures, whatever clock the context carries.
  const started = performance.now();
  const result = await checkPassword(context, config, credentials);
  if (!result.ok && result.code === "INVALID_CREDENTIALS") {
    const wait =
      INVALID_CREDENTIALS_FLOOR_MS + randomInt(FLOOR_JITTER_MS + 1) - (performance.now() - started);
    // Node timers may fire up to a millisecond early by performance.now(): round up so the floor holds.
    if (wait > 0) await sleep(Math.ceil(wait) + 1);
  }
  return result;
}

/** {@link verifyPassword} without the floor on refusals. */
async function checkPassword(
  context: SourceContext,
  config: LdapConfig,
  credentials: PasswordCredentials,
): Promise<PasswordResult> {
  const login = credentials.login.trim();
  if (credentials.password.trim() === "") {
    return refuse("INVALID_CREDENTIALS", "empty password refused before binding");
  }
  if (login === "") return refuse("INVALID_CREDENTIALS", "empty login name");

  const vendor = config.flavor === "ad" ? activeDirectory : openLdap;
  const usernameAttribute = config.attributes.username ?? vendor.defaultAttributes.username;
  const attributes = [vendor.subjectAttribute, usernameAttribute, ...vendor.statusAttributes];

  let service: LdapConnection;
  try {
    service = await LdapConnection.open(context.sourceId, config, vendor.bufferAttributes);
  } catch (error) {
    return unavailable(error, "binding as the service account");
  }
  try {
    let found: LdapEntry[];
    try {
      found = await findPeople(service, config, vendor, login, attributes);
    } catch (error) {
      return unavailable(error, "looking the login up");
    }
    const [person, ...others] = found;
    if (person === undefined || others.length > 0) {
      await bindAsNobody(context, config);
      return refuse(
        "INVALID_CREDENTIALS",
        person === undefined
          ? "no person of the source has this login name"
          : `the login name matches ${found.length} people (${found.map((e) => e.dn).join("; ")}), so none is signed in`,
      );
    }

    const bound = await bindAs(context, config, person.dn, credentials.password);
    if (bound !== null) return bound;

    // The bind proves the password; the directory's own state decides whether the person may come in.
    let current: LdapEntry | null;
    try {
      current = await service.entry(person.dn, attributes, "reading the person's status");
    } catch (error) {
      return unavailable(error, "reading the person's status");
    }
    if (current === null) return refuse("INVALID_CREDENTIALS", `${person.dn} vanished after the bind`);
    const status = vendor.statusOf(current, context.now());
    const refused = STATUS_RESULTS[status];
    if (refused !== undefined) return refuse(refused, `${person.dn} has status ${status} in the source`);
    const subject = vendor.subjectOf(current);
    if (subject === null) {
      return refuse(
        "SOURCE_UNAVAILABLE",
        `${person.dn} has no readable ${vendor.subjectAttribute}; the service account must be allowed to read it`,
      );
    }
    return { ok: true, subject, username: first(current, usernameAttribute) ?? login, dn: person.dn };
  } finally {
    await service.close();
  }
}

/** The people matching the login under every user base, without duplicates from overlapping bases. */
async function findPeople(
  service: LdapConnection,
  config: LdapConfig,
  vendor: LdapVendor,
  login: string,
  attributes: readonly string[],
): Promise<LdapEntry[]> {
  const attribute =
    vendor.flavor === "ad" && login.includes("@")
      ? "userPrincipalName"
      : (config.attributes.username ?? vendor.defaultAttributes.username);
  const filter = and(
    config.users.filter ?? vendor.defaultUserFilter,
    `(${attribute}=${escapeFilterValue(login)})`,
  );
  const byDn = new Map<string, LdapEntry>();
  for (const base of config.users.baseDns) {
    const spec = { base, filter, attributes, what: "looking up a login" };
    for await (const page of service.pages(spec, 10)) {
      for (const entry of page.entries) byDn.set(normalizeDn(entry.dn), entry);
    }
  }
  return [...byDn.values()];
}

/** Binds as `dn` on a connection of its own; null when the password is right, else the refusal. */
async function bindAs(
  context: SourceContext,
  config: LdapConfig,
  dn: string,
  password: string,
): Promise<PasswordFailure | null> {
  let connection: LdapConnection;
  try {
    connection = await LdapConnection.open(
      context.sourceId,
      { ...config, bindDn: dn, bindPassword: password },
      [],
    );
  } catch (error) {
    const cause = isSourceReadError(error) ? error.cause : error;
    if (!(cause instanceof InvalidCredentialsError)) return unavailable(error, `binding as ${dn}`);
    const sub = adBindSubcode(cause.message);
    if (sub === null)
      return refuse("INVALID_CREDENTIALS", `the server refused the password of ${dn} (LDAP result 49)`);
    return refuse(
      AD_SUBCODE_RESULTS[sub.code] ?? "INVALID_CREDENTIALS",
      `the server refused the bind as ${dn}: ${sub.meaning} (LDAP result 49, AD sub-code ${sub.code})`,
    );
  }
  await connection.close();
  return null;
}

/**
 * A bind that is bound to fail, costing what a wrong password costs: a connection of its own and a bind as a
 * DN under the first user base that does not exist, with a random password (the typed one goes nowhere).
 */
async function bindAsNobody(context: SourceContext, config: LdapConfig): Promise<void> {
  const nobody = `cn=idbridge-nobody-${randomBytes(8).toString("hex")},${config.users.baseDns[0]!}`;
  await bindAs(context, config, nobody, randomBytes(24).toString("base64url"));
}

// Only source problems become a result; anything else is a bug and stays an exception.
function unavailable(error: unknown, action: string): PasswordFailure {
  if (!isSourceReadError(error)) throw error;
  return refuse("SOURCE_UNAVAILABLE", `${action} failed: ${error.reason.message}`);
}
