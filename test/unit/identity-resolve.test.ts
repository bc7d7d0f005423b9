import { describe, expect, it } from "vitest";
import { identityConfigSchema, type IdentityConfig } from "../../src/identity/config.js";
import type { LinkDecision } from "../../src/identity/link.js";
import type { Person } from "../../src/identity/person.js";
import {
  claimsOf,
  decisionFor,
  judgeAccountStates,
  linkSignInAccount,
  unlinkedFrom,
  type SignInLinkInput,
} from "../../src/identity/resolve.js";
import { buildDirectoryFacts } from "../../src/policy/facts.js";
import { parsePolicyText } from "../../src/policy/load.js";
import type { SignInIdentity } from "../../src/sources/sign-in.js";
import type { SourcePerson } from "../../src/sources/snapshot.js";
import { EARLIER, NOW, linkedPerson, provenSnapshot, sourcePerson } from "../fixtures/identity/people.js";

const CONFIG: IdentityConfig = identityConfigSchema.parse({
  primarySource: "ad-hq",
  rules: [
    {
      id: "employee-no",
      match: [
        { source: "dingtalk-hq", attribute: "employeeNo" },
        { source: "ad-hq", attribute: "attributes.employeeID" },
      ],
    },
    {
      id: "work-email",
      match: [
        { source: "corp-oidc", attribute: "email", verified: true, domains: ["corp.example.com"] },
        { source: "ad-hq", attribute: "email", verified: true, domains: ["corp.example.com"] },
      ],
    },
  ],
});

const AD = provenSnapshot("ad-hq", [
  sourcePerson("guid-1", {
    employeeNo: "E001",
    attributes: { employeeID: "E001" },
    email: "zhang.wei@corp.example.com",
  }),
  sourcePerson("guid-2", { attributes: { employeeID: "E002" }, email: "li.na@corp.example.com" }),
  sourcePerson("guid-3", { attributes: { employeeID: "E002" } }),
]);
const PEOPLE = [
  linkedPerson("p_1", ["ad-hq", "guid-1"]),
  linkedPerson("p_2", ["ad-hq", "guid-2"]),
  linkedPerson("p_3", ["ad-hq", "guid-3"]),
];

function identity(sourceId: string, subject: string, fields: Partial<SourcePerson> = {}): SignInIdentity {
  return { sourceId, subject, person: sourcePerson(subject, fields) };
}

function resolveByRules(id: SignInIdentity, extra: Partial<SignInLinkInput> = {}) {
  let n = 0;
  return linkSignInAccount({
    identity: id,
    snapshots: [AD],
    config: CONFIG,
    existing: PEOPLE,
    decisions: [],
    now: NOW,
    newId: () => `p_new_${++n}`,
    justInTime: false,
    ...extra,
  });
}

describe("sign-in link rules", () => {
  it("links an account one rule matches to exactly one person, adding only that account", () => {
    const result = resolveByRules(identity("dingtalk-hq", "ding-1", { employeeNo: "E001" }));
    expect(result.kind).toBe("linked");
    if (result.kind !== "linked") return;
    expect(result.person).toStrictEqual({
      id: "p_1",
      accounts: [
        { sourceId: "ad-hq", subject: "guid-1", rule: "created", linkedAt: EARLIER },
        { sourceId: "dingtalk-hq", subject: "ding-1", rule: "employee-no", linkedAt: NOW.toISOString() },
      ],
    });
    expect(result.changes).toEqual([
      expect.objectContaining({
        kind: "account-linked",
        personId: "p_1",
        rule: "employee-no",
        evidence: expect.objectContaining({
          value: "E001",
          matched: { sourceId: "ad-hq", subject: "guid-1" },
        }),
      }),
    ]);
  });

  it("sends an account a rule matches to several people to review", () => {
    const result = resolveByRules(identity("dingtalk-hq", "ding-2", { employeeNo: "E002" }));
    expect(result.kind).toBe("review");
    if (result.kind === "review") expect(result.reason).toMatch(/2 people: p_2, p_3/);
  });

  it("finds nobody for an account no rule matches, and creates no one without just-in-time", () => {
    const result = resolveByRules(identity("dingtalk-hq", "ding-9", { employeeNo: "E999" }));
    expect(result).toEqual({ kind: "none", reason: expect.stringMatching(/just-in-time creation is off/) });
  });

  it("founds a new person for an account no rule matches when just-in-time creation is on", () => {
    const result = resolveByRules(identity("dingtalk-hq", "ding-9", { employeeNo: "E999" }), {
      justInTime: true,
    });
    expect(result.kind).toBe("created");
    if (result.kind !== "created") return;
    expect(result.person).toStrictEqual({
      id: "p_new_1",
      accounts: [
        { sourceId: "dingtalk-hq", subject: "ding-9", rule: "created", linkedAt: NOW.toISOString() },
      ],
    });
    expect(result.changes.map((c) => c.kind)).toEqual(["person-created", "account-linked"]);
  });

  it("links on a verified work email of the organisation's domain", () => {
    const result = resolveByRules(identity("corp-oidc", "oidc-sub-2", { email: "Li.Na@corp.example.com" }));
    expect(result.kind === "linked" && result.person.id).toBe("p_2");
  });

  it("does not link on an email no verified rule compares (a source whose emails are not vouched for)", () => {
    // DingTalk's `me` email: no rule names dingtalk-hq's email, so an equal address links nothing.
    const result = resolveByRules(identity("dingtalk-hq", "ding-7", { email: "zhang.wei@corp.example.com" }));
    expect(result.kind).toBe("none");
  });

  it("refuses a rule that would compare an unverified email at all (the config does not parse)", () => {
    const parsed = identityConfigSchema.safeParse({
      rules: [
        {
          id: "any-email",
          match: [
            { source: "dingtalk-hq", attribute: "email" },
            { source: "ad-hq", attribute: "email", verified: true },
          ],
        },
      ],
    });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toMatch(/never links on an unverified email/);
  });

  it("does not link on another organisation's email, even with the same mailbox name", () => {
    const result = resolveByRules(
      identity("corp-oidc", "oidc-sub-x", { email: "zhang.wei@other.example.com" }),
      {
        justInTime: true,
      },
    );
    expect(result.kind).toBe("created");
    expect(result.kind === "created" && result.person.accounts.map((a) => a.sourceId)).toEqual(["corp-oidc"]);
  });

  it("does not link to a person an admin unlinked the account from", () => {
    const decisions: LinkDecision[] = [
      {
        kind: "unlink",
        account: { sourceId: "dingtalk-hq", subject: "ding-1" },
        personId: "p_1",
        by: "alice",
        at: EARLIER,
      },
    ];
    const result = resolveByRules(identity("dingtalk-hq", "ding-1", { employeeNo: "E001" }), { decisions });
    expect(result).toEqual({ kind: "none", reason: expect.stringMatching(/no link rule matches/) });
  });
});

describe("admin decisions about an account", () => {
  const account = { sourceId: "dingtalk-hq", subject: "ding-1" };
  const at = EARLIER;

  it("the last link or ignore about the account wins", () => {
    expect(
      decisionFor(
        [
          { kind: "ignore", account, by: "alice", at },
          { kind: "link", account, personId: "p_1", by: "bob", at },
          { kind: "link", account: { ...account, subject: "other" }, personId: "p_9", by: "bob", at },
        ],
        account,
      ),
    ).toEqual({ kind: "link", personId: "p_1", by: "bob" });
    expect(
      decisionFor(
        [
          { kind: "link", account, personId: "p_1", by: "bob", at },
          { kind: "ignore", account, by: "alice", at },
        ],
        account,
      ),
    ).toEqual({ kind: "ignore", by: "alice" });
  });

  it("remembers the people an account was unlinked from until an admin links it back", () => {
    const unlink = (personId: string): LinkDecision => ({
      kind: "unlink",
      account,
      personId,
      by: "carol",
      at,
    });
    const relink: LinkDecision = { kind: "link", account, personId: "p_1", by: "bob", at };
    expect([...unlinkedFrom([unlink("p_1"), unlink("p_2")], account)]).toEqual(["p_1", "p_2"]);
    expect([...unlinkedFrom([unlink("p_1"), unlink("p_2"), relink], account)]).toEqual(["p_2"]);
    expect(unlinkedFrom([unlink("p_1")], { ...account, subject: "other" }).size).toBe(0);
  });

  it("an unlink from the pinned person lifts the pin; from another person it does not", () => {
    const link: LinkDecision = { kind: "link", account, personId: "p_1", by: "bob", at };
    expect(
      decisionFor([link, { kind: "unlink", account, personId: "p_1", by: "carol", at }], account),
    ).toBeUndefined();
    expect(
      decisionFor([link, { kind: "unlink", account, personId: "p_2", by: "carol", at }], account),
    ).toEqual({
      kind: "link",
      personId: "p_1",
      by: "bob",
    });
    expect(decisionFor([], account)).toBeUndefined();
  });
});

describe("account states at sign-in", () => {
  const ad = { sourceId: "ad-hq", subject: "guid-1" };
  const ding = { sourceId: "dingtalk-hq", subject: "ding-1" };

  it("lets an active person in", () => {
    expect(judgeAccountStates([{ account: ad, live: "active", kept: "active" }, { account: ding }])).toEqual({
      ok: true,
    });
  });

  it("refuses a person disabled now in another linked source, even when the last read said active", () => {
    const verdict = judgeAccountStates([
      { account: ad, live: "active" },
      { account: ding, live: "disabled", kept: "active" },
    ]);
    expect(verdict).toEqual({
      ok: false,
      code: "ACCOUNT_DISABLED",
      reason: expect.stringMatching(/dingtalk-hq says now/),
    });
  });

  it("lets in a person the source says is active now although the last read said disabled", () => {
    expect(judgeAccountStates([{ account: ad, live: "active", kept: "disabled" }])).toEqual({ ok: true });
  });

  it("counts not found by a source that still links them as departed, over disabled", () => {
    const verdict = judgeAccountStates([
      { account: ad, live: "locked" },
      { account: ding, live: "not-found" },
    ]);
    expect(verdict).toMatchObject({ ok: false, code: "ACCOUNT_LEFT" });
  });

  it("falls back to the kept snapshot when the source is unavailable, and says so", () => {
    const verdict = judgeAccountStates([
      { account: ding, live: "unavailable", kept: "expired", keptAt: "2026-02-28T02:00:00.000Z" },
    ]);
    expect(verdict).toEqual({
      ok: false,
      code: "ACCOUNT_DISABLED",
      reason: expect.stringMatching(/could not be asked now.*2026-02-28T02:00:00.000Z.*expired/),
    });
    expect(judgeAccountStates([{ account: ding, live: "unavailable", kept: "active" }])).toEqual({
      ok: true,
    });
  });

  it("refuses by the kept snapshot a source that was not asked: left, or absent from the last read", () => {
    expect(judgeAccountStates([{ account: ding, kept: "left" }])).toMatchObject({ code: "ACCOUNT_LEFT" });
    expect(judgeAccountStates([{ account: ding, kept: "absent" }])).toMatchObject({ code: "ACCOUNT_LEFT" });
    expect(judgeAccountStates([{ account: ding, live: "unavailable" }])).toEqual({ ok: true });
  });
});

describe("claims from the kept snapshots", () => {
  const DING = provenSnapshot(
    "dingtalk-hq",
    [
      sourcePerson("ding-1", {
        name: "张伟",
        employeeNo: "E001",
        email: "zhang.wei@corp.example.com",
        departments: [
          { departmentId: "3", main: false, leader: false },
          { departmentId: "2", main: true, leader: true },
        ],
      }),
      sourcePerson("ding-2", { name: "李娜", status: "disabled" }),
    ],
    {
      departments: [
        { id: "1", parentId: null, name: "示例科技", order: 1, leaders: [] },
        { id: "2", parentId: "1", name: "财务部", order: 1, leaders: [] },
        { id: "3", parentId: "1", name: "审计部", order: 2, leaders: [] },
      ],
    },
  );
  const directories = buildDirectoryFacts([AD, DING]);
  const readStarted = new Map([
    ["ad-hq", EARLIER],
    ["dingtalk-hq", EARLIER],
  ]);
  const { policy } = parsePolicyText(
    `version: 1
target: hesi-main
roles:
  submitter: { targetRole: 报销提交人 }
  approver: { targetRole: 部门审批人 }
  auditor: { targetRole: 审计 }
rules:
  - { id: everyone-submits, when: { status: active }, grant: submitter }
  - { id: leaders-approve, when: { leaderOf: any }, grant: approver }
  - { id: all-audit, when: { status: active }, grant: auditor }
separationOfDuties:
  - { id: no-self-audit, roles: [approver, auditor], effect: block }
`,
    "hesi-main.yaml",
  );

  it("gives name, email, employee number, departments main first and the roles the policy grants, not the withheld", () => {
    const claims = claimsOf({
      person: linkedPerson("p_1", ["ad-hq", "guid-1"], ["dingtalk-hq", "ding-1"]),
      directories,
      readStarted,
      orgChartSource: "dingtalk-hq",
      primarySource: "ad-hq",
      policy: policy!,
    });
    expect(claims).toEqual({
      name: "张伟",
      email: "zhang.wei@corp.example.com",
      employee_no: "E001",
      departments: ["财务部", "审计部"],
      roles: ["报销提交人", "部门审批人"],
    });
  });

  it("gives no roles without a policy", () => {
    const claims = claimsOf({
      person: linkedPerson("p_1", ["dingtalk-hq", "ding-1"]),
      directories,
      readStarted,
    });
    expect(claims?.roles).toEqual([]);
  });

  it("is null for a person disabled in a linked source, or absent from a source's last read", () => {
    expect(
      claimsOf({
        person: linkedPerson("p_2", ["ad-hq", "guid-2"], ["dingtalk-hq", "ding-2"]),
        directories,
        readStarted,
      }),
    ).toBeNull();
    expect(
      claimsOf({ person: linkedPerson("p_9", ["dingtalk-hq", "gone"]), directories, readStarted }),
    ).toBeNull();
  });

  it("keeps a person linked after the last read (a just-in-time new hire) whom the read does not list", () => {
    const newHire: Person = {
      id: "p_new",
      accounts: [
        { sourceId: "dingtalk-hq", subject: "ding-new", rule: "created", linkedAt: NOW.toISOString() },
      ],
    };
    expect(claimsOf({ person: newHire, directories, readStarted })).toEqual({ departments: [], roles: [] });
  });
});
