/** OpenLDAP (and other RFC 4512 servers) quirks. */
import type { PersonStatus } from "../snapshot.js";
import { first, strings } from "./entry.js";
import { escapeFilterValue } from "./filter.js";
import type { HighWater, LdapVendor } from "./vendor.js";

// ppolicy (draft-behera-ldap-password-policy §5.3.3): this value means locked by an administrator for good.
const LOCKED_FOR_GOOD = "000001010000Z";
const DAY_MS = 86_400_000;

/** RFC 4533 CSNs (`20261127223012.123456Z#000000#000#000000`) sort by time as plain strings. */
function greatest(values: readonly string[]): string | undefined {
  return values.reduce<string | undefined>((max, v) => (max === undefined || v > max ? v : max), undefined);
}

export const openLdap: LdapVendor = {
  flavor: "openldap",
  subjectAttribute: "entryUUID",
  bufferAttributes: [],
  groupKind: "group",
  defaultUserFilter: "(objectClass=inetOrgPerson)",
  defaultGroupFilter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
  defaultAttributes: {
    username: "uid",
    name: "cn",
    email: "mail",
    mobile: "mobile",
    employeeNo: "employeeNumber",
    title: "title",
    manager: "manager",
    department: "departmentNumber",
  },
  // ppolicy's lock and NIS shadowExpire (RFC 2307) are the common ways to switch an OpenLDAP account off.
  statusAttributes: ["pwdAccountLockedTime", "shadowExpire"],
  changeAttributes: ["entryCSN"],

  subjectOf(entry) {
    const uuid = first(entry, "entryUUID")?.toLowerCase();
    return uuid !== undefined && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)
      ? uuid
      : null;
  },

  statusOf(entry, now): PersonStatus {
    const locked = first(entry, "pwdAccountLockedTime");
    if (locked === LOCKED_FOR_GOOD) return "disabled";
    if (locked !== undefined) return "locked";
    const expire = Number(first(entry, "shadowExpire") ?? "-1");
    // shadowExpire counts days since 1970-01-01; -1 (or absent) means never.
    if (Number.isInteger(expire) && expire >= 0 && expire * DAY_MS <= now.getTime()) return "expired";
    return "active";
  },

  // pwdAccountLockedTime and shadowExpire are absent from most entries: their absence says nothing.
  unreadableStatus: () => null,

  // OpenLDAP has no ranged retrieval; a `member;range=…` request would return nothing. The default group
  // filter takes groupOfUniqueNames too, whose members are in uniqueMember (RFC 4519 §3.6, §2.40).
  memberRequest: () => ["member", "uniqueMember"],

  groupAttributes: [],

  primaryGroupIdOf: () => null,

  inChainMembersFilter: () => null,

  containingGroupsFilter: (dn) => ({ filter: `(|(member=${dn})(uniqueMember=${dn}))`, transitive: false }),

  async highWater(connection, bases) {
    // contextCSN (RFC 4533, kept by syncprov) on the database suffix: the newest change in that database.
    const root = await connection.rootDse(["namingContexts"]);
    const contexts = strings(root, "namingContexts").filter((context) =>
      bases.some((base) => base.toLowerCase().endsWith(context.toLowerCase())),
    );
    const csns: string[] = [];
    for (const context of contexts) {
      const suffix = await connection.entry(context, ["contextCSN"], "reading contextCSN");
      if (suffix !== null) csns.push(...strings(suffix, "contextCSN"));
    }
    const csn = greatest(csns);
    return csn === undefined ? null : { csn };
  },

  fallbackHighWater: (greatestChange) => (greatestChange === undefined ? null : { csn: greatestChange }),

  changedSince(mark) {
    const csn = escapeFilterValue(mark.csn ?? "");
    return `(&(entryCSN>=${csn})(!(entryCSN=${csn})))`;
  },

  cannotContinue(previous: HighWater, current) {
    if (
      current !== null &&
      previous.csn !== undefined &&
      current.csn !== undefined &&
      current.csn < previous.csn
    ) {
      return `the server's newest change (contextCSN ${current.csn}) is older than the cursor's (${previous.csn}): the database was restored or this is another server`;
    }
    return null;
  },
};
