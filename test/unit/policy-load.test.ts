import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isAppError } from "../../src/domain/errors.js";
import { buildDirectoryFacts } from "../../src/policy/facts.js";
import { checkPolicies, loadPolicies } from "../../src/policy/load.js";
import { AD, DINGTALK } from "../fixtures/policy/directory.js";

/** Writes the files into a fresh directory and returns it. */
function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-policy-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const GOOD = `version: 1
target: hesi-main
roles:
  submitter: { targetRole: 报销提交人 }
  approver: { targetRole: 部门审批人, scope: department }
  cashier: { targetRole: 出纳, sensitive: true }
rules:
  - id: everyone-submits
    when: { status: active }
    grant: submitter
  - id: leaders
    when: { leaderOf: any }
    grant: approver
    scope: ledDepartments
separationOfDuties:
  - id: cashier-is-not-approver
    roles: [cashier, approver]
`;

describe("policy loading", () => {
  it("loads a valid policy with the guardrail and role defaults filled in, frozen", () => {
    const dir = policyDir({ "hesi.yaml": GOOD });
    const [policy] = loadPolicies(dir);
    expect(policy!.file).toBe(join(dir, "hesi.yaml"));
    expect(policy!.guardrails).toEqual({
      maxDisables: { count: 50, percent: 5 },
      maxRevocations: { count: 200, percent: 10 },
      maxDepartmentDisables: { count: 10, percent: 5 },
    });
    expect(policy!.roles["submitter"]).toEqual({ targetRole: "报销提交人", scope: "none", sensitive: false });
    expect(policy!.separationOfDuties[0]!.effect).toBe("block");
    expect(Object.isFrozen(policy!.rules[0])).toBe(true);
  });

  it("fills a partly given guardrail from the defaults", () => {
    const dir = policyDir({ "hesi.yaml": `${GOOD}guardrails:\n  maxDisables: { count: 5 }\n` });
    expect(loadPolicies(dir)[0]!.guardrails.maxDisables).toEqual({ count: 5, percent: 5 });
  });

  it("reports every schema problem at once as file:line: dotted.path: message", () => {
    const text = `version: 1
target: Hesi Main
roles:
  submitter: { targetRole: 报销提交人, colour: red }
rules:
  - id: everyone-submits
    when: { status: retired }
    grant: submitter
  - id: two-keys
    when: { title: 会计, leaderOf: any }
    grant: submitter
  - id: bad-regex
    when: { title: { matches: "([" } }
    grant: submitter
  - id: no-grant
    when: { group: "ad-hq:CN=X" }
`;
    const dir = policyDir({ "bad.yaml": text });
    const file = join(dir, "bad.yaml");
    const { problems } = checkPolicies(dir);
    expect(problems).toEqual(
      expect.arrayContaining([
        `${file}:2: target: must be kebab-case (lowercase letters, digits and single dashes)`,
        `${file}:4: roles.submitter.colour: unknown key`,
        `${file}:7: rules[0].when.status: must be one of active, disabled, locked, expired, left, or a list of them`,
        `${file}:10: rules[1].when: has leaderOf and title; use all: [...] to combine conditions`,
        `${file}:13: rules[2].when.title.matches: is not a valid regular expression`,
        `${file}:15: rules[3].grant: required`,
      ]),
    );
    expect(problems).toHaveLength(6);
  });

  it("checks references inside the policy: unknown roles, SoD roles, duplicate ids, scopes", () => {
    const text = `version: 1
target: hesi-main
roles:
  submitter: { targetRole: 报销提交人 }
  approver: { targetRole: 部门审批人, scope: department }
  budget: { targetRole: 预算管理员, scope: dimension }
  also-submitter: { targetRole: 报销提交人 }
rules:
  - id: a
    when: { status: active }
    grant: cashier
  - id: a
    when: { status: active }
    grant: submitter
  - id: leaders
    when: { leaderOf: any }
    grant: approver
  - id: budget
    when: { leaderOf: any }
    grant: budget
    scope: ledDepartments
  - id: scoped-unscoped
    when: { leaderOf: any }
    grant: submitter
    scope: ledDepartments
separationOfDuties:
  - id: sod
    roles: [submitter, auditor]
`;
    const dir = policyDir({ "refs.yaml": text });
    const file = join(dir, "refs.yaml");
    expect(checkPolicies(dir).problems).toEqual([
      `${file}:11: rules[0].grant: role cashier is not in roles (known: submitter, approver, budget, also-submitter)`,
      `${file}:12: rules[1].id: duplicate rule id a (also rules[0])`,
      `${file}:15: rules[2].scope: required: role approver is department-scoped`,
      `${file}:21: rules[3].scope: role budget is dimension-scoped; give { values: [...] }`,
      `${file}:25: rules[4].scope: role submitter is not scoped; remove scope`,
      `${file}:28: separationOfDuties[0].roles[1]: role auditor is not in roles`,
      `${file}:7: roles.also-submitter.targetRole: target role 报销提交人 is also managed as submitter`,
    ]);
  });

  it("reports a bad role key with the reason and an empty file at line 1", () => {
    const dir = policyDir({
      "a.yaml": 'version: 1\ntarget: t\nroles:\n  "bad key": { targetRole: X }\n',
      "b.yaml": "",
    });
    expect(checkPolicies(dir).problems).toEqual([
      `${join(dir, "a.yaml")}:4: roles.bad key: invalid key: must start with a letter and hold only letters, digits, - and _`,
      `${join(dir, "b.yaml")}:1: version: Invalid input: expected 1`,
      `${join(dir, "b.yaml")}:1: target: required`,
      `${join(dir, "b.yaml")}:1: roles: required`,
    ]);
  });

  it("reports YAML syntax errors with their line", () => {
    const dir = policyDir({ "broken.yaml": "version: 1\ntarget: [unclosed\nroles: {}\n" });
    const [problem] = checkPolicies(dir).problems;
    expect(problem).toMatch(new RegExp(`^${join(dir, "broken.yaml")}:\\d+: \\(yaml\\): `));
  });

  it("refuses two policy files for the same target", () => {
    const dir = policyDir({ "a.yaml": GOOD, "b.yaml": GOOD });
    expect(checkPolicies(dir).problems).toEqual([
      `${join(dir, "b.yaml")}:2: target: hesi-main already has a policy in ${join(dir, "a.yaml")}`,
    ]);
  });

  it("throws one POLICY_INVALID error listing the problems of every file", () => {
    const dir = policyDir({
      "a.yaml": "version: 2\n",
      "b.yaml": GOOD.replace("grant: submitter", "grant: nobody"),
    });
    try {
      loadPolicies(dir);
      expect.unreachable();
    } catch (err) {
      expect(isAppError(err, "POLICY_INVALID")).toBe(true);
      const details = (err as { details: string[] }).details;
      expect(details.some((d) => d.startsWith(`${join(dir, "a.yaml")}:1: version: `))).toBe(true);
      expect(details.some((d) => d.startsWith(`${join(dir, "a.yaml")}:1: target: required`))).toBe(true);
      expect(
        details.some((d) => d.startsWith(`${join(dir, "b.yaml")}:10: rules[0].grant: role nobody`)),
      ).toBe(true);
    }
  });

  it("says when the directory holds no policy file", () => {
    const dir = policyDir({ "notes.txt": "x" });
    expect(checkPolicies(dir).problems).toEqual([`${dir}: no policy files (*.yaml)`]);
  });
});

describe("policy check against the last snapshots", () => {
  const directories = buildDirectoryFacts([DINGTALK, AD]);

  it("warns about groups, departments and sources the snapshots do not hold, without failing", () => {
    const text = `version: 1
target: hesi-main
roles: { r: { targetRole: R } }
rules:
  - id: x
    when:
      any:
        - group: "ad-hq:CN=Typo,OU=Finance,DC=corp"
        - group: "ad-hq:Cashiers"
        - department: { source: dingtalk-hq, path: 财务部/华西区 }
        - leaderOf: { source: wecom-hq, id: "7" }
        - attribute: { name: employeeType, source: hr-db, equals: x }
        - group: "ad-hq:CN=Cashiers,OU=Finance,DC=corp,DC=example,DC=test"
    grant: r
`;
    const dir = policyDir({ "p.yaml": text });
    const file = join(dir, "p.yaml");
    const check = checkPolicies(dir, { directories });
    expect(check.problems).toEqual([]);
    expect(check.policies).toHaveLength(1);
    expect(check.warnings).toEqual([
      `${file}:8: rules[0].when.any[0].group: group CN=Typo,OU=Finance,DC=corp does not exist in ad-hq`,
      expect.stringContaining(
        `${file}:9: rules[0].when.any[1].group: group name Cashiers is ambiguous in ad-hq`,
      ),
      `${file}:10: rules[0].when.any[2].department: department 财务部/华西区 does not exist in dingtalk-hq`,
      `${file}:11: rules[0].when.any[3].leaderOf: department 7: no snapshot of source wecom-hq`,
      `${file}:12: rules[0].when.any[4].attribute.source: no snapshot of source hr-db`,
    ]);
  });

  it("warns once about a source the config does not have, instead of looking into its snapshot", () => {
    const text = `version: 1
target: hesi-main
roles: { r: { targetRole: R } }
rules:
  - id: x
    when:
      all:
        - group: "wecom-hq:finance"
        - department: { source: dingtalk-hq, path: 财务部 }
    grant: r
`;
    const dir = policyDir({ "p.yaml": text });
    const check = checkPolicies(dir, { directories, sourceIds: ["dingtalk-hq", "ad-hq"] });
    expect(check.warnings).toEqual([
      `${join(dir, "p.yaml")}:8: rules[0].when.all[0].group: source wecom-hq is not configured (sources: dingtalk-hq, ad-hq)`,
    ]);
  });
});
