/**
 * The one interface every sync target implements (reference finance-targets.md §6): read the actual state,
 * apply changes with a classified per-item result, state capabilities. Vendor-free: a target's folder
 * translates these into its API. Actual-state records are plain data keyed by target ids; the planner
 * diffs desired against them and keeps the link (source subject or Person id → target id, §6.2).
 */

/** How a failed change may be treated: repeat later, fix the data, fix credentials, or resolve a clash. */
export type FailureClass = "retryable" | "bad-data" | "auth" | "conflict";

/** A user as the target holds it. */
export interface TargetUser {
  /** The target's id. */
  readonly id: string;
  /** Our id written into the target (Hesi `userid`, SCIM `externalId`); "" when the target has none. */
  readonly externalId: string;
  /** Display name. */
  readonly name: string;
  /** Login email, lower-cased; "" when none. */
  readonly email: string;
  /** Login mobile; "" when none. */
  readonly mobile: string;
  /** Employee number (工号); "" when none. */
  readonly employeeNo: string;
  /** Target ids of the user's departments. */
  readonly departmentIds: readonly string[];
  /** Target id of the main department; "" when none. */
  readonly primaryDepartmentId: string;
  /** false = disabled (deprovisioned but kept). */
  readonly active: boolean;
}

/** A department as the target holds it. */
export interface TargetDepartment {
  /** The target's id. */
  readonly id: string;
  /** Parent's target id; null for the root. */
  readonly parentId: string | null;
  /** Name (unique among active siblings in Hesi). */
  readonly name: string;
  /** Department code; "" when none. */
  readonly code: string;
  /** Sort order among siblings. */
  readonly order: number;
  /** false = disabled. */
  readonly active: boolean;
}

/** What a role row applies to: the whole organisation, or one department. */
export type RoleScope =
  { readonly kind: "global" } | { readonly kind: "department"; readonly departmentId: string };

/** One row of a role: a scope and the users who hold the role in it. */
export interface RoleRow {
  /** Where the grant applies. */
  readonly scope: RoleScope;
  /** Target ids of the members. */
  readonly memberIds: readonly string[];
}

/** A role definition with its current members. */
export interface TargetRole {
  /** The target's role id. */
  readonly id: string;
  /** Role name (unique in Hesi). */
  readonly name: string;
  /** Whether its rows are per department (true) or one global row (false). */
  readonly scoped: boolean;
  /** Current rows; a scope missing here has no members. */
  readonly rows: readonly RoleRow[];
}

/** Everything the target holds that a sync manages, keyed by target id. */
export interface TargetState {
  /** Users, active and disabled. */
  readonly users: Readonly<Record<string, TargetUser>>;
  /** Departments, active and disabled. */
  readonly departments: Readonly<Record<string, TargetDepartment>>;
  /** Roles with their rows. */
  readonly roles: Readonly<Record<string, TargetRole>>;
}

/** The fields of a user a sync writes. */
export interface UserFields {
  /** Display name. */
  readonly name: string;
  /** Login email; omitted or "" for none. */
  readonly email?: string;
  /** Login mobile; omitted or "" for none. */
  readonly mobile?: string;
  /** Employee number (工号). */
  readonly employeeNo?: string;
  /** Target ids of the departments; at least one for Hesi. */
  readonly departmentIds: readonly string[];
  /** Target id of the main department; the first of `departmentIds` when omitted. */
  readonly primaryDepartmentId?: string;
}

/** The fields of a department a sync writes. */
export interface DepartmentFields {
  /** Parent's target id; null for directly under the root. */
  readonly parentId: string | null;
  /** Name. */
  readonly name: string;
  /** Department code. */
  readonly code?: string;
  /** Sort order. */
  readonly order?: number;
}

/** One change to apply. `externalId` is our stable key (Person id or source subject) for idempotency. */
export type TargetChange =
  | { readonly kind: "create-user"; readonly externalId: string; readonly user: UserFields }
  | { readonly kind: "update-user"; readonly targetId: string; readonly user: UserFields }
  | { readonly kind: "disable-user"; readonly targetId: string }
  | { readonly kind: "enable-user"; readonly targetId: string }
  | { readonly kind: "create-department"; readonly externalId: string; readonly department: DepartmentFields }
  | { readonly kind: "update-department"; readonly targetId: string; readonly department: DepartmentFields }
  | { readonly kind: "disable-department"; readonly targetId: string }
  /** A role definition the policy catalogue names; an existing role of that name is adopted. */
  | { readonly kind: "create-role"; readonly name: string; readonly scoped: boolean }
  /** The complete desired rows of one role: scopes absent here lose their members. */
  | { readonly kind: "set-role-members"; readonly roleId: string; readonly rows: readonly RoleRow[] };

/** Why a change failed, for the per-item report and the audit. */
export interface ChangeFailure {
  /** What the caller may do about it. */
  readonly class: FailureClass;
  /** A stable code (`DISABLED_MATCH`, `PENDING_APPROVALS`, `DEPARTMENT_NOT_EMPTY`, `HTTP_412`, …). */
  readonly code: string;
  /** A readable reason, without secrets. */
  readonly message: string;
  /** The HTTP status, when the target answered. */
  readonly http?: number;
  /** A target id the failure is about (for DISABLED_MATCH: the disabled user a create would revive). */
  readonly targetId?: string;
}

/** The result of one change. */
export type ChangeResult =
  /** Done; `targetId` is the created or adopted record (persist it in the link table). */
  | { readonly status: "applied"; readonly targetId?: string; readonly adopted?: boolean }
  /** The target already matched; nothing was written. */
  | { readonly status: "noop"; readonly targetId?: string }
  | { readonly status: "failed"; readonly failure: ChangeFailure };

/** What a target can do; the planner plans only what is supported. */
export interface TargetCapabilities {
  /** Users can be created, updated, disabled and enabled. */
  readonly users: boolean;
  /** Departments can be created, updated and disabled. */
  readonly departments: boolean;
  /** Roles can have per-department rows. */
  readonly scopedRoles: boolean;
  /** Disabled users can be enabled again. */
  readonly reenable: boolean;
}

/** A connected target. */
export interface TargetConnector {
  /** The target id from the config (`hesi-prod`). */
  readonly id: string;
  /** What this target supports. */
  capabilities(): TargetCapabilities;
  /** Reads the whole actual state; throws a {@link TargetReadError} when it cannot read all of it. */
  readState(signal?: AbortSignal): Promise<TargetState>;
  /** Applies one change; never throws for an item's failure. */
  apply(change: TargetChange): Promise<ChangeResult>;
  /** Applies changes in the given order; one result per change, same order. */
  applyAll(changes: readonly TargetChange[]): Promise<ChangeResult[]>;
}

/** A read of the target that could not complete; a plan must not be computed from it. */
export class TargetReadError extends Error {
  override readonly name = "TargetReadError";
  constructor(
    /** Why, as for a change. */
    readonly failure: ChangeFailure,
  ) {
    super(failure.message);
  }
}

/** Pages of a finance platform a launch may open: its home page, the approver's to-do list, one bill. */
export const LAUNCH_PAGES = ["home", "approve", "form"] as const;
export type LaunchPage = (typeof LAUNCH_PAGES)[number];

/** What to open for whom. */
export interface LaunchLinkRequest {
  /** The person's record id in the target (from the sync's link table). */
  readonly recordId: string;
  readonly page: LaunchPage;
  /** The bill, for `form`. */
  readonly flowId?: string;
  /** true: the mobile/app page (the person came from an in-app browser); false: the web page. */
  readonly applet: boolean;
}

/**
 * Sign-in into a platform that is no OpenID Connect client (合思): a single-use, short-lived link the
 * platform issues for one of its users. The URL is a bearer credential: redirect to it, never log it.
 */
export interface LaunchLinks {
  /** Lifetime of each link (seconds). */
  readonly linkSeconds: number;
  link(
    request: LaunchLinkRequest,
  ): Promise<
    { readonly ok: true; readonly url: string } | { readonly ok: false; readonly failure: ChangeFailure }
  >;
}
