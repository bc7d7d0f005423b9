import { describe, expect, it } from "vitest";
import { referenceDn, referenceHidesEntries } from "../../src/sources/ldap/references.js";

const ROOT = "DC=corp,DC=example,DC=test";
const STAFF = `OU=Staff,${ROOT}`;

describe("search references", () => {
  it("reads the DN of an LDAP URL, percent-decoded; none for a URL without one", () => {
    expect(referenceDn(`ldap://corp.example.test/CN=Configuration,${ROOT}`)).toBe(`CN=Configuration,${ROOT}`);
    expect(referenceDn("ldaps://dc2:636/OU=R%C3%A9mote,DC=x??sub")).toBe("OU=Rémote,DC=x");
    expect(referenceDn("ldap://dc2.example.test")).toBe("");
    expect(referenceDn("not a url")).toBeNull();
  });

  it("ignores AD's configuration and DNS partitions met from the domain root", () => {
    for (const partition of ["CN=Configuration", "DC=DomainDnsZones", "DC=ForestDnsZones"]) {
      expect(referenceHidesEntries(`ldap://corp.example.test/${partition},${ROOT}`, ROOT, [ROOT])).toBe(
        false,
      );
    }
  });

  it("ignores references outside every configured base DN", () => {
    expect(referenceHidesEntries(`ldap://dc2/OU=Elsewhere,${ROOT}`, STAFF, [STAFF])).toBe(false);
  });

  it("counts a reference inside a configured user or group base as entries not read", () => {
    expect(referenceHidesEntries(`ldap://dc2/OU=Remote,${STAFF}`, STAFF, [STAFF])).toBe(true);
    expect(
      referenceHidesEntries(`ldap://dc2/ou=remote,ou=groups,dc=x`, "ou=groups,dc=x", [
        STAFF,
        "OU=Groups,DC=x",
      ]),
    ).toBe(true);
    // An OU that merely happens to be called Configuration is no AD partition.
    expect(referenceHidesEntries(`ldap://dc2/CN=Configuration,${STAFF}`, STAFF, [STAFF])).toBe(true);
  });

  it("counts a reference without a DN, or one it cannot read, as inside the search base", () => {
    expect(referenceHidesEntries("ldap://dc2", STAFF, [STAFF])).toBe(true);
    expect(referenceHidesEntries("ldap://dc2/OU=%E0%A4%A,DC=x", STAFF, [STAFF])).toBe(true);
  });
});
