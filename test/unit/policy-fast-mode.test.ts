import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { planInputs } from "../../bench/plan-inputs.js";
import { linkPeople } from "../../src/identity/link.js";
import { evaluatePolicy, type PolicyEvaluation } from "../../src/policy/evaluate.js";
import { buildDirectoryFacts, buildPersonFacts } from "../../src/policy/facts.js";

const inputs = planInputs(1500, 7);
let next = 0;
const linked = linkPeople({
  snapshots: inputs.snapshots,
  config: inputs.identity,
  existing: [],
  now: new Date("2026-11-27T00:00:00Z"),
  newId: () => `p_${next++}`,
});
const directories = buildDirectoryFacts(inputs.snapshots);

/** What a sync reads from an evaluation. */
function syncView(e: PolicyEvaluation): unknown {
  return {
    personId: e.personId,
    target: e.target,
    grants: e.grants,
    withheld: e.withheld,
    flagged: e.flagged,
    matched: e.rules.map((r) => [r.rule, r.role, r.matched, r.matched ? r.reasons : null]),
  };
}

describe("policy evaluation with explain", () => {
  // Digest from commit fb734cb, renewed once when facts about DingTalk roles began to name the role with
  // its role group (`member of 职务/出纳`, `group 职务/会计 not held`; was `职务` alone).
  it("gives exactly the evaluations of the implementation before the speed-ups", () => {
    const hash = createHash("sha256");
    for (const person of linked.people)
      hash.update(JSON.stringify(evaluatePolicy(inputs.policy, buildPersonFacts(person, directories))));
    expect(hash.digest("hex")).toBe("60c810467bf2b0e3ab8ef325c53329324c0351ce7a7f45776dbd4f57a50d4f1e");
  });
});

describe("policy evaluation without explain", () => {
  it("gives exactly the grants, lineage, withheld and flagged grants of explain mode for every person of a generated company", () => {
    expect(inputs.policy.rules.length).toBe(50);
    let grants = 0;
    let withheld = 0;
    let unmatchedWithReasons = 0;
    for (const person of linked.people) {
      const facts = buildPersonFacts(person, directories);
      const full = evaluatePolicy(inputs.policy, facts);
      const fast = evaluatePolicy(inputs.policy, facts, { explain: false });
      expect(syncView(fast)).toEqual(syncView(full));
      grants += full.grants.length;
      withheld += full.withheld.length;
      unmatchedWithReasons += full.rules.filter((r) => !r.matched && r.reasons.length > 0).length;
    }
    // The company exercises grants, separation of duties and reasons, so the comparison means something.
    expect(grants).toBeGreaterThan(linked.people.length);
    expect(withheld).toBeGreaterThan(0);
    expect(unmatchedWithReasons).toBeGreaterThan(0);
  });

  it("keeps the lineage of a rule that matches through not (the inner condition's reasons)", () => {
    const person = linked.people.find((p) => p.accounts.length === 3)!;
    const fast = evaluatePolicy(inputs.policy, buildPersonFacts(person, directories), { explain: false });
    const submits = fast.grants.find((g) => g.role === "submitter")!;
    const step = submits.lineage.find((s) => s.rule === "everyone-submits")!;
    expect(step.facts.some((f) => f.startsWith("attribute activated is true in dingtalk-hq"))).toBe(true);
  });

  it("leaves out reasons of rules that did not match and the accounts list", () => {
    const person = linked.people[0]!;
    const fast = evaluatePolicy(inputs.policy, buildPersonFacts(person, directories), { explain: false });
    expect(fast.rules.filter((r) => !r.matched).every((r) => r.reasons.length === 0)).toBe(true);
    expect(fast.accounts).toEqual([]);
  });
});
