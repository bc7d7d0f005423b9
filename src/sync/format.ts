/**
 * `idbridge sync show`: a plan as text a security admin reads before approving — what needs approval and
 * why, then every change per person with its lineage (pure).
 */
import { formatGrantLine } from "../policy/explain.js";
import type { PlanRecord } from "../store/store.js";
import { countChanges, type Plan, type PlanChange } from "./plan.js";

/** The plan as text. */
export function formatPlan(
  record: Pick<PlanRecord, "status" | "hash" | "decision" | "needsApproval">,
  plan: Plan,
): string {
  const out: string[] = [];
  const decision = record.decision
    ? ` — ${record.decision.kind} by ${record.decision.by} at ${record.decision.at}${record.decision.comment ? `: ${record.decision.comment}` : ""}`
    : "";
  out.push(
    `Plan ${plan.id} for ${plan.target}: ${record.status}${record.needsApproval ? " (needs a person's approval)" : ""}${decision}`,
  );
  out.push(`  made ${plan.createdAt} from ${plan.policy}; content sha256 ${record.hash}`);
  out.push(
    `  base: ${plan.base.users} users, ${plan.base.departments} departments, ${plan.base.roles} roles in ${plan.target} (state ${plan.base.stateHash.slice(0, 12)})`,
  );
  out.push("Sources:");
  for (const s of plan.sources)
    out.push(
      `  ${s.id.padEnd(20)} ${s.mode.padEnd(11)} ${String(s.people).padStart(7)} people  ${s.complete ? "complete" : `INCOMPLETE: ${s.reasons.join("; ") || "not a complete full read"}`}`,
    );
  const counts = countChanges(plan);
  out.push(
    `Changes: ${plan.changes.length}${
      plan.changes.length > 0
        ? ` (${Object.entries(counts)
            .map(([k, n]) => `${n} ${k}`)
            .join(", ")})`
        : ""
    }`,
  );
  if (plan.risk.length > 0) {
    out.push("Needs approval because:");
    for (const r of plan.risk) out.push(`  ! ${r.code}: ${r.message}`);
  }
  if (plan.sod.length > 0) {
    out.push("Separation of duties:");
    for (const f of plan.sod)
      out.push(
        f.effect === "block"
          ? `  ! ${f.name} (${f.person}): ${f.constraint} withholds ${f.withheld} (conflicts with ${f.roles.filter((r) => r !== f.withheld).join(", ")})`
          : `  ! ${f.name} (${f.person}): ${f.constraint} flags ${f.roles.join(" + ")} (granted, reported)`,
      );
  }

  const departments = plan.changes.filter((c) => c.kind.endsWith("-department"));
  if (departments.length > 0) {
    out.push("Departments:");
    for (const c of departments) out.push(`  ${departmentLine(c)}`);
  }
  const roles = plan.changes.filter((c) => c.kind === "create-role");
  if (roles.length > 0) {
    out.push("Roles:");
    for (const c of roles)
      if (c.kind === "create-role")
        out.push(
          `  + role ${c.targetRole}${c.scoped ? " (per department)" : ""} — in the policy's catalogue, missing in ${plan.target}`,
        );
  }
  const people = new Map<string, { name: string; lines: string[] }>();
  for (const c of plan.changes) {
    if (!("person" in c)) continue;
    let entry = people.get(c.person);
    if (entry === undefined) people.set(c.person, (entry = { name: c.name, lines: [] }));
    entry.lines.push(personLine(c));
  }
  if (people.size > 0) {
    out.push("People:");
    for (const [id, entry] of people) {
      out.push(`  ${entry.name} (${id})`);
      for (const line of entry.lines) out.push(`    ${line}`);
    }
  }
  if (plan.blocked.length > 0) {
    out.push(`Held back (${plan.blocked.length}): removals that depend on a source not read completely`);
    for (const b of plan.blocked)
      out.push(`  ${"person" in b.change ? `${b.change.name}: ` : ""}${changeLine(b.change)} — ${b.reason}`);
  }
  if (plan.problems.length > 0) {
    out.push("Not planned:");
    for (const p of plan.problems) out.push(`  ? ${p.code}: ${p.message}`);
  }
  if (plan.heldPeople.length > 0)
    out.push(
      `Left unchanged while their identity is in review: ${plan.heldPeople.length} (idbridge identities review)`,
    );
  return `${out.join("\n")}\n`;
}

function departmentLine(c: PlanChange): string {
  switch (c.kind) {
    case "link-department":
      return `= ${c.path}: taken over (${c.targetId})`;
    case "create-department":
      return `+ ${c.path}`;
    case "update-department":
      return `~ ${c.path} (${c.targetId}): ${c.before.name !== c.fields.name ? `renamed from ${c.before.name}` : "moved"}`;
    case "disable-department":
      return `- ${c.path} (${c.targetId}): ${c.reason}`;
    default:
      return changeLine(c);
  }
}

/** One line of a person's change: `+ 部门审批人 [财务部] — rule …: facts`. */
function personLine(c: PlanChange): string {
  switch (c.kind) {
    case "grant":
      return `${formatGrantLine("+", { targetRole: c.targetRole, scope: c.scopeLabel ? [c.scopeLabel] : [], lineage: c.lineage })}${c.sensitive ? " (sensitive)" : ""}`;
    case "revoke":
      return `- ${c.targetRole}${c.scopeLabel ? ` [${c.scopeLabel}]` : ""} — ${c.reason}`;
    default:
      return changeLine(c);
  }
}

function changeLine(c: PlanChange): string {
  switch (c.kind) {
    case "link-user":
      return `= account ${c.targetId} taken over (matched by ${c.matchedBy})`;
    case "create-user":
      return `+ account${c.fields.mobile ? ` mobile ${mask(c.fields.mobile)}` : ""}${c.fields.email ? ` email ${c.fields.email}` : ""}`;
    case "update-user":
      return `~ account ${c.targetId}: ${c.changed.join(", ")}`;
    case "enable-user":
      return `+ enable account ${c.targetId}: ${c.reason}`;
    case "disable-user":
      return `- disable account ${c.targetId}: ${c.reason}`;
    case "grant":
      return `+ ${c.targetRole}${c.scopeLabel ? ` [${c.scopeLabel}]` : ""}`;
    case "revoke":
      return `- ${c.targetRole}${c.scopeLabel ? ` [${c.scopeLabel}]` : ""}`;
    case "disable-department":
      return `- department ${c.path}`;
    default:
      return `${c.kind} ${c.key}`;
  }
}

/** A mobile number with its middle hidden (138****0001): plans are read by many. */
function mask(mobile: string): string {
  return mobile.length >= 7 ? `${mobile.slice(0, 3)}****${mobile.slice(-4)}` : "****";
}
