import { describe, expect, it } from "vitest";
import { identityConfigSchema, type IdentityConfig } from "../../src/identity/config.js";
import { linkPeople, type LinkDecision, type LinkInput, type LinkResult } from "../../src/identity/link.js";
import { generateOrg } from "../../src/simulators/common/org.js";
import { proveComplete, type DirectorySnapshot, type SourcePerson } from "../../src/sources/snapshot.js";
import {
  EARLIER,
  NOW,
  linkedPerson,
  provenSnapshot,
  sourcePerson,
  throttledSnapshot,
} from "../fixtures/identity/people.js";

/** A full snapshot; complete (proven) unless told otherwise. */
function snapshot(
  sourceId: string,
  people: SourcePerson[],
  options: { complete?: boolean } = {},
): DirectorySnapshot {
  return options.complete === false ? throttledSnapshot(sourceId, people) : provenSnapshot(sourceId, people);
}

function config(input: unknown): IdentityConfig {
  return identityConfigSchema.parse(input);
}

const EMPLOYEE_NO = {
  id: "employee-no",
  match: [
    { source: "dingtalk-hq", attribute: "employeeNo" },
    { source: "ad-hq", attribute: "attributes.employeeID" },
  ],
};
const USERNAME = {
  id: "username",
  match: [
    { source: "wecom-hq", attribute: "username" },
    { source: "ad-hq", attribute: "username" },
  ],
};
const CONFIG = config({ primarySource: "ad-hq", rules: [EMPLOYEE_NO, USERNAME] });

function ids(prefix = "p_"): () => string {
  let n = 0;
  return () => `${prefix}${String(++n).padStart(3, "0")}`;
}

function link(partial: Partial<LinkInput> & Pick<LinkInput, "snapshots">): LinkResult {
  return linkPeople({ config: CONFIG, existing: [], decisions: [], now: NOW, newId: ids(), ...partial });
}

/** "source:subject" lists per person, for short assertions. */
function shape(result: LinkResult): Record<string, string[]> {
  return Object.fromEntries(
    result.people.map((p) => [p.id, p.accounts.map((a) => `${a.sourceId}:${a.subject}`)]),
  );
}

function accountOf(result: LinkResult, sourceId: string, subject: string) {
  for (const p of result.people)
    for (const a of p.accounts)
      if (a.sourceId === sourceId && a.subject === subject) return { personId: p.id, ...a };
  return undefined;
}

const ad = (subject: string, username: string, employeeID?: string, extra: Partial<SourcePerson> = {}) =>
  sourcePerson(subject, { username, attributes: employeeID === undefined ? {} : { employeeID }, ...extra });

describe("linking by rules", () => {
  it("links a DingTalk job number to the AD employeeID as one person, recording rule and time", () => {
    const result = link({
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: " E001 " })]),
      ],
    });
    expect(shape(result)).toEqual({ p_001: ["ad-hq:guid-1", "dingtalk-hq:dt-zhang"] });
    expect(accountOf(result, "ad-hq", "guid-1")).toMatchObject({
      rule: "created",
      linkedAt: NOW.toISOString(),
    });
    expect(accountOf(result, "dingtalk-hq", "dt-zhang")).toMatchObject({
      rule: "employee-no",
      linkedAt: NOW.toISOString(),
    });
    expect(result.changes).toEqual([
      { kind: "person-created", personId: "p_001", account: { sourceId: "ad-hq", subject: "guid-1" } },
      expect.objectContaining({ kind: "account-linked", rule: "created" }),
      expect.objectContaining({
        kind: "account-linked",
        rule: "employee-no",
        evidence: {
          rule: "employee-no",
          account: { sourceId: "dingtalk-hq", subject: "dt-zhang" },
          matched: { sourceId: "ad-hq", subject: "guid-1" },
          value: "E001",
        },
      }),
    ]);
    expect(result.reviewQueue).toEqual([]);
  });

  it("lets the primary source's account found a new person seen in several sources", () => {
    const snapshots = [
      snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
    ];
    const adFirst = link({ snapshots });
    expect(adFirst.changes[0]).toMatchObject({ account: { sourceId: "ad-hq" } });
    const dtFirst = link({
      snapshots,
      config: config({ primarySource: "dingtalk-hq", rules: [EMPLOYEE_NO] }),
    });
    expect(dtFirst.changes[0]).toMatchObject({ account: { sourceId: "dingtalk-hq" } });
    expect(accountOf(dtFirst, "ad-hq", "guid-1")?.rule).toBe("employee-no");
  });

  it("links the WeCom userid to the AD sAMAccountName whatever their case", () => {
    const result = link({
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "ZhangSan")]),
        snapshot("wecom-hq", [sourcePerson("zhangsan", { username: "zhangsan" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_001: ["ad-hq:guid-1", "wecom-hq:zhangsan"] });
    expect(accountOf(result, "wecom-hq", "zhangsan")?.rule).toBe("username");
  });

  it("links three sources met for the first time through AD, by two different rules", () => {
    const result = link({
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
        snapshot("wecom-hq", [sourcePerson("zhangsan", { username: "zhangsan" })]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      ],
    });
    expect(shape(result)).toEqual({ p_001: ["ad-hq:guid-1", "dingtalk-hq:dt-zhang", "wecom-hq:zhangsan"] });
    expect(accountOf(result, "dingtalk-hq", "dt-zhang")?.rule).toBe("employee-no");
    expect(accountOf(result, "wecom-hq", "zhangsan")?.rule).toBe("username");
  });

  it("links a new account to the existing person its rule points to", () => {
    const result = link({
      existing: [linkedPerson("p_old", ["ad-hq", "guid-1"])],
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_old: ["ad-hq:guid-1", "dingtalk-hq:dt-zhang"] });
    expect(result.changes).toEqual([
      expect.objectContaining({ kind: "account-linked", personId: "p_old", rule: "employee-no" }),
    ]);
  });

  it("links two new accounts to an existing person when only one of them matches the person directly", () => {
    const result = link({
      existing: [linkedPerson("p_old", ["dingtalk-hq", "dt-zhang"])],
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("wecom-hq", [sourcePerson("zhangsan", { username: "zhangsan" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_old: ["ad-hq:guid-1", "dingtalk-hq:dt-zhang", "wecom-hq:zhangsan"] });
    expect(result.changes).toEqual([
      expect.objectContaining({ account: { sourceId: "ad-hq", subject: "guid-1" }, rule: "employee-no" }),
      expect.objectContaining({
        account: { sourceId: "wecom-hq", subject: "zhangsan" },
        rule: "username",
        evidence: expect.objectContaining({ matched: { sourceId: "ad-hq", subject: "guid-1" } }),
      }),
    ]);
  });

  it("gives an account that matches nothing a new person with an id from newId", () => {
    const result = link({
      newId: ids("p_x"),
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [sourcePerson("dt-li", { employeeNo: "E002" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_x001: ["ad-hq:guid-1"], p_x002: ["dingtalk-hq:dt-li"] });
  });

  it("links verified mobile numbers written differently in each source", () => {
    const mobile = config({
      rules: [
        {
          id: "mobile",
          match: [
            { source: "dingtalk-hq", attribute: "mobile", verified: true },
            { source: "wecom-hq", attribute: "mobile", verified: true },
          ],
        },
      ],
    });
    const result = link({
      config: mobile,
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { mobile: "138-0013-8000" })]),
        snapshot("wecom-hq", [sourcePerson("zhangsan", { mobile: "+86 13800138000" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_001: ["dingtalk-hq:dt-zhang", "wecom-hq:zhangsan"] });
    expect(result.changes[2]).toMatchObject({ rule: "mobile", evidence: { value: "+8613800138000" } });
  });

  it("never links on an email or mobile number that no verified rule names", () => {
    const result = link({
      snapshots: [
        snapshot("dingtalk-hq", [
          sourcePerson("dt-zhang", {
            email: "zhang@corp.example.com",
            mobile: "13800138000",
            employeeNo: "E001",
          }),
        ]),
        snapshot("wecom-hq", [
          sourcePerson("zhangsan", { email: "zhang@corp.example.com", mobile: "13800138000" }),
        ]),
      ],
    });
    expect(result.people).toHaveLength(2);
  });

  it("ignores an email on another organisation's domain even on a verified email rule", () => {
    const mail = config({
      rules: [
        {
          id: "work-mail",
          match: [
            { source: "dingtalk-hq", attribute: "email", verified: true, domains: ["corp.example.com"] },
            { source: "ad-hq", attribute: "email", verified: true, domains: ["corp.example.com"] },
          ],
        },
      ],
    });
    const result = link({
      config: mail,
      snapshots: [
        snapshot("dingtalk-hq", [
          sourcePerson("dt-zhang", { email: "Zhang@Corp.Example.com" }),
          sourcePerson("dt-li", { email: "li@partner.example.com" }),
        ]),
        snapshot("ad-hq", [
          ad("guid-1", "zhangsan", undefined, { email: "zhang@corp.example.com" }),
          ad("guid-2", "lisi", undefined, { email: "li@partner.example.com" }),
        ]),
      ],
    });
    expect(accountOf(result, "ad-hq", "guid-1")?.personId).toBe(
      accountOf(result, "dingtalk-hq", "dt-zhang")?.personId,
    );
    expect(accountOf(result, "ad-hq", "guid-2")?.personId).not.toBe(
      accountOf(result, "dingtalk-hq", "dt-li")?.personId,
    );
  });

  it("links every person of a generated company read from DingTalk and WeCom by userid", () => {
    const org = generateOrg({ people: 60, seed: 7 });
    const toSource = (p: (typeof org.people)[number]) =>
      sourcePerson(p.userid, { username: p.userid, name: p.name, employeeNo: p.jobNumber });
    const useridRule = config({
      rules: [
        {
          id: "userid",
          match: [
            { source: "dingtalk-hq", attribute: "username" },
            { source: "wecom-hq", attribute: "username" },
          ],
        },
      ],
    });
    const result = link({
      config: useridRule,
      snapshots: [
        snapshot("dingtalk-hq", org.people.map(toSource)),
        snapshot("wecom-hq", org.people.map(toSource)),
      ],
    });
    expect(result.people).toHaveLength(org.people.length);
    expect(
      result.people.every(
        (p) => p.accounts.length === 2 && p.accounts[0]!.subject === p.accounts[1]!.subject,
      ),
    ).toBe(true);
  });
});

describe("ambiguity and conflicts go to review, and link nothing", () => {
  it("holds an account one rule matches to two people", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["dingtalk-hq", "dt-a"]), linkedPerson("p_b", ["dingtalk-hq", "dt-b"])],
      snapshots: [
        snapshot("dingtalk-hq", [
          sourcePerson("dt-a", { employeeNo: "E001" }),
          sourcePerson("dt-b", { employeeNo: "E001" }),
        ]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      ],
    });
    expect(accountOf(result, "ad-hq", "guid-1")).toBeUndefined();
    expect(result.people).toHaveLength(2);
    expect(result.changes).toEqual([]);
    expect(result.reviewQueue).toEqual([
      expect.objectContaining({
        accounts: [{ sourceId: "ad-hq", subject: "guid-1" }],
        candidates: ["p_a", "p_b"],
        reasons: [expect.objectContaining({ code: "several-candidates" })],
      }),
    ]);
    expect(result.reviewQueue[0]!.evidence).toHaveLength(2);
    expect(result.held).toEqual({
      personIds: ["p_a", "p_b"],
      accounts: [{ sourceId: "ad-hq", subject: "guid-1" }],
    });
  });

  it("holds an account two rules link to different people", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["dingtalk-hq", "dt-a"]), linkedPerson("p_b", ["wecom-hq", "lisi"])],
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-a", { employeeNo: "E001" })]),
        snapshot("wecom-hq", [sourcePerson("lisi", { username: "lisi" })]),
        snapshot("ad-hq", [ad("guid-1", "lisi", "E001")]),
      ],
    });
    expect(accountOf(result, "ad-hq", "guid-1")).toBeUndefined();
    expect(result.reviewQueue.map((r) => r.reasons.map((x) => x.code))).toEqual([["rules-disagree"]]);
    expect(result.held.personIds).toEqual(["p_a", "p_b"]);
  });

  it("holds an account whose one candidate already has an account of that source (a left account stays linked)", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-old"])],
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [sourcePerson("dt-new", { employeeNo: "E001" })]),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1", "dingtalk-hq:dt-old"] });
    expect(result.reviewQueue).toEqual([
      expect.objectContaining({
        accounts: [{ sourceId: "dingtalk-hq", subject: "dt-new" }],
        candidates: ["p_a"],
        reasons: [expect.objectContaining({ code: "source-taken" })],
      }),
    ]);
    expect(result.held.personIds).toEqual(["p_a"]);
  });

  it("holds two new accounts of one source that match the same account, and founds no person for them", () => {
    const result = link({
      snapshots: [
        snapshot("dingtalk-hq", [
          sourcePerson("dt-a", { employeeNo: "E001" }),
          sourcePerson("dt-b", { employeeNo: "E001" }),
        ]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      ],
    });
    expect(result.people).toEqual([]);
    expect(result.reviewQueue).toHaveLength(1);
    expect(result.reviewQueue[0]!.reasons.map((r) => r.code)).toEqual(["same-source-twice"]);
    expect(result.held.accounts).toHaveLength(3);
    expect(result.reviewQueue[0]!.evidence.length).toBeGreaterThan(0);
  });

  it("holds two separately matching accounts of one source that would both join the same person", () => {
    const rules = config({
      rules: [
        EMPLOYEE_NO,
        {
          id: "dt-username",
          match: [
            { source: "dingtalk-hq", attribute: "username" },
            { source: "ad-hq", attribute: "username" },
          ],
        },
      ],
    });
    const result = link({
      config: rules,
      existing: [linkedPerson("p_a", ["ad-hq", "guid-1"])],
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [
          sourcePerson("dt-a", { employeeNo: "E001" }),
          sourcePerson("dt-b", { username: "zhangsan" }),
        ]),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1"] });
    expect(result.reviewQueue).toHaveLength(2);
    expect(result.reviewQueue.every((r) => r.reasons[0]!.code === "same-source-twice")).toBe(true);
  });

  it("gives the same review item the same id from run to run", () => {
    const input = {
      existing: [linkedPerson("p_a", ["dingtalk-hq", "dt-a"]), linkedPerson("p_b", ["dingtalk-hq", "dt-b"])],
      snapshots: [
        snapshot("dingtalk-hq", [
          sourcePerson("dt-a", { employeeNo: "E001" }),
          sourcePerson("dt-b", { employeeNo: "E001" }),
        ]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      ],
    };
    expect(link(input).reviewQueue[0]!.id).toMatch(/^rv_[0-9a-f]{16}$/);
    expect(link(input).reviewQueue[0]!.id).toBe(link(input).reviewQueue[0]!.id);
  });
});

describe("stability", () => {
  const existing = [linkedPerson("p_zhang", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-zhang", "employee-no"])];

  it("keeps the person id when the person is renamed, moved to another OU and changes email and employee number", () => {
    const result = link({
      existing,
      snapshots: [
        snapshot("ad-hq", [
          ad("guid-1", "zhangsan2", "E999", {
            name: "张三丰",
            email: "sanfeng@corp.example.com",
            departments: [{ departmentId: "ou-finance", main: true, leader: true }],
            attributes: { employeeID: "E999", distinguishedName: "CN=张三丰,OU=Finance,DC=corp" },
          }),
        ]),
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001", name: "张三" })]),
      ],
    });
    expect(result.people).toEqual(existing);
    expect(result.changes).toEqual([]);
  });

  it("keeps links of accounts absent from a complete snapshot and from an incomplete one", () => {
    const result = link({
      existing,
      snapshots: [snapshot("ad-hq", []), snapshot("dingtalk-hq", [], { complete: false })],
    });
    expect(result.people).toEqual(existing);
    expect(result.changes).toEqual([]);
  });

  it("keeps links of a source that was not read at all", () => {
    expect(link({ existing, snapshots: [] }).people).toEqual(existing);
  });

  it("links a replacing source's accounts to the same people through another source", () => {
    const replaced = config({
      rules: [
        {
          id: "employee-no",
          match: [EMPLOYEE_NO.match[0], { source: "ad-new", attribute: "attributes.employeeID" }],
        },
      ],
    });
    const result = link({
      config: replaced,
      existing,
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
        snapshot("ad-new", [ad("new-guid-1", "zhangsan", "E001")]),
      ],
    });
    expect(shape(result)).toEqual({ p_zhang: ["ad-hq:guid-1", "ad-new:new-guid-1", "dingtalk-hq:dt-zhang"] });
  });

  it("links a replacing source's accounts to the same people through the old source's last snapshot", () => {
    const migration = config({
      rules: [
        {
          id: "ad-migration",
          match: [
            { source: "ad-hq", attribute: "attributes.employeeID" },
            { source: "ad-new", attribute: "attributes.employeeID" },
          ],
        },
      ],
    });
    const result = link({
      config: migration,
      existing: [linkedPerson("p_zhang", ["ad-hq", "guid-1"])],
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("ad-new", [ad("g2", "zs", "E001")]),
      ],
    });
    expect(shape(result)).toEqual({ p_zhang: ["ad-hq:guid-1", "ad-new:g2"] });
    expect(accountOf(result, "ad-new", "g2")?.rule).toBe("ad-migration");
  });

  it("waits with a new person while a partially read source hides linked accounts the account might match", () => {
    const existingWithDt = [linkedPerson("p_zhang", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-zhang"])];
    const snapshots = (complete: boolean) => [
      snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001"), ad("guid-2", "lisi", "E002")], { complete }),
      snapshot("dingtalk-hq", [
        sourcePerson("dt-zhang", { employeeNo: "E001" }),
        sourcePerson("dt-li", { employeeNo: "E002" }),
      ]),
    ];
    const partial = link({
      existing: existingWithDt,
      snapshots: [snapshot("ad-hq", [], { complete: false }), snapshots(true)[1]!],
    });
    expect(partial.people).toEqual(existingWithDt);
    expect(partial.pending.map((p) => p.account)).toEqual([{ sourceId: "dingtalk-hq", subject: "dt-li" }]);
    expect(partial.pending[0]!.reason).toMatch(/ad-hq was not read completely/);
    expect(partial.held.accounts).toEqual([{ sourceId: "dingtalk-hq", subject: "dt-li" }]);
    const full = link({ existing: existingWithDt, snapshots: snapshots(true) });
    expect(full.pending).toEqual([]);
    expect(shape(full)).toMatchObject({ p_001: ["ad-hq:guid-2", "dingtalk-hq:dt-li"] });
  });

  it("founds new people from a partial read when the source hides no linked account", () => {
    const result = link({
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")], { complete: false }),
        snapshot("dingtalk-hq", [sourcePerson("dt-li", { employeeNo: "E002" })]),
      ],
    });
    expect(result.people).toHaveLength(2);
    expect(result.pending).toEqual([]);
  });
});

describe("determinism", () => {
  const snapshots = [
    snapshot("ad-hq", [
      ad("guid-2", "lisi", "E002"),
      ad("guid-1", "zhangsan", "E001"),
      ad("guid-3", "wangwu"),
    ]),
    snapshot("dingtalk-hq", [
      sourcePerson("dt-li", { employeeNo: "E002" }),
      sourcePerson("dt-zhang", { employeeNo: "E001" }),
      sourcePerson("dt-x", { employeeNo: "E001" }),
      sourcePerson("dt-zhao", { employeeNo: "E004" }),
    ]),
    snapshot("wecom-hq", [
      sourcePerson("wangwu", { username: "WangWu" }),
      sourcePerson("zhangsan", { username: "zhangsan" }),
    ]),
  ];

  it("gives the same people, review items and changes whatever the order of snapshots and people", () => {
    const a = link({ snapshots });
    const reversed = snapshots
      .map((s) => ({ ...s, people: [...s.people].reverse() }))
      .map((s) => (s.completeness.complete ? proveComplete(s)! : s))
      .reverse();
    const b = link({ snapshots: reversed });
    expect(b).toEqual(a);
    expect(a.reviewQueue).toHaveLength(1);
  });

  it("changes nothing when run again on its own result", () => {
    const first = link({ snapshots });
    const second = link({ snapshots, existing: first.people, newId: ids("p_again") });
    expect(second.people).toEqual(first.people);
    expect(second.changes).toEqual([]);
    expect(second.reviewQueue).toEqual(first.reviewQueue);
  });
});

describe("manual decisions", () => {
  const decision = (d: Partial<LinkDecision> & Pick<LinkDecision, "kind">): LinkDecision =>
    ({ by: "admin-wang", at: EARLIER, ...d }) as LinkDecision;
  const ambiguous = {
    existing: [linkedPerson("p_a", ["dingtalk-hq", "dt-a"]), linkedPerson("p_b", ["dingtalk-hq", "dt-b"])],
    snapshots: [
      snapshot("dingtalk-hq", [
        sourcePerson("dt-a", { employeeNo: "E001" }),
        sourcePerson("dt-b", { employeeNo: "E001" }),
      ]),
      snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
    ],
  };
  const guid1 = { sourceId: "ad-hq", subject: "guid-1" };

  it("resolves a review item by linking the account to the person an admin chose, recorded as manual", () => {
    const decisions = [decision({ kind: "link", account: guid1, personId: "p_b" })];
    const result = link({ ...ambiguous, decisions });
    expect(accountOf(result, "ad-hq", "guid-1")).toMatchObject({ personId: "p_b", rule: "manual" });
    expect(result.reviewQueue).toEqual([]);
    expect(result.held.personIds).toEqual([]);
    expect(result.changes).toEqual([
      { kind: "account-linked", personId: "p_b", account: guid1, rule: "manual", decidedBy: "admin-wang" },
    ]);
    const again = link({ ...ambiguous, decisions, existing: result.people });
    expect(again.changes).toEqual([]);
  });

  it("moves an account to another person against the rules", () => {
    const existing = [
      linkedPerson("p_a", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-a", "employee-no"]),
      linkedPerson("p_b", ["wecom-hq", "w"]),
    ];
    const result = link({
      existing,
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [sourcePerson("dt-a", { employeeNo: "E001" })]),
      ],
      decisions: [
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-a" }, personId: "p_b" }),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1"], p_b: ["dingtalk-hq:dt-a", "wecom-hq:w"] });
    expect(result.changes.map((c) => c.kind)).toEqual(["account-unlinked", "account-linked"]);
    expect(result.changes[0]).toMatchObject({ reason: "moved", personId: "p_a" });
  });

  it("displaces a rule-linked account of the same source when an admin links another one, and reviews it", () => {
    const existing = [linkedPerson("p_a", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-old", "employee-no"])];
    const result = link({
      existing,
      snapshots: [
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("dingtalk-hq", [
          sourcePerson("dt-old", { employeeNo: "E001" }),
          sourcePerson("dt-new", { employeeNo: "E001" }),
        ]),
      ],
      decisions: [
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-new" }, personId: "p_a" }),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1", "dingtalk-hq:dt-new"] });
    expect(result.changes[0]).toMatchObject({ kind: "account-unlinked", reason: "displaced" });
    expect(result.reviewQueue.map((r) => [r.accounts, r.reasons[0]!.code])).toEqual([
      [[{ sourceId: "dingtalk-hq", subject: "dt-old" }], "source-taken"],
    ]);
  });

  it("lets the later of two admin links of one source to one person win and reviews the earlier", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["ad-hq", "guid-1"])],
      snapshots: [snapshot("dingtalk-hq", [sourcePerson("dt-1"), sourcePerson("dt-2")])],
      decisions: [
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-1" }, personId: "p_a" }),
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-2" }, personId: "p_a" }),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1", "dingtalk-hq:dt-2"] });
    expect(result.reviewQueue.map((r) => [r.accounts[0]!.subject, r.reasons[0]!.code])).toEqual([
      ["dt-1", "manual-conflict"],
    ]);
    expect(result.changes.map((c) => c.kind)).toEqual(["account-linked"]);
    const again = link({
      existing: result.people,
      snapshots: [snapshot("dingtalk-hq", [sourcePerson("dt-1"), sourcePerson("dt-2")])],
      decisions: [
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-1" }, personId: "p_a" }),
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-2" }, personId: "p_a" }),
      ],
    });
    expect(again.changes).toEqual([]);
    expect(again.people).toEqual(result.people);
  });

  it("unlinks an earlier admin link when a later decision links another account of its source to the person", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-1", "manual"])],
      snapshots: [snapshot("dingtalk-hq", [sourcePerson("dt-1"), sourcePerson("dt-2")])],
      decisions: [
        decision({ kind: "link", account: { sourceId: "dingtalk-hq", subject: "dt-1" }, personId: "p_a" }),
        decision({
          kind: "link",
          account: { sourceId: "dingtalk-hq", subject: "dt-2" },
          personId: "p_a",
          by: "admin-li",
        }),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["ad-hq:guid-1", "dingtalk-hq:dt-2"] });
    expect(result.changes).toEqual([
      expect.objectContaining({ kind: "account-unlinked", reason: "displaced", decidedBy: "admin-li" }),
      expect.objectContaining({ kind: "account-linked", rule: "manual", decidedBy: "admin-li" }),
    ]);
  });

  it("unlinks an account for good: it becomes its own person and the rule does not relink it", () => {
    const existing = [linkedPerson("p_a", ["ad-hq", "guid-1"], ["dingtalk-hq", "dt-a", "employee-no"])];
    const snapshots = [
      snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
      snapshot("dingtalk-hq", [sourcePerson("dt-a", { employeeNo: "E001" })]),
    ];
    const decisions = [
      decision({ kind: "unlink", account: { sourceId: "dingtalk-hq", subject: "dt-a" }, personId: "p_a" }),
    ];
    const result = link({ existing, snapshots, decisions });
    expect(shape(result)).toEqual({ p_001: ["dingtalk-hq:dt-a"], p_a: ["ad-hq:guid-1"] });
    expect(result.changes[0]).toMatchObject({
      kind: "account-unlinked",
      reason: "unlinked",
      decidedBy: "admin-wang",
    });
    const again = link({ existing: result.people, snapshots, decisions });
    expect(again.changes).toEqual([]);
    expect(again.people).toEqual(result.people);
  });

  it("reviews a new account that reaches, through another new account, a person an admin unlinked it from", () => {
    const result = link({
      existing: [linkedPerson("p_a", ["dingtalk-hq", "dt-zhang"])],
      snapshots: [
        snapshot("dingtalk-hq", [sourcePerson("dt-zhang", { employeeNo: "E001" })]),
        snapshot("ad-hq", [ad("guid-1", "zhangsan", "E001")]),
        snapshot("wecom-hq", [sourcePerson("zhangsan", { username: "zhangsan" })]),
      ],
      decisions: [
        decision({ kind: "unlink", account: { sourceId: "wecom-hq", subject: "zhangsan" }, personId: "p_a" }),
      ],
    });
    expect(shape(result)).toEqual({ p_a: ["dingtalk-hq:dt-zhang"] });
    expect(result.reviewQueue.map((r) => r.reasons.map((x) => x.code))).toEqual([["unlinked-by-admin"]]);
    expect(result.held.accounts).toHaveLength(2);
  });

  it("ignores an account: no person, no review item, and an existing link is removed", () => {
    const ignored = link({ ...ambiguous, decisions: [decision({ kind: "ignore", account: guid1 })] });
    expect(ignored.reviewQueue).toEqual([]);
    expect(ignored.people).toEqual(ambiguous.existing);
    expect(ignored.held).toEqual({ personIds: [], accounts: [] });
    const unlinked = link({
      existing: [linkedPerson("p_a", ["ad-hq", "guid-1"])],
      snapshots: [snapshot("ad-hq", [ad("guid-1", "svc-test")])],
      decisions: [decision({ kind: "ignore", account: guid1 })],
    });
    expect(shape(unlinked)).toEqual({ p_a: [] });
    expect(unlinked.changes).toEqual([
      {
        kind: "account-unlinked",
        personId: "p_a",
        account: guid1,
        reason: "ignored",
        decidedBy: "admin-wang",
      },
    ]);
  });

  it("lets a later link replace an earlier ignore", () => {
    const result = link({
      ...ambiguous,
      decisions: [
        decision({ kind: "ignore", account: guid1 }),
        decision({ kind: "link", account: guid1, personId: "p_a" }),
      ],
    });
    expect(accountOf(result, "ad-hq", "guid-1")?.personId).toBe("p_a");
  });

  it("reviews a link to a person who does not exist instead of inventing them", () => {
    const result = link({
      ...ambiguous,
      decisions: [decision({ kind: "link", account: guid1, personId: "p_gone" })],
    });
    expect(accountOf(result, "ad-hq", "guid-1")).toBeUndefined();
    expect(result.reviewQueue.map((r) => r.reasons[0]!.code)).toEqual(["unknown-person"]);
  });
});

describe("input invariants", () => {
  it("refuses two snapshots of one source, an account on two people, two accounts of one source and a repeated id", () => {
    expect(() => link({ snapshots: [snapshot("ad-hq", []), snapshot("ad-hq", [])] })).toThrow(TypeError);
    expect(() =>
      link({
        snapshots: [],
        existing: [linkedPerson("p_a", ["ad-hq", "g"]), linkedPerson("p_b", ["ad-hq", "g"])],
      }),
    ).toThrow(/linked to both/);
    expect(() =>
      link({ snapshots: [], existing: [linkedPerson("p_a", ["ad-hq", "g"], ["ad-hq", "h"])] }),
    ).toThrow(/two accounts of source/);
    expect(() =>
      link({
        config: config({}),
        snapshots: [snapshot("ad-hq", [ad("g", "x")])],
        existing: [linkedPerson("p_001", ["dingtalk-hq", "d"])],
      }),
    ).toThrow(/already in use/);
  });
});

describe("random companies (seeded)", () => {
  it("reaches a fixed point after decisions and never gives an account two people or a person two accounts of a source", () => {
    let seed = 20260301;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const rules = config({
      primarySource: "ad-hq",
      rules: [
        { id: "employee-no", match: [EMPLOYEE_NO.match[0], { source: "ad-hq", attribute: "employeeNo" }] },
        USERNAME,
      ],
    });
    for (let round = 0; round < 200; round++) {
      // Few distinct values, so duplicates, ambiguity and conflicts are common.
      const people = (prefix: string) =>
        Array.from({ length: 1 + Math.floor(random() * 6) }, (_, i) =>
          sourcePerson(`${prefix}${i}`, {
            ...(random() < 0.8 ? { employeeNo: `E${Math.floor(random() * 8)}` } : {}),
            ...(random() < 0.8 ? { username: `u${Math.floor(random() * 8)}` } : {}),
          }),
        );
      const snapshots = ["dingtalk-hq", "wecom-hq", "ad-hq"].map((id) =>
        snapshot(id, people(id[0]!), { complete: random() < 0.8 }),
      );
      const newId = ids(`p${round}_`);
      const first = link({ config: rules, snapshots, newId });
      const accounts = snapshots.flatMap((s) =>
        s.people.map((p) => ({ sourceId: s.sourceId, subject: p.subject })),
      );
      const personIds = first.people.map((p) => p.id);
      const decisions: LinkDecision[] = [];
      for (let k = Math.floor(random() * 7); k > 0; k--) {
        const kind = pick(["link", "unlink", "ignore"] as const);
        const account = pick(accounts);
        if (kind === "ignore") decisions.push({ kind, account, by: "admin", at: EARLIER });
        else if (personIds.length > 0)
          decisions.push({ kind, account, personId: pick(personIds), by: "admin", at: EARLIER });
      }
      const second = link({ config: rules, snapshots, newId, existing: first.people, decisions });
      const third = link({ config: rules, snapshots, newId, existing: second.people, decisions });
      expect(third.changes, `round ${round}`).toEqual([]);
      expect(third.people).toEqual(second.people);
      expect(third.reviewQueue).toEqual(second.reviewQueue);
      const owners = new Map<string, string>();
      for (const p of third.people) {
        expect(new Set(p.accounts.map((a) => a.sourceId)).size, `round ${round}`).toBe(p.accounts.length);
        for (const a of p.accounts) {
          expect(owners.get(`${a.sourceId}:${a.subject}`), `round ${round}`).toBeUndefined();
          owners.set(`${a.sourceId}:${a.subject}`, p.id);
        }
      }
      const held = new Set(third.held.accounts.map((a) => `${a.sourceId}:${a.subject}`));
      const heldPeople = new Set(third.held.personIds);
      for (const key of held)
        if (owners.has(key))
          expect(heldPeople.has(owners.get(key)!), `round ${round}: ${key} held, its person not`).toBe(true);
    }
  });
});
