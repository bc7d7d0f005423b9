/** Active Directory (and Samba AD) quirks. */
import { SourceReadError } from "../builder.js";
import type { PersonStatus } from "../snapshot.js";
import { first, firstBuffer, has, type LdapEntry } from "./entry.js";
import type { HighWater, LdapVendor } from "./vendor.js";

// [MS-ADTS] 2.2.16 userAccountControl bits.
const UF_ACCOUNTDISABLE = 0x2;
const UF_LOCKOUT = 0x10;
const UF_PASSWORD_EXPIRED = 0x800000;
/** Constructed: userAccountControl plus lockout and password expiry ([MS-ADTS] 3.1.1.4.5, constructed attributes). */
const COMPUTED_UAC = "msDS-User-Account-Control-Computed";

// accountExpires: 0 and 0x7FFFFFFFFFFFFFFF both mean "never" ([MS-ADA1] 2.9 Account-Expires).
const NEVER_EXPIRES = 0x7fffffffffffffffn;
// FILETIME counts 100 ns intervals since 1601-01-01; Unix time starts 11644473600 s later.
const FILETIME_UNIX_OFFSET_MS = 11_644_473_600_000n;

/** LDAP_MATCHING_RULE_IN_CHAIN ([MS-ADTS] 3.1.1.3.4.4.3): transitive evaluation of DN-valued links. */
export const IN_CHAIN = "1.2.840.113556.1.4.1941";

/**
 * The canonical string of an AD GUID (objectGUID, invocationId). The 16 bytes are in Microsoft's
 * mixed-endian layout: Data1 (4 bytes), Data2 and Data3 (2 bytes each) little-endian, Data4 (8 bytes) as is.
 */
export function decodeGuid(bytes: Buffer): string | null {
  if (bytes.length !== 16) return null;
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = [...bytes.subarray(from, to)];
    if (reverse) part.reverse();
    return part.map((b) => b.toString(16).padStart(2, "0")).join("");
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join("-");
}

/** The inverse of {@link decodeGuid}: AD byte order, e.g. for an `(objectGUID=\xx…)` filter. */
export function encodeGuid(guid: string): Buffer {
  const hex = guid.replace(/-/g, "");
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new TypeError(`not a GUID: ${guid}`);
  const b = Buffer.from(hex, "hex");
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8, 16),
  ]);
}

/** A FILETIME value as a Date; null for "never" (0 or the maximum) and for values that are not numbers. */
export function fileTimeToDate(value: string): Date | null {
  if (!/^-?\d+$/.test(value.trim())) return null;
  const ticks = BigInt(value.trim());
  if (ticks <= 0n || ticks >= NEVER_EXPIRES) return null;
  return new Date(Number(ticks / 10_000n - FILETIME_UNIX_OFFSET_MS));
}

/** A Date as FILETIME (for tests and seeding). */
export function dateToFileTime(date: Date): string {
  return ((BigInt(date.getTime()) + FILETIME_UNIX_OFFSET_MS) * 10_000n).toString();
}

/**
 * The relative identifier of a binary SID ([MS-DTYP] 2.4.2.2: revision, sub-authority count, a 6-byte
 * authority, then the sub-authorities as little-endian 32-bit numbers): its last sub-authority.
 */
export function ridOfSid(bytes: Buffer): number | null {
  if (bytes.length < 12 || bytes[0] !== 1) return null;
  const count = bytes[1]!;
  if (count < 1 || bytes.length !== 8 + 4 * count) return null;
  return bytes.readUInt32LE(bytes.length - 4);
}

function flags(entry: LdapEntry, name: string): number {
  const value = Number(first(entry, name) ?? "0");
  return Number.isFinite(value) ? value : 0;
}

export const activeDirectory: LdapVendor = {
  flavor: "ad",
  subjectAttribute: "objectGUID",
  bufferAttributes: ["objectGUID", "invocationId", "objectSid"],
  groupKind: "security-group",
  defaultUserFilter: "(&(objectCategory=person)(objectClass=user))",
  defaultGroupFilter: "(objectClass=group)",
  defaultAttributes: {
    username: "sAMAccountName",
    name: "displayName",
    email: "mail",
    mobile: "mobile",
    employeeNo: "employeeID",
    title: "title",
    manager: "manager",
    department: "department",
  },
  // The computed attribute carries lockout and password expiry, which plain userAccountControl does not.
  statusAttributes: ["userAccountControl", COMPUTED_UAC, "accountExpires"],
  changeAttributes: ["uSNChanged"],

  subjectOf(entry) {
    const bytes = firstBuffer(entry, "objectGUID");
    return bytes === undefined ? null : decodeGuid(bytes);
  },

  statusOf(entry, now): PersonStatus {
    if (flags(entry, "userAccountControl") & UF_ACCOUNTDISABLE) return "disabled";
    const expires = fileTimeToDate(first(entry, "accountExpires") ?? "0");
    if (expires !== null && expires.getTime() <= now.getTime()) return "expired";
    const computed = flags(entry, COMPUTED_UAC);
    if (computed & UF_LOCKOUT) return "locked";
    if (computed & UF_PASSWORD_EXPIRED) return "expired";
    return "active";
  },

  unreadableStatus(people) {
    // AD constructs the attribute for every user object, so a page without it anywhere means the account
    // may not read it (hardened forests remove that right).
    if (people.length === 0 || people.some((entry) => has(entry, COMPUTED_UAC))) return null;
    return `cannot read ${COMPUTED_UAC}: locked and password-expired accounts would show as active — grant the service account read access to ${COMPUTED_UAC} on the user objects (Authenticated Users have it in a default forest)`;
  },

  memberRequest: (rangeSize) => [`member;range=0-${rangeSize - 1}`],

  groupAttributes: ["objectSid", "memberOf"],

  primaryGroupIdOf(group) {
    const sid = firstBuffer(group, "objectSid");
    return sid === undefined ? null : ridOfSid(sid);
  },

  // AD keeps the membership of a person's primary group (usually Domain Users) out of `member` and
  // `memberOf`: it is the person's primaryGroupID ([MS-ADA3] Primary-Group-ID), the group's RID, which the
  // in-chain rule does not see.
  inChainMembersFilter: (dn, primaryGroupId) =>
    primaryGroupId === null
      ? `(memberOf:${IN_CHAIN}:=${dn})`
      : `(|(memberOf:${IN_CHAIN}:=${dn})(primaryGroupID=${primaryGroupId}))`,

  containingGroupsFilter: (dn) => ({ filter: `(member:${IN_CHAIN}:=${dn})`, transitive: true }),

  async highWater(connection) {
    const root = await connection.rootDse(["highestCommittedUSN", "dsServiceName"]);
    const usn = first(root, "highestCommittedUSN");
    const service = first(root, "dsServiceName");
    if (usn === undefined || !/^\d+$/.test(usn) || service === undefined) {
      throw new SourceReadError({
        code: "MALFORMED_RESPONSE",
        message: `the root DSE lacks highestCommittedUSN or dsServiceName; is this really Active Directory (flavor: ad)?`,
      });
    }
    // The DC's database identity: it changes when the database is restored, and differs between DCs,
    // whose USNs are unrelated ([MS-ADTS] 3.1.1.1.9, invocationId).
    const settings = await connection.entry(service, ["invocationId"], "reading the DC's NTDS Settings");
    const invocation = settings === null ? undefined : firstBuffer(settings, "invocationId");
    const invocationId = invocation === undefined ? null : decodeGuid(invocation);
    if (invocationId === null) {
      throw new SourceReadError({
        code: "MALFORMED_RESPONSE",
        message: `cannot read invocationId of ${service}`,
        where: service,
      });
    }
    return { usn, invocationId, dc: service };
  },

  fallbackHighWater: () => null,

  changedSince: (mark) => `(uSNChanged>=${BigInt(mark.usn ?? "0") + 1n})`,

  cannotContinue(previous: HighWater, current) {
    if (current === null) return "the server no longer reports highestCommittedUSN";
    if (previous.invocationId !== current.invocationId) {
      return `the domain controller's invocationId changed from ${previous.invocationId} to ${current.invocationId} (another DC, or its database was restored), so its update sequence numbers cannot be compared`;
    }
    if (BigInt(current.usn ?? "0") < BigInt(previous.usn ?? "0")) {
      return `the domain controller's highestCommittedUSN went back from ${previous.usn} to ${current.usn} (database restored)`;
    }
    return null;
  },
};
