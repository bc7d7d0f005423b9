/**
 * Guardrails (pure), the reason a misconfiguration cannot wipe a finance platform:
 * 1. A removal (revoke, user disable, department disable) is planned only when every source it depends on
 *    was read completely; otherwise it is held back and listed. Creates and grants proceed.
 * 2. Removals above the policy's thresholds (count or percentage of what idbridge manages) make the plan
 *    need a person's approval; so do grants of sensitive roles and reviving a disabled account.
 */
import { policySources } from "../policy/sources.js";
import type { Policy } from "../policy/schema.js";
import type { BlockedChange, PlanChange, RiskReason } from "./plan.js";

/** What idbridge manages in the target now: the bases of the thresholds' percentages. */
export interface Totals {
  /** Active managed users. */
  readonly activeUsers: number;
  /** Role grants (user, role, scope) of managed users in managed roles. */
  readonly grants: number;
  /** Active managed departments. */
  readonly activeDepartments: number;
}

/** Input of {@link applyGuardrails}. */
export interface GuardrailInput {
  /** The planned changes, in apply order. */
  readonly changes: readonly PlanChange[];
  /** The policy (rules say which sources a role depends on; guardrails give the thresholds). */
  readonly policy: Policy;
  /** The org chart source (department disables depend on it). */
  readonly orgChartSource: string | undefined;
  /** Sources whose snapshot is a proven complete full read. */
  readonly completeSources: ReadonlySet<string>;
  /** The sources a person has accounts in (for rules that read whichever sources the person is in). */
  readonly accountSources: (personId: string) => readonly string[];
  /** The bases of the percentages. */
  readonly totals: Totals;
}

/** Result of {@link applyGuardrails}. */
export interface GuardrailResult {
  /** The changes that stay, in the same order. */
  readonly changes: readonly PlanChange[];
  /** Removals held back, with the incomplete sources they depend on. */
  readonly blocked: readonly BlockedChange[];
  /** Why a person must approve (empty: low risk). */
  readonly risk: readonly RiskReason[];
}

/** Applies the guardrails to planned changes. */
export function applyGuardrails(input: GuardrailInput): GuardrailResult {
  const { policy } = input;
  const bySource = policySources(policy);
  // Per role: the sources its rules name, and whether some rule reads every linked source.
  const roleDeps = new Map<string, { named: Set<string>; everySource: boolean }>();
  const anyRule = { named: new Set<string>(), everySource: false };
  for (const rule of policy.rules) {
    const deps = bySource.get(rule.id)!;
    let entry = roleDeps.get(rule.grant);
    if (entry === undefined) roleDeps.set(rule.grant, (entry = { named: new Set(), everySource: false }));
    for (const source of deps.named) {
      entry.named.add(source);
      anyRule.named.add(source);
    }
    entry.everySource ||= deps.everySource;
    anyRule.everySource ||= deps.everySource;
  }

  const dependsOn = (change: PlanChange): string[] => {
    const deps =
      change.kind === "revoke"
        ? (roleDeps.get(change.role) ?? { named: new Set<string>(), everySource: false })
        : change.kind === "disable-user"
          ? anyRule
          : change.kind === "disable-department"
            ? { named: new Set(input.orgChartSource ? [input.orgChartSource] : []), everySource: false }
            : undefined;
    if (deps === undefined) return [];
    const sources = new Set(deps.named);
    if (deps.everySource && "person" in change)
      for (const s of input.accountSources(change.person)) sources.add(s);
    return [...sources].sort();
  };

  const kept: PlanChange[] = [];
  const blocked: BlockedChange[] = [];
  for (const change of input.changes) {
    const incomplete = dependsOn(change).filter((s) => !input.completeSources.has(s));
    if (incomplete.length === 0) {
      kept.push(change);
      continue;
    }
    blocked.push({
      change,
      sources: incomplete,
      reason: `held back: depends on ${incomplete.join(", ")}, which ${incomplete.length > 1 ? "were" : "was"} not read completely; removals are planned only from complete reads`,
    });
  }

  const count = (kind: PlanChange["kind"]) => kept.filter((c) => c.kind === kind).length;
  const risk: RiskReason[] = [];
  const { guardrails } = policy;
  const threshold = (
    code: RiskReason["code"],
    what: string,
    n: number,
    total: number,
    limit: { count: number; percent: number },
  ): void => {
    if (n === 0) return;
    const percent = total > 0 ? (n * 100) / total : 100;
    if (n <= limit.count && percent <= limit.percent) return;
    risk.push({
      code,
      message: `${n} ${what} (${percent.toFixed(1)}% of ${total}) exceed the guardrail of ${limit.count} or ${limit.percent}% in ${policy.file}; a security admin must approve`,
    });
  };
  threshold(
    "THRESHOLD_DISABLES",
    "user disables",
    count("disable-user"),
    input.totals.activeUsers,
    guardrails.maxDisables,
  );
  threshold(
    "THRESHOLD_REVOCATIONS",
    "role revocations",
    count("revoke"),
    input.totals.grants,
    guardrails.maxRevocations,
  );
  threshold(
    "THRESHOLD_DEPARTMENT_DISABLES",
    "department disables",
    count("disable-department"),
    input.totals.activeDepartments,
    guardrails.maxDepartmentDisables,
  );
  const sensitive = kept.filter(
    (c): c is Extract<PlanChange, { kind: "grant" }> => c.kind === "grant" && c.sensitive,
  );
  if (sensitive.length > 0) {
    const names = [...new Set(sensitive.map((g) => g.targetRole))].join(", ");
    const who = sensitive
      .slice(0, 3)
      .map((g) => `${g.name} (${g.targetRole})`)
      .join(", ");
    risk.push({
      code: "SENSITIVE_GRANT",
      message: `${sensitive.length} grant(s) of sensitive roles (${names}): ${who}${sensitive.length > 3 ? ", …" : ""}; a security admin must approve`,
    });
  }
  const revived = kept.filter((c) => c.kind === "enable-user" && c.revives);
  if (revived.length > 0)
    risk.push({
      code: "REENABLE_MATCH",
      message: `${revived.length} disabled account(s) in the target match new people and would be revived; a security admin must confirm they are the same humans`,
    });
  return { changes: kept, blocked, risk };
}
