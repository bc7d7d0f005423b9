import { InvalidCredentialsError, InsufficientAccessError, NoSuchObjectError } from "ldapts";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ldapConfigSchema } from "../../src/sources/ldap/config.js";
import { dnOfNameAndOptionalUid, normalizeDn, parentDn, rangedValues } from "../../src/sources/ldap/entry.js";
import { adBindSubcode, describeLdapFailure } from "../../src/sources/ldap/errors.js";

const minimal = {
  url: "ldaps://dc1.corp.example:636",
  flavor: "ad",
  bindDn: "svc-idbridge@CORP.EXAMPLE",
  bindPassword: "secret",
  users: { baseDns: ["OU=Staff,DC=corp,DC=example"] },
};

function problems(input: unknown): string[] {
  const result = ldapConfigSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("ldap config", () => {
  it("fills every default", () => {
    expect(ldapConfigSchema.parse(minimal)).toEqual({
      ...minimal,
      startTls: false,
      insecure: false,
      groups: { baseDns: [] },
      departments: { from: "ou" },
      attributes: {},
      extraAttributes: [],
      pageSize: 500,
      rangeSize: 1500,
      timeouts: { connectMs: 10_000, operationMs: 60_000 },
    });
  });

  it("refuses plain ldap:// unless StartTLS or insecure: true is set", () => {
    expect(problems({ ...minimal, url: "ldap://dc1:389" })).toEqual([
      "url: ldap:// sends the password in clear text: use ldaps://, or set startTls: true, or (test labs only) insecure: true",
    ]);
    expect(problems({ ...minimal, url: "ldap://dc1:389", startTls: true })).toEqual([]);
    expect(problems({ ...minimal, url: "ldap://dc1:389", insecure: true })).toEqual([]);
    expect(problems({ ...minimal, startTls: true })).toEqual([
      "startTls: cannot be used with an ldaps:// URL, which is TLS already",
    ]);
  });

  it("reports a missing password, a bad URL, a filter without parentheses and a bad flavor all at once", () => {
    const { bindPassword: _, ...noPassword } = minimal;
    expect(
      problems({
        ...noPassword,
        url: "http://x",
        flavor: "novell",
        users: { baseDns: ["OU=x"], filter: "objectClass=user" },
      }),
    ).toEqual([
      "url: must be ldaps://host[:port] or ldap://host[:port]",
      'flavor: Invalid option: expected one of "ad"|"openldap"',
      "bindPassword: Invalid input: expected string, received undefined",
      "users.filter: must be an LDAP filter in parentheses (RFC 4515), e.g. (objectClass=user)",
    ]);
  });

  it("describes every field", () => {
    const undocumented: string[] = [];
    const walk = (schema: z.ZodType, path: string) => {
      if (!schema.description) undocumented.push(path);
      let inner: z.ZodType = schema;
      while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional || inner instanceof z.ZodPipe) {
        inner = inner instanceof z.ZodPipe ? (inner.in as z.ZodType) : (inner.unwrap() as z.ZodType);
      }
      if (inner instanceof z.ZodObject) {
        for (const [key, child] of Object.entries(inner.shape)) walk(child as z.ZodType, `${path}.${key}`);
      }
    };
    walk(ldapConfigSchema, "config");
    expect(undocumented).toEqual([]);
  });
});

describe("ldap errors", () => {
  const context = { sourceId: "corp-ad", url: "ldaps://dc1:636", action: "binding as svc" };

  it("explains AD's bind sub-codes", () => {
    expect(
      adBindSubcode(
        "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 775, v3839",
      ),
    ).toEqual({
      code: "775",
      meaning: "the account is locked out",
    });
    expect(adBindSubcode("invalid credentials")).toBeNull();
    const reason = describeLdapFailure(
      new InvalidCredentialsError(
        "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 533, v1db1",
      ),
      context,
    );
    expect(reason).toEqual({
      code: "AUTH_FAILED",
      message:
        "source corp-ad (ldaps://dc1:636): binding as svc failed: the server rejected the credentials: the account is disabled (LDAP result 49, AD sub-code 533)",
    });
  });

  it("maps result codes and socket errors to reason codes", () => {
    const code = (error: unknown) => describeLdapFailure(error, { ...context, where: "OU=x" }).code;
    expect(code(new NoSuchObjectError("0000208D: NameErr"))).toBe("NOT_FOUND");
    expect(code(new InsufficientAccessError("no"))).toBe("PERMISSION_DENIED");
    expect(code(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe(
      "UNREACHABLE",
    );
    expect(
      code(
        Object.assign(new Error("self-signed certificate in certificate chain"), {
          code: "SELF_SIGNED_CERT_IN_CHAIN",
        }),
      ),
    ).toBe("TLS_FAILED");
    expect(
      code(Object.assign(new Error("Hostname/IP does not match"), { code: "ERR_TLS_CERT_ALTNAME_INVALID" })),
    ).toBe("TLS_FAILED");
    expect(code(new Error("SearchRequest: Operation timed out"))).toBe("UNREACHABLE");
    expect(code(new Error("something else"))).toBe("SERVER_ERROR");
  });
});

describe("DNs", () => {
  it("normalises case and blanks around separators, keeping escapes", () => {
    expect(normalizeDn("CN=Alice Anders, OU=Staff ,DC=corp")).toBe("cn=alice anders,ou=staff,dc=corp");
    expect(normalizeDn("CN=a\\, b,DC=x")).toBe("cn=a\\, b,dc=x");
  });
  it("finds the parent after the first unescaped comma", () => {
    expect(parentDn("CN=a\\,b,OU=x,DC=y")).toBe("OU=x,DC=y");
    expect(parentDn("DC=y")).toBeNull();
  });
  it("takes the DN of a uniqueMember value, dropping an optional #'bits'B UID but not an escaped #", () => {
    expect(dnOfNameAndOptionalUid("uid=a,dc=x#'0101'B")).toBe("uid=a,dc=x");
    expect(dnOfNameAndOptionalUid("uid=a,dc=x#''B")).toBe("uid=a,dc=x");
    expect(dnOfNameAndOptionalUid("uid=a,dc=x")).toBe("uid=a,dc=x");
    expect(dnOfNameAndOptionalUid("dc=x,cn=a\\#'01'B")).toBe("dc=x,cn=a\\#'01'B");
    expect(dnOfNameAndOptionalUid("cn=a\\\\#'01'B")).toBe("cn=a\\\\");
  });
});

describe("ranged attribute values ([MS-ADTS] 3.1.1.3.1.3.3)", () => {
  it("reads the range and its values; a range ending in * is the last", () => {
    expect(rangedValues({ dn: "x", "member;range=0-1": ["a", "b"] }, "member")).toEqual({
      low: 0,
      high: 1,
      values: ["a", "b"],
    });
    expect(rangedValues({ dn: "x", "Member;range=2-*": "c" }, "member")).toEqual({
      low: 2,
      high: null,
      values: ["c"],
    });
    expect(rangedValues({ dn: "x", member: ["a"] }, "member")).toBeNull();
  });

  it("takes a range without values (ldapts' [] for an empty group) as the last, not as one with more to come", () => {
    expect(rangedValues({ dn: "x", "member;range=0-99": [] }, "member")).toEqual({
      low: 0,
      high: null,
      values: [],
    });
  });
});
