/**
 * The normalised result of reading one directory source (AD/LDAP, DingTalk, WeCom): people, departments,
 * groups and a completeness verdict. Every reader produces this shape; nothing vendor-specific leaks past
 * it except the raw `attributes` a policy may reference.
 *
 * Absent is not empty: an optional field that is missing means "this source did not tell us", never
 * "this person has none". Fields a source cannot provide at all are listed in `unavailableFields`.
 */

/** Lifecycle state of a person as the source reports it. */
export type PersonStatus = "active" | "disabled" | "locked" | "expired" | "left";

export const PERSON_STATUSES: readonly PersonStatus[] = ["active", "disabled", "locked", "expired", "left"];

/** A person's membership in one department of the same source. */
export interface DepartmentMembership {
  /** Department id within this source. */
  readonly departmentId: string;
  /** True for the person's main department; part-time departments are false. */
  readonly main: boolean;
  /** True when the source names the person a leader of this department. */
  readonly leader: boolean;
}

/** One person as one source sees them. */
export interface SourcePerson {
  /** Stable per-source subject: AD objectGUID, OpenLDAP entryUUID, DingTalk userid, WeCom userid. */
  readonly subject: string;
  /** Further stable identifiers the source offers (DingTalk `unionid`). */
  readonly altIds?: Readonly<Record<string, string>>;
  /** Login name in the source (sAMAccountName, uid, DingTalk/WeCom userid). */
  readonly username?: string;
  /** Display name as the source holds it (Chinese names stay as they are). */
  readonly name?: string;
  /** Work email. */
  readonly email?: string;
  /** Mobile number as the source holds it. */
  readonly mobile?: string;
  /** Employee number / job number. */
  readonly employeeNo?: string;
  /** Job title. */
  readonly title?: string;
  /** Departments the person belongs to (main and part-time). */
  readonly departments: readonly DepartmentMembership[];
  /** Subjects (in this source) of the person's direct managers. */
  readonly managers: readonly string[];
  /** Lifecycle state. */
  readonly status: PersonStatus;
  /** Selected raw source attributes (for policy conditions), by attribute name. */
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
}

/** A department (or OU) of the source's tree. */
export interface SourceDepartment {
  /** Id within this source (DingTalk/WeCom dept id, AD OU GUID or department attribute value). */
  readonly id: string;
  /** Parent id, or null for a root. */
  readonly parentId: string | null;
  /** Display name. */
  readonly name: string;
  /** Sort order among siblings as the source gives it (meaning per source; informational). */
  readonly order: number;
  /** Subjects of the department's leaders. */
  readonly leaders: readonly string[];
}

/** What kind of group a source group is. */
export type GroupKind = "security-group" | "group" | "role" | "role-group" | "tag";

/** A group with its members resolved transitively to people. */
export interface SourceGroup {
  /** Stable id within this source (AD objectGUID, entryUUID, DingTalk role id, WeCom tag id). */
  readonly id: string;
  /** Display name (cn, role name, tag name). */
  readonly name: string;
  /** Where the group sits, to tell same-named groups apart (AD/LDAP DN, DingTalk role group name). */
  readonly path?: string;
  /** Kind of group. */
  readonly kind: GroupKind;
  /** Person subjects that are members, directly or through nested groups. */
  readonly members: readonly string[];
  /** Person subjects that are direct members (a subset of `members`). */
  readonly directMembers: readonly string[];
}

/** Why a read is not complete: a stable code, a sentence for people, and where it happened. */
export interface IncompleteReason {
  /** Stable code callers can switch on. */
  readonly code: IncompleteCode;
  /** What went wrong and how to fix it, naming the source. */
  readonly message: string;
  /** The page, department, endpoint or DN the problem concerns, when known. */
  readonly where?: string;
}

export type IncompleteCode =
  | "AUTH_FAILED"
  | "UNREACHABLE"
  | "TLS_FAILED"
  | "PERMISSION_DENIED"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "BANNED"
  | "MALFORMED_RESPONSE"
  | "SERVER_ERROR"
  | "LIMIT_EXCEEDED"
  | "INCREMENTAL_RESET"
  | "GAVE_UP"
  | "ABORTED";

/** The verdict on a read: complete, or not with every reason. */
export type Completeness =
  { readonly complete: true } | { readonly complete: false; readonly reasons: readonly IncompleteReason[] };

/** A field of `SourcePerson` a source could not provide for anyone, and why. */
export interface UnavailableField {
  /** The `SourcePerson` field name (email, mobile, …). */
  readonly field: string;
  /** Why: missing permission, API restriction, not configured. */
  readonly reason: string;
}

/** Where an incremental read can continue from; opaque to everyone but the reader that wrote it. */
export interface ReadCursor {
  /** Source type that wrote the cursor. */
  readonly type: string;
  /** Reader-specific state (AD: invocationId + highestCommittedUSN; OpenLDAP: a timestamp). */
  readonly state: Readonly<Record<string, string>>;
}

/** The normalised result of one read of one source. */
export interface DirectorySnapshot {
  /** Source id from the config. */
  readonly sourceId: string;
  /** Source type. */
  readonly sourceType: string;
  /** `full` lists everyone; `incremental` lists only what changed since `since` and can never remove. */
  readonly mode: "full" | "incremental";
  /** When the read started (ISO 8601). */
  readonly startedAt: string;
  /** When the read ended (ISO 8601). */
  readonly finishedAt: string;
  /** People (each subject once). */
  readonly people: readonly SourcePerson[];
  /** Departments. */
  readonly departments: readonly SourceDepartment[];
  /** Groups, roles, tags. */
  readonly groups: readonly SourceGroup[];
  /** Fields the source could not provide for anyone. */
  readonly unavailableFields: readonly UnavailableField[];
  /** Complete, or not and why. */
  readonly completeness: Completeness;
  /** Where the next incremental read starts, when the source supports it and this read succeeded. */
  readonly cursor?: ReadCursor;
  /** Notes for people that do not affect completeness (skipped referrals, ignored entries). */
  readonly warnings: readonly string[];
}

declare const completeBrand: unique symbol;

/**
 * A full snapshot that was checked to be complete. Only {@link proveComplete} makes one; it is the only
 * kind of snapshot whose absences may be used to disable, revoke or remove anything downstream.
 */
export type CompleteSnapshot = DirectorySnapshot & {
  readonly mode: "full";
  readonly completeness: { readonly complete: true };
  readonly [completeBrand]: true;
};

const proven = new WeakSet<object>();

/**
 * Checks that a snapshot is a complete full read and returns it as a {@link CompleteSnapshot}, frozen so
 * it cannot change afterwards; null otherwise. Code that removes anything takes a `CompleteSnapshot` and
 * calls {@link isProvenComplete} at run time too, so a cast cannot get around the check.
 */
export function proveComplete(snapshot: DirectorySnapshot): CompleteSnapshot | null {
  if (snapshot.mode !== "full" || !snapshot.completeness.complete) return null;
  const frozen = deepFreeze(snapshot);
  proven.add(frozen);
  return frozen as CompleteSnapshot;
}

/** True only for snapshots that went through {@link proveComplete} (not for a cast). */
export function isProvenComplete(snapshot: DirectorySnapshot): snapshot is CompleteSnapshot {
  return proven.has(snapshot);
}

/** The reasons a snapshot is incomplete (empty when complete). */
export function incompleteReasons(snapshot: DirectorySnapshot): readonly IncompleteReason[] {
  return snapshot.completeness.complete ? [] : snapshot.completeness.reasons;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}
