/**
 * `policy explain`: the readable answer to "which rules give this person which roles, and why not
 * others". Pure: text from an evaluation.
 */
import type { Person } from "../identity/person.js";
import { evaluatePolicy, type LineageStep, type PolicyEvaluation } from "./evaluate.js";
import { buildPersonFacts, type DirectoryFacts } from "./facts.js";
import type { Policy } from "./schema.js";

/** Evaluates and formats in one call (what a CLI or the console calls). */
export function explainPerson(
  policy: Policy,
  person: Person,
  directories: DirectoryFacts,
): { evaluation: PolicyEvaluation; text: string } {
  const evaluation = evaluatePolicy(policy, buildPersonFacts(person, directories));
  return { evaluation, text: formatExplain(evaluation, policy) };
}

/** One grant as a line: `+ 部门审批人 [财务部] — rule leaders-approve-their-departments: leader of 财务部 in dingtalk-hq`. */
export function formatGrantLine(
  sign: string,
  grant: { targetRole: string; scope: readonly string[]; lineage: readonly LineageStep[] },
): string {
  const scope = grant.scope.length > 0 ? ` [${grant.scope.join(", ")}]` : "";
  return `${sign} ${grant.targetRole}${scope} — ${formatLineage(grant.lineage)}`;
}

/** Lineage as text: `rule A: fact, fact; rule B: fact`. */
export function formatLineage(lineage: readonly LineageStep[]): string {
  return lineage.map((step) => `rule ${step.rule}: ${step.facts.join(", ")}`).join("; ");
}

/** The explain text: accounts, grants, withheld and flagged grants, then every rule that did not match. */
export function formatExplain(evaluation: PolicyEvaluation, policy?: Pick<Policy, "roles" | "file">): string {
  const roleName = (key: string): string => policy?.roles[key]?.targetRole ?? key;
  const lines: string[] = [
    `Person ${evaluation.personId} — target ${evaluation.target}${policy ? ` (${policy.file})` : ""}`,
  ];
  lines.push("Accounts:");
  if (evaluation.accounts.length === 0) lines.push("  (none linked)");
  for (const account of evaluation.accounts) lines.push(`  ${account}`);
  lines.push("Grants:");
  if (evaluation.grants.length === 0) lines.push("  (none)");
  for (const grant of evaluation.grants) {
    lines.push(`  ${formatGrantLine("+", grant)}${grant.sensitive ? " (sensitive: needs approval)" : ""}`);
  }
  if (evaluation.withheld.length > 0) {
    lines.push("Withheld by separation of duties:");
    for (const grant of evaluation.withheld) {
      lines.push(
        `  ${formatGrantLine("-", grant)} (withheld by ${grant.constraint}: conflicts with ${grant.conflictsWith.map(roleName).join(", ")})`,
      );
    }
  }
  if (evaluation.flagged.length > 0) {
    lines.push("Flagged by separation of duties:");
    for (const flag of evaluation.flagged) {
      lines.push(
        `  ! ${flag.roles.map(roleName).join(" + ")} — constraint ${flag.constraint} (granted, reported)`,
      );
    }
  }
  const unmatched = evaluation.rules.filter((r) => !r.matched);
  if (unmatched.length > 0) {
    lines.push("Rules not matched:");
    for (const rule of unmatched) {
      lines.push(`  · rule ${rule.rule} (${roleName(rule.role)}): not matched: ${rule.reasons.join("; ")}`);
    }
  }
  return lines.join("\n");
}
