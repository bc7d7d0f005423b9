/**
 * The `ldap` source's sign-in connector: password sign-in by binding as the person (AD, OpenLDAP) and the
 * live account status asked of the directory by subject. The person signed in is mapped by the reader's
 * own mapping ({@link mapPersonEntry}), so sign-in and sync see the same subject and fields.
 */
import { isSourceReadError } from "../builder.js";
import type {
  LiveStatus,
  PasswordSignIn,
  SignInConnector,
  SignInContext,
  SignInFailureCode,
  SignInOutcome,
} from "../sign-in.js";
import type { DepartmentMembership, PersonStatus } from "../snapshot.js";
import type { SourceContext } from "../source.js";
import type { LdapConfig } from "./config.js";
import { LdapConnection } from "./connection.js";
import { isWithin, normalizeDn, parentDn, strings, type LdapEntry } from "./entry.js";
import { and, escapeFilterValue } from "./filter.js";
import { verifyPassword, type PasswordFailureCode } from "./password.js";
import {
  OU_FILTER,
  mapPersonEntry,
  resolveLdapConfig,
  type MappedPerson,
  type ResolvedLdapConfig,
} from "./person.js";

// verifyPassword's codes are a subset of the connector contract's; spelled out so a new one cannot slip by.
const FAILURES: Record<PasswordFailureCode, SignInFailureCode> = {
  INVALID_CREDENTIALS: "INVALID_CREDENTIALS",
  ACCOUNT_LOCKED: "ACCOUNT_LOCKED",
  PASSWORD_EXPIRED: "PASSWORD_EXPIRED",
  MUST_CHANGE_PASSWORD: "MUST_CHANGE_PASSWORD",
  ACCOUNT_DISABLED: "ACCOUNT_DISABLED",
  ACCOUNT_EXPIRED: "ACCOUNT_EXPIRED",
  LOGON_HOURS: "LOGON_HOURS",
  LOGON_WORKSTATION: "LOGON_WORKSTATION",
  SOURCE_UNAVAILABLE: "SOURCE_UNAVAILABLE",
};

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// A status that changed between the bind and the read of the person still refuses them.
const STATUS_FAILURES: Record<Exclude<PersonStatus, "active">, SignInFailureCode> = {
  disabled: "ACCOUNT_DISABLED",
  locked: "ACCOUNT_LOCKED",
  expired: "ACCOUNT_EXPIRED",
  left: "ACCOUNT_DISABLED",
};

/** Opens the sign-in connector of an `ldap` source. Nothing connects until a sign-in or status check. */
export function openLdapSignIn(context: SignInContext, config: LdapConfig): SignInConnector {
  const bounded = boundTimeouts(config, context.timeoutMs);
  const resolved = resolveLdapConfig(bounded);
  const source: SourceContext = {
    sourceId: context.sourceId,
    now: context.now,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
  const password: PasswordSignIn = {
    verify: (input) =>
      within(context.timeoutMs, signIn(source, bounded, resolved, input), () =>
        refuse("SOURCE_UNAVAILABLE", `no answer from ${config.url} within ${context.timeoutMs} ms`),
      ),
  };
  return {
    sourceId: context.sourceId,
    password,
    accountStatus: (subject) =>
      within(context.timeoutMs, liveStatus(source, bounded, resolved, subject), () => "unavailable"),
    close: () => Promise.resolve(),
  };
}

function refuse(code: SignInFailureCode, reason: string): SignInOutcome {
  return { ok: false, code, reason };
}

/** The config with its network timeouts no longer than the sign-in bound, so no socket outlives it. */
function boundTimeouts(config: LdapConfig, timeoutMs: number): LdapConfig {
  return {
    ...config,
    timeouts: {
      connectMs: Math.min(config.timeouts.connectMs, timeoutMs),
      operationMs: Math.min(config.timeouts.operationMs, timeoutMs),
    },
  };
}

/** `work`, or `late()` once `ms` pass without an answer. */
async function within<T>(ms: number, work: Promise<T>, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function signIn(
  source: SourceContext,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  input: { readonly login: string; readonly password: string },
): Promise<SignInOutcome> {
  const verified = await verifyPassword(source, config, input);
  if (!verified.ok) return refuse(FAILURES[verified.code], verified.reason);

  let connection: LdapConnection;
  try {
    connection = await LdapConnection.open(source.sourceId, config, resolved.vendor.bufferAttributes);
  } catch (error) {
    return unavailable(error, "binding as the service account to read the person");
  }
  try {
    // The bind proved the password; the person is read the way the reader reads them.
    const entry = await connection.entry(
      verified.dn,
      resolved.personAttributes,
      "reading the person signed in",
      resolved.userFilter,
    );
    if (entry === null) return refuse("INVALID_CREDENTIALS", `${verified.dn} vanished after the bind`);
    if (resolved.vendor.subjectOf(entry) !== verified.subject) {
      return refuse("INVALID_CREDENTIALS", `${verified.dn} was replaced by another entry during the sign-in`);
    }
    const mapped = mapPersonEntry(entry, verified.subject, config, resolved, source.now());
    if (mapped.person.status !== "active") {
      const status = mapped.person.status;
      return refuse(STATUS_FAILURES[status], `${verified.dn} has status ${status} in the source`);
    }
    mapped.person.departments = await departmentsOf(connection, config, resolved, mapped);
    mapped.person.managers = await managersOf(connection, config, resolved, mapped);
    return {
      ok: true,
      identity: { sourceId: source.sourceId, subject: verified.subject, person: mapped.person },
    };
  } catch (error) {
    return unavailable(error, `reading ${verified.dn}`);
  } finally {
    await connection.close();
  }
}

/** The nearest OU above the person within the user base DNs, as the reader places people. */
async function departmentsOf(
  connection: LdapConnection,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  mapped: MappedPerson,
): Promise<DepartmentMembership[]> {
  if (config.departments.from === "attribute") {
    const value = mapped.departmentValue;
    return value === undefined ? [] : [{ departmentId: value, main: true, leader: false }];
  }
  if (config.departments.from !== "ou") return [];
  const bases = config.users.baseDns.map(normalizeDn);
  const self = normalizeDn(mapped.dn);
  for (let at = parentDn(mapped.dn); at !== null; at = parentDn(at)) {
    const key = normalizeDn(at);
    if (!bases.some((base) => isWithin(key, base))) return [];
    const ou = await connection.entry(
      at,
      [resolved.vendor.subjectAttribute, "managedBy"],
      "reading the person's organizational unit",
      OU_FILTER,
    );
    // An OU without a subject is left out by the reader too, so the person belongs to the next one up.
    const id = ou === null ? null : resolved.vendor.subjectOf(ou);
    if (ou === null || id === null) continue;
    const leader = strings(ou, "managedBy").some((dn) => normalizeDn(dn) === self);
    return [{ departmentId: id, main: true, leader }];
  }
  return [];
}

/** Subjects of the person's managers that are people of this source (within the user base DNs and filter). */
async function managersOf(
  connection: LdapConnection,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  mapped: MappedPerson,
): Promise<string[]> {
  const bases = config.users.baseDns.map(normalizeDn);
  const subjects: string[] = [];
  for (const dn of mapped.managerDns) {
    if (!bases.some((base) => isWithin(normalizeDn(dn), base))) continue;
    const manager = await connection.entry(
      dn,
      [resolved.vendor.subjectAttribute],
      "reading the person's manager",
      resolved.userFilter,
    );
    const subject = manager === null ? null : resolved.vendor.subjectOf(manager);
    if (subject !== null) subjects.push(subject);
  }
  return subjects;
}

/** The person with this subject within the user base DNs and filter, or null when there is none. */
async function findBySubject(
  connection: LdapConnection,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  subject: string,
): Promise<LdapEntry | null> {
  const vendor = resolved.vendor;
  const attributes = [vendor.subjectAttribute, ...vendor.statusAttributes];
  if (vendor.flavor === "ad") {
    // ldapts turns a `\xx` escape of a string filter into a character and sends it as UTF-8, so a binary
    // objectGUID filter cannot be spelled as a string; AD takes the GUID as a base DN instead
    // ([MS-ADTS] 3.1.1.3.1.2.4, `<GUID=…>`), and the bases are checked here.
    if (!GUID.test(subject)) return null;
    const entry = await connection.entry(
      `<GUID=${subject}>`,
      attributes,
      "looking an account up by its objectGUID",
      resolved.userFilter,
    );
    const bases = config.users.baseDns.map(normalizeDn);
    if (entry === null || !bases.some((base) => isWithin(normalizeDn(entry.dn), base))) return null;
    return vendor.subjectOf(entry) === subject.toLowerCase() ? entry : null;
  }
  for (const base of config.users.baseDns) {
    const spec = {
      base,
      filter: and(resolved.userFilter, `(entryUUID=${escapeFilterValue(subject)})`),
      attributes,
      what: "looking an account up by its entryUUID",
    };
    for await (const page of connection.pages(spec, 10)) {
      const entry = page.entries.find((e) => vendor.subjectOf(e) === subject);
      if (entry !== undefined) return entry;
    }
  }
  return null;
}

async function liveStatus(
  source: SourceContext,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  subject: string,
): Promise<LiveStatus> {
  const vendor = resolved.vendor;
  let connection: LdapConnection;
  try {
    connection = await LdapConnection.open(source.sourceId, config, vendor.bufferAttributes);
  } catch (error) {
    if (!isSourceReadError(error)) throw error;
    return "unavailable";
  }
  try {
    const entry = await findBySubject(connection, config, resolved, subject);
    if (entry === null) return "not-found";
    // Unreadable lock or expiry would read as active: better no answer than a wrong one.
    if (vendor.unreadableStatus([entry]) !== null) return "unavailable";
    return vendor.statusOf(entry, source.now());
  } catch (error) {
    // A missing base DN too: a misconfiguration must not make everyone look gone.
    if (!isSourceReadError(error)) throw error;
    return "unavailable";
  } finally {
    await connection.close();
  }
}

// Only source problems become a result; anything else is a bug and stays an exception.
function unavailable(error: unknown, action: string): SignInOutcome {
  if (!isSourceReadError(error)) throw error;
  return refuse("SOURCE_UNAVAILABLE", `${action} failed: ${error.reason.message}`);
}
