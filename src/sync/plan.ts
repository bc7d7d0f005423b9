/**
 * A plan: the reviewable difference between what the directories and the policy require and what a target
 * holds, with the lineage of every change. Plain JSON data: stored immutably (content-hashed), shown to a
 * security admin, approved, then applied in order. Built by {@link planSync} (src/sync/diff.ts).
 */
import type { LineageStep } from "../policy/evaluate.js";

/**
 * A target record a change refers to: one that exists (`id`, the target's id) or one an earlier change of
 * the same plan creates (`pending`, that change's link key). The apply engine resolves pending references
 * through the link table as it goes.
 */
export type RecordRef = { readonly id: string } | { readonly pending: string };

/** The user fields a plan writes, with department references. */
export interface PlannedUser {
  /** Display name. */
  readonly name: string;
  /** Login email; "" leaves the target's value. */
  readonly email: string;
  /** Login mobile; "" leaves the target's value. */
  readonly mobile: string;
  /** Employee number; "" leaves the target's value. */
  readonly employeeNo: string;
  /** Departments, main first. */
  readonly departments: readonly RecordRef[];
}

/** The department fields a plan writes. */
export interface PlannedDepartment {
  /** Name. */
  readonly name: string;
  /** Parent department (the target's root for a top-level department). */
  readonly parent: RecordRef;
  /** Sort order among siblings. */
  readonly order: number;
}

/** The managed fields of a user as the target held them when the plan was made (for staleness checks). */
export interface UserBefore {
  /** Display name. */
  readonly name: string;
  /** Email. */
  readonly email: string;
  /** Mobile. */
  readonly mobile: string;
  /** Employee number. */
  readonly employeeNo: string;
  /** Department ids, main first. */
  readonly departmentIds: readonly string[];
  /** Active or disabled. */
  readonly active: boolean;
}

/** Fields every change has. */
interface ChangeBase {
  /** Unique within the plan and stable across plans for the same effect (`grant:p_1:cashier:`). */
  readonly key: string;
}

/** Who a user change is about. */
interface PersonPart {
  /** Our Person id. */
  readonly person: string;
  /** The person's display name, for reviewers. */
  readonly name: string;
}

/** One change of a plan. */
export type PlanChange =
  /** An existing target department is taken over (same name under the same parent); nothing is written. */
  | (ChangeBase & {
      readonly kind: "link-department";
      readonly department: string;
      readonly path: string;
      readonly targetId: string;
    })
  | (ChangeBase & {
      readonly kind: "create-department";
      /** Link key `sourceId:departmentId`. */
      readonly department: string;
      /** Names from the top (`财务部/华东区`). */
      readonly path: string;
      readonly fields: PlannedDepartment;
    })
  | (ChangeBase & {
      readonly kind: "update-department";
      readonly department: string;
      readonly path: string;
      readonly targetId: string;
      /** Name and parent as the target held them. */
      readonly before: { readonly name: string; readonly parentId: string | null };
      readonly fields: PlannedDepartment;
    })
  | (ChangeBase & {
      readonly kind: "disable-department";
      readonly department: string;
      readonly path: string;
      readonly targetId: string;
      /** Why (the department is gone from the org chart source). */
      readonly reason: string;
    })
  /** An existing target user is taken over as this person's account; nothing is written. */
  | (ChangeBase &
      PersonPart & {
        readonly kind: "link-user";
        readonly targetId: string;
        /** How it was found: `externalId`, `employeeNo`, `mobile`, `email` or a source subject. */
        readonly matchedBy: string;
      })
  | (ChangeBase & PersonPart & { readonly kind: "create-user"; readonly fields: PlannedUser })
  | (ChangeBase &
      PersonPart & {
        readonly kind: "update-user";
        readonly targetId: string;
        readonly before: UserBefore;
        readonly fields: PlannedUser;
        /** Names of the fields that differ. */
        readonly changed: readonly string[];
      })
  | (ChangeBase &
      PersonPart & {
        readonly kind: "enable-user";
        readonly targetId: string;
        /** True when the account was not ours: a disabled account that matches a new person is revived. */
        readonly revives: boolean;
        /** Why (active again, or a disabled account matched by mobile). */
        readonly reason: string;
      })
  | (ChangeBase &
      PersonPart & {
        readonly kind: "disable-user";
        readonly targetId: string;
        /** Why (left in a source, no rule grants anything any more). */
        readonly reason: string;
      })
  | (ChangeBase & {
      readonly kind: "create-role";
      /** Role key in the policy. */
      readonly role: string;
      readonly targetRole: string;
      readonly scoped: boolean;
    })
  | (ChangeBase &
      PersonPart & {
        readonly kind: "grant";
        /** The user: existing (`id`) or created by this plan (`pending` = Person id). */
        readonly user: RecordRef;
        readonly role: string;
        readonly targetRole: string;
        /** The department the grant applies to; null for a company-wide role. */
        readonly scope: RecordRef | null;
        /** The scope's label (`财务部/华东区`), "" when unscoped. */
        readonly scopeLabel: string;
        readonly sensitive: boolean;
        /** Rules and source facts that require it. */
        readonly lineage: readonly LineageStep[];
      })
  | (ChangeBase &
      PersonPart & {
        readonly kind: "revoke";
        readonly user: RecordRef;
        readonly role: string;
        readonly targetRole: string;
        readonly scope: RecordRef | null;
        readonly scopeLabel: string;
        /** Why no rule grants it any more (the rules for the role and why each did not match). */
        readonly reason: string;
      });

/** A change kind. */
export type PlanChangeKind = PlanChange["kind"];

/** The order changes are applied in (DESIGN: departments top-down, users, roles, disables bottom-up). */
export const APPLY_ORDER: readonly PlanChangeKind[] = [
  "link-department",
  "create-department",
  "update-department",
  "link-user",
  "create-user",
  "update-user",
  "enable-user",
  "create-role",
  "grant",
  "revoke",
  "disable-user",
  "disable-department",
];

/** The kinds that take something away: guarded by completeness and thresholds. */
export const REMOVAL_KINDS: readonly PlanChangeKind[] = ["revoke", "disable-user", "disable-department"];

/** A removal that was not planned because a source it depends on was not read completely. */
export interface BlockedChange {
  /** The change that would otherwise be planned. */
  readonly change: PlanChange;
  /** The incomplete sources it depends on. */
  readonly sources: readonly string[];
  /** A sentence for the reviewer. */
  readonly reason: string;
}

/** Codes of what makes a plan need a person's approval. */
export type RiskCode =
  | "THRESHOLD_DISABLES"
  | "THRESHOLD_REVOCATIONS"
  | "THRESHOLD_DEPARTMENT_DISABLES"
  | "SENSITIVE_GRANT"
  | "REENABLE_MATCH";

/** One reason the plan needs approval. */
export interface RiskReason {
  /** Stable code. */
  readonly code: RiskCode;
  /** A sentence with the figures. */
  readonly message: string;
}

/** A separation-of-duties finding for one person. */
export interface SodFinding {
  /** Person id. */
  readonly person: string;
  /** Display name. */
  readonly name: string;
  /** Constraint id. */
  readonly constraint: string;
  /** block: `withheld` was not granted; flag: all granted, reported. */
  readonly effect: "block" | "flag";
  /** The roles (keys) held together or in conflict. */
  readonly roles: readonly string[];
  /** The withheld role (block only). */
  readonly withheld?: string;
}

/** Something the planner could not do for one record, for the reviewer. */
export interface PlanProblem {
  /** Stable code (`AMBIGUOUS_TARGET_MATCH`, `SCOPE_OUTSIDE_ORG_CHART`, `NOT_IN_TARGET`, …). */
  readonly code: string;
  /** A sentence naming the record and what to do. */
  readonly message: string;
  /** The person concerned, when there is one. */
  readonly person?: string;
}

/** One source as the plan saw it. */
export interface PlanSource {
  /** Source id. */
  readonly id: string;
  /** full or incremental. */
  readonly mode: "full" | "incremental";
  /** Whether removals may depend on it (a complete full read). */
  readonly complete: boolean;
  /** Why it is not complete. */
  readonly reasons: readonly string[];
  /** People in the snapshot. */
  readonly people: number;
  /** When the read finished. */
  readonly readAt: string;
}

/** The target state a plan was computed from. */
export interface PlanBase {
  /** sha256 of the state as read. */
  readonly stateHash: string;
  /** Users, departments and roles in it. */
  readonly users: number;
  readonly departments: number;
  readonly roles: number;
}

/** A plan's content (everything the hash covers). */
export interface Plan {
  /** `plan_` + random. */
  readonly id: string;
  /** Target id. */
  readonly target: string;
  /** When computed (ISO 8601). */
  readonly createdAt: string;
  /** The policy file the plan follows. */
  readonly policy: string;
  /** The target state it was computed from. */
  readonly base: PlanBase;
  /** The sources read. */
  readonly sources: readonly PlanSource[];
  /** Changes in apply order. */
  readonly changes: readonly PlanChange[];
  /** Removals held back because a source was incomplete. */
  readonly blocked: readonly BlockedChange[];
  /** Why a person must approve it; empty = low risk. */
  readonly risk: readonly RiskReason[];
  /** Separation-of-duties findings. */
  readonly sod: readonly SodFinding[];
  /** Records the planner could not handle. */
  readonly problems: readonly PlanProblem[];
  /** People left unchanged while their identity is in review. */
  readonly heldPeople: readonly string[];
}

/** Counts of a plan's changes by kind, for listings. */
export function countChanges(plan: Pick<Plan, "changes">): Partial<Record<PlanChangeKind, number>> {
  const counts: Partial<Record<PlanChangeKind, number>> = {};
  for (const change of plan.changes) counts[change.kind] = (counts[change.kind] ?? 0) + 1;
  return counts;
}
