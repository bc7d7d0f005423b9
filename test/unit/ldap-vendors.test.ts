import { describe, expect, it } from "vitest";
import {
  activeDirectory,
  dateToFileTime,
  decodeGuid,
  encodeGuid,
  fileTimeToDate,
  ridOfSid,
} from "../../src/sources/ldap/ad.js";
import type { LdapEntry } from "../../src/sources/ldap/entry.js";
import { and, escapeFilterValue } from "../../src/sources/ldap/filter.js";
import { openLdap } from "../../src/sources/ldap/openldap.js";

function entry(values: Record<string, string | Buffer>): LdapEntry {
  // Lower-cased names: the reader must find them whatever case the server uses.
  return {
    dn: "CN=x,DC=example",
    ...Object.fromEntries(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v])),
  };
}

const NOW = new Date("2026-06-01T00:00:00Z");

describe("AD objectGUID", () => {
  it("decodes Microsoft's mixed-endian byte order (the first three fields reversed)", () => {
    // The bytes AD returns for {864c94d7-3a00-4480-bddc-486fbff02faa}, as ldapsearch shows them in base64.
    const bytes = Buffer.from("15RMhgA6gES93Ehvv/Avqg==", "base64");
    expect(decodeGuid(bytes)).toBe("864c94d7-3a00-4480-bddc-486fbff02faa");
  });

  it("round-trips through encodeGuid", () => {
    const guid = "00112233-4455-6677-8899-aabbccddeeff";
    expect(encodeGuid(guid).toString("hex")).toBe("33221100554477668899aabbccddeeff");
    expect(decodeGuid(encodeGuid(guid))).toBe(guid);
  });

  it("refuses anything that is not 16 bytes", () => {
    expect(decodeGuid(Buffer.alloc(15))).toBeNull();
    expect(activeDirectory.subjectOf(entry({ objectGUID: Buffer.alloc(17) }))).toBeNull();
    expect(activeDirectory.subjectOf(entry({}))).toBeNull();
  });
});

describe("AD primary groups", () => {
  // S-1-5-21-1004336348-1177238915-682003330-1105, as AD stores it ([MS-DTYP] 2.4.2.2).
  const sid = Buffer.from("010500000000000515000000dcf4dc3b833d2b46828ba62851040000", "hex");

  it("takes the RID, the last sub-authority of objectSid read as little-endian", () => {
    expect(ridOfSid(sid)).toBe(1105);
    expect(activeDirectory.primaryGroupIdOf(entry({ objectSid: sid }))).toBe(1105);
  });

  it("refuses a SID whose length does not match its sub-authority count, and groups without one", () => {
    expect(ridOfSid(sid.subarray(0, sid.length - 1))).toBeNull();
    expect(ridOfSid(Buffer.from("0100000000000005", "hex"))).toBeNull();
    expect(activeDirectory.primaryGroupIdOf(entry({}))).toBeNull();
    expect(openLdap.primaryGroupIdOf(entry({ objectSid: sid }))).toBeNull();
  });

  it("asks for the people whose primaryGroupID is the group's RID besides the in-chain members", () => {
    expect(activeDirectory.inChainMembersFilter("CN=g,DC=x", 1105)).toBe(
      "(|(memberOf:1.2.840.113556.1.4.1941:=CN=g,DC=x)(primaryGroupID=1105))",
    );
  });
});

describe("AD accountExpires (FILETIME)", () => {
  it("treats 0 and 0x7FFFFFFFFFFFFFFF as never", () => {
    expect(fileTimeToDate("0")).toBeNull();
    expect(fileTimeToDate("9223372036854775807")).toBeNull();
    expect(fileTimeToDate("garbage")).toBeNull();
  });

  it("converts 100 ns ticks since 1601 to a date and back", () => {
    expect(fileTimeToDate("116444736000000000")?.toISOString()).toBe("1970-01-01T00:00:00.000Z");
    const date = new Date("2020-01-01T00:00:00Z");
    expect(dateToFileTime(date)).toBe("132223104000000000");
    expect(fileTimeToDate("132223104000000000")?.toISOString()).toBe(date.toISOString());
  });
});

describe("AD status", () => {
  const status = (values: Record<string, string>) => activeDirectory.statusOf(entry(values), NOW);
  const past = dateToFileTime(new Date("2026-05-31T23:59:59Z"));
  const future = dateToFileTime(new Date("2026-06-02T00:00:00Z"));

  it("is active for a normal account", () => {
    expect(
      status({ userAccountControl: "512", "msDS-User-Account-Control-Computed": "0", accountExpires: "0" }),
    ).toBe("active");
  });
  it("is disabled when ACCOUNTDISABLE (0x2) is set, whatever else holds", () => {
    expect(
      status({ userAccountControl: "514", "msDS-User-Account-Control-Computed": "16", accountExpires: past }),
    ).toBe("disabled");
  });
  it("is expired when accountExpires lies in the past, not when it lies ahead", () => {
    expect(status({ userAccountControl: "512", accountExpires: past })).toBe("expired");
    expect(status({ userAccountControl: "512", accountExpires: future })).toBe("active");
  });
  it("is locked when the computed UAC has UF_LOCKOUT (0x10)", () => {
    expect(status({ userAccountControl: "512", "msDS-User-Account-Control-Computed": "16" })).toBe("locked");
  });
  it("is expired when the computed UAC has UF_PASSWORD_EXPIRED (0x800000)", () => {
    expect(status({ userAccountControl: "512", "msDS-User-Account-Control-Computed": "8388608" })).toBe(
      "expired",
    );
  });
});

describe("AD status attributes the service account cannot read", () => {
  const plain = entry({ userAccountControl: "512", accountExpires: "0" });
  const computed = entry({ userAccountControl: "512", "msDS-User-Account-Control-Computed": "0" });

  it("says statuses cannot be trusted when no person of a page carries the computed UAC", () => {
    // Such people read as active even when locked out or with an expired password.
    expect(activeDirectory.statusOf(plain, NOW)).toBe("active");
    expect(activeDirectory.unreadableStatus([plain, plain])).toMatch(
      /^cannot read msDS-User-Account-Control-Computed: locked and password-expired accounts would show as active — grant the service account read access/,
    );
  });

  it("trusts them once anyone carries it, and has nothing to say about no people", () => {
    expect(activeDirectory.unreadableStatus([plain, computed])).toBeNull();
    expect(activeDirectory.unreadableStatus([])).toBeNull();
  });

  it("never applies to OpenLDAP, whose status attributes are absent from most entries", () => {
    expect(openLdap.unreadableStatus([plain])).toBeNull();
  });
});

describe("OpenLDAP", () => {
  it("takes entryUUID as subject in lower case and refuses malformed ones", () => {
    expect(openLdap.subjectOf(entry({ entryUUID: "0A1B2C3D-0000-4000-8000-00000000000F" }))).toBe(
      "0a1b2c3d-0000-4000-8000-00000000000f",
    );
    expect(openLdap.subjectOf(entry({ entryUUID: "not-a-uuid" }))).toBeNull();
  });

  it("reads ppolicy locks and shadowExpire", () => {
    const status = (values: Record<string, string>) => openLdap.statusOf(entry(values), NOW);
    expect(status({})).toBe("active");
    expect(status({ pwdAccountLockedTime: "000001010000Z" })).toBe("disabled");
    expect(status({ pwdAccountLockedTime: "20260531000000Z" })).toBe("locked");
    expect(status({ shadowExpire: "1" })).toBe("expired");
    expect(status({ shadowExpire: "-1" })).toBe("active");
    expect(status({ shadowExpire: String(Math.floor(NOW.getTime() / 86_400_000) + 10) })).toBe("active");
  });

  it("continues only from a cursor that is not newer than the server", () => {
    const older = { csn: "20260101000000.000000Z#000000#000#000000" };
    const newer = { csn: "20260201000000.000000Z#000000#000#000000" };
    expect(openLdap.cannotContinue(older, newer)).toBeNull();
    expect(openLdap.cannotContinue(newer, older)).toMatch(/restored/);
    expect(openLdap.changedSince(older)).toBe(
      "(&(entryCSN>=20260101000000.000000Z#000000#000#000000)(!(entryCSN=20260101000000.000000Z#000000#000#000000)))",
    );
  });
});

describe("AD incremental cursor", () => {
  const mark = { usn: "4000", invocationId: "96cb918d-65a0-4c66-9b0d-2b19601552d6" };
  it("asks for changes strictly after the high-water USN", () => {
    expect(activeDirectory.changedSince(mark)).toBe("(uSNChanged>=4001)");
  });
  it("refuses to continue on another DC or after a restore", () => {
    expect(activeDirectory.cannotContinue(mark, { ...mark, usn: "4100" })).toBeNull();
    expect(activeDirectory.cannotContinue(mark, { ...mark, invocationId: "x" })).toMatch(
      /invocationId changed/,
    );
    expect(activeDirectory.cannotContinue(mark, { ...mark, usn: "3999" })).toMatch(/went back/);
  });
});

describe("filter escaping (RFC 4515 §3)", () => {
  it("escapes * ( ) \\ and NUL, and leaves UTF-8 alone", () => {
    expect(escapeFilterValue("a*b(c)d\\e\0f")).toBe("a\\2ab\\28c\\29d\\5ce\\00f");
    expect(escapeFilterValue("张三")).toBe("张三");
  });
  it("puts a DN with metacharacters into an in-chain filter that still parses as one value", () => {
    const dn = "CN=odd*(group)\\\\ name,OU=Groups,DC=x";
    expect(activeDirectory.inChainMembersFilter(escapeFilterValue(dn), null)).toBe(
      "(memberOf:1.2.840.113556.1.4.1941:=CN=odd\\2a\\28group\\29\\5c\\5c name,OU=Groups,DC=x)",
    );
  });
  it("joins parts with &, dropping empty ones", () => {
    expect(and("(a=1)", "")).toBe("(a=1)");
    expect(and("(a=1)", "(b=2)")).toBe("(&(a=1)(b=2))");
  });
});
