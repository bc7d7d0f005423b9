/**
 * Which sources a rule's outcome depends on, for the guardrail that an incomplete snapshot may never
 * remove anything (issue 4 §4): a revoke is safe only when every source its rule reads was read completely.
 */
import { mentionsStatus } from "./evaluate.js";
import type { Condition, Policy, Rule } from "./schema.js";

/** The sources a condition reads. */
export interface ConditionSources {
  /** Source ids the condition names (groups, departments, statusSource, attribute.source), sorted. */
  readonly named: readonly string[];
  /** True when some part reads whichever sources the person is linked in (status, title, leaderOf: any). */
  readonly everySource: boolean;
}

/** The sources a condition reads. */
export function conditionSources(condition: Condition): ConditionSources {
  const named = new Set<string>();
  let everySource = false;
  const visit = (c: Condition): void => {
    c.all?.forEach(visit);
    c.any?.forEach(visit);
    if (c.not) visit(c.not);
    if (c.status !== undefined) {
      if (c.statusSource === undefined) everySource = true;
      else named.add(c.statusSource);
    }
    if (c.group !== undefined) {
      named.add(typeof c.group === "string" ? c.group.slice(0, c.group.indexOf(":")) : c.group.source);
    }
    if (c.department !== undefined) named.add(c.department.source);
    if (c.leaderOf !== undefined) {
      if (c.leaderOf === "any") everySource = true;
      else named.add(c.leaderOf.source);
    }
    if (c.title !== undefined) everySource = true;
    if (c.attribute !== undefined) {
      if (c.attribute.source === undefined) everySource = true;
      else named.add(c.attribute.source);
    }
  };
  visit(condition);
  return { named: [...named].sort(), everySource };
}

/** The sources a rule reads. Every rule without a `status` condition also reads every linked source's status. */
export function ruleSources(rule: Rule): ConditionSources {
  const sources = conditionSources(rule.when);
  // The "active in some source" gate (evaluate.ts) reads every linked account's status.
  return mentionsStatus(rule.when) ? sources : { ...sources, everySource: true };
}

/** The sources each rule of a policy reads, by rule id. */
export function policySources(policy: Policy): ReadonlyMap<string, ConditionSources> {
  return new Map(policy.rules.map((rule) => [rule.id, ruleSources(rule)]));
}
