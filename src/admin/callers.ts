/**
 * Which console roles a person holds, from `console.access`: rules naming the person by a linked
 * account, and rules with a `when` condition judged by the same policy evaluator the sync uses (the
 * access rules become a small policy whose "roles" are the console roles), so a condition means exactly
 * what it means in `policies/`. Pure.
 */
import type { Person } from "../identity/person.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import type { PersonFacts } from "../policy/facts.js";
import { policySchema, type Policy } from "../policy/schema.js";
import { ADMIN_ROLES, type AdminRole, type Caller } from "./access.js";
import type { ConsoleConfig } from "./config.js";

/** The `when` rules of `console.access` as a policy; null when no rule has one. */
export function accessPolicy(access: ConsoleConfig["access"]): Policy | null {
  const rules = access.flatMap((rule, index) =>
    rule.when === undefined ? [] : [{ id: `console-access-${index}`, when: rule.when, grant: rule.role }],
  );
  if (rules.length === 0) return null;
  const document = policySchema.parse({
    version: 1,
    target: "idbridge-console",
    roles: Object.fromEntries(ADMIN_ROLES.map((role) => [role, { targetRole: role }])),
    rules,
    guardrails: {},
  });
  return { ...document, file: "config: console.access" };
}

/**
 * The console roles of `person`: every rule that names one of their linked accounts, and every `when`
 * rule their facts meet (an inactive account meets none: the evaluator judges active accounts only).
 */
export function consoleRolesOf(
  person: Person,
  facts: PersonFacts | null,
  access: ConsoleConfig["access"],
  policy: Policy | null,
): ReadonlySet<AdminRole> {
  const roles = new Set<AdminRole>();
  const accounts = new Set(person.accounts.map((a) => `${a.sourceId}:${a.subject}`));
  for (const rule of access) if (rule.people.some((p) => accounts.has(p))) roles.add(rule.role);
  if (policy !== null && facts !== null) {
    for (const grant of evaluatePolicy(policy, facts, { explain: false }).grants)
      roles.add(grant.role as AdminRole);
  }
  return roles;
}

/** The caller of a person: actor `person:<id>`, their name (or id) and roles. */
export function personCaller(
  personId: string,
  name: string | undefined,
  roles: ReadonlySet<AdminRole>,
): Caller {
  return { actor: `person:${personId}`, name: name ?? personId, roles };
}

/** The caller of an API client from `console.apiClients`, or null for a client not listed there. */
export function clientCaller(clientId: string, clients: ConsoleConfig["apiClients"]): Caller | null {
  const client = clients.find((c) => c.clientId === clientId);
  return client === undefined
    ? null
    : { actor: `client:${client.clientId}`, name: client.clientId, roles: new Set(client.roles) };
}
