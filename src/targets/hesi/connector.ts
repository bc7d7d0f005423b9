import type {
  ChangeFailure,
  ChangeResult,
  DepartmentFields,
  RoleRow,
  TargetCapabilities,
  TargetChange,
  TargetConnector,
  TargetDepartment,
  TargetRole,
  TargetState,
  TargetUser,
  UserFields,
} from "../target.js";
import { SerialQueue } from "../serial-queue.js";
import { TargetReadError } from "../target.js";
import { HesiClient, type HesiCallResult, type HesiClock } from "./client.js";
import type { HesiConfig } from "./config.js";

// Hesi: list pages are start (0-based offset) + count, at most 100 (reference §1.7).
const PAGE = 100;
const CREATE_ATTEMPTS = 4;
const PLAIN_ROLE = "普通角色";
const DEPARTMENT_ROLE = "部门角色";

type Raw = Record<string, unknown>;

/** Opens a Hesi target (reference finance-targets.md §1, connector shape §6). */
export function openHesiTarget(
  id: string,
  config: HesiConfig,
  clock: HesiClock = { now: Date.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
): TargetConnector {
  return new HesiTarget(id, config, new HesiClient(config, clock));
}

class HesiTarget implements TargetConnector {
  /** Role writes are read-modify-write without an ETag (§1.6): one at a time per role. */
  private readonly roleQueues = new SerialQueue();
  /**
   * Disabled staff, for look-up-before-create: taken from the last readState (the state a plan is computed
   * from) or listed once, and dropped when this connector disables someone, so a run does not list every
   * disabled staff for each create.
   */
  private disabled: TargetUser[] | null = null;

  constructor(
    readonly id: string,
    private readonly config: HesiConfig,
    private readonly client: HesiClient,
  ) {}

  capabilities(): TargetCapabilities {
    const contacts = !this.config.rolesOnly;
    return { users: contacts, departments: contacts, scopedRoles: true, reenable: contacts };
  }

  async readState(signal?: AbortSignal): Promise<TargetState> {
    const departments: Record<string, TargetDepartment> = {};
    for (const d of await this.listAll("/api/openapi/v1/departments", {}, signal)) {
      const dept = toDepartment(d);
      departments[dept.id] = dept;
    }
    const users: Record<string, TargetUser> = {};
    for (const s of await this.listAll("/api/openapi/v1.1/staffs", {}, signal)) {
      const user = toUser(s);
      users[user.id] = user;
    }
    this.disabled = Object.values(users).filter((u) => !u.active);
    const roles: Record<string, TargetRole> = {};
    const groups = must(await this.client.call("GET", "/api/openapi/v1/roleDefGroups"));
    for (const group of itemsOf(groups)) {
      for (const def of arrayOf(group.roleDefs)) {
        const role = await this.readRole(String(def.id));
        roles[role.id] = role;
      }
    }
    return { users, departments, roles };
  }

  /**
   * Applies in order; runs of consecutive `update-user` go through `staffs/batch/update` (≤100 per call,
   * §1.4). A batch is all-or-nothing, so a failed one is split in halves until the bad item stands alone (§6.3).
   */
  async applyAll(changes: readonly TargetChange[]): Promise<ChangeResult[]> {
    const results: ChangeResult[] = [];
    for (let i = 0; i < changes.length;) {
      const run: Extract<TargetChange, { kind: "update-user" }>[] = [];
      while (!this.config.rolesOnly && run.length < PAGE) {
        const next = changes[i + run.length];
        if (next?.kind !== "update-user") break;
        run.push(next);
      }
      const creates: Extract<TargetChange, { kind: "create-user" }>[] = [];
      while (!this.config.rolesOnly && creates.length < PAGE) {
        const next = changes[i + creates.length];
        if (next?.kind !== "create-user") break;
        creates.push(next);
      }
      if (run.length > 1) {
        results.push(...(await this.updateBatch(run)));
        i += run.length;
      } else if (creates.length > 1) {
        results.push(...(await this.createRun(creates)));
        i += creates.length;
      } else {
        results.push(await this.apply(changes[i]!));
        i++;
      }
    }
    return results;
  }

  /**
   * A run of creates looks its users up with one getStaffIds call per key type (≤100 ids each, §1.3) instead
   * of three per user; each create then proceeds as alone, with the answer as its first look-up.
   */
  private async createRun(run: Extract<TargetChange, { kind: "create-user" }>[]): Promise<ChangeResult[]> {
    let found: Map<string, string>;
    try {
      found = new Map();
      const keys: [string, (c: (typeof run)[number]) => string | undefined, (s: Raw) => string][] = [
        ["USERID", (c) => c.externalId, (s) => `USERID ${str(s.userId)}`],
        ["CELLPHONE", (c) => c.user.mobile, (s) => `CELLPHONE ${str(s.cellphone)}`],
        ["MAIL", (c) => c.user.email?.toLowerCase(), (s) => `MAIL ${str(s.email)}`],
      ];
      for (const [type, key, keyOf] of keys) {
        const ids = [...new Set(run.map(key).filter((k): k is string => !!k))];
        if (ids.length === 0) continue;
        const body = { type, conditionIds: ids };
        for (const s of itemsOf(
          must(await this.client.call("POST", "/api/openapi/v1/staffs/getStaffIds", { body })),
        ))
          if (!found.has(keyOf(s))) found.set(keyOf(s), String(s.id));
      }
    } catch (error) {
      if (error instanceof TargetReadError) return run.map(() => failed(error.failure));
      throw error;
    }
    const results: ChangeResult[] = [];
    for (const c of run) {
      const hit =
        found.get(`USERID ${c.externalId}`) ??
        (c.user.mobile ? found.get(`CELLPHONE ${c.user.mobile}`) : undefined) ??
        (c.user.email ? found.get(`MAIL ${c.user.email.toLowerCase()}`) : undefined);
      try {
        results.push(await this.createUser(c.externalId, c.user, { hit }));
      } catch (error) {
        if (!(error instanceof TargetReadError)) throw error;
        results.push(failed(error.failure));
      }
    }
    return results;
  }

  private async updateBatch(run: Extract<TargetChange, { kind: "update-user" }>[]): Promise<ChangeResult[]> {
    if (run.length === 1) return [await this.apply(run[0]!)];
    const result = await this.client.call("PUT", "/api/openapi/v1.1/staffs/batch/update", {
      body: {
        staffList: run.map((c) => ({
          id: c.targetId,
          ...staffBody(c.user),
          modifyAccountPhone: true,
          modifyAccountEmail: true,
        })),
      },
    });
    if (result.ok) return run.map((c) => ({ status: "applied", targetId: c.targetId }));
    if (result.failure.class === "retryable" || result.failure.class === "auth")
      return run.map(() => failed(result.failure));
    const half = Math.ceil(run.length / 2);
    return [...(await this.updateBatch(run.slice(0, half))), ...(await this.updateBatch(run.slice(half)))];
  }

  async apply(change: TargetChange): Promise<ChangeResult> {
    try {
      if (change.kind === "set-role-members")
        return await this.roleQueues.run(change.roleId, () =>
          this.setRoleMembers(change.roleId, change.rows),
        );
      if (change.kind === "create-role") return await this.createRole(change.name, change.scoped);
      if (this.config.rolesOnly) {
        return failed({
          class: "bad-data",
          code: "UNSUPPORTED",
          message: `${this.id}: ${change.kind} is not possible on a DingTalk/WeCom-edition tenant (rolesOnly); staff and departments come from that platform`,
        });
      }
      switch (change.kind) {
        case "create-user":
          return await this.createUser(change.externalId, change.user);
        case "update-user":
          return await this.updateUser(change.targetId, change.user);
        case "disable-user":
          return await this.setUserActive(change.targetId, false);
        case "enable-user":
          return await this.setUserActive(change.targetId, true);
        case "create-department":
          return await this.createDepartment(change.externalId, change.department);
        case "update-department":
          return await this.updateDepartment(change.targetId, change.department);
        case "disable-department":
          return await this.disableDepartment(change.targetId);
      }
    } catch (error) {
      if (error instanceof TargetReadError) return failed(error.failure);
      throw error;
    }
  }

  // ---------------------------------------------------------------- staff

  /**
   * Look up before create (§1.4, §6.2): USERID → CELLPHONE → MAIL among active staff (adopted and updated),
   * then the disabled list. A disabled match is NOT created over: Hesi would silently re-enable and overwrite
   * that person (add-staffs.md). Reviving someone who left is a security decision with its own lineage, so
   * the item fails with DISABLED_MATCH naming the disabled staff, and the planner plans `enable-user` (plus
   * an update) for review instead.
   */
  private async createUser(
    externalId: string,
    user: UserFields,
    prefetched?: { hit: string | undefined },
  ): Promise<ChangeResult> {
    for (let attempt = 1; ; attempt++) {
      const active =
        attempt === 1 && prefetched !== undefined ? prefetched.hit : await this.findActive(externalId, user);
      if (active !== undefined) {
        const updated = await this.updateUser(active, user);
        return updated.status === "failed" ? updated : { status: "applied", targetId: active, adopted: true };
      }
      const disabled = await this.findDisabled(externalId, user);
      if (disabled !== undefined) {
        return failed({
          class: "conflict",
          code: "DISABLED_MATCH",
          targetId: disabled.id,
          message: `${this.id}: creating ${externalId} would re-enable disabled staff ${disabled.id} (${disabled.name}), which shares its userid, phone or email; plan an explicit enable-user for it instead`,
        });
      }
      const body = { ...staffBody(user), userid: externalId };
      // Not retried on a dropped connection: it may have been applied, so look up again first.
      const result = await this.client.call("POST", "/api/openapi/v1.1/staffs", {
        body,
        retryNetwork: false,
      });
      if (result.ok) {
        const staff = valueOf(result.reply.json);
        return { status: "applied", targetId: String(staff.id) };
      }
      if (result.failure.class !== "retryable" || attempt >= CREATE_ATTEMPTS) return failed(result.failure);
    }
  }

  private async findActive(externalId: string, user: UserFields): Promise<string | undefined> {
    const keys: [string, string | undefined][] = [
      ["USERID", externalId],
      ["CELLPHONE", user.mobile],
      ["MAIL", user.email],
    ];
    for (const [type, key] of keys) {
      if (!key) continue;
      const found = itemsOf(
        must(
          await this.client.call("POST", "/api/openapi/v1/staffs/getStaffIds", {
            body: { type, conditionIds: [key] },
          }),
        ),
      );
      if (found[0] !== undefined) return String(found[0].id);
    }
    return undefined;
  }

  private async findDisabled(externalId: string, user: UserFields): Promise<TargetUser | undefined> {
    // getStaffIds returns active staff only (§1.3): disabled ones are found through the list.
    const email = user.email?.toLowerCase();
    this.disabled ??= (await this.listAll("/api/openapi/v1.1/staffs", { active: "false" })).map(toUser);
    for (const s of this.disabled) {
      if (
        s.externalId === externalId ||
        (user.mobile && s.mobile === user.mobile) ||
        (email && s.email === email)
      )
        return s;
    }
    return undefined;
  }

  private async updateUser(targetId: string, user: UserFields): Promise<ChangeResult> {
    const result = await this.client.call("PUT", `/api/openapi/v1.1/staffs/update/$${targetId}`, {
      query: { type: "id" },
      // Without modifyAccount* a new phone or email is silently ignored (§1.4).
      body: { ...staffBody(user), modifyAccountPhone: true, modifyAccountEmail: true },
    });
    return result.ok ? { status: "applied", targetId } : failed(result.failure);
  }

  private async setUserActive(targetId: string, active: boolean): Promise<ChangeResult> {
    const force = !active && this.config.onPendingApprovals === "force";
    const result = await this.client.call(
      "PUT",
      `/api/openapi/v1.1/staffs/disableOrEnableStaff/[${targetId}]`,
      {
        query: { active: String(active), doCheck: String(!force), type: "id" },
      },
    );
    if (!result.ok) {
      if (result.failure.code === "PENDING_APPROVALS") {
        return failed({
          ...result.failure,
          targetId,
          message: `${this.id}: staff ${targetId} has pending approvals; hand them over (flows/relay) first, or set onPendingApprovals: force`,
        });
      }
      return failed(result.failure);
    }
    if (active) this.disabled = this.disabled?.filter((u) => u.id !== targetId) ?? null;
    else this.disabled = null;
    // Unknown ids are skipped silently: the answer just lists fewer staff.
    if (itemsOf(result.reply.json).length === 0)
      return failed({ class: "bad-data", code: "NOT_FOUND", message: `${this.id}: no staff ${targetId}` });
    if (active) {
      // A re-enabled staff is unlicensed until activated again (§1.4 seat activation).
      const seat = await this.client.call("POST", "/api/openapi/v1/charge/powers/authStaff", {
        body: { type: "id", addStaff: [targetId], delStaff: [] },
      });
      if (!seat.ok)
        return failed({
          ...seat.failure,
          message: `${this.id}: re-enabled ${targetId} but could not license it: ${seat.failure.message}`,
        });
    }
    return { status: "applied", targetId };
  }

  // ---------------------------------------------------------------- departments

  private async createDepartment(externalId: string, d: DepartmentFields): Promise<ChangeResult> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.client.call("POST", "/api/openapi/v1/departments", {
        body: departmentBody(d),
        retryNetwork: false,
      });
      if (result.ok) return { status: "applied", targetId: String(valueOf(result.reply.json).id) };
      // A dropped create may have been applied, and a retried one then clashes on the sibling name (412):
      // adopt the active sibling of that name.
      if (result.failure.class === "retryable" || result.failure.http === 412) {
        const existing = await this.findDepartment(d);
        if (existing !== undefined) return { status: "applied", targetId: existing, adopted: true };
      }
      if (result.failure.class !== "retryable" || attempt >= CREATE_ATTEMPTS)
        return failed({
          ...result.failure,
          message: `${this.id}: department ${externalId}: ${result.failure.message}`,
        });
    }
  }

  private async findDepartment(d: DepartmentFields): Promise<string | undefined> {
    const departments = (await this.listAll("/api/openapi/v1/departments", {})).map(toDepartment);
    const root = departments.find((x) => x.parentId === null)?.id;
    const parent = d.parentId ?? root;
    return departments.find((x) => x.active && x.name === d.name && (x.parentId ?? root) === parent)?.id;
  }

  private async updateDepartment(targetId: string, d: DepartmentFields): Promise<ChangeResult> {
    const result = await this.client.call("PUT", `/api/openapi/v1/departments/update/$${targetId}`, {
      body: departmentBody(d),
    });
    return result.ok ? { status: "applied", targetId } : failed(result.failure);
  }

  private async disableDepartment(targetId: string): Promise<ChangeResult> {
    const result = await this.client.call(
      "PUT",
      `/api/openapi/v1/departments/disableOrEnableDepartment/$${targetId}`,
      {
        query: { active: "false" },
      },
    );
    if (result.ok) return { status: "applied", targetId };
    if (result.failure.http === 412 && /员工/.test(result.failure.message)) {
      // Hesi refuses while active staff remain in it or below (§1.5): disable or move them first.
      return failed({
        ...result.failure,
        code: "DEPARTMENT_NOT_EMPTY",
        targetId,
        message: `${this.id}: department ${targetId} still has active staff (in it or below); move or disable them first, then disable bottom-up`,
      });
    }
    return failed(result.failure);
  }

  // ---------------------------------------------------------------- roles

  /** Role names are unique (412 on a second one): adopt an existing role of that name. */
  private async createRole(name: string, scoped: boolean): Promise<ChangeResult> {
    const existing = await this.findRole(name);
    if (existing !== undefined) return { status: "applied", targetId: existing, adopted: true };
    const result = await this.client.call("POST", "/api/openapi/v1/roledefs", {
      // sourceChannel API: the Hesi UI cannot edit it, so the sync owns its members (§1.6).
      body: { name, scope: scoped ? DEPARTMENT_ROLE : PLAIN_ROLE, sourceChannel: "API" },
      retryNetwork: false,
    });
    if (result.ok) return { status: "applied", targetId: String(valueOf(result.reply.json).id) };
    if (result.failure.class === "retryable" || result.failure.http === 412) {
      const found = await this.findRole(name);
      if (found !== undefined) return { status: "applied", targetId: found, adopted: true };
    }
    return failed(result.failure);
  }

  private async findRole(name: string): Promise<string | undefined> {
    const groups = itemsOf(must(await this.client.call("GET", "/api/openapi/v1/roleDefGroups")));
    const def = groups.flatMap((g) => arrayOf(g.roleDefs)).find((d) => d.name === name);
    return def === undefined ? undefined : String(def.id);
  }

  /**
   * Rows overwrite per scope and unsent rows are kept (§1.6), so: read the current rows, send every desired
   * row, and an empty row for each current scope the desired set leaves out.
   */
  private async setRoleMembers(roleId: string, desired: readonly RoleRow[]): Promise<ChangeResult> {
    const current = await this.readRole(roleId);
    const key = (row: RoleRow): string => (row.scope.kind === "global" ? "" : row.scope.departmentId);
    const want = new Map(desired.map((row) => [key(row), [...new Set(row.memberIds)].sort()]));
    const have = new Map(current.rows.map((row) => [key(row), [...row.memberIds].sort()]));
    const contents: Raw[] = [];
    for (const [scope, members] of want) {
      if (members.join("\n") === (have.get(scope) ?? []).join("\n")) continue;
      contents.push(rowBody(scope, members));
    }
    for (const scope of have.keys()) if (!want.has(scope)) contents.push(rowBody(scope, []));
    if (contents.length === 0) return { status: "noop", targetId: roleId };
    // v1.1 writes MANUAL roles too (v1 only API ones); 412 rejects the whole request (unknown path or staff).
    const result = await this.client.call("PUT", `/api/openapi/v1.1/roledefs/$${roleId}/staffs`, {
      query: { staffBy: "id" },
      body: { contents },
    });
    return result.ok ? { status: "applied", targetId: roleId } : failed(result.failure);
  }

  private async readRole(roleId: string): Promise<TargetRole> {
    const value = valueOf(
      must(
        await this.client.call("GET", `/api/openapi/v1/roledefs/$${roleId}`, {
          query: { staffBy: "id", pathType: "id" },
        }),
      ),
    );
    const rows: RoleRow[] = arrayOf(value.contents).map((row) => {
      const path = Array.isArray(row.path) ? row.path.map(String) : [];
      const leaf = path[path.length - 1];
      return {
        scope: leaf === undefined ? { kind: "global" } : { kind: "department", departmentId: leaf },
        memberIds: Array.isArray(row.staffs) ? row.staffs.map(String) : [],
      };
    });
    const scope = typeof value.scope === "string" ? value.scope : undefined;
    return {
      id: String(value.id ?? roleId),
      name: String(value.name ?? ""),
      scoped: scope === undefined ? rows.some((r) => r.scope.kind === "department") : scope !== PLAIN_ROLE,
      rows,
    };
  }

  // ---------------------------------------------------------------- reading

  /** Every item of a `{count, items}` list, 100 per page from start 0. */
  private async listAll(path: string, query: Record<string, string>, signal?: AbortSignal): Promise<Raw[]> {
    const out: Raw[] = [];
    for (let start = 0; ; start += PAGE) {
      if (signal?.aborted)
        throw new TargetReadError({
          class: "retryable",
          code: "ABORTED",
          message: `${this.id}: read aborted`,
        });
      const json = must(
        await this.client.call("GET", path, {
          query: { ...query, start: String(start), count: String(PAGE) },
        }),
      );
      const items = itemsOf(json);
      out.push(...items);
      const total =
        typeof (json as { count?: unknown }).count === "number" ? (json as { count: number }).count : 0;
      if (items.length === 0 || start + items.length >= total) return out;
    }
  }
}

function must(result: HesiCallResult): unknown {
  if (!result.ok) throw new TargetReadError(result.failure);
  return result.reply.json;
}

function failed(failure: ChangeFailure): ChangeResult {
  return { status: "failed", failure };
}

function staffBody(user: UserFields): Raw {
  return {
    name: user.name,
    // Hesi: email must be omitted, not "" (add-staffs.md).
    ...(user.email ? { email: user.email } : {}),
    ...(user.mobile ? { cellphone: user.mobile } : {}),
    ...(user.employeeNo ? { code: user.employeeNo } : {}),
    departments: [...user.departmentIds],
    defaultDepartment: user.primaryDepartmentId ?? user.departmentIds[0] ?? "",
  };
}

function departmentBody(d: DepartmentFields): Raw {
  return { name: d.name, parentId: d.parentId ?? "", code: d.code ?? "", order: d.order ?? 0 };
}

function rowBody(scope: string, staffs: string[]): Raw {
  return scope === "" ? { staffs } : { pathType: "id", path: [scope], staffs };
}

function toUser(s: Raw): TargetUser {
  const departments = Array.isArray(s.departments) ? s.departments.map(String) : [];
  return {
    id: String(s.id),
    externalId: str(s.userId),
    name: str(s.name),
    email: str(s.email),
    mobile: str(s.cellphone),
    employeeNo: str(s.code),
    departmentIds: departments,
    primaryDepartmentId: str(s.defaultDepartment),
    active: s.active === true,
  };
}

function toDepartment(d: Raw): TargetDepartment {
  return {
    id: String(d.id),
    parentId:
      d.parentId === "" || d.parentId === undefined || d.parentId === null ? null : String(d.parentId),
    name: str(d.name),
    code: str(d.code),
    order: typeof d.order === "number" ? d.order : 0,
    active: d.active !== false,
  };
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function itemsOf(json: unknown): Raw[] {
  return arrayOf((json as { items?: unknown } | undefined)?.items);
}

function valueOf(json: unknown): Raw {
  const value = (json as { value?: unknown } | undefined)?.value;
  return value !== null && typeof value === "object" ? (value as Raw) : {};
}

function arrayOf(value: unknown): Raw[] {
  return Array.isArray(value) ? value.filter((x): x is Raw => x !== null && typeof x === "object") : [];
}
