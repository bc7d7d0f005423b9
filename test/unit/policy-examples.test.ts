import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { evaluatePolicy } from "../../src/policy/evaluate.js";
import { explainPerson } from "../../src/policy/explain.js";
import { buildDirectoryFacts, buildPersonFacts } from "../../src/policy/facts.js";
import { checkPolicies, loadPolicies } from "../../src/policy/load.js";
import { generateOrg } from "../../src/simulators/common/org.js";
import { demoSnapshot, dingtalkPerson } from "../fixtures/policy/demo-org.js";

const POLICIES = fileURLToPath(new URL("../../policies/", import.meta.url));
const org = generateOrg({ people: 300, seed: 1 });
const directories = buildDirectoryFacts([demoSnapshot(org)]);

function grantsOf(userid: string): string[] {
  const [policy] = loadPolicies(POLICIES);
  const result = evaluatePolicy(policy!, buildPersonFacts(dingtalkPerson(userid), directories));
  return result.grants.map((g) =>
    g.scope.length > 0 ? `${g.targetRole} [${g.scope.join(", ")}]` : g.targetRole,
  );
}

describe("shipped example policies (policies/)", () => {
  it("load and validate", () => {
    const policies = loadPolicies(POLICIES);
    expect(policies.map((p) => p.target)).toEqual(["hesi-main"]);
  });

  it("name only groups and departments the demo company has (the AD source is not in the demo)", () => {
    const check = checkPolicies(POLICIES, { directories, sourceIds: ["dingtalk-hq", "ad-hq"] });
    expect(check.problems).toEqual([]);
    expect(check.warnings).toHaveLength(1);
    expect(check.warnings[0]).toMatch(
      /rules\[3\]\.when\.any\[1\]\.group: group CN=Cashiers,.*: no snapshot of source ad-hq$/,
    );
  });

  it("make the leader of 财务部 its approver, finance manager and budget owner", () => {
    const finance = org.departments.find((d) => d.name === "财务部")!;
    expect(grantsOf(finance.leaders[0]!)).toEqual([
      "报销提交人",
      "部门审批人 [财务部]",
      "财务经理",
      "预算管理员 [财务部]",
    ]);
  });

  it("give a finance accountant the accountant role and a cashier the cashier role", () => {
    const accountant = org.roles.find((r) => r.name === "会计")!.members[0]!;
    const cashier = org.roles.find((r) => r.name === "出纳")!.members[0]!;
    expect(grantsOf(accountant)).toEqual(["报销提交人", "会计"]);
    expect(grantsOf(cashier)).toEqual(["报销提交人", "出纳"]);
  });

  it("give nothing to someone who left and only the submitter role to an ordinary employee", () => {
    const left = org.people.find((p) => p.status === "left")!;
    expect(grantsOf(left.userid)).toEqual([]);
    const ordinary = org.people.find(
      (p) =>
        p.status === "active" &&
        p.leaderOf.length === 0 &&
        !org.roles.some((r) => r.members.includes(p.userid)),
    )!;
    expect(grantsOf(ordinary.userid)).toEqual(["报销提交人"]);
  });

  it("hold back the submitter role until a DingTalk account is activated, and say so", () => {
    const waiting = org.people.find((p) => p.status === "not-activated")!;
    expect(grantsOf(waiting.userid)).toEqual([]);
    const [policy] = loadPolicies(POLICIES);
    const { text } = explainPerson(policy!, dingtalkPerson(waiting.userid), directories);
    expect(text).toContain(
      "· rule everyone-submits (报销提交人): not matched: excluded: attribute activated false in dingtalk-hq",
    );
  });
});
