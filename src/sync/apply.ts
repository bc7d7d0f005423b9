/**
 * The apply engine: carries out an approved plan against a target, in the plan's order (departments
 * top-down, users, role membership, user disables, department disables bottom-up), and records every
 * change's outcome with its audit entry exactly once.
 *
 * - Idempotent: created records go into the link table as soon as they exist; changes already recorded
 *   are skipped; a change found already done (a crashed run got that far, or someone did it by hand) is
 *   recorded once, marked `observed`. Re-applying a plan, or applying after a SIGKILL, never duplicates.
 * - Stale plans are refused before anything is written: a record the plan changes that is neither as the
 *   plan saw it nor as the plan wants it means someone else changed it since; re-plan.
 * - A circuit breaker stops the run when failures pile up or the target refuses our credentials.
 * - Afterwards the target is read back and every change that did not take is reported.
 */
import { chainEvents, type AuditEvent } from "../audit/chain.js";
import { AppError } from "../domain/errors.js";
import type { JsonObject } from "../domain/json.js";
import type { PlanItemRecord, Store, TargetLink } from "../store/store.js";
import type {
  ChangeFailure,
  ChangeResult,
  RoleRow,
  TargetChange,
  TargetConnector,
  TargetState,
  TargetUser,
  UserFields,
} from "../targets/target.js";
import type { Plan, PlanChange, PlannedUser, RecordRef } from "./plan.js";

/** Input of {@link applyPlan}. */
export interface ApplyInput {
  /** The approved plan. */
  readonly plan: Plan;
  /** Who approved it (recorded on every change's audit entry). */
  readonly approvedBy: string;
  /** The connected target. */
  readonly connector: TargetConnector;
  /** Where links, item outcomes and audit entries go. */
  readonly store: Pick<Store, "listTargetLinks" | "saveTargetLinks" | "listPlanItems" | "recordPlanItems">;
  /** Stop after more than this many failed changes (an auth failure stops at once). */
  readonly maxFailures: number;
  /** Clock. */
  readonly now?: () => Date;
  /** Progress, one call per recorded batch. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What did not take after the read-back. */
export interface VerifyMismatch {
  /** The change's key. */
  readonly key: string;
  /** What the target shows instead. */
  readonly message: string;
}

/** The outcome of {@link applyPlan}. */
export interface ApplyReport {
  /** Changes that took effect in this run. */
  readonly applied: number;
  /** Changes found already done (recorded once, as observed). */
  readonly observed: number;
  /** Changes recorded in an earlier run of the same plan and skipped. */
  readonly skipped: number;
  /** Changes that failed, with why. */
  readonly failed: readonly { readonly key: string; readonly failure: ChangeFailure }[];
  /** Changes not attempted because the circuit breaker stopped the run. */
  readonly notAttempted: number;
  /** Why the breaker stopped the run, if it did. */
  readonly stoppedBecause: string | null;
  /** The read-back: changes the target does not reflect. */
  readonly mismatches: readonly VerifyMismatch[];
}

type Outcome =
  | { readonly status: "applied" | "noop"; readonly targetId?: string; readonly adopted?: boolean }
  | { readonly status: "failed"; readonly failure: ChangeFailure };

/** Applies an approved plan; throws PLAN_STALE (nothing written) or TARGET_UNAVAILABLE (cannot read). */
export async function applyPlan(input: ApplyInput): Promise<ApplyReport> {
  const { plan, connector, store } = input;
  const now = input.now ?? (() => new Date());
  const state = await readState(connector);
  const links = new Links(await store.listTargetLinks(plan.target));
  const stale = staleChanges(plan, state, links);
  if (stale.length > 0)
    throw new AppError(
      "PLAN_STALE",
      `${plan.target} changed since plan ${plan.id} was made (${stale.length} record(s), e.g. ${stale.slice(0, 3).join("; ")}); make a new plan`,
      { expose: true, details: stale.slice(0, 20) },
    );

  const recorded = new Map((await store.listPlanItems(plan.id)).map((item) => [item.key, item]));
  const done = (key: string) => {
    const status = recorded.get(key)?.status;
    return status === "applied" || status === "noop";
  };
  const pending = plan.changes.filter((c) => !done(c.key));
  const report = {
    applied: 0,
    observed: 0,
    skipped: plan.changes.length - pending.length,
    failed: [] as { key: string; failure: ChangeFailure }[],
    notAttempted: 0,
    stoppedBecause: null as string | null,
  };
  let finished = report.skipped;

  /** Saves new links, then records outcomes and their audit entries in one transaction. */
  const record = async (batch: readonly { change: PlanChange; outcome: Outcome }[]): Promise<void> => {
    const newLinks: TargetLink[] = [];
    const at = now().toISOString();
    for (const { change, outcome } of batch) {
      if (outcome.status === "failed") continue;
      const link = linkOf(change, outcome.targetId, at);
      if (link !== undefined && links.get(link.kind, link.key) !== link.targetRecordId) {
        links.set(link);
        newLinks.push(link);
      }
    }
    // Links first: a crash after this line leaves a change done and linked but unrecorded, which the next
    // run finds done and records once.
    if (newLinks.length > 0) await store.saveTargetLinks(plan.target, newLinks);
    const items: PlanItemRecord[] = batch.map(({ change, outcome }) => ({
      key: change.key,
      status: outcome.status,
      at,
      ...(outcome.status === "failed"
        ? { failure: { ...outcome.failure } as unknown as JsonObject }
        : outcome.targetId !== undefined
          ? { targetRecordId: outcome.targetId }
          : {}),
    }));
    const byKey = new Map(batch.map((b) => [b.change.key, b]));
    await store.recordPlanItems(plan.id, items, (head, fresh) =>
      chainEvents(
        head,
        fresh.map((item) =>
          auditEvent(plan, input.approvedBy, byKey.get(item.key)!.change, byKey.get(item.key)!.outcome),
        ),
        at,
      ),
    );
    batch.forEach(({ change, outcome }, i) => {
      recorded.set(change.key, items[i]!);
      if (outcome.status === "failed") report.failed.push({ key: change.key, failure: outcome.failure });
      else if (outcome.status === "noop") report.observed++;
      else report.applied++;
    });
    finished += batch.length;
    input.onProgress?.(finished, plan.changes.length);
  };

  const breaker = (): string | null => {
    if (report.stoppedBecause !== null) return report.stoppedBecause;
    const auth = report.failed.find((f) => f.failure.class === "auth");
    if (auth !== undefined)
      report.stoppedBecause = `${plan.target} refused our credentials (${auth.failure.message}); fix them and apply again`;
    else if (report.failed.length > input.maxFailures)
      report.stoppedBecause = `${report.failed.length} changes failed (more than ${input.maxFailures}); stopped to let someone look`;
    return report.stoppedBecause;
  };

  // Phases in apply order; each runs only if the breaker has not tripped.
  const phases: { kinds: readonly PlanChange["kind"][]; run: (changes: PlanChange[]) => Promise<void> }[] = [
    { kinds: ["link-department", "create-department", "update-department"], run: (c) => applyOneByOne(c) },
    { kinds: ["link-user", "create-user", "update-user", "enable-user"], run: (c) => applyInBatches(c) },
    { kinds: ["create-role"], run: (c) => applyOneByOne(c) },
    { kinds: ["grant", "revoke"], run: (c) => applyRoleMembers(c) },
    { kinds: ["disable-user"], run: (c) => applyInBatches(c) },
    { kinds: ["disable-department"], run: (c) => applyOneByOne(c) },
  ];

  const attempt = async (change: PlanChange, target: TargetChange | Outcome): Promise<Outcome> =>
    "status" in target ? target : toOutcome(await connector.apply(target));

  /** Sequential: each department may be the parent of the next. */
  const applyOneByOne = async (changes: PlanChange[]): Promise<void> => {
    for (const change of changes) {
      if (breaker() !== null) return;
      const outcome = await attempt(change, toTargetChange(change, state, links));
      await record([{ change, outcome }]);
    }
  };

  /** Users in chunks, so the target can batch them and outcomes are recorded as they come. */
  const applyInBatches = async (changes: PlanChange[]): Promise<void> => {
    for (let i = 0; i < changes.length; i += CHUNK) {
      if (breaker() !== null) return;
      const chunk = changes.slice(i, i + CHUNK);
      const prepared = chunk.map((change) => toTargetChange(change, state, links));
      const toSend = prepared.filter((p): p is TargetChange => !("status" in p));
      const results = toSend.length > 0 ? await connector.applyAll(toSend) : [];
      let next = 0;
      await record(
        chunk.map((change, j) => {
          const p = prepared[j]!;
          return { change, outcome: "status" in p ? p : toOutcome(results[next++]!) };
        }),
      );
    }
  };

  /** One full row set per role: the role's rows as just read, with this plan's grants added and revokes removed. */
  const applyRoleMembers = async (changes: PlanChange[]): Promise<void> => {
    const byRole = new Map<string, Extract<PlanChange, { kind: "grant" | "revoke" }>[]>();
    for (const change of changes) {
      if (change.kind !== "grant" && change.kind !== "revoke") continue;
      const list = byRole.get(change.role);
      if (list) list.push(change);
      else byRole.set(change.role, [change]);
    }
    for (const [role, roleChanges] of byRole) {
      if (breaker() !== null) return;
      const roleId = links.get("role", role) ?? findRole(state, plan, role);
      if (roleId === undefined) {
        const failure: ChangeFailure = {
          class: "bad-data",
          code: "ROLE_MISSING",
          message: `${plan.target}: role ${role} does not exist (its creation failed)`,
        };
        await record(roleChanges.map((change) => ({ change, outcome: { status: "failed", failure } })));
        continue;
      }
      const rows = new Map<string, Set<string>>();
      for (const row of state.roles[roleId]?.rows ?? [])
        rows.set(row.scope.kind === "global" ? "" : row.scope.departmentId, new Set(row.memberIds));
      const outcomes = new Map<string, Outcome>();
      let effective = 0;
      for (const change of roleChanges) {
        const userId = resolve(change.user, "user", links);
        const scope = change.scope === null ? "" : resolve(change.scope, "department", links);
        if (userId === undefined || scope === undefined) {
          outcomes.set(change.key, {
            status: "failed",
            failure: {
              class: "bad-data",
              code: "DEPENDENCY_FAILED",
              message: `${plan.target}: ${userId === undefined ? `the user of ${change.name}` : `department ${change.scopeLabel}`} was not created, so ${change.targetRole} cannot be ${change.kind === "grant" ? "granted" : "revoked"}`,
            },
          });
          continue;
        }
        let members = rows.get(scope);
        if (members === undefined) rows.set(scope, (members = new Set()));
        const has = members.has(userId);
        if (change.kind === "grant" ? has : !has) {
          outcomes.set(change.key, { status: "noop", targetId: userId });
          continue;
        }
        if (change.kind === "grant") members.add(userId);
        else members.delete(userId);
        effective++;
        outcomes.set(change.key, { status: "applied", targetId: userId });
      }
      if (effective > 0) {
        const desired: RoleRow[] = [...rows]
          .filter(([, members]) => members.size > 0)
          .map(([scope, members]) => ({
            scope: scope === "" ? { kind: "global" } : { kind: "department", departmentId: scope },
            memberIds: [...members].sort(),
          }));
        const result = toOutcome(await connector.apply({ kind: "set-role-members", roleId, rows: desired }));
        if (result.status === "failed")
          for (const [key, outcome] of outcomes) if (outcome.status === "applied") outcomes.set(key, result);
      }
      await record(roleChanges.map((change) => ({ change, outcome: outcomes.get(change.key)! })));
    }
  };

  for (const phase of phases) {
    const changes = pending.filter((c) => phase.kinds.includes(c.kind));
    if (changes.length > 0 && breaker() === null) await phase.run(changes);
  }
  report.notAttempted = plan.changes.length - finished;

  const after = await readState(connector);
  return { ...report, mismatches: verify(plan, after, links, recorded) };
}

const CHUNK = 100;

async function readState(connector: TargetConnector): Promise<TargetState> {
  try {
    return await connector.readState();
  } catch (error) {
    throw new AppError("TARGET_UNAVAILABLE", `cannot read ${connector.id}: ${(error as Error).message}`, {
      cause: error,
      expose: true,
    });
  }
}

/** The link table in memory, kept in step with what is saved. */
class Links {
  private readonly map = new Map<string, string>();
  constructor(links: readonly TargetLink[]) {
    for (const link of links) this.set(link);
  }
  get(kind: TargetLink["kind"], key: string): string | undefined {
    return this.map.get(`${kind}\u0000${key}`);
  }
  set(link: TargetLink): void {
    this.map.set(`${link.kind}\u0000${link.key}`, link.targetRecordId);
  }
}

function resolve(ref: RecordRef, kind: "user" | "department", links: Links): string | undefined {
  return "id" in ref ? ref.id : links.get(kind, ref.pending);
}

function findRole(state: TargetState, plan: Plan, role: string): string | undefined {
  const created = plan.changes.find((c) => c.kind === "create-role" && c.role === role);
  const name = created?.kind === "create-role" ? created.targetRole : undefined;
  const grant = plan.changes.find((c) => (c.kind === "grant" || c.kind === "revoke") && c.role === role);
  const targetRole =
    name ?? (grant?.kind === "grant" || grant?.kind === "revoke" ? grant.targetRole : undefined);
  return Object.values(state.roles).find((r) => r.name === targetRole)?.id;
}

/** The link a successful change leaves, if any. */
function linkOf(change: PlanChange, targetId: string | undefined, at: string): TargetLink | undefined {
  const id = targetId ?? ("targetId" in change ? change.targetId : undefined);
  if (id === undefined) return undefined;
  switch (change.kind) {
    case "link-department":
    case "create-department":
    case "update-department":
      return { kind: "department", key: change.department, targetRecordId: id, linkedAt: at };
    case "link-user":
    case "create-user":
    case "update-user":
    case "enable-user":
      return { kind: "user", key: change.person, targetRecordId: id, linkedAt: at };
    case "create-role":
      return { kind: "role", key: change.role, targetRecordId: id, linkedAt: at };
    default:
      return undefined;
  }
}

function toOutcome(result: ChangeResult): Outcome {
  return result;
}

/**
 * The target call for a change, or its outcome when no call is needed: a link (nothing to write), or a
 * change the target already reflects (found done).
 */
function toTargetChange(change: PlanChange, state: TargetState, links: Links): TargetChange | Outcome {
  switch (change.kind) {
    case "link-department":
    case "link-user":
      return { status: "applied", targetId: change.targetId };
    case "create-department": {
      const existing = links.get("department", change.department);
      if (existing !== undefined && state.departments[existing]?.active)
        return { status: "noop", targetId: existing };
      const parentId = resolve(change.fields.parent, "department", links);
      if (parentId === undefined) return dependencyFailed(`the parent of ${change.path} was not created`);
      return {
        kind: "create-department",
        externalId: change.department,
        department: { parentId, name: change.fields.name, order: change.fields.order },
      };
    }
    case "update-department": {
      const parentId = resolve(change.fields.parent, "department", links);
      if (parentId === undefined) return dependencyFailed(`the new parent of ${change.path} was not created`);
      const current = state.departments[change.targetId];
      if (current?.name === change.fields.name && current.parentId === parentId)
        return { status: "noop", targetId: change.targetId };
      return {
        kind: "update-department",
        targetId: change.targetId,
        department: { parentId, name: change.fields.name, order: change.fields.order },
      };
    }
    case "create-user": {
      const existing = links.get("user", change.person) ?? findByExternalId(state, change.person)?.id;
      if (existing !== undefined && state.users[existing] !== undefined)
        return { status: "noop", targetId: existing };
      const user = userFields(change.fields, links);
      return user === undefined
        ? dependencyFailed(`no department of ${change.name} exists in the target`)
        : { kind: "create-user", externalId: change.person, user };
    }
    case "update-user": {
      const user = userFields(change.fields, links);
      if (user === undefined) return dependencyFailed(`no department of ${change.name} exists in the target`);
      const current = state.users[change.targetId];
      if (current !== undefined && matchesFields(current, change.fields, links))
        return { status: "noop", targetId: change.targetId };
      return { kind: "update-user", targetId: change.targetId, user };
    }
    case "enable-user":
      return state.users[change.targetId]?.active === true
        ? { status: "noop", targetId: change.targetId }
        : { kind: "enable-user", targetId: change.targetId };
    case "disable-user":
      return state.users[change.targetId]?.active === false
        ? { status: "noop", targetId: change.targetId }
        : { kind: "disable-user", targetId: change.targetId };
    case "disable-department":
      return state.departments[change.targetId]?.active === false
        ? { status: "noop", targetId: change.targetId }
        : { kind: "disable-department", targetId: change.targetId };
    case "create-role": {
      const existing =
        links.get("role", change.role) ??
        Object.values(state.roles).find((r) => r.name === change.targetRole)?.id;
      if (existing !== undefined && state.roles[existing] !== undefined)
        return { status: "noop", targetId: existing };
      return { kind: "create-role", name: change.targetRole, scoped: change.scoped };
    }
    case "grant":
    case "revoke":
      throw new TypeError("role members are applied per role");
  }
}

function dependencyFailed(message: string): Outcome {
  return { status: "failed", failure: { class: "bad-data", code: "DEPENDENCY_FAILED", message } };
}

const externalIndex = new WeakMap<TargetState, Map<string, TargetUser>>();

/** The user whose external id is `externalId` (indexed once per state read: plans create 100,000 users). */
function findByExternalId(state: TargetState, externalId: string): TargetUser | undefined {
  let index = externalIndex.get(state);
  if (index === undefined) {
    index = new Map();
    for (const user of Object.values(state.users))
      if (user.externalId !== "") index.set(user.externalId, user);
    externalIndex.set(state, index);
  }
  return index.get(externalId);
}

function userFields(fields: PlannedUser, links: Links): UserFields | undefined {
  const departmentIds = fields.departments
    .map((d) => resolve(d, "department", links))
    .filter((d): d is string => d !== undefined);
  if (departmentIds.length === 0 && fields.departments.length > 0) return undefined;
  return {
    name: fields.name,
    ...(fields.email ? { email: fields.email } : {}),
    ...(fields.mobile ? { mobile: fields.mobile } : {}),
    ...(fields.employeeNo ? { employeeNo: fields.employeeNo } : {}),
    departmentIds,
    ...(departmentIds[0] !== undefined ? { primaryDepartmentId: departmentIds[0] } : {}),
  };
}

function matchesFields(user: TargetUser, fields: PlannedUser, links: Links): boolean {
  const departments = fields.departments.map((d) => resolve(d, "department", links));
  const main = user.primaryDepartmentId || user.departmentIds[0];
  return (
    user.name === fields.name &&
    (fields.email === "" || user.email === fields.email.toLowerCase()) &&
    (fields.mobile === "" || user.mobile === fields.mobile) &&
    (fields.employeeNo === "" || user.employeeNo === fields.employeeNo) &&
    departments[0] === main &&
    departments.length === user.departmentIds.length &&
    departments.every((d) => d !== undefined && user.departmentIds.includes(d))
  );
}

/**
 * Records the plan changes whose precondition no longer holds: the record is neither as the plan saw it
 * nor as the plan wants it. Role members have no such precondition (rows are read-modify-written).
 */
function staleChanges(plan: Plan, state: TargetState, links: Links): string[] {
  const stale: string[] = [];
  for (const change of plan.changes) {
    switch (change.kind) {
      case "link-user":
      case "enable-user":
      case "disable-user":
        if (state.users[change.targetId] === undefined)
          stale.push(`${change.name}: user ${change.targetId} no longer exists`);
        break;
      case "update-user": {
        const user = state.users[change.targetId];
        if (user === undefined) stale.push(`${change.name}: user ${change.targetId} no longer exists`);
        else {
          const b = change.before;
          const asBefore =
            user.name === b.name &&
            user.email === b.email &&
            user.mobile === b.mobile &&
            user.employeeNo === b.employeeNo &&
            user.active === b.active;
          if (!asBefore && !matchesFields(user, change.fields, links))
            stale.push(`${change.name}: user ${change.targetId} was edited in the target`);
        }
        break;
      }
      case "link-department":
      case "disable-department":
        if (state.departments[change.targetId] === undefined)
          stale.push(`department ${change.path} (${change.targetId}) no longer exists`);
        break;
      case "update-department": {
        const d = state.departments[change.targetId];
        if (d === undefined) stale.push(`department ${change.path} (${change.targetId}) no longer exists`);
        else if (
          (d.name !== change.before.name || d.parentId !== change.before.parentId) &&
          d.name !== change.fields.name
        )
          stale.push(`department ${change.path} (${change.targetId}) was edited in the target`);
        break;
      }
      default:
        break;
    }
  }
  return stale;
}

/** After applying: the changes recorded as done that the target does not show. */
function verify(
  plan: Plan,
  state: TargetState,
  links: Links,
  recorded: ReadonlyMap<string, PlanItemRecord>,
): VerifyMismatch[] {
  const mismatches: VerifyMismatch[] = [];
  const members = new Map<string, Set<string>>(); // roleId → "scope\0user"
  for (const role of Object.values(state.roles)) {
    const set = new Set<string>();
    for (const row of role.rows)
      for (const m of row.memberIds)
        set.add(`${row.scope.kind === "global" ? "" : row.scope.departmentId}\u0000${m}`);
    members.set(role.id, set);
  }
  for (const change of plan.changes) {
    const item = recorded.get(change.key);
    if (item === undefined || item.status === "failed") continue;
    const miss = (message: string) => mismatches.push({ key: change.key, message });
    switch (change.kind) {
      case "create-user":
      case "enable-user": {
        const id = links.get("user", change.person);
        const user = id === undefined ? undefined : state.users[id];
        if (user === undefined || !user.active)
          miss(`${change.name} is not an active user in ${plan.target}`);
        break;
      }
      case "disable-user":
        if (state.users[change.targetId]?.active !== false)
          miss(`${change.name} is still active in ${plan.target}`);
        break;
      case "create-department": {
        const id = links.get("department", change.department);
        if (id === undefined || !state.departments[id]?.active)
          miss(`department ${change.path} is missing in ${plan.target}`);
        break;
      }
      case "disable-department":
        if (state.departments[change.targetId]?.active !== false)
          miss(`department ${change.path} is still active in ${plan.target}`);
        break;
      case "grant":
      case "revoke": {
        const roleId = links.get("role", change.role) ?? findRole(state, plan, change.role);
        const userId = resolve(change.user, "user", links);
        const scope = change.scope === null ? "" : resolve(change.scope, "department", links);
        const holds = roleId !== undefined && members.get(roleId)?.has(`${scope}\u0000${userId}`) === true;
        if (change.kind === "grant" && !holds)
          miss(
            `${change.name} does not hold ${change.targetRole}${change.scopeLabel ? ` [${change.scopeLabel}]` : ""}`,
          );
        if (change.kind === "revoke" && holds)
          miss(
            `${change.name} still holds ${change.targetRole}${change.scopeLabel ? ` [${change.scopeLabel}]` : ""}`,
          );
        break;
      }
      default:
        break;
    }
  }
  return mismatches;
}

const ACTIONS: Record<PlanChange["kind"], string> = {
  "link-department": "target.department.linked",
  "create-department": "target.department.created",
  "update-department": "target.department.updated",
  "disable-department": "target.department.disabled",
  "link-user": "target.user.linked",
  "create-user": "target.user.created",
  "update-user": "target.user.updated",
  "enable-user": "target.user.enabled",
  "disable-user": "target.user.disabled",
  "create-role": "target.role.created",
  grant: "role.granted",
  revoke: "role.revoked",
};

/** The audit entry of one change's outcome: who, what, where, why (lineage) and who approved. */
export function auditEvent(plan: Plan, approvedBy: string, change: PlanChange, outcome: Outcome): AuditEvent {
  const subject =
    "person" in change
      ? change.person
      : "department" in change
        ? change.department
        : change.kind === "create-role"
          ? change.role
          : null;
  const details: Record<string, unknown> = { plan: plan.id, key: change.key, approvedBy };
  switch (change.kind) {
    case "grant":
      Object.assign(details, {
        role: change.role,
        targetRole: change.targetRole,
        scope: change.scopeLabel,
        lineage: change.lineage,
        sensitive: change.sensitive,
      });
      break;
    case "revoke":
      Object.assign(details, {
        role: change.role,
        targetRole: change.targetRole,
        scope: change.scopeLabel,
        reason: change.reason,
      });
      break;
    case "disable-user":
    case "enable-user":
    case "disable-department":
      Object.assign(details, { reason: change.reason });
      break;
    case "update-user":
      Object.assign(details, { changed: change.changed });
      break;
    default:
      break;
  }
  if ("name" in change) details.name = change.name;
  if ("path" in change) details.path = change.path;
  if (outcome.status === "failed") {
    return {
      actor: "system",
      action: "sync.change.failed",
      subject,
      target: plan.target,
      details: { ...details, kind: change.kind, failure: { ...outcome.failure } } as JsonObject,
    };
  }
  if (outcome.targetId !== undefined) details.targetRecordId = outcome.targetId;
  if (outcome.status === "noop") details.observed = true;
  if (outcome.adopted) details.adopted = true;
  return {
    actor: "system",
    action: ACTIONS[change.kind],
    subject,
    target: plan.target,
    details: details as JsonObject,
  };
}
