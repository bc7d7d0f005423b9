/**
 * An in-memory target and the slice of the Store the apply engine uses, for the planner's and the apply
 * engine's unit tests (the real targets are tested against the Hesi simulator and a SCIM server). The
 * target keeps Hesi's shape: a root department, department-scoped role rows, disabled users kept.
 */
import type { AuditRecord, ChainHead, PlanItemRecord, Store, TargetLink } from "../../src/store/store.js";
import { GENESIS_HASH } from "../../src/audit/chain.js";
import type {
  ChangeResult,
  TargetCapabilities,
  TargetChange,
  TargetConnector,
  TargetDepartment,
  TargetRole,
  TargetState,
  TargetUser,
} from "../../src/targets/target.js";

export class MemoryTarget implements TargetConnector {
  readonly users = new Map<string, TargetUser>();
  readonly departments = new Map<string, TargetDepartment>();
  readonly roles = new Map<string, TargetRole>();
  /** Every write, in order. */
  readonly writes: TargetChange[] = [];
  /** Called before each write; return a result to fail it instead. */
  failWith: ((change: TargetChange) => ChangeResult | undefined) | undefined;
  private next = 1;

  constructor(
    readonly id = "hesi-main",
    private readonly caps: TargetCapabilities = {
      users: true,
      departments: true,
      scopedRoles: true,
      reenable: true,
    },
  ) {
    this.departments.set("root", {
      id: "root",
      parentId: null,
      name: "示例科技有限公司",
      code: "",
      order: 0,
      active: true,
    });
  }

  capabilities(): TargetCapabilities {
    return this.caps;
  }

  async readState(): Promise<TargetState> {
    const clone = <T>(m: Map<string, T>) =>
      Object.fromEntries([...m].map(([k, v]) => [k, structuredClone(v)]));
    return { users: clone(this.users), departments: clone(this.departments), roles: clone(this.roles) };
  }

  async applyAll(changes: readonly TargetChange[]): Promise<ChangeResult[]> {
    const out: ChangeResult[] = [];
    for (const change of changes) out.push(await this.apply(change));
    return out;
  }

  /** Adds a user as if made by hand in the target. */
  addUser(user: Partial<TargetUser> & Pick<TargetUser, "id" | "name">): TargetUser {
    const full: TargetUser = {
      externalId: "",
      email: "",
      mobile: "",
      employeeNo: "",
      departmentIds: ["root"],
      primaryDepartmentId: "root",
      active: true,
      ...user,
    };
    this.users.set(full.id, full);
    return full;
  }

  async apply(change: TargetChange): Promise<ChangeResult> {
    const failure = this.failWith?.(change);
    if (failure !== undefined) return failure;
    this.writes.push(change);
    const id = () => `t${this.next++}`;
    switch (change.kind) {
      case "create-user": {
        const existing = [...this.users.values()].find((u) => u.externalId === change.externalId);
        if (existing) return { status: "applied", targetId: existing.id, adopted: true };
        const user: TargetUser = {
          id: id(),
          externalId: change.externalId,
          name: change.user.name,
          email: change.user.email ?? "",
          mobile: change.user.mobile ?? "",
          employeeNo: change.user.employeeNo ?? "",
          departmentIds: [...change.user.departmentIds],
          primaryDepartmentId: change.user.primaryDepartmentId ?? change.user.departmentIds[0] ?? "",
          active: true,
        };
        this.users.set(user.id, user);
        return { status: "applied", targetId: user.id };
      }
      case "update-user": {
        const u = this.users.get(change.targetId);
        if (!u)
          return {
            status: "failed",
            failure: { class: "bad-data", code: "NOT_FOUND", message: "no such user" },
          };
        this.users.set(u.id, {
          ...u,
          name: change.user.name,
          email: change.user.email || u.email,
          mobile: change.user.mobile || u.mobile,
          employeeNo: change.user.employeeNo || u.employeeNo,
          departmentIds: [...change.user.departmentIds],
          primaryDepartmentId: change.user.primaryDepartmentId ?? change.user.departmentIds[0] ?? "",
        });
        return { status: "applied", targetId: u.id };
      }
      case "disable-user":
      case "enable-user": {
        const u = this.users.get(change.targetId);
        if (!u)
          return {
            status: "failed",
            failure: { class: "bad-data", code: "NOT_FOUND", message: "no such user" },
          };
        this.users.set(u.id, { ...u, active: change.kind === "enable-user" });
        return { status: "applied", targetId: u.id };
      }
      case "create-department": {
        const d: TargetDepartment = {
          id: id(),
          parentId: change.department.parentId,
          name: change.department.name,
          code: "",
          order: change.department.order ?? 0,
          active: true,
        };
        this.departments.set(d.id, d);
        return { status: "applied", targetId: d.id };
      }
      case "update-department": {
        const d = this.departments.get(change.targetId)!;
        this.departments.set(d.id, {
          ...d,
          name: change.department.name,
          parentId: change.department.parentId,
        });
        return { status: "applied", targetId: d.id };
      }
      case "disable-department": {
        const d = this.departments.get(change.targetId)!;
        const staffed = [...this.users.values()].some((u) => u.active && u.departmentIds.includes(d.id));
        if (staffed)
          return {
            status: "failed",
            failure: { class: "conflict", code: "DEPARTMENT_NOT_EMPTY", message: "still has staff" },
          };
        this.departments.set(d.id, { ...d, active: false });
        return { status: "applied", targetId: d.id };
      }
      case "create-role": {
        const existing = [...this.roles.values()].find((r) => r.name === change.name);
        if (existing) return { status: "applied", targetId: existing.id, adopted: true };
        const r: TargetRole = { id: id(), name: change.name, scoped: change.scoped, rows: [] };
        this.roles.set(r.id, r);
        return { status: "applied", targetId: r.id };
      }
      case "set-role-members": {
        const r = this.roles.get(change.roleId);
        if (!r)
          return {
            status: "failed",
            failure: { class: "bad-data", code: "NOT_FOUND", message: "no such role" },
          };
        this.roles.set(r.id, {
          ...r,
          rows: change.rows.map((row) => ({ scope: row.scope, memberIds: [...row.memberIds] })),
        });
        return { status: "applied", targetId: r.id };
      }
    }
  }

  /** Ids of the departments with this name. */
  departmentsNamed(name: string): string[] {
    return [...this.departments.values()].filter((d) => d.name === name).map((d) => d.id);
  }

  /** Who holds a role by name: `user name [scope department name]` sorted. */
  holders(roleName: string): string[] {
    const role = [...this.roles.values()].find((r) => r.name === roleName);
    if (!role) return [];
    return role.rows
      .flatMap((row) =>
        row.memberIds.map((m) => {
          const scope =
            row.scope.kind === "department" ? ` [${this.departments.get(row.scope.departmentId)?.name}]` : "";
          return `${this.users.get(m)?.name ?? m}${scope}`;
        }),
      )
      .sort();
  }
}

/** The Store methods the apply engine uses, in memory, with the same exactly-once rule as the SQL store. */
export class MemorySyncStore implements Pick<
  Store,
  "listTargetLinks" | "saveTargetLinks" | "listPlanItems" | "recordPlanItems"
> {
  readonly links = new Map<string, TargetLink>();
  readonly items = new Map<string, PlanItemRecord>();
  readonly audit: AuditRecord[] = [];

  async listTargetLinks(): Promise<TargetLink[]> {
    return [...this.links.values()];
  }
  async saveTargetLinks(_target: string, links: readonly TargetLink[]): Promise<void> {
    for (const link of links) this.links.set(`${link.kind}:${link.key}`, link);
  }
  async listPlanItems(planId: string): Promise<PlanItemRecord[]> {
    return [...this.items].filter(([k]) => k.startsWith(`${planId}\u0000`)).map(([, v]) => v);
  }
  async recordPlanItems(
    planId: string,
    items: readonly PlanItemRecord[],
    build: (head: ChainHead, fresh: readonly PlanItemRecord[]) => AuditRecord[],
  ): Promise<PlanItemRecord[]> {
    const fresh = items.filter((item) => {
      const status = this.items.get(`${planId}\u0000${item.key}`)?.status;
      return status !== "applied" && status !== "noop";
    });
    const last = this.audit.at(-1);
    this.audit.push(
      ...build(last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH }, fresh),
    );
    for (const item of fresh) this.items.set(`${planId}\u0000${item.key}`, item);
    return fresh;
  }
}
