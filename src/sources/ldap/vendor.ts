import type { GroupKind, PersonStatus } from "../snapshot.js";
import type { LdapConnection } from "./connection.js";
import type { LdapEntry } from "./entry.js";

/** The person fields a directory attribute can feed. */
export type MappedField =
  "username" | "name" | "email" | "mobile" | "employeeNo" | "title" | "manager" | "department";

/** A high-water mark of the directory's change counter, taken at the start of a read. */
export type HighWater = Readonly<Record<string, string>>;

/**
 * Everything that differs between Active Directory and OpenLDAP, in one object per flavor, so the reader
 * stays vendor-neutral (after Backstage's LDAP `vendor`).
 */
export interface LdapVendor {
  /** `ad` or `openldap`. */
  readonly flavor: "ad" | "openldap";
  /** The attribute that holds the stable subject (objectGUID, entryUUID). */
  readonly subjectAttribute: string;
  /** Binary attributes ldapts must hand over as bytes. */
  readonly bufferAttributes: readonly string[];
  /** Kind of the groups this flavor has. */
  readonly groupKind: GroupKind;
  /** Filter for people when the config sets none. */
  readonly defaultUserFilter: string;
  /** Filter for groups when the config sets none. */
  readonly defaultGroupFilter: string;
  /** Attribute per person field when the config sets none. */
  readonly defaultAttributes: Readonly<Record<MappedField, string>>;
  /** Attributes the status rules read. */
  readonly statusAttributes: readonly string[];
  /** Attributes that move whenever an entry changes (read for the cursor). */
  readonly changeAttributes: readonly string[];
  /** The stable subject of an entry, or null when the attribute is missing or malformed. */
  subjectOf(entry: LdapEntry): string | null;
  /** Lifecycle state of a person entry at `now`. */
  statusOf(entry: LdapEntry, now: Date): PersonStatus;
  /**
   * Why the statuses of `people` (a page of them) cannot be trusted, when none of them carries an attribute
   * every person has if the service account may read it (AD: the computed UAC); null when they can.
   */
  unreadableStatus(people: readonly LdapEntry[]): string | null;
  /**
   * The attributes to ask for a group's direct members (AD: `member` in a range, so the ranged path runs
   * even on Samba; OpenLDAP: `member` and `uniqueMember`).
   */
  memberRequest(rangeSize: number): readonly string[];
  /** Further attributes each group is read with (AD: objectSid for its RID, memberOf). */
  readonly groupAttributes: readonly string[];
  /**
   * The number people carry in `primaryGroupID` when this is their primary group (AD: the RID, the last
   * sub-authority of objectSid); null when the flavor has no primary groups or the group no valid SID.
   */
  primaryGroupIdOf(group: LdapEntry): number | null;
  /**
   * A filter matching the people that are members of `groupDn` through any depth of nesting, when the
   * server can evaluate it (AD's LDAP_MATCHING_RULE_IN_CHAIN), together with the people whose primary
   * group it is; null to walk `member` ourselves.
   */
  inChainMembersFilter(escapedGroupDn: string, primaryGroupId: number | null): string | null;
  /** A filter matching the groups that contain `groupDn`: at any depth (`transitive`) or directly. */
  containingGroupsFilter(escapedGroupDn: string): { filter: string; transitive: boolean };
  /** Reads the change high-water mark (AD: highestCommittedUSN and invocationId). */
  highWater(connection: LdapConnection, bases: readonly string[]): Promise<HighWater | null>;
  /** The high-water mark implied by the greatest change value seen, when the server offers none. */
  fallbackHighWater(greatestChange: string | undefined): HighWater | null;
  /** Filter for entries changed after `mark`. */
  changedSince(mark: HighWater): string;
  /** Why `previous` cannot be continued from with the server now at `current`, or null when it can. */
  cannotContinue(previous: HighWater, current: HighWater | null): string | null;
}
