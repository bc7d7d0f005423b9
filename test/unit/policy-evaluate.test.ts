import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Person } from "../../src/identity/person.js";
import { evaluatePolicy, type PolicyEvaluation } from "../../src/policy/evaluate.js";
import { explainPerson, formatExplain } from "../../src/policy/explain.js";
import { buildDirectoryFacts, buildPersonFacts } from "../../src/policy/facts.js";
import { parsePolicyText } from "../../src/policy/load.js";
import type { Condition, Policy } from "../../src/policy/schema.js";
import { AD, DINGTALK, FINANCE_CASHIERS, RETAIL_CASHIERS, linked } from "../fixtures/policy/directory.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/policy/hesi-main.yaml", import.meta.url));

function policyOf(text: string, file = "inline.yaml"): Policy {
  const parsed = parsePolicyText(text, file);
  expect(parsed.problems).toEqual([]);
  return parsed.policy!;
}

const base = policyOf(readFileSync(FIXTURE, "utf8"), FIXTURE);
const directories = buildDirectoryFacts([DINGTALK, AD]);

const zhangwei = linked("zhangwei", "guid-zhangwei");
const lina = linked("lina", "guid-lina");
const wangfang = linked("wangfang", "guid-wangfang");
const chenjie = linked("chenjie", "guid-chenjie");
const zhaolei = linked("zhaolei");

function evaluate(policy: Policy, person: Person): PolicyEvaluation {
  return evaluatePolicy(policy, buildPersonFacts(person, directories));
}

/** A policy with one unscoped role R granted by one rule `x` with this condition. */
function single(when: Condition, scope?: { role: "department" | "dimension"; rule: unknown }): Policy {
  return policyOf(
    [
      "version: 1",
      "target: t",
      `roles: { r: { targetRole: R${scope ? `, scope: ${scope.role}` : ""} } }`,
      "rules:",
      "  - id: x",
      `    when: ${JSON.stringify(when)}`,
      "    grant: r",
      ...(scope ? [`    scope: ${JSON.stringify(scope.rule)}`] : []),
    ].join("\n"),
  );
}

function ruleX(when: Condition, person: Person): { matched: boolean; reasons: readonly string[] } {
  const outcome = evaluate(single(when), person).rules[0]!;
  return { matched: outcome.matched, reasons: outcome.reasons };
}

describe("policy evaluation: the fixture policy", () => {
  it("grants a department leader the approver role scoped to the department they lead, with lineage", () => {
    const result = evaluate(base, zhangwei);
    const approver = result.grants.find((g) => g.role === "approver");
    expect(approver).toEqual({
      role: "approver",
      targetRole: "部门审批人",
      sensitive: false,
      scope: ["财务部"],
      scopeDepartments: [{ sourceId: "dingtalk-hq", id: "2", label: "财务部" }],
      lineage: [{ rule: "leaders-approve-their-departments", facts: ["leader of 财务部 in dingtalk-hq"] }],
    });
  });

  it("withholds the cashier grant from the finance leader under the block constraint and keeps the first-listed role", () => {
    const result = evaluate(base, zhangwei);
    expect(result.grants.map((g) => g.role)).toEqual(["submitter", "approver", "budget"]);
    expect(result.withheld).toMatchObject([
      {
        role: "cashier",
        constraint: "cashier-is-not-approver",
        conflictsWith: ["approver"],
        sensitive: true,
      },
    ]);
    expect(result.withheld[0]!.lineage).toEqual([
      { rule: "ad-cashiers", facts: [`member of ${FINANCE_CASHIERS} in ad-hq`] },
    ]);
  });

  it("formats explain lines as the issue shows them", () => {
    const { text } = explainPerson(base, zhangwei, directories);
    expect(text).toContain(
      "+ 部门审批人 [财务部] — rule leaders-approve-their-departments: leader of 财务部 in dingtalk-hq",
    );
    expect(text).toContain("+ 报销提交人 — rule everyone-submits: active in ad-hq, active in dingtalk-hq");
    expect(text).toContain(
      `- 出纳 — rule ad-cashiers: member of ${FINANCE_CASHIERS} in ad-hq (withheld by cashier-is-not-approver: conflicts with 部门审批人)`,
    );
    expect(text).toContain(
      "· rule finance-accountants (会计): not matched: title is 财务部负责人 in dingtalk-hq, not = 会计",
    );
  });

  it("gives a person who left one source and is disabled in the other no grants, saying why for each rule", () => {
    const result = evaluate(base, wangfang);
    expect(result.grants).toEqual([]);
    expect(result.rules.every((r) => !r.matched)).toBe(true);
    expect(result.rules.find((r) => r.rule === "ad-cashiers")!.reasons).toEqual([
      "not active in any source (disabled in ad-hq, left in dingtalk-hq)",
    ]);
    expect(result.rules.find((r) => r.rule === "everyone-submits")!.reasons).toEqual([
      "status is disabled in ad-hq",
      "status is left in dingtalk-hq",
    ]);
  });

  it("does not count a group held by an account that is disabled in that source", () => {
    const result = evaluate(base, lina);
    expect(result.grants.map((g) => g.role)).toEqual(["submitter", "accountant"]);
    expect(result.rules.find((r) => r.rule === "ad-cashiers")!.reasons).toEqual([
      `group ${FINANCE_CASHIERS} held in ad-hq, but status is disabled there`,
    ]);
  });

  it("includes sub-departments by default: an accountant in 财务部/华东区/一组 is in 财务部", () => {
    const accountant = evaluate(base, lina).grants.find((g) => g.role === "accountant")!;
    expect(accountant.lineage).toEqual([
      {
        rule: "finance-accountants",
        facts: ["member of 财务部/华东区/一组 in dingtalk-hq", "title 会计 in dingtalk-hq"],
      },
    ]);
  });

  it("is deterministic whatever the order of linked accounts", () => {
    const reversed: Person = { ...zhangwei, accounts: [...zhangwei.accounts].reverse() };
    expect(evaluate(base, reversed)).toEqual(evaluate(base, zhangwei));
    expect(formatExplain(evaluate(base, chenjie), base)).toBe(formatExplain(evaluate(base, chenjie), base));
  });

  it("lists lineage of a role granted by several rules in policy order", () => {
    const policy = policyOf(`
version: 1
target: t
roles: { r: { targetRole: R } }
rules:
  - { id: by-title, when: { title: 会计 }, grant: r }
  - { id: by-group, when: { group: "ad-hq:g-acct" }, grant: r }
  - { id: by-department, when: { department: { source: dingtalk-hq, id: "4" } }, grant: r }
`);
    const result = evaluate(policy, zhaolei);
    expect(result.grants[0]!.lineage.map((l) => l.rule)).toEqual(["by-title", "by-department"]);
  });

  it("resolves group references afresh against a newer snapshot (a group moved to another OU)", () => {
    const policy = single({ group: `ad-hq:${FINANCE_CASHIERS}` });
    expect(evaluate(policy, zhangwei).grants).toHaveLength(1);
    const moved = {
      ...AD,
      groups: AD.groups.map((g) =>
        g.id === "g-fin" ? { ...g, path: "CN=Cashiers,OU=Treasury,DC=corp,DC=example,DC=test" } : g,
      ),
    };
    const newer = buildDirectoryFacts([DINGTALK, moved]);
    const result = evaluatePolicy(policy, buildPersonFacts(zhangwei, newer));
    expect(result.grants).toEqual([]);
    expect(result.rules[0]!.reasons).toEqual([`group ${FINANCE_CASHIERS} does not exist in ad-hq`]);
  });

  it("reports a linked account missing from its snapshot and grants nothing from it", () => {
    const ghost: Person = {
      id: "p-ghost",
      accounts: [
        { sourceId: "dingtalk-hq", subject: "nobody", rule: "test", linkedAt: "2026-01-01T00:00:00Z" },
      ],
    };
    const result = evaluate(base, ghost);
    expect(result.grants).toEqual([]);
    expect(result.accounts).toEqual(["dingtalk-hq: nobody, not in the snapshot"]);
    expect(result.rules[0]!.reasons).toEqual(["no linked account in any snapshot"]);
    expect(result.rules[1]!.reasons).toEqual([
      "not active in any source (no linked account in any snapshot)",
    ]);
  });
});

describe("policy evaluation: conditions", () => {
  it("status: matches other statuses when a rule asks for them explicitly", () => {
    expect(ruleX({ status: ["left", "disabled"] }, wangfang)).toEqual({
      matched: true,
      reasons: ["disabled in ad-hq", "left in dingtalk-hq"],
    });
    expect(ruleX({ all: [{ status: "left" }, { title: "出纳" }] }, wangfang).matched).toBe(true);
  });

  it("status: statusSource restricts the status to one source", () => {
    expect(ruleX({ status: "active", statusSource: "ad-hq" }, lina)).toEqual({
      matched: false,
      reasons: ["status is disabled in ad-hq"],
    });
    expect(ruleX({ status: "active", statusSource: "dingtalk-hq" }, lina).matched).toBe(true);
    expect(ruleX({ status: "active", statusSource: "ad-hq" }, zhaolei)).toEqual({
      matched: false,
      reasons: ["no linked account in ad-hq"],
    });
  });

  it("group: tells same-named groups in two OUs apart by DN", () => {
    expect(ruleX({ group: `ad-hq:${FINANCE_CASHIERS}` }, chenjie)).toEqual({
      matched: false,
      reasons: [`group ${FINANCE_CASHIERS} not held in ad-hq`],
    });
    expect(ruleX({ group: `ad-hq:${RETAIL_CASHIERS}` }, chenjie)).toEqual({
      matched: true,
      reasons: [`member of ${RETAIL_CASHIERS} in ad-hq`],
    });
  });

  it("group: compares DNs case-insensitively and ignores spaces after commas", () => {
    expect(
      ruleX({ group: "ad-hq:cn=cashiers, ou=finance, dc=corp, dc=example, dc=test" }, zhangwei).matched,
    ).toBe(true);
  });

  it("group: refuses an ambiguous name and says to use the path", () => {
    const outcome = ruleX({ group: "ad-hq:Cashiers" }, zhangwei);
    expect(outcome.matched).toBe(false);
    expect(outcome.reasons[0]).toBe(
      `group name Cashiers is ambiguous in ad-hq (${FINANCE_CASHIERS}; ${RETAIL_CASHIERS}); name it by path`,
    );
  });

  it("group: references by id, by unique name, and in object form", () => {
    expect(ruleX({ group: "ad-hq:g-fin" }, zhangwei).matched).toBe(true);
    expect(ruleX({ group: { source: "ad-hq", id: "g-retail" } }, zhangwei).matched).toBe(false);
    expect(
      ruleX({ group: { source: "ad-hq", name: "Accountants" } }, linked("x", "guid-chenjie")).matched,
    ).toBe(false);
    expect(ruleX({ group: { source: "ad-hq", path: RETAIL_CASHIERS } }, chenjie).matched).toBe(true);
  });

  it("group: says when the group does not exist or the person has no account in its source", () => {
    expect(ruleX({ group: "ad-hq:CN=Nope,DC=corp" }, zhangwei).reasons).toEqual([
      "group CN=Nope,DC=corp does not exist in ad-hq",
    ]);
    expect(ruleX({ group: `ad-hq:${FINANCE_CASHIERS}` }, zhaolei).reasons).toEqual([
      `group ${FINANCE_CASHIERS} not held: no linked account in ad-hq`,
    ]);
  });

  it("department: excludes sub-departments when includeSubDepartments is false", () => {
    expect(
      ruleX({ department: { source: "dingtalk-hq", path: "财务部", includeSubDepartments: false } }, lina),
    ).toEqual({
      matched: false,
      reasons: ["not a member of 财务部 in dingtalk-hq"],
    });
    expect(ruleX({ department: { source: "dingtalk-hq", path: "财务部" } }, lina).matched).toBe(true);
  });

  it("department: a path from the top names one department; a bare name that is not a path is refused with the candidates", () => {
    expect(ruleX({ department: { source: "dingtalk-hq", path: "华东区" } }, chenjie).reasons).toEqual([
      "department 华东区 does not exist in dingtalk-hq (paths start below the root: 研发中心/华东区, 财务部/华东区)",
    ]);
    expect(ruleX({ department: { source: "dingtalk-hq", path: "研发中心/华东区" } }, lina).matched).toBe(
      false,
    );
    expect(
      ruleX({ department: { source: "dingtalk-hq", path: "示例科技有限公司/财务部/华东区" } }, chenjie),
    ).toEqual({
      matched: true,
      reasons: ["member of 财务部/华东区 in dingtalk-hq"],
    });
    expect(ruleX({ department: { source: "dingtalk-hq", id: "6" } }, chenjie).matched).toBe(true);
  });

  it("leaderOf any: counts the department's leader list as well as the membership flag", () => {
    expect(ruleX({ leaderOf: "any" }, zhaolei)).toEqual({
      matched: true,
      reasons: ["leader of 财务部/华东区/一组 in dingtalk-hq"],
    });
    expect(ruleX({ leaderOf: "any" }, lina)).toEqual({
      matched: false,
      reasons: ["not a leader of any department"],
    });
  });

  it("leaderOf a department: includes leaders of departments below it unless told not to", () => {
    const finance = { source: "dingtalk-hq", path: "财务部" };
    expect(ruleX({ leaderOf: finance }, zhaolei).matched).toBe(true);
    expect(ruleX({ leaderOf: { ...finance, includeSubDepartments: false } }, zhaolei)).toEqual({
      matched: false,
      reasons: ["not a leader of 财务部 in dingtalk-hq"],
    });
    expect(ruleX({ leaderOf: { ...finance, includeSubDepartments: false } }, zhangwei).matched).toBe(true);
  });

  it("title: equals, in and matches, with the values seen when it does not match", () => {
    expect(ruleX({ title: "会计" }, lina).matched).toBe(true);
    expect(ruleX({ title: { in: ["出纳", "会计"] } }, lina).matched).toBe(true);
    expect(ruleX({ title: { matches: "负责人$" } }, zhangwei).reasons).toEqual([
      "title 财务部负责人 in dingtalk-hq",
    ]);
    expect(ruleX({ title: { in: ["出纳", "会计"] } }, chenjie)).toEqual({
      matched: false,
      reasons: ["title is 软件工程师 in dingtalk-hq, not in [出纳, 会计]"],
    });
  });

  it("attribute: matches any value of a multi-valued attribute, optionally in one source only", () => {
    expect(ruleX({ attribute: { name: "employeeType", equals: "external" } }, chenjie)).toEqual({
      matched: true,
      reasons: ["attribute employeeType external in dingtalk-hq"],
    });
    expect(
      ruleX({ attribute: { name: "employeeType", source: "ad-hq", equals: "external" } }, chenjie),
    ).toEqual({
      matched: false,
      reasons: ["attribute employeeType is contractor in ad-hq, not = external"],
    });
    expect(ruleX({ attribute: { name: "employeeType", matches: "^contract" } }, chenjie).reasons).toEqual([
      "attribute employeeType contractor in ad-hq",
      "attribute employeeType contractor in dingtalk-hq",
    ]);
    expect(ruleX({ attribute: { name: "employeeType", in: ["staff"] } }, lina).matched).toBe(true);
  });

  it("all / any / not: combine conditions and explain the exclusion", () => {
    const notCashier: Condition = { not: { group: `ad-hq:${FINANCE_CASHIERS}` } };
    expect(ruleX(notCashier, chenjie)).toEqual({
      matched: true,
      reasons: [`group ${FINANCE_CASHIERS} not held in ad-hq`],
    });
    expect(ruleX(notCashier, zhangwei)).toEqual({
      matched: false,
      reasons: [`excluded: member of ${FINANCE_CASHIERS} in ad-hq`],
    });
    expect(ruleX({ any: [{ title: "出纳" }, { leaderOf: "any" }] }, zhangwei).reasons).toEqual([
      "leader of 财务部 in dingtalk-hq",
    ]);
    expect(ruleX({ all: [{ title: "会计" }, { leaderOf: "any" }] }, lina).reasons).toEqual([
      "not a leader of any department",
    ]);
  });

  it("a negated condition grants nothing to someone active nowhere", () => {
    expect(ruleX({ not: { title: "会计" } }, wangfang).matched).toBe(false);
  });
});

describe("policy evaluation: scopes and separation of duties", () => {
  it("scopes memberDepartments and mainDepartment to the person's departments, sorted by path (code-point order)", () => {
    const member = evaluate(
      single({ status: "active" }, { role: "department", rule: "memberDepartments" }),
      chenjie,
    );
    expect(member.grants[0]!.scope).toEqual(["研发中心/华东区", "财务部/华东区"]);
    const main = evaluate(
      single({ status: "active" }, { role: "department", rule: "mainDepartment" }),
      chenjie,
    );
    expect(main.grants[0]!.scopeDepartments).toEqual([
      { sourceId: "dingtalk-hq", id: "6", label: "研发中心/华东区" },
    ]);
  });

  it("does not grant a department-scoped role when the scope comes out empty", () => {
    const result = evaluate(
      single({ status: "active" }, { role: "department", rule: "ledDepartments" }),
      lina,
    );
    expect(result.grants).toEqual([]);
    expect(result.rules[0]!.reasons).toEqual([
      "active in dingtalk-hq",
      "but no departments for scope ledDepartments",
    ]);
  });

  it("unions the scope of a role granted by two rules", () => {
    const policy = policyOf(`
version: 1
target: t
roles: { approver: { targetRole: 部门审批人, scope: department } }
rules:
  - { id: leaders, when: { leaderOf: any }, grant: approver, scope: ledDepartments }
  - { id: members, when: { title: 财务部负责人 }, grant: approver, scope: memberDepartments }
  - { id: fixed, when: { title: 财务部负责人 }, grant: approver, scope: { values: [总部] } }
`);
    const grant = evaluate(policy, zhangwei).grants[0]!;
    expect(grant.scope).toEqual(["总部", "财务部"]);
    expect(grant.lineage.map((l) => l.rule)).toEqual(["leaders", "members", "fixed"]);
  });

  it("flag constraints grant both roles and report the conflict", () => {
    const policy = policyOf(`
version: 1
target: t
roles: { cashier: { targetRole: 出纳 }, accountant: { targetRole: 会计 } }
rules:
  - { id: c, when: { title: 会计 }, grant: cashier }
  - { id: a, when: { title: 会计 }, grant: accountant }
separationOfDuties:
  - { id: no-both, roles: [cashier, accountant], effect: flag }
`);
    const result = evaluate(policy, lina);
    expect(result.grants.map((g) => g.role)).toEqual(["cashier", "accountant"]);
    expect(result.withheld).toEqual([]);
    expect(result.flagged).toEqual([{ constraint: "no-both", roles: ["cashier", "accountant"] }]);
    expect(formatExplain(result, policy)).toContain("! 出纳 + 会计 — constraint no-both (granted, reported)");
  });

  it("block constraints keep the first role listed, whichever rule came first", () => {
    const policy = policyOf(`
version: 1
target: t
roles: { cashier: { targetRole: 出纳 }, accountant: { targetRole: 会计 } }
rules:
  - { id: c, when: { title: 会计 }, grant: cashier }
  - { id: a, when: { title: 会计 }, grant: accountant }
separationOfDuties:
  - { id: no-both, roles: [accountant, cashier] }
`);
    const result = evaluate(policy, lina);
    expect(result.grants.map((g) => g.role)).toEqual(["accountant"]);
    expect(result.withheld.map((w) => [w.role, w.constraint])).toEqual([["cashier", "no-both"]]);
  });
});
