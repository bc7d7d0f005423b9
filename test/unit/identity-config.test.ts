import { describe, expect, it } from "vitest";
import {
  checkIdentitySources,
  compareKindOf,
  identityConfigSchema,
  type IdentityConfig,
} from "../../src/identity/config.js";
import {
  matchKeys,
  normaliseEmail,
  normaliseMobile,
  normaliseText,
  normaliseUsername,
} from "../../src/identity/normalise.js";
import type { SourcePerson } from "../../src/sources/snapshot.js";

function problems(input: unknown): string[] {
  const result = identityConfigSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

const employeeNo = {
  id: "employee-no",
  match: [
    { source: "dingtalk-hq", attribute: "employeeNo" },
    { source: "ad-hq", attribute: "attributes.employeeID" },
  ],
};

describe("identity config", () => {
  it("accepts an employee-number rule between DingTalk and a raw AD attribute, unverified by default", () => {
    const config = identityConfigSchema.parse({ primarySource: "ad-hq", rules: [employeeNo] });
    expect(config.primarySource).toBe("ad-hq");
    expect(config.rules[0]!.match.map((t) => t.verified)).toEqual([false, false]);
    expect(compareKindOf(config.rules[0]!)).toBe("text");
  });

  it("defaults to no rules", () => {
    expect(identityConfigSchema.parse({})).toEqual({ rules: [] });
  });

  it("refuses a mobile rule unless every side is verified", () => {
    const rule = {
      id: "mobile",
      match: [
        { source: "dingtalk-hq", attribute: "mobile", verified: true },
        { source: "wecom-hq", attribute: "mobile" },
      ],
    };
    expect(problems({ rules: [rule] })).toEqual([
      expect.stringMatching(
        /^rules\.0\.match\.1\.verified: rule compares mobile numbers: every side must be verified/,
      ),
    ]);
  });

  it("refuses an email rule on unverified sides, also when it compares emails as plain text", () => {
    const emails = {
      id: "mail",
      match: [
        { source: "a", attribute: "email" },
        { source: "b", attribute: "email" },
      ],
    };
    expect(problems({ rules: [emails] })).toHaveLength(2);
    const asText = {
      id: "mail",
      compare: "text",
      match: [
        { source: "a", attribute: "email", verified: true },
        { source: "b", attribute: "attributes.mail" },
      ],
    };
    expect(problems({ rules: [asText] })).toEqual([]);
    const rawAsEmail = {
      id: "mail",
      compare: "email",
      match: [
        { source: "a", attribute: "attributes.mail" },
        { source: "b", attribute: "attributes.mail", verified: true },
      ],
    };
    expect(problems({ rules: [rawAsEmail] })).toEqual([
      expect.stringMatching(/^rules\.0\.match\.0\.verified: rule compares emails/),
    ]);
  });

  it("refuses reserved and duplicate rule ids, a source twice in one rule, a one-sided rule and names", () => {
    expect(problems({ rules: [{ ...employeeNo, id: "manual" }] })).toEqual([
      expect.stringMatching(/^rules\.0\.id: is reserved/),
    ]);
    expect(problems({ rules: [{ ...employeeNo, id: "created" }] })).toHaveLength(1);
    expect(problems({ rules: [employeeNo, employeeNo] })).toEqual([
      'rules.1.id: duplicate rule id "employee-no" (also used by rules[0])',
    ]);
    expect(
      problems({
        rules: [
          {
            id: "x",
            match: [
              { source: "a", attribute: "username" },
              { source: "a", attribute: "employeeNo" },
            ],
          },
        ],
      }),
    ).toEqual([expect.stringMatching(/^rules\.0\.match\.1\.source: source "a" appears twice/)]);
    expect(problems({ rules: [{ id: "x", match: [{ source: "a", attribute: "username" }] }] })).toEqual([
      "rules.0.match: a rule needs at least two sides",
    ]);
    expect(
      problems({
        rules: [
          {
            id: "x",
            match: [
              { source: "a", attribute: "name" },
              { source: "b", attribute: "name" },
            ],
          },
        ],
      }),
    ).toHaveLength(2);
  });

  it("allows domains on email rules only", () => {
    const mail = (domains: string[]) => ({
      id: "mail",
      match: [
        { source: "a", attribute: "email", verified: true, domains },
        { source: "b", attribute: "email", verified: true },
      ],
    });
    expect(
      identityConfigSchema.parse({ rules: [mail(["Corp.Example.com"])] }).rules[0]!.match[0]!.domains,
    ).toEqual(["corp.example.com"]);
    const onUsername = {
      id: "u",
      match: [
        { source: "a", attribute: "username", domains: ["corp.example.com"] },
        { source: "b", attribute: "username" },
      ],
    };
    expect(problems({ rules: [onUsername] })).toEqual([
      "rules.0.match.0.domains: domains applies to rules that compare emails only",
    ]);
  });

  it("takes the comparison from the first username, email or mobile term when compare is not given", () => {
    const rule = (attributes: string[]) => ({
      match: attributes.map((attribute, i) => ({ source: `s${i}`, attribute, verified: true })),
    });
    expect(compareKindOf(rule(["attributes.sAMAccountName", "username"]))).toBe("username");
    expect(compareKindOf(rule(["mobile", "attributes.tel"]))).toBe("mobile");
    expect(compareKindOf(rule(["employeeNo", "attributes.employeeID"]))).toBe("text");
    expect(compareKindOf({ compare: "username", ...rule(["employeeNo", "subject"]) })).toBe("username");
  });

  it("reports source ids the identity section names that are not configured, with their paths", () => {
    const config: IdentityConfig = identityConfigSchema.parse({
      primarySource: "ad-old",
      rules: [employeeNo],
    });
    expect(checkIdentitySources(config, ["dingtalk-hq"])).toEqual([
      { path: ["primarySource"], message: 'unknown source "ad-old" (configured: dingtalk-hq)' },
      {
        path: ["rules", 0, "match", 1, "source"],
        message: 'unknown source "ad-hq" (configured: dingtalk-hq)',
      },
    ]);
    expect(checkIdentitySources(config, ["dingtalk-hq", "ad-hq", "ad-old"])).toEqual([]);
  });
});

describe("value normalisation", () => {
  it("turns full-width characters into ASCII and trims text; blank is no value", () => {
    expect(normaliseText("  ＥＭＰ００１ ")).toBe("EMP001");
    expect(normaliseText("   ")).toBeUndefined();
    expect(normaliseText("Emp001")).not.toBe(normaliseText("EMP001"));
  });

  it("case-folds usernames and emails", () => {
    expect(normaliseUsername(" ZhangSan ")).toBe("zhangsan");
    expect(normaliseEmail("Zhang.San@Corp.Example.COM")).toBe("zhang.san@corp.example.com");
  });

  it("gives no email key for something that is not an address", () => {
    expect(normaliseEmail("zhangsan")).toBeUndefined();
    expect(normaliseEmail("zhangsan@localhost")).toBeUndefined();
    expect(normaliseEmail("a@b@c.com")).toBeUndefined();
  });

  it.each([
    "13800138000",
    "138 0013 8000",
    "138-0013-8000",
    "+86 138 0013 8000",
    "+86-13800138000",
    "(+86) 138-0013-8000",
    "8613800138000",
    "0086 138 0013 8000",
    "１３８００１３８０００",
  ])("writes the mainland mobile %s as +8613800138000", (raw) => {
    expect(normaliseMobile(raw)).toBe("+8613800138000");
  });

  it("keeps numbers of other countries only with their country code", () => {
    expect(normaliseMobile("+852 9123 4567")).toBe("+85291234567");
    expect(normaliseMobile("00852 9123 4567")).toBe("+85291234567");
    expect(normaliseMobile("91234567")).toBeUndefined();
  });

  it("gives no mobile key for landlines, short numbers, letters or a malformed +86 number", () => {
    expect(normaliseMobile("010-12345678")).toBeUndefined();
    expect(normaliseMobile("12345")).toBeUndefined();
    expect(normaliseMobile("138OO138OOO")).toBeUndefined();
    expect(normaliseMobile("+86 1234")).toBeUndefined();
    expect(normaliseMobile("+86 23800138000")).toBeUndefined();
  });

  it("reads fields, raw attributes (every value of a multi-valued one) and alternative ids", () => {
    const person: SourcePerson = {
      subject: "guid-1",
      username: "ZhangSan",
      email: "Zhang@corp.example.com",
      altIds: { unionid: "U-1" },
      departments: [],
      managers: [],
      status: "active",
      attributes: {
        proxyAddresses: ["SMTP:zhang@corp.example.com", "smtp:zs@old.example.com"],
        employeeID: " 0042 ",
      },
    };
    const term = (attribute: string, domains?: string[]) => ({
      source: "ad",
      attribute,
      verified: true,
      ...(domains ? { domains } : {}),
    });
    expect(matchKeys(person, term("username"), "username")).toEqual(["zhangsan"]);
    expect(matchKeys(person, term("attributes.employeeID"), "text")).toEqual(["0042"]);
    expect(matchKeys(person, term("altIds.unionid"), "text")).toEqual(["U-1"]);
    expect(matchKeys(person, term("attributes.proxyAddresses"), "username")).toEqual([
      "smtp:zhang@corp.example.com",
      "smtp:zs@old.example.com",
    ]);
    expect(matchKeys(person, term("attributes.missing"), "text")).toEqual([]);
    expect(matchKeys(person, term("mobile"), "mobile")).toEqual([]);
  });

  it("drops emails outside the term's domains", () => {
    const person: SourcePerson = {
      subject: "u1",
      email: "zhang@gmail.com",
      departments: [],
      managers: [],
      status: "active",
      attributes: {},
    };
    const term = { source: "dt", attribute: "email", verified: true };
    expect(matchKeys(person, { ...term, domains: ["corp.example.com"] }, "email")).toEqual([]);
    expect(matchKeys(person, term, "email")).toEqual(["zhang@gmail.com"]);
  });
});
