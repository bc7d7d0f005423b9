import { describe, expect, it } from "vitest";
import { conditionSources, ruleSources } from "../../src/policy/sources.js";

describe("policy sources (what a rule reads, for the incomplete-snapshot guardrail)", () => {
  it("names the sources of groups, departments, leaderOf, statusSource and attribute.source", () => {
    expect(
      conditionSources({
        all: [
          { group: "ad-hq:CN=Cashiers,OU=Finance,DC=corp" },
          { not: { department: { source: "dingtalk-hq", id: "2" } } },
          {
            any: [{ leaderOf: { source: "wecom-hq", id: "9" } }, { status: "active", statusSource: "hr-db" }],
          },
          { attribute: { name: "employeeType", source: "ad-hq", equals: "staff" } },
        ],
      }),
    ).toEqual({ named: ["ad-hq", "dingtalk-hq", "hr-db", "wecom-hq"], everySource: false });
  });

  it("reads every linked source for status, title, leaderOf any and attributes without a source", () => {
    for (const when of [
      { status: "active" as const },
      { title: "会计" },
      { leaderOf: "any" as const },
      { attribute: { name: "x", equals: "y" } },
    ]) {
      expect(conditionSources(when).everySource).toBe(true);
    }
  });

  it("counts the active-somewhere gate of a rule without a status condition as reading every source", () => {
    const rule = { id: "x", grant: "r", when: { group: { source: "ad-hq", id: "g" } } };
    expect(ruleSources(rule)).toEqual({ named: ["ad-hq"], everySource: true });
    const withStatus = {
      ...rule,
      when: { all: [rule.when, { status: "active" as const, statusSource: "ad-hq" }] },
    };
    expect(ruleSources(withStatus)).toEqual({ named: ["ad-hq"], everySource: false });
  });
});
