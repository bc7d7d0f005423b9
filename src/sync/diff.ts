/**
 * The planner (pure): desired state from the linked people and the policy, diffed against the target's
 * actual state, into a {@link Plan} whose every change carries its lineage; then the guardrails
 * (src/sync/guardrails.ts) hold back removals that depend on an incomplete read and decide whether a
 * person must approve. No I/O, no clock: the same input gives the same plan.
 *
 * What idbridge manages in a target, and nothing else:
 * - users it created or took over (the link table, or a user whose external id is one of our Person ids);
 * - departments of the org chart source, linked the same way (the source's root is the target's root);
 * - the members of the roles in the policy's catalogue — for managed users only. Members of those roles
 *   who are not linked to anyone are left alone and reported.
 */
import { createHash } from "node:crypto";
import { normaliseEmail, normaliseMobile, normaliseText } from "../identity/normalise.js";
import type { Person } from "../identity/person.js";
import { evaluatePolicy, type PolicyEvaluation } from "../policy/evaluate.js";
import {
  buildDirectoryFacts,
  buildPersonFacts,
  compareStrings,
  type AccountFacts,
  type DirectoryFacts,
  type DirectoryIndex,
} from "../policy/facts.js";
import type { Policy } from "../policy/schema.js";
import { incompleteReasons, isProvenComplete, type DirectorySnapshot } from "../sources/snapshot.js";
import type { TargetLink } from "../store/store.js";
import type { TargetCapabilities, TargetState, TargetUser } from "../targets/target.js";
import { applyGuardrails, type Totals } from "./guardrails.js";
import {
  APPLY_ORDER,
  type Plan,
  type PlanChange,
  type PlanProblem,
  type PlannedUser,
  type RecordRef,
  type SodFinding,
  type UserBefore,
} from "./plan.js";

/** Input of {@link planSync}. */
export interface PlanInput {
  /** The new plan's id. */
  readonly id: string;
  /** The plan's time. */
  readonly now: Date;
  /** The policy of this target. */
  readonly policy: Policy;
  /** The target: id, what it supports, and its state as just read. */
  readonly target: {
    readonly id: string;
    readonly capabilities: TargetCapabilities;
    readonly state: TargetState;
  };
  /** The latest snapshot of every source (one per source id). */
  readonly snapshots: readonly DirectorySnapshot[];
  /** The snapshots indexed (pass it when already built, to save the work). */
  readonly directories?: DirectoryFacts;
  /** Every person, as linking left them. */
  readonly people: readonly Person[];
  /** People whose identity is in review: left unchanged in the target. */
  readonly heldPeople: readonly string[];
  /**
   * An incremental run's scope: only these people are diffed; everyone else is taken to be as the last
   * plan left them (src/sync/merge.ts affectedPeople). Without it, everyone is.
   */
  readonly affected?: ReadonlySet<string>;
  /** The target's link table. */
  readonly links: readonly TargetLink[];
  /** The source whose department tree the target mirrors; without it, departments are not managed. */
  readonly orgChartSource?: string;
  /** Sources whose values make a user's name, email, mobile and number, in order of preference. */
  readonly profileSources?: readonly string[];
}

/** Computes the plan for one target. */
export function planSync(input: PlanInput): Plan {
  const { policy, target } = input;
  const state = target.state;
  const caps = target.capabilities;
  const directories = input.directories ?? buildDirectoryFacts(input.snapshots);
  const orgChart = input.orgChartSource;
  const orgDirectory = orgChart === undefined ? undefined : directories.get(orgChart);
  const problems: PlanProblem[] = [];
  const changes: PlanChange[] = [];

  const linkMaps = {
    user: new Map<string, string>(),
    department: new Map<string, string>(),
    role: new Map<string, string>(),
  };
  for (const link of input.links) linkMaps[link.kind].set(link.key, link.targetRecordId);

  // ------------------------------------------------------------------ departments
  const departmentRefs = new Map<string, RecordRef>();
  if (caps.departments && orgDirectory !== undefined) {
    planDepartments(orgDirectory, state, linkMaps.department, departmentRefs, changes, problems);
  }
  const departmentRef = (sourceId: string, id: string): RecordRef | undefined =>
    departmentRefs.get(`${sourceId}:${id}`);
  const rootRef = orgDirectory ? rootDepartmentRef(state) : undefined;

  // ------------------------------------------------------------------ roles
  const roleTargets = new Map<string, { id: string; scoped: boolean; name: string } | null>();
  // Target user id → role → scope keys, for the users this plan diffs (a scoped plan: only its people's).
  const memberScopes = new Map<string, Map<string, Set<string>>>();
  const relevant =
    input.affected === undefined ? undefined : affectedUserIds(input.affected, linkMaps.user, state);
  for (const [role, definition] of Object.entries(policy.roles)) {
    const linked = linkMaps.role.get(role);
    const existing =
      (linked !== undefined ? state.roles[linked] : undefined) ??
      Object.values(state.roles).find((r) => r.name === definition.targetRole);
    const scoped = definition.scope !== "none";
    if (definition.scope === "dimension" || (scoped && !caps.scopedRoles)) {
      problems.push({
        code: "UNSUPPORTED_SCOPE",
        message: `role ${role} (${definition.targetRole}) is scoped by ${definition.scope} in ${policy.file}, which ${target.id} cannot hold (it takes ${caps.scopedRoles ? "department scopes only" : "company-wide roles only"}); its members are left unchanged`,
      });
      continue;
    }
    if (existing === undefined) {
      roleTargets.set(role, null);
      changes.push({
        key: `role:create:${role}`,
        kind: "create-role",
        role,
        targetRole: definition.targetRole,
        scoped,
      });
      continue;
    }
    if (scoped !== existing.scoped) {
      problems.push({
        code: "ROLE_SCOPE_MISMATCH",
        message: `role ${role} (${definition.targetRole}) is ${scoped ? "scoped by department" : "company-wide"} in ${policy.file} but ${target.id} holds it ${existing.scoped ? "per department" : "company-wide"}; its members are left unchanged until the two agree`,
      });
      continue;
    }
    roleTargets.set(role, { id: existing.id, scoped, name: definition.targetRole });
    for (const row of existing.rows) {
      const scopeKey = row.scope.kind === "global" ? "" : row.scope.departmentId;
      for (const member of row.memberIds) {
        if (relevant !== undefined && !relevant.has(member)) continue;
        let roles = memberScopes.get(member);
        if (roles === undefined) memberScopes.set(member, (roles = new Map()));
        let scopes = roles.get(role);
        if (scopes === undefined) roles.set(role, (scopes = new Set()));
        scopes.add(scopeKey);
      }
    }
  }

  // ------------------------------------------------------------------ users
  const held = new Set(input.heldPeople);
  const users = Object.values(state.users);
  const linkedTargetIds = new Set(linkMaps.user.values());
  // Built on first use: a converged or scoped plan rarely needs them.
  let externalIndex: Map<string, TargetUser> | undefined;
  const byExternalId = (): ReadonlyMap<string, TargetUser> => {
    if (externalIndex === undefined) {
      externalIndex = new Map();
      for (const user of users) if (user.externalId !== "") externalIndex.set(user.externalId, user);
    }
    return externalIndex;
  };
  let matchUnlinked: ((user: PlannedUser) => Match) | undefined;
  const matcher = (user: PlannedUser): Match =>
    (matchUnlinked ??= unlinkedMatcher(users, linkedTargetIds))(user);
  const departmentLabels = new Map<string, string>(); // target dept id → label, for scope labels
  if (orgDirectory) {
    for (const [id, label] of orgDirectory.departmentLabels) {
      const ref = departmentRef(orgDirectory.sourceId, id);
      if (ref && "id" in ref) departmentLabels.set(ref.id, label);
    }
  }
  // Target user ids idbridge manages: every linked one (held and out-of-scope people's too), and those this
  // plan links.
  const managedUsers = new Set<string>();
  for (const id of linkMaps.user.values()) if (state.users[id] !== undefined) managedUsers.add(id);
  const sod: SodFinding[] = [];
  const profileOrder = [...new Set([...(orgChart ? [orgChart] : []), ...(input.profileSources ?? [])])];
  // Linking hands people over sorted by id; sort only what is not.
  const byId = (a: Person, b: Person) => compareStrings(a.id, b.id);
  const people = input.people.every((p, i, all) => i === 0 || byId(all[i - 1]!, p) < 0)
    ? input.people
    : [...input.people].sort(byId);
  const known = new Set<string>();
  const personById = new Map(people.map((p) => [p.id, p]));
  /**
   * Evaluations of the people with revokes, for the revokes' reasons. Only theirs: keeping 100,000 of them
   * until the end costs hundreds of MB and seconds of garbage collection.
   */
  const withRevokes = new Map<string, PolicyEvaluation>();

  /** Nothing grants the person anything any more: revoke their managed roles, disable their account. */
  const retire = (personId: string, name: string, user: TargetUser, reason: string): void => {
    managedUsers.add(user.id);
    planRevokes(
      personId,
      name,
      { id: user.id },
      user.id,
      new Map(),
      memberScopes,
      roleTargets,
      departmentLabels,
      changes,
    );
    if (caps.users && user.active)
      changes.push({
        key: `user:disable:${personId}`,
        kind: "disable-user",
        person: personId,
        name,
        targetId: user.id,
        reason,
      });
  };

  for (const person of people) {
    known.add(person.id);
    if (held.has(person.id) || (input.affected !== undefined && !input.affected.has(person.id))) continue;
    const facts = buildPersonFacts(person, directories);
    const evaluation = evaluatePolicy(policy, facts, { explain: false });
    const changesBefore = changes.length;
    const profile = profileAccount(facts.accounts, profileOrder);
    const name = displayName(profile, person.id);
    const wants = evaluation.grants.length > 0 || evaluation.withheld.length > 0;
    const enable = (user: TargetUser, revives: boolean, reason: string): void => {
      changes.push({
        key: `user:enable:${person.id}`,
        kind: "enable-user",
        person: person.id,
        name,
        targetId: user.id,
        revives,
        reason,
      });
    };

    for (const w of evaluation.withheld)
      sod.push({
        person: person.id,
        name,
        constraint: w.constraint,
        effect: "block",
        roles: [...w.conflictsWith, w.role],
        withheld: w.role,
      });
    for (const f of evaluation.flagged)
      sod.push({ person: person.id, name, constraint: f.constraint, effect: "flag", roles: f.roles });

    // Which target user is this person's?
    let user: TargetUser | undefined;
    const linkedId = linkMaps.user.get(person.id);
    if (linkedId !== undefined) user = state.users[linkedId];
    if (user === undefined) {
      const ours = byExternalId().get(person.id);
      const bySource =
        !caps.users && orgChart !== undefined
          ? sourceSubjectMatch(facts.accounts, orgChart, byExternalId())
          : undefined;
      const found = ours ?? bySource;
      if (found !== undefined && !linkedTargetIds.has(found.id)) {
        user = found;
        changes.push({
          key: `user:link:${person.id}`,
          kind: "link-user",
          person: person.id,
          name,
          targetId: found.id,
          matchedBy: ours ? "externalId" : `${orgChart} userid`,
        });
        linkedTargetIds.add(found.id);
      }
    }
    if (!wants) {
      if (user !== undefined) retire(person.id, name, user, leaveReason(facts.accounts, facts.missing));
      continue;
    }

    let userRef: RecordRef | undefined = user ? { id: user.id } : undefined;
    const desired = caps.users
      ? plannedUser(profile, facts.accounts, orgChart, departmentRef, rootRef, name)
      : undefined;
    if (user === undefined) {
      if (!caps.users) {
        problems.push({
          code: "NOT_IN_TARGET",
          person: person.id,
          message: `${name} (${person.id}) has no account in ${target.id} yet (it takes staff from ${orgChart ?? "its own directory"}); their roles are granted once it appears`,
        });
        continue;
      }
      const match = matcher(desired!);
      if (match.kind === "ambiguous") {
        problems.push({
          code: "AMBIGUOUS_TARGET_MATCH",
          person: person.id,
          message: `${name} (${person.id}) matches several ${target.id} users (${match.ids.join(", ")}) by ${match.by}; link one by hand or fix the duplicates in ${target.id}`,
        });
        continue;
      }
      if (match.kind === "one") {
        user = match.user;
        linkedTargetIds.add(user.id);
        changes.push({
          key: `user:link:${person.id}`,
          kind: "link-user",
          person: person.id,
          name,
          targetId: user.id,
          matchedBy: match.by,
        });
        userRef = { id: user.id };
        if (!user.active)
          enable(
            user,
            true,
            `a disabled ${target.id} account matches by ${match.by}; enabling it revives that account`,
          );
      } else {
        changes.push({
          key: `user:create:${person.id}`,
          kind: "create-user",
          person: person.id,
          name,
          fields: desired!,
        });
        userRef = { pending: person.id };
      }
    } else if (caps.users) {
      if (!user.active) enable(user, false, "active again in the directories");
      const changed = profile ? changedFields(user, desired!) : [];
      if (changed.length > 0)
        changes.push({
          key: `user:update:${person.id}`,
          kind: "update-user",
          person: person.id,
          name,
          targetId: user.id,
          before: userBefore(user),
          fields: desired!,
          changed,
        });
    }
    if (user !== undefined) managedUsers.add(user.id);

    // Roles: desired (role → scope key → scope) against what the user holds.
    const want = new Map<
      string,
      Map<string, { ref: RecordRef | null; label: string; grant: (typeof evaluation.grants)[number] }>
    >();
    for (const grant of evaluation.grants) {
      const roleTarget = roleTargets.get(grant.role);
      if (roleTarget === undefined) continue; // scope mismatch, reported above
      const scopes = new Map<string, { ref: RecordRef | null; label: string; grant: typeof grant }>();
      if (policy.roles[grant.role]!.scope === "none") {
        scopes.set("", { ref: null, label: "", grant });
      } else {
        for (const value of grant.scope.filter((s) => !grant.scopeDepartments.some((d) => d.label === s)))
          problems.push({
            code: "UNSUPPORTED_SCOPE",
            person: person.id,
            message: `${name}: ${grant.targetRole} scoped to the value "${value}" cannot be written to ${target.id} (it holds department scopes only)`,
          });
        for (const d of grant.scopeDepartments) {
          const ref = d.sourceId === orgChart ? departmentRef(d.sourceId, d.id) : undefined;
          if (ref === undefined) {
            problems.push({
              code: "SCOPE_OUTSIDE_ORG_CHART",
              person: person.id,
              message: `${name}: ${grant.targetRole} [${d.label}] names a department of ${d.sourceId}, which ${target.id} does not mirror (org chart source: ${orgChart ?? "none"}); that scope is not granted`,
            });
            continue;
          }
          scopes.set(scopeKeyOf(ref), { ref, label: d.label, grant });
        }
      }
      want.set(grant.role, scopes);
    }
    const currentRoles = user ? memberScopes.get(user.id) : undefined;
    for (const [role, scopes] of want) {
      const have = currentRoles?.get(role);
      for (const [scopeKey, scope] of scopes) {
        if (have?.has(scopeKey)) continue;
        changes.push({
          key: `grant:${person.id}:${role}:${scopeKey}`,
          kind: "grant",
          person: person.id,
          name,
          user: userRef!,
          role,
          targetRole: scope.grant.targetRole,
          scope: scope.ref,
          scopeLabel: scope.label,
          sensitive: scope.grant.sensitive,
          lineage: scope.grant.lineage,
        });
      }
    }
    if (user !== undefined)
      planRevokes(
        person.id,
        name,
        userRef!,
        user.id,
        want,
        memberScopes,
        roleTargets,
        departmentLabels,
        changes,
      );
    for (let i = changesBefore; i < changes.length; i++)
      if (changes[i]!.kind === "revoke") {
        withRevokes.set(person.id, evaluation);
        break;
      }
  }

  // Linked users whose person no longer exists: nothing grants them anything.
  for (const [personId, targetId] of linkMaps.user) {
    if (known.has(personId) || held.has(personId)) continue;
    const user = state.users[targetId];
    if (user === undefined) continue;
    retire(personId, user.name || personId, user, "the person is no longer known to idbridge");
  }

  // Members of managed roles idbridge does not manage: left alone, reported.
  for (const [role, roleTarget] of roleTargets) {
    if (roleTarget === null) continue;
    const others = new Set<string>();
    for (const row of state.roles[roleTarget.id]!.rows)
      for (const userId of row.memberIds)
        if (!managedUsers.has(userId) && !linkedTargetIds.has(userId)) others.add(userId);
    const unmanaged = others.size;
    if (unmanaged > 0)
      problems.push({
        code: "UNMANAGED_HOLDERS",
        message: `${unmanaged} ${target.id} user(s) hold ${policy.roles[role]!.targetRole} but are not linked to anyone in the directories; idbridge leaves them — review them in ${target.id}`,
      });
  }

  const ordered = orderChanges(changes);
  const guarded = applyGuardrails({
    changes: ordered,
    policy,
    orgChartSource: orgChart,
    completeSources: new Set(input.snapshots.filter(isProvenComplete).map((s) => s.sourceId)),
    accountSources: (personId) => personById.get(personId)?.accounts.map((a) => a.sourceId) ?? [],
    totals: currentTotals(state, managedUsers, linkMaps.department, roleTargets),
  });
  // Reasons for the revokes that stay (re-evaluating with explanations costs; only for these people).
  const withReasons = guarded.changes.map((change) =>
    change.kind === "revoke"
      ? {
          ...change,
          reason: revokeReason(
            policy,
            personById.get(change.person),
            withRevokes.get(change.person),
            change.role,
            directories,
          ),
        }
      : change,
  );

  return {
    id: input.id,
    target: target.id,
    createdAt: input.now.toISOString(),
    policy: policy.file,
    base: {
      stateHash: hashState(state),
      users: users.length,
      departments: Object.keys(state.departments).length,
      roles: Object.keys(state.roles).length,
    },
    sources: input.snapshots
      .map((s) => ({
        id: s.sourceId,
        mode: s.mode,
        complete: isProvenComplete(s),
        reasons: incompleteReasons(s).map((r) => r.message),
        people: s.people.length,
        readAt: s.finishedAt,
      }))
      .sort((a, b) => compareStrings(a.id, b.id)),
    changes: withReasons,
    blocked: guarded.blocked,
    risk: guarded.risk,
    sod,
    problems,
    heldPeople: [...held].sort(compareStrings),
  };
}

// ---------------------------------------------------------------------------------------------- parts

/** The key a scope has in role rows: "" for company-wide, else the department's id or pending key. */
export function scopeKeyOf(ref: RecordRef | null): string {
  if (ref === null) return "";
  return "id" in ref ? ref.id : `pending:${ref.pending}`;
}

function rootDepartmentRef(state: TargetState): RecordRef | undefined {
  const root = Object.values(state.departments).find((d) => d.parentId === null);
  return root ? { id: root.id } : undefined;
}

/** Source departments top-down: link or create each below the target's root; disable those gone. */
function planDepartments(
  directory: DirectoryIndex,
  state: TargetState,
  links: ReadonlyMap<string, string>,
  refs: Map<string, RecordRef>,
  changes: PlanChange[],
  problems: PlanProblem[],
): void {
  const targetRoot = Object.values(state.departments).find((d) => d.parentId === null);
  const source = directory.sourceId;
  if (targetRoot === undefined) {
    problems.push({
      code: "NO_TARGET_ROOT",
      message: `the target has no root department; departments of ${source} are not mirrored`,
    });
    return;
  }
  const takenTargets = new Set(links.values());
  const children = new Map<string | null, string[]>();
  for (const d of directory.departments.values()) {
    const parent = d.parentId !== null && directory.departments.has(d.parentId) ? d.parentId : null;
    const list = children.get(parent);
    if (list) list.push(d.id);
    else children.set(parent, [d.id]);
  }
  const activeChildren = new Map<string, Map<string, string>>(); // target parent id → name → id
  for (const d of Object.values(state.departments)) {
    if (!d.active || d.parentId === null) continue;
    let names = activeChildren.get(d.parentId);
    if (names === undefined) activeChildren.set(d.parentId, (names = new Map()));
    if (!names.has(d.name)) names.set(d.name, d.id);
  }

  const queue: { id: string; parent: RecordRef | null }[] = (children.get(null) ?? [])
    .sort(compareStrings)
    .map((id) => ({ id, parent: null }));
  while (queue.length > 0) {
    const { id, parent } = queue.shift()!;
    const department = directory.departments.get(id)!;
    const key = `${source}:${id}`;
    const path = directory.departmentLabels.get(id) ?? department.name;
    let ref: RecordRef;
    if (parent === null) {
      // A root of the source is the target's root (the company); it is linked, never written.
      ref = { id: targetRoot.id };
      if (links.get(key) !== targetRoot.id)
        changes.push({
          key: `department:link:${key}`,
          kind: "link-department",
          department: key,
          path,
          targetId: targetRoot.id,
        });
    } else {
      const linked = links.get(key);
      const existing = linked !== undefined ? state.departments[linked] : undefined;
      const fields = { name: department.name, parent, order: department.order };
      if (existing !== undefined && existing.active) {
        ref = { id: existing.id };
        const parentMoved = !("id" in parent) || parent.id !== existing.parentId;
        if (existing.name !== department.name || parentMoved)
          changes.push({
            key: `department:update:${key}`,
            kind: "update-department",
            department: key,
            path,
            targetId: existing.id,
            before: { name: existing.name, parentId: existing.parentId },
            fields,
          });
      } else {
        const sibling = "id" in parent ? activeChildren.get(parent.id)?.get(department.name) : undefined;
        if (sibling !== undefined && !takenTargets.has(sibling)) {
          takenTargets.add(sibling);
          ref = { id: sibling };
          changes.push({
            key: `department:link:${key}`,
            kind: "link-department",
            department: key,
            path,
            targetId: sibling,
          });
        } else {
          ref = { pending: key };
          changes.push({
            key: `department:create:${key}`,
            kind: "create-department",
            department: key,
            path,
            fields,
          });
        }
      }
    }
    refs.set(key, ref);
    for (const child of (children.get(id) ?? []).sort(compareStrings)) queue.push({ id: child, parent: ref });
  }

  // Linked departments of this source that are gone: disable, deepest first.
  const depth = (id: string): number => {
    let n = 0;
    for (
      let d = state.departments[id];
      d !== undefined && d.parentId !== null && n < 1000;
      d = state.departments[d.parentId]
    )
      n++;
    return n;
  };
  const gone: { key: string; targetId: string; depth: number }[] = [];
  for (const [key, targetId] of links) {
    if (!key.startsWith(`${source}:`) || refs.has(key)) continue;
    const existing = state.departments[targetId];
    if (existing === undefined || !existing.active || existing.parentId === null) continue;
    gone.push({ key, targetId, depth: depth(targetId) });
  }
  gone.sort((a, b) => b.depth - a.depth || compareStrings(a.key, b.key));
  for (const g of gone)
    changes.push({
      key: `department:disable:${g.key}`,
      kind: "disable-department",
      department: g.key,
      path: state.departments[g.targetId]!.name,
      targetId: g.targetId,
      reason: `gone from ${source}`,
    });
}

type Match =
  | { kind: "none" }
  | { kind: "one"; user: TargetUser; by: string }
  | { kind: "ambiguous"; ids: string[]; by: string };

/**
 * Finds an unlinked target user for a person about to be created, by employee number, then mobile, then
 * email — the keys a finance platform itself matches on (Hesi revives a disabled user with the same mobile).
 */
function unlinkedMatcher(
  users: readonly TargetUser[],
  linked: ReadonlySet<string>,
): (user: PlannedUser) => Match {
  const keys = ["employeeNo", "mobile", "email"] as const;
  const indexes = keys.map(() => new Map<string, TargetUser[]>());
  for (const user of users) {
    if (linked.has(user.id)) continue;
    keys.forEach((k, i) => {
      const value = normaliseKey(k, user[k]);
      if (value === "") return;
      const list = indexes[i]!.get(value);
      if (list) list.push(user);
      else indexes[i]!.set(value, [user]);
    });
  }
  return (wanted) => {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const value = normaliseKey(k, wanted[k]);
      if (value === "") continue;
      const found = (indexes[i]!.get(value) ?? []).filter((u) => !linked.has(u.id));
      if (found.length === 1) return { kind: "one", user: found[0]!, by: k };
      if (found.length > 1)
        return { kind: "ambiguous", ids: found.map((u) => u.id).sort(compareStrings), by: k };
    }
    return { kind: "none" };
  };
}

/** The matching key of a field, normalised as identity linking does ("" when the value gives no key). */
function normaliseKey(kind: "employeeNo" | "mobile" | "email", value: string): string {
  const normalise = kind === "mobile" ? normaliseMobile : kind === "email" ? normaliseEmail : normaliseText;
  return normalise(value) ?? "";
}

function sourceSubjectMatch(
  accounts: readonly AccountFacts[],
  sourceId: string,
  byExternalId: ReadonlyMap<string, TargetUser>,
): TargetUser | undefined {
  const account = accounts.find((a) => a.sourceId === sourceId);
  return account ? byExternalId.get(account.person.subject) : undefined;
}

function profileAccount(
  accounts: readonly AccountFacts[],
  order: readonly string[],
): AccountFacts | undefined {
  for (const sourceId of order) {
    const found = accounts.find((a) => a.sourceId === sourceId);
    if (found) return found;
  }
  return accounts[0];
}

function displayName(profile: AccountFacts | undefined, fallback: string): string {
  const p = profile?.person;
  return p?.name ?? p?.username ?? fallback;
}

function plannedUser(
  profile: AccountFacts | undefined,
  accounts: readonly AccountFacts[],
  orgChart: string | undefined,
  departmentRef: (sourceId: string, id: string) => RecordRef | undefined,
  rootRef: RecordRef | undefined,
  name: string,
): PlannedUser {
  const p = profile?.person;
  const departments: RecordRef[] = [];
  const org = orgChart === undefined ? undefined : accounts.find((a) => a.sourceId === orgChart);
  if (org !== undefined) {
    const memberships = [...org.person.departments].sort((a, b) => Number(b.main) - Number(a.main));
    for (const m of memberships) {
      const ref = departmentRef(org.sourceId, m.departmentId);
      if (ref !== undefined && !departments.some((d) => scopeKeyOf(d) === scopeKeyOf(ref)))
        departments.push(ref);
    }
  }
  if (departments.length === 0 && rootRef !== undefined) departments.push(rootRef);
  return {
    name,
    email: p?.email ?? "",
    mobile: p?.mobile ?? "",
    employeeNo: p?.employeeNo ?? "",
    departments,
  };
}

/** Managed fields that differ; empty desired values leave the target's value (a source may not tell). */
function changedFields(user: TargetUser, desired: PlannedUser): string[] {
  const changed: string[] = [];
  if (desired.name !== "" && desired.name !== user.name) changed.push("name");
  if (desired.email !== "" && desired.email.toLowerCase() !== user.email) changed.push("email");
  if (desired.mobile !== "" && normaliseKey("mobile", desired.mobile) !== normaliseKey("mobile", user.mobile))
    changed.push("mobile");
  if (desired.employeeNo !== "" && desired.employeeNo !== user.employeeNo) changed.push("employeeNo");
  const wanted = desired.departments.map(scopeKeyOf);
  const have = orderedDepartments(user);
  if (
    wanted.length > 0 &&
    (wanted.length !== have.length || wanted.some((d, i) => d !== have[i] && !(i > 0 && have.includes(d))))
  )
    changed.push("departments");
  return changed;
}

/** A user's department ids, main first. */
function orderedDepartments(user: TargetUser): string[] {
  const main = user.primaryDepartmentId || user.departmentIds[0] || "";
  return main === "" ? [...user.departmentIds] : [main, ...user.departmentIds.filter((d) => d !== main)];
}

function userBefore(user: TargetUser): UserBefore {
  return {
    name: user.name,
    email: user.email,
    mobile: user.mobile,
    employeeNo: user.employeeNo,
    departmentIds: orderedDepartments(user),
    active: user.active,
  };
}

/** Revokes every managed role scope the user holds that `want` does not list. */
function planRevokes(
  personId: string,
  name: string,
  userRef: RecordRef,
  targetUserId: string,
  want: ReadonlyMap<string, ReadonlyMap<string, unknown>>,
  memberScopes: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>,
  roleTargets: ReadonlyMap<string, { id: string; scoped: boolean; name: string } | null>,
  departmentLabels: ReadonlyMap<string, string>,
  changes: PlanChange[],
): void {
  const have = memberScopes.get(targetUserId);
  if (have === undefined) return;
  // In catalogue order (roleTargets' order), so plans read the same every time.
  for (const [role, roleTarget] of roleTargets) {
    const scopes = have.get(role);
    if (scopes === undefined || roleTarget === null) continue;
    const wanted = want.get(role);
    for (const scopeKey of [...scopes].sort(compareStrings)) {
      if (wanted?.has(scopeKey)) continue;
      changes.push({
        key: `revoke:${personId}:${role}:${scopeKey}`,
        kind: "revoke",
        person: personId,
        name,
        user: userRef,
        role,
        targetRole: roleTarget.name,
        scope: scopeKey === "" ? null : { id: scopeKey },
        scopeLabel: scopeKey === "" ? "" : (departmentLabels.get(scopeKey) ?? scopeKey),
        reason: "",
      });
    }
  }
}

function leaveReason(
  accounts: readonly AccountFacts[],
  missing: readonly { sourceId: string; subject: string }[],
): string {
  const parts = [
    ...accounts.map((a) => `${a.person.status} in ${a.sourceId}`),
    ...missing.map((m) => `gone from ${m.sourceId}`),
  ];
  return `no rule grants any role any more (${parts.length > 0 ? parts.join(", ") : "no linked accounts"})`;
}

/** Why the person no longer holds `role`: each rule for it and why it did not match. */
function revokeReason(
  policy: Policy,
  person: Person | undefined,
  evaluation: PolicyEvaluation | undefined,
  role: string,
  directories: DirectoryFacts,
): string {
  const definition = policy.roles[role];
  const head = `no rule grants ${definition?.targetRole ?? role} any more`;
  if (person === undefined) return `${head} (the person is no longer known)`;
  // Without an evaluation the person has no grants at all (retired).
  const granted = evaluation?.grants.find((g) => g.role === role);
  if (granted !== undefined)
    return `${head} for this scope (still granted for ${granted.scope.join(", ") || "other scopes"})`;
  const withheld = evaluation?.withheld.find((g) => g.role === role);
  if (withheld !== undefined)
    return `${head}: withheld by ${withheld.constraint} (conflicts with ${withheld.conflictsWith.join(", ")})`;
  const explained = evaluatePolicy(policy, buildPersonFacts(person, directories), { explain: true });
  const reasons = explained.rules
    .filter((r) => r.role === role && !r.matched)
    .map((r) => `rule ${r.rule}: ${r.reasons.join("; ")}`);
  return reasons.length > 0
    ? `${head} (${reasons.join("; ")})`
    : `${head} (no rule in ${policy.file} grants it)`;
}

/** What the thresholds' percentages are of: what idbridge manages in the target now. */
function currentTotals(
  state: TargetState,
  managedUsers: ReadonlySet<string>,
  departmentLinks: ReadonlyMap<string, string>,
  roleTargets: ReadonlyMap<string, { id: string } | null>,
): Totals {
  let activeUsers = 0;
  let grants = 0;
  for (const id of managedUsers) if (state.users[id]?.active) activeUsers++;
  for (const roleTarget of roleTargets.values()) {
    if (roleTarget === null) continue;
    for (const row of state.roles[roleTarget.id]!.rows)
      for (const userId of row.memberIds) if (managedUsers.has(userId)) grants++;
  }
  let activeDepartments = 0;
  for (const id of new Set(departmentLinks.values())) if (state.departments[id]?.active) activeDepartments++;
  return { activeUsers, grants, activeDepartments };
}

/** The target users of a scoped plan's people: linked, or carrying their Person id as external id. */
function affectedUserIds(
  affected: ReadonlySet<string>,
  userLinks: ReadonlyMap<string, string>,
  state: TargetState,
): Set<string> {
  const ids = new Set<string>();
  for (const personId of affected) {
    const linked = userLinks.get(personId);
    if (linked !== undefined) ids.add(linked);
  }
  for (const user of Object.values(state.users)) if (affected.has(user.externalId)) ids.add(user.id);
  return ids;
}

/** Stable order: by kind in {@link APPLY_ORDER}; within a kind, as planned (departments are top-down). */
function orderChanges(changes: readonly PlanChange[]): PlanChange[] {
  const rank = new Map(APPLY_ORDER.map((kind, i) => [kind, i]));
  return changes
    .map((change, i) => ({ change, i }))
    .sort((a, b) => rank.get(a.change.kind)! - rank.get(b.change.kind)! || a.i - b.i)
    .map((x) => x.change);
}

/** sha256 over the state in id order, so the same state always hashes the same. */
export function hashState(state: TargetState): string {
  const hash = createHash("sha256");
  for (const part of [state.users, state.departments, state.roles] as const) {
    for (const id of Object.keys(part).sort(compareStrings))
      hash.update(JSON.stringify(part[id])).update("\n");
    hash.update("\u0000");
  }
  return hash.digest("hex");
}
