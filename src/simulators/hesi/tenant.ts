import {
  DEPARTMENT_ROLE,
  fail,
  PLAIN_ROLE,
  type HesiDepartment,
  type HesiRoleDef,
  type HesiRoleGroup,
  type HesiRoleRow,
  type HesiStaff,
} from "./model.js";

/** Hesi: list pages are `start` (0-based) + `count`, at most 100 per page (reference §1.7). */
export const PAGE_MAX = 100;
/** Batch bodies and lookups carry at most 100 items (reference §1.3, §1.4). */
export const BATCH_MAX = 100;

/** How a staff is named in a path or body: its id or its 工号. */
export type StaffKeyType = "id" | "code";
/** getStaffIds `type`. */
export type StaffLookupType = "STAFFID" | "CODE" | "CELLPHONE" | "MAIL" | "USERID";
/** How role members are named (`staffBy`). */
export type StaffBy = "id" | "sourceId" | "code" | "cellphone" | "email";
/** How a role row's path is given (`pathType`). */
export type PathType = "name" | "code" | "id";

/** A tenant's data as plain JSON ({@link HesiTenant.snapshot}). */
export interface HesiTenantSnapshot {
  readonly corpId: string;
  readonly staff: HesiStaff[];
  readonly departments: HesiDepartment[];
  readonly roles: HesiRoleDef[];
  readonly roleGroups: HesiRoleGroup[];
  /** Phone → userId of accounts registered in Hesi. */
  readonly registeredPhones: [string, string][];
  readonly pendingApprovals: string[];
  /** How many ids the tenant has minted (new ids continue after them). */
  readonly minted: number;
}

/** A page of a list call: `{count: <total>, items}`. */
export interface Page<T> {
  readonly count: number;
  readonly items: T[];
}

/** Filters of the staff list (`GET /api/openapi/v1.1/staffs`). */
export interface StaffListQuery {
  readonly start: number;
  readonly count: number;
  /** undefined = all; true = active only; false = disabled only. */
  readonly active?: boolean;
  readonly external?: boolean;
  /** updateTime ≥ startDate (epoch ms). */
  readonly startDate?: number;
  /** updateTime ≤ endDate (epoch ms). */
  readonly endDate?: number;
  /** `updateTime`: oldest change first (for incremental pulls); otherwise creation order. */
  readonly orderBy?: "updateTime";
}

type Body = Record<string, unknown>;

const PHONE = /^[0-9()]+$/;

/**
 * One Hesi tenant (企业): staff, departments, role groups and roles, with the behaviours the reference
 * calls traps. Every operation either completes or throws a {@link HesiFailure} and changes nothing.
 * Routes are thin wrappers around these methods; tests may call them directly.
 */
export class HesiTenant {
  readonly staff = new Map<string, HesiStaff>();
  readonly departments = new Map<string, HesiDepartment>();
  readonly roles = new Map<string, HesiRoleDef>();
  readonly roleGroups = new Map<string, HesiRoleGroup>();
  /**
   * Hesi accounts are global per phone number: a phone registered in Hesi (by this tenant or another)
   * keeps its userId. Creating a staff with such a phone takes that userId and ignores the supplied one.
   */
  readonly registeredPhones = new Map<string, string>();
  /** Staff ids with pending approvals or bills: disabling them with doCheck=true answers 403. */
  readonly pendingApprovals = new Set<string>();
  /** Staff ids by login phone, login email, userId and 工号 (kept in step with `staff`). */
  private readonly index = {
    phone: new Map<string, Set<string>>(),
    email: new Map<string, Set<string>>(),
    userId: new Map<string, Set<string>>(),
    code: new Map<string, Set<string>>(),
  };
  /** Filtered staff lists by filter, dropped on every staff change (pages of 100 over 100,000 staff). */
  private readonly listCache = new Map<string, HesiStaff[]>();
  /** Who holds which role, for getStaffIds; null after a role change. */
  private grants: Map<string, Map<string, string[]>> | null = null;
  private minted = 0;
  private undo: (() => void)[] | null = null;

  constructor(
    /** The corporation id; also the root department's id. */
    readonly corpId: string,
    corpName: string,
    private readonly now: () => number,
    /** Purchased seats (授权); unlimited when undefined. */
    readonly seats?: number,
  ) {
    const t = now();
    this.departments.set(corpId, {
      id: corpId,
      name: corpName,
      parentId: "",
      active: true,
      code: "",
      form: {},
      order: 0,
      createTime: t,
      updateTime: t,
    });
    this.roleGroups.set(`${corpId}:group:default`, { id: `${corpId}:group:default`, name: "未分组" });
    // The main admin role id is `<corpId>:admin` (get-roles-group.md).
    this.roles.set(`${corpId}:admin`, {
      id: `${corpId}:admin`,
      name: "主管理员",
      scope: PLAIN_ROLE,
      roleGroupId: `${corpId}:group:default`,
      sourceChannel: "MANUAL",
      rows: [],
    });
  }

  /** The tenant's data as plain JSON, for a simulator that keeps its state across restarts (the demo). */
  snapshot(): HesiTenantSnapshot {
    return structuredClone({
      corpId: this.corpId,
      staff: [...this.staff.values()],
      departments: [...this.departments.values()],
      roles: [...this.roles.values()],
      roleGroups: [...this.roleGroups.values()],
      registeredPhones: [...this.registeredPhones],
      pendingApprovals: [...this.pendingApprovals],
      minted: this.minted,
    });
  }

  /**
   * Replaces the tenant's data with a {@link snapshot} taken earlier (of a tenant with the same corpId: staff
   * and department ids embed it).
   */
  restore(snapshot: HesiTenantSnapshot): void {
    if (snapshot.corpId !== this.corpId)
      throw new TypeError(`snapshot of tenant ${snapshot.corpId} cannot restore tenant ${this.corpId}`);
    const data = structuredClone(snapshot);
    for (const map of [this.staff, this.departments, this.roles, this.roleGroups]) map.clear();
    for (const index of Object.values(this.index)) index.clear();
    this.registeredPhones.clear();
    this.pendingApprovals.clear();
    for (const d of data.departments) this.departments.set(d.id, d);
    for (const r of data.roles) this.roles.set(r.id, r);
    for (const g of data.roleGroups) this.roleGroups.set(g.id, g);
    for (const [phone, userId] of data.registeredPhones) this.registeredPhones.set(phone, userId);
    for (const id of data.pendingApprovals) this.pendingApprovals.add(id);
    for (const s of data.staff) {
      this.staff.set(s.id, s);
      this.indexStaff(s, true);
    }
    this.minted = data.minted;
    this.grants = null;
  }

  /** A fresh id part in Hesi's style (`ID_` + 11 characters). */
  mintId(): string {
    this.minted++;
    return `ID_${this.minted.toString(36).padStart(11, "0")}`;
  }

  /** Runs `fn` so that a failure leaves the tenant as it was (batch calls are all-or-nothing). */
  atomically<T>(fn: () => T): T {
    if (this.undo !== null) return fn();
    this.undo = [];
    try {
      const result = fn();
      this.undo = null;
      return result;
    } catch (error) {
      const steps = this.undo ?? [];
      this.undo = null;
      for (const step of steps.reverse()) step();
      throw error;
    }
  }

  private remember<K, V>(map: Map<K, V>, key: K, clone: (v: V) => V): void {
    if (this.undo === null) return;
    const had = map.has(key);
    const before = had ? clone(map.get(key) as V) : undefined;
    this.undo.push(() => {
      if (had) map.set(key, before as V);
      else map.delete(key);
    });
  }

  private putStaff(s: HesiStaff): void {
    this.rememberStaff(s.id);
    this.staff.set(s.id, s);
    this.indexStaff(s, true);
  }

  private editStaff(s: HesiStaff, change: (s: HesiStaff) => void): void {
    this.rememberStaff(s.id);
    this.indexStaff(s, false);
    change(s);
    s.updateTime = this.now();
    this.indexStaff(s, true);
  }

  private rememberStaff(id: string): void {
    if (this.undo === null) return;
    const current = this.staff.get(id);
    const before = current === undefined ? undefined : cloneStaff(current);
    this.undo.push(() => {
      const now = this.staff.get(id);
      if (now !== undefined) this.indexStaff(now, false);
      if (before === undefined) this.staff.delete(id);
      else {
        this.staff.set(id, before);
        this.indexStaff(before, true);
      }
    });
  }

  private indexStaff(s: HesiStaff, add: boolean): void {
    this.listCache.clear();
    const keys: [Map<string, Set<string>>, string][] = [
      [this.index.phone, s.cellphone],
      [this.index.email, s.email],
      [this.index.userId, s.userId],
      [this.index.code, s.code],
    ];
    for (const [map, key] of keys) {
      if (key === "") continue;
      let ids = map.get(key);
      if (add) {
        if (ids === undefined) map.set(key, (ids = new Set()));
        ids.add(s.id);
      } else {
        ids?.delete(s.id);
        if (ids?.size === 0) map.delete(key);
      }
    }
  }

  /** Staff whose indexed field equals `key`. */
  private staffWith(field: keyof HesiTenant["index"], key: string | undefined): HesiStaff[] {
    if (key === undefined || key === "") return [];
    return [...(this.index[field].get(key) ?? [])].map((id) => this.staff.get(id)!);
  }

  private putPhone(phone: string, userId: string): void {
    this.remember(this.registeredPhones, phone, (v) => v);
    this.registeredPhones.set(phone, userId);
  }

  private dropPhone(phone: string): void {
    this.remember(this.registeredPhones, phone, (v) => v);
    this.registeredPhones.delete(phone);
  }

  private editDepartment(d: HesiDepartment, change: (d: HesiDepartment) => void): void {
    this.remember(this.departments, d.id, (v) => ({ ...v, form: { ...v.form } }));
    change(d);
    d.updateTime = this.now();
  }

  private editRole(r: HesiRoleDef, change: (r: HesiRoleDef) => void): void {
    this.grants = null;
    this.remember(this.roles, r.id, (v) => ({
      ...v,
      rows: v.rows.map((row) => ({ ...row, staffs: [...row.staffs] })),
    }));
    change(r);
  }

  // ---------------------------------------------------------------- staff

  /**
   * `POST /api/openapi/v1.1/staffs` (add-staffs.md), with its traps: the phone or email of a *disabled*
   * staff re-enables and overwrites that staff (unless `useNewAccount`); a phone already registered in
   * Hesi keeps its userId and the supplied `userid` is ignored.
   */
  createStaff(body: Body, batch = false): HesiStaff {
    return this.atomically(() => {
      const name = optString(body, "name");
      if (name === undefined || name === "") fail(400, "员工名称不能为空");
      const cellphone = optString(body, "cellphone");
      if (cellphone !== undefined && cellphone !== "" && !PHONE.test(cellphone))
        fail(400, "手机号格式不正确，只能包含数字和英文括号");
      if (body.email === "") fail(400, "邮箱格式不正确"); // email must be omitted, not "" (add-staffs.md)
      const showEmail = optString(body, "email");
      const email = showEmail?.toLowerCase();
      if (batch && !cellphone) fail(400, "手机号不能为空"); // batch create requires cellphone
      if (!cellphone && !email) fail(400, "手机号或邮箱必须至少填一个");
      const { departments, defaultDepartment } = this.staffDepartments(body, true)!;
      const useNewAccount = body.useNewAccount === true;

      const sameLogin = [...this.staffWith("phone", cellphone), ...this.staffWith("email", email)];
      const taken = sameLogin.find((s) => s.active);
      if (taken !== undefined)
        fail(400, "新增员工数据库异常：该手机号/邮箱账号已被其他员工使用，请勿重复绑定");

      if (!useNewAccount) {
        const disabled = sameLogin.find((s) => !s.active);
        if (disabled !== undefined) {
          // Trap: re-enabled and overwritten in place; id and userId stay, the supplied userid is ignored.
          this.editStaff(disabled, (s) => {
            s.name = name;
            s.code = optString(body, "code") ?? "";
            s.departments = departments;
            s.defaultDepartment = defaultDepartment;
            if (cellphone) s.cellphone = cellphone;
            if (email !== undefined) {
              s.email = email;
              s.showEmail = showEmail!;
            }
            s.note = optString(body, "note") ?? "";
            s.external = body.external === true;
            s.staffCustomForm = { ...objectOf(body.staffCustomForm) };
            s.active = true;
            s.authState = false; // re-enabled staff must be re-activated (active-staffs.md)
          });
          if (cellphone) this.putPhone(cellphone, disabled.userId);
          return disabled;
        }
      }

      const userid = optString(body, "userid");
      let userId: string;
      if (useNewAccount) userId = this.mintId();
      else if (cellphone && this.registeredPhones.has(cellphone))
        userId = this.registeredPhones.get(cellphone)!;
      else if (userid) userId = userid;
      else userId = this.mintId();
      const id = `${this.corpId}:${userId}`;
      const existing = this.staff.get(id);
      if (existing !== undefined) {
        if (existing.active) fail(400, "该账号已被其他员工使用，请勿重复绑定");
        // The userid belongs to a disabled staff with another phone/email: a database error (reference §1.4).
        fail(400, `新增员工数据库异常：Duplicate entry '${id}' for key 'PRIMARY'`);
      }
      const t = this.now();
      const created: HesiStaff = {
        id,
        name,
        code: optString(body, "code") ?? "",
        departments,
        defaultDepartment,
        cellphone: cellphone ?? "",
        active: true,
        userId,
        email: email ?? "",
        showEmail: showEmail ?? "",
        external: body.external === true,
        authState: this.seatsLeft() > 0,
        note: optString(body, "note") ?? "",
        staffCustomForm: { ...objectOf(body.staffCustomForm) },
        createTime: t,
        updateTime: t,
      };
      this.putStaff(created);
      if (cellphone) this.putPhone(cellphone, userId);
      return created;
    });
  }

  /** `POST /api/openapi/v1.1/staffs/batch/create` `{staffList}`: at most 100, all or nothing. */
  createStaffBatch(body: Body): HesiStaff[] {
    const list = batchList(body, "staffList");
    return this.atomically(() =>
      list.map((item, i) => atIndex(i, () => this.createStaff(objectOf(item), true))),
    );
  }

  /**
   * `PUT /api/openapi/v1.1/staffs/update/$<id>?type=id|code`: `name` required; fields not sent are kept;
   * custom fields merge (v1.1). The login phone/email change only with `modifyAccountPhone/Email=true` —
   * otherwise a new `cellphone`/`email` is silently ignored.
   */
  updateStaff(key: string, type: StaffKeyType, body: Body): HesiStaff {
    return this.atomically(() => {
      const staff = this.staffByKey(key, type);
      if (staff === undefined) fail(403, "无效的员工");
      const name = optString(body, "name");
      if (name === undefined || name === "") fail(400, "员工名称不能为空");
      if (body.email === "") fail(400, "邮箱格式不正确");
      const cellphone = optString(body, "cellphone");
      if (cellphone !== undefined && cellphone !== "" && !PHONE.test(cellphone))
        fail(400, "手机号格式不正确，只能包含数字和英文括号");
      const depts = this.staffDepartments(body, false, type);
      const showEmail = optString(body, "email");
      const email = showEmail?.toLowerCase();
      if (body.modifyAccountPhone === true && cellphone && cellphone !== staff.cellphone) {
        const owner = this.registeredPhones.get(cellphone);
        const other = this.staffWith("phone", cellphone).some((s) => s !== staff);
        if (other || (owner !== undefined && owner !== staff.userId))
          fail(412, "该手机号已注册，不可修改成已注册企业的手机号");
      }
      if (body.modifyAccountEmail === true && email && email !== staff.email) {
        if (this.staffWith("email", email).some((s) => s !== staff)) fail(412, "该邮箱已被其他员工使用");
      }
      const previousPhone = staff.cellphone;
      this.editStaff(staff, (s) => {
        s.name = name;
        const code = optString(body, "code");
        if (code !== undefined) s.code = code;
        if (depts !== undefined) {
          s.departments = depts.departments;
          s.defaultDepartment = depts.defaultDepartment;
        }
        const note = optString(body, "note");
        if (note !== undefined) s.note = note;
        if (typeof body.external === "boolean") s.external = body.external;
        if (body.staffCustomForm !== undefined)
          s.staffCustomForm = { ...s.staffCustomForm, ...objectOf(body.staffCustomForm) };
        if (body.modifyAccountPhone === true && cellphone !== undefined) s.cellphone = cellphone;
        if (body.modifyAccountEmail === true && email !== undefined) {
          s.email = email;
          s.showEmail = showEmail!;
        }
      });
      if (body.modifyAccountPhone === true && cellphone && cellphone !== previousPhone) {
        // The login account moves to the new phone; the old one is free again.
        if (previousPhone !== "") this.dropPhone(previousPhone);
        this.putPhone(cellphone, staff.userId);
      }
      return staff;
    });
  }

  /** `PUT /api/openapi/v1.1/staffs/batch/update` `{staffList}`: at most 100, each with `id`, all or nothing. */
  updateStaffBatch(body: Body): HesiStaff[] {
    const list = batchList(body, "staffList");
    return this.atomically(() =>
      list.map((item, i) =>
        atIndex(i, () => {
          const entry = objectOf(item);
          const id = optString(entry, "id");
          if (!id) fail(400, "员工ID不能为空");
          return this.updateStaff(id, "id", entry);
        }),
      ),
    );
  }

  /** `PUT /api/openapi/v1.1/staffs/$<idOrCode>/customFields?type=`: merges the fields (every edition). */
  updateCustomFields(key: string, type: StaffKeyType, body: Body): HesiStaff {
    const staff = this.staffByKey(key, type);
    if (staff === undefined) fail(403, "无效的员工");
    this.editStaff(staff, (s) => (s.staffCustomForm = { ...s.staffCustomForm, ...body }));
    return staff;
  }

  /** `PUT /api/openapi/v1/staffs/$<id>/code`: 412 when another staff has the code. */
  updateStaffCode(id: string, code: string): HesiStaff {
    const staff = this.staff.get(id);
    if (staff === undefined) fail(403, "无效的员工");
    if (this.staffWith("code", code).some((s) => s !== staff && s.active)) fail(412, "工号已存在");
    this.editStaff(staff, (s) => (s.code = code));
    return staff;
  }

  /**
   * `PUT /api/openapi/v1.1/staffs/disableOrEnableStaff/[ids]?active=&doCheck=&type=`: unknown ids are
   * skipped silently (the answer just lists fewer staff); with doCheck (the default) disabling a staff with
   * pending approvals is refused with 403 and nothing changes.
   */
  setStaffActive(
    keys: readonly string[],
    type: StaffKeyType,
    active: boolean | undefined,
    doCheck: boolean,
  ): HesiStaff[] {
    if (active === undefined) fail(400, "输入存在错误:\n- 开启或是停用参数不能为空");
    if (keys.length > BATCH_MAX) fail(400, `一次最多操作${BATCH_MAX}个员工`);
    const found = keys.map((k) => this.staffByKey(k, type)).filter((s): s is HesiStaff => s !== undefined);
    if (!active && doCheck) {
      const blocked = found.find((s) => s.active && this.pendingApprovals.has(s.id));
      if (blocked !== undefined) fail(403, `员工[${blocked.name}]有待办事项，不能停用，请先进行离职交接`);
    }
    return this.atomically(() => {
      for (const s of found)
        if (s.active !== active)
          this.editStaff(s, (x) => {
            x.active = active;
            x.authState = false;
          });
      return found;
    });
  }

  /** `POST /api/openapi/v2.1/flows/relay`: hands the leaver's to-dos to another staff. */
  relay(
    body: Body,
    type: StaffKeyType,
  ): { totalCount: number; successCount: number; failCount: number; errors: Record<string, never> } {
    for (const field of ["staffId", "originApproverId", "relayApproverId"] as const) {
      const key = optString(body, field);
      if (!key || this.staffByKey(key, type) === undefined) fail(400, `员工不存在${field}`);
    }
    // The operator must hold the main admin role (relay-staff.md).
    const operator = this.staffByKey(optString(body, "staffId")!, type)!;
    const admins = this.roles.get(`${this.corpId}:admin`)?.rows.flatMap((r) => r.staffs) ?? [];
    if (!admins.includes(operator.id)) fail(403, "您没有权限执行此操作,需要『系统管理』权限");
    const origin = this.staffByKey(optString(body, "originApproverId")!, type)!;
    const had = this.pendingApprovals.delete(origin.id) ? 1 : 0;
    return { totalCount: had, successCount: had, failCount: 0, errors: {} };
  }

  /** `POST /api/openapi/v1/charge/powers/authStaff`: licenses (or unlicenses) staff, within the seats. */
  authorizeStaff(body: Body): { addStaff: string[]; delStaff: string[] } {
    const type = optString(body, "type") ?? "id";
    const find = (k: string): HesiStaff | undefined =>
      type === "code"
        ? this.staffByKey(k, "code")
        : type === "cellphone"
          ? this.staffWith("phone", k)[0]
          : this.staff.get(k);
    return this.atomically(() => {
      const removed = stringList(body.delStaff)
        .map(find)
        .filter((s): s is HesiStaff => s !== undefined);
      for (const s of removed) this.editStaff(s, (x) => (x.authState = false));
      const added = stringList(body.addStaff)
        .map(find)
        .filter((s): s is HesiStaff => s?.active === true);
      for (const s of added) {
        if (s.authState) continue;
        if (this.seatsLeft() <= 0) fail(412, "授权人数已超过购买数量");
        this.editStaff(s, (x) => (x.authState = true));
      }
      return { addStaff: added.map((s) => s.id), delStaff: removed.map((s) => s.id) };
    });
  }

  private seatsLeft(): number {
    if (this.seats === undefined) return Number.POSITIVE_INFINITY;
    let used = 0;
    for (const s of this.staff.values()) if (s.active && s.authState) used++;
    return this.seats - used;
  }

  /** `GET /api/openapi/v1.1/staffs`: all, active or disabled staff by updateTime window, 100 at most per page. */
  listStaff(query: StaffListQuery): Page<HesiStaff> {
    const key = JSON.stringify([query.active, query.external, query.startDate, query.endDate, query.orderBy]);
    let all = this.listCache.get(key);
    if (all === undefined) {
      all = [...this.staff.values()].filter(
        (s) =>
          (query.active === undefined || s.active === query.active) &&
          (query.external === undefined || s.external === query.external) &&
          (query.startDate === undefined || s.updateTime >= query.startDate) &&
          (query.endDate === undefined || s.updateTime <= query.endDate),
      );
      if (query.orderBy === "updateTime") all.sort((a, b) => a.updateTime - b.updateTime);
      this.listCache.set(key, all);
    }
    return page(all, query.start, query.count);
  }

  /** `GET /api/openapi/v1/staffs/authorized`: licensed active staff. */
  listAuthorized(start: number, count: number): Page<HesiStaff> {
    return page(
      [...this.staff.values()].filter((s) => s.active && s.authState),
      start,
      count,
    );
  }

  /** `POST /api/openapi/v1/staffs/getStaffIds`: active staff only (disabled ones are never found here). */
  lookupStaff(type: unknown, conditionIds: unknown): HesiStaff[] {
    const kinds: readonly StaffLookupType[] = ["STAFFID", "CODE", "CELLPHONE", "MAIL", "USERID"];
    if (!kinds.includes(type as StaffLookupType)) fail(400, "查询方式type不正确");
    const ids = stringList(conditionIds);
    if (ids.length === 0) fail(400, "查询conditionIds不能为空");
    if (ids.length > BATCH_MAX) fail(400, `查询conditionIds最多${BATCH_MAX}个`);
    const found = new Map<string, HesiStaff>();
    for (const key of ids) {
      const matches =
        type === "STAFFID"
          ? [this.staff.get(key)].filter((s): s is HesiStaff => s !== undefined)
          : type === "CODE"
            ? this.staffWith("code", key)
            : type === "CELLPHONE"
              ? this.staffWith("phone", key)
              : type === "MAIL"
                ? this.staffWith("email", key.toLowerCase())
                : this.staffWith("userId", key);
      for (const s of matches) if (s.active) found.set(s.id, s);
    }
    return [...found.values()];
  }

  /** The roles a staff holds, as getStaffIds shows them (since 1.24.0). */
  rolesOf(staffId: string): { roleDefId: string; properties: string[] }[] {
    if (this.grants === null) {
      // staff id → role id → departments of its rows, rebuilt after any role change.
      const grants = new Map<string, Map<string, string[]>>();
      for (const role of this.roles.values())
        for (const row of role.rows)
          for (const id of row.staffs) {
            let byRole = grants.get(id);
            if (byRole === undefined) grants.set(id, (byRole = new Map()));
            let properties = byRole.get(role.id);
            if (properties === undefined) byRole.set(role.id, (properties = []));
            if (row.departmentId !== null) properties.push(row.departmentId);
          }
      this.grants = grants;
    }
    return [...(this.grants.get(staffId) ?? [])].map(([roleDefId, properties]) => ({
      roleDefId,
      properties: [...properties],
    }));
  }

  /** A staff by id or by 工号 (the first with that code: codes are not unique in Hesi). */
  staffByKey(key: string, type: StaffKeyType): HesiStaff | undefined {
    if (type === "id") return this.staff.get(key);
    const withCode = this.staffWith("code", key);
    return withCode.find((s) => s.active) ?? withCode[0];
  }

  /**
   * The departments of a create or update body. With `type=code` on update, departments are named by their
   * code, which must name exactly one active department (update-staffs.md).
   */
  private staffDepartments(
    body: Body,
    required: boolean,
    by: StaffKeyType = "id",
  ): { departments: string[]; defaultDepartment: string } | undefined {
    if (body.departments === undefined && body.defaultDepartment === undefined && !required) return undefined;
    const byCode = (field: string, code: string): string => {
      const matches = [...this.departments.values()].filter((d) => d.active && d.code === code);
      if (matches.length !== 1) fail(400, `根据字段[${field}]的code[${code}]不能定位到唯一部门`);
      return matches[0]!.id;
    };
    let departments = stringList(body.departments);
    if (by === "code") departments = departments.map((c) => byCode("departments", c));
    if (departments.length === 0) fail(403, "部门不能为空");
    for (const id of departments) {
      const d = this.departments.get(id);
      if (d === undefined || !d.active) fail(412, `部门不存在[${id}]`);
    }
    let wanted = optString(body, "defaultDepartment");
    if (by === "code" && wanted !== undefined) wanted = byCode("defaultDepartment", wanted);
    // A default outside `departments` is replaced by the first of them (add-staffs.md).
    const defaultDepartment = wanted !== undefined && departments.includes(wanted) ? wanted : departments[0]!;
    return { departments: [...new Set(departments)], defaultDepartment };
  }

  // ---------------------------------------------------------------- departments

  /**
   * `POST /api/openapi/v1/departments`: the parent must exist (create top-down); the name must be unique
   * among active siblings (412); a code equal to an active department's is refused, equal to a disabled
   * one's creates a new department.
   */
  createDepartment(body: Body): HesiDepartment {
    return this.atomically(() => {
      const name = optString(body, "name");
      if (!name) fail(400, "部门名称不能为空");
      if (typeof body.parentId !== "string") fail(400, "上级部门ID不能为空");
      const parentId = body.parentId === "" ? this.corpId : body.parentId;
      const parent = this.departments.get(parentId);
      if (parent === undefined || !parent.active) fail(412, "上级部门不存在");
      this.checkSiblingName(parentId, name, undefined);
      const code = optString(body, "code") ?? "";
      this.checkDepartmentCode(code, undefined);
      const t = this.now();
      const department: HesiDepartment = {
        id: `${this.corpId}:${this.mintId()}`,
        name,
        parentId,
        active: true,
        code,
        form: { ...objectOf(body.form) },
        order: typeof body.order === "number" ? body.order : 0,
        createTime: t,
        updateTime: t,
      };
      this.remember(this.departments, department.id, (v) => v);
      this.departments.set(department.id, department);
      return department;
    });
  }

  /** `POST /api/openapi/v1/departments/batch/create` `{departmentList}`: at most 100, parents must already exist. */
  createDepartmentBatch(body: Body): HesiDepartment[] {
    const list = batchList(body, "departmentList");
    return this.atomically(() =>
      list.map((item, i) => atIndex(i, () => this.createDepartment(objectOf(item)))),
    );
  }

  /** `PUT /api/openapi/v1/departments/update/$<id>`: same body as create; a new `parentId` moves it. */
  updateDepartment(id: string, body: Body): HesiDepartment {
    return this.atomically(() => {
      const department = this.departments.get(id);
      if (department === undefined) fail(412, "部门不存在");
      const name = optString(body, "name") ?? department.name;
      if (name === "") fail(400, "部门名称不能为空");
      let parentId = department.parentId;
      if (typeof body.parentId === "string" && id !== this.corpId) {
        parentId = body.parentId === "" ? this.corpId : body.parentId;
        const parent = this.departments.get(parentId);
        if (parent === undefined || !parent.active) fail(412, "上级部门不存在");
        if (this.subtree(id).has(parentId)) fail(412, "不能将部门移动到其子部门下");
      }
      if (name !== department.name || parentId !== department.parentId)
        this.checkSiblingName(parentId, name, id);
      const code = optString(body, "code");
      if (code !== undefined) this.checkDepartmentCode(code, id);
      this.editDepartment(department, (d) => {
        d.name = name;
        d.parentId = parentId;
        if (code !== undefined) d.code = code;
        if (body.form !== undefined) d.form = { ...objectOf(body.form) };
        if (typeof body.order === "number") d.order = body.order;
      });
      return department;
    });
  }

  /**
   * `PUT /api/openapi/v1/departments/disableOrEnableDepartment/$<id>?active=`: disabling cascades to
   * descendants and fails with 412 while active staff belong to any of them; enabling does not cascade.
   */
  setDepartmentActive(id: string, active: boolean | undefined): HesiDepartment {
    if (active === undefined) fail(400, "输入存在错误:\n- 开启或是停用参数不能为空");
    const department = this.departments.get(id);
    if (department === undefined) fail(412, "部门不存在");
    if (id === this.corpId && !active) fail(412, "根部门不能停用");
    return this.atomically(() => {
      if (active) {
        const parent = this.departments.get(department.parentId);
        if (parent !== undefined && !parent.active) fail(412, "上级部门已停用");
        this.editDepartment(department, (d) => (d.active = true));
        return department;
      }
      const subtree = this.subtree(id);
      for (const s of this.staff.values())
        if (s.active && s.departments.some((d) => subtree.has(d)))
          fail(412, "要停用部门下的员工，才能停用此部门");
      for (const d of subtree) {
        const dept = this.departments.get(d)!;
        if (dept.active) this.editDepartment(dept, (x) => (x.active = false));
      }
      return department;
    });
  }

  /** `GET /api/openapi/v1/departments`: every department, disabled ones included, 100 at most per page. */
  listDepartments(start: number, count: number, startDate?: number, endDate?: number): Page<HesiDepartment> {
    const all = [...this.departments.values()]
      .filter((d) => startDate === undefined || d.updateTime >= startDate)
      .filter((d) => endDate === undefined || d.updateTime <= endDate);
    return page(all, start, count);
  }

  /** `GET …/departments/$<idOrCode>?departmentBy=id|code`: active only. */
  getDepartment(key: string, by: "id" | "code"): HesiDepartment {
    const d =
      by === "id"
        ? this.departments.get(key)
        : [...this.departments.values()].find((x) => x.active && x.code === key);
    if (d === undefined || !d.active) fail(412, "部门不存在");
    return d;
  }

  /** `GET …/getDepartmentByPath?path=总公司/财务部`: the path starts at the root's name; active only. */
  getDepartmentByPath(path: string): HesiDepartment {
    const d = this.resolvePath(path.split("/").filter(Boolean), "name");
    if (d === undefined) fail(412, "部门不存在");
    return d;
  }

  /** `GET …/getDepartmentByName?name=`: active departments with that name. */
  getDepartmentsByName(name: string): HesiDepartment[] {
    return [...this.departments.values()].filter((d) => d.active && d.name === name);
  }

  /** Ids of a department and all its descendants. */
  subtree(id: string): Set<string> {
    const out = new Set([id]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const d of this.departments.values())
        if (!out.has(d.id) && out.has(d.parentId)) {
          out.add(d.id);
          grew = true;
        }
    }
    return out;
  }

  /** A department's path from the root, by name, code or id. */
  departmentPath(id: string, pathType: PathType): string[] {
    const out: string[] = [];
    let d = this.departments.get(id);
    while (d !== undefined) {
      out.unshift(pathType === "id" ? d.id : pathType === "code" ? d.code : d.name);
      d = d.parentId === "" ? undefined : this.departments.get(d.parentId);
    }
    return out;
  }

  private resolvePath(path: readonly string[], pathType: "name" | "code"): HesiDepartment | undefined {
    const root = this.departments.get(this.corpId)!;
    const key = (d: HesiDepartment): string => (pathType === "name" ? d.name : d.code);
    // The full path starts at the root; a path that leaves the root out is accepted too.
    let rest = path;
    if (rest.length > 0 && rest[0] === key(root)) rest = rest.slice(1);
    let current = root;
    for (const part of rest) {
      const child = [...this.departments.values()].find(
        (d) => d.active && d.parentId === current.id && key(d) === part,
      );
      if (child === undefined) return undefined;
      current = child;
    }
    return current.active ? current : undefined;
  }

  private checkSiblingName(parentId: string, name: string, self: string | undefined): void {
    for (const d of this.departments.values())
      if (d.id !== self && d.active && d.parentId === parentId && d.name === name)
        fail(412, "该部门在同级有相同的部门名称");
  }

  private checkDepartmentCode(code: string, self: string | undefined): void {
    if (code === "") return;
    for (const d of this.departments.values())
      if (d.id !== self && d.active && d.code === code) fail(412, "该部门编码已存在");
  }

  // ---------------------------------------------------------------- roles

  /** `GET /api/openapi/v1/roleDefGroups`. */
  listRoleGroups(): {
    id: string;
    name: string;
    roleDefs: { id: string; name: string; sourceType: string }[];
  }[] {
    return [...this.roleGroups.values()].map((g) => ({
      id: g.id,
      name: g.name,
      roleDefs: [...this.roles.values()]
        .filter((r) => r.roleGroupId === g.id)
        .map((r) => ({ id: r.id, name: r.name, sourceType: "organization.RoleDef" })),
    }));
  }

  /** `POST /api/openapi/v1/roledefs` `{name, scope, roleGroupId?, sourceChannel}`: names are unique (412). */
  createRole(body: Body): HesiRoleDef {
    const name = optString(body, "name");
    if (!name) fail(400, "角色名称不能为空");
    const scope = optString(body, "scope");
    if (!scope || !scope.endsWith("角色")) fail(400, "角色类型不正确");
    const sourceChannel = body.sourceChannel;
    if (sourceChannel !== "MANUAL" && sourceChannel !== "API") fail(400, "数据来源不正确");
    if ([...this.roles.values()].some((r) => r.name === name)) fail(412, "此名称的角色已经存在，请更换名称");
    const roleGroupId = optString(body, "roleGroupId") ?? `${this.corpId}:group:default`;
    if (!this.roleGroups.has(roleGroupId)) fail(412, "角色组不存在");
    const role: HesiRoleDef = { id: this.mintId(), name, scope, roleGroupId, sourceChannel, rows: [] };
    this.roles.set(role.id, role);
    return role;
  }

  /** `PUT /api/openapi/v1/roledefs/$<id>?name=`. */
  renameRole(id: string, name: string | undefined): HesiRoleDef {
    const role = this.roles.get(id);
    if (role === undefined) fail(412, "找不到角色");
    if (!name) fail(400, "角色名称不能为空");
    if ([...this.roles.values()].some((r) => r.id !== id && r.name === name))
      fail(412, "此名称的角色已经存在，请更换名称");
    role.name = name;
    return role;
  }

  /**
   * `GET /api/openapi/v1/roledefs/$<id>`: one row per department → members. A plain role's row has no
   * `path` (get-roles.md: "如果是普通角色，则无此节点").
   */
  getRole(
    id: string,
    staffBy: StaffBy,
    pathType: PathType,
  ): { id: string; name: string; contents: { path?: string[]; staffs: string[] }[] } {
    const role = this.roles.get(id);
    if (role === undefined) fail(400, "角色不存在");
    return {
      id: role.id,
      name: role.name,
      contents: role.rows.map((row) => ({
        ...(row.departmentId === null ? {} : { path: this.departmentPath(row.departmentId, pathType) }),
        staffs: row.staffs.map((s) => this.nameStaff(s, staffBy)),
      })),
    };
  }

  /**
   * `PUT /api/openapi/v1(.1)/roledefs/$<id>/staffs` `{contents:[{pathType, path, staffs}]}` (update-roles.md):
   * each sent row overwrites that department's row, `staffs: []` deletes it, rows not sent are kept
   * [reference §1.6: infer]. Any unknown path or staff rejects the whole request with
   * `412 数据错误:[i:路径不存在[部门], i:人员不存在[…]]`. v1 writes only roles whose source is API.
   */
  putRoleRows(id: string, body: Body, staffBy: StaffBy, version: "v1" | "v1.1"): void {
    const role = this.roles.get(id);
    if (role === undefined) fail(412, "找不到角色");
    if (version === "v1" && role.sourceChannel !== "API") fail(403, "没有权限同步此角色");
    if (!Array.isArray(body.contents)) fail(412, "参数contents不能为空");
    const plain = role.scope === PLAIN_ROLE;
    const errors: string[] = [];
    const rows: HesiRoleRow[] = [];
    body.contents.forEach((raw, i) => {
      const entry = objectOf(raw);
      if (entry.staffs === null || entry.staffs === undefined) fail(412, "参数staffs不能为空");
      if (!plain && (entry.path === null || entry.path === undefined)) fail(412, "参数path不能为空");
      let departmentId: string | null = null;
      if (!plain) {
        const pathType = (optString(entry, "pathType") ?? "name") as PathType;
        const path = stringList(entry.path);
        const found =
          role.scope !== DEPARTMENT_ROLE
            ? undefined // dimension items (档案) are not simulated
            : pathType === "id"
              ? // With pathType=id only the leaf id counts (a full id path works as well).
                this.activeDepartment(path[path.length - 1])
              : this.resolvePath(path, pathType === "code" ? "code" : "name");
        if (found === undefined)
          errors.push(`${i}:路径不存在[${role.scope === DEPARTMENT_ROLE ? "部门" : "档案"}]`);
        else departmentId = found.id;
      }
      const staffs = new Set<string>();
      for (const key of stringList(entry.staffs)) {
        const s = this.staffBy(key, staffBy);
        if (s === undefined) errors.push(`${i}:人员不存在[${key}]`);
        else staffs.add(s.id);
      }
      rows.push({ departmentId, staffs: [...staffs] });
    });
    if (errors.length > 0) fail(412, `数据错误:[${errors.join(", ")}]`);
    this.editRole(role, (r) => {
      for (const row of rows) {
        const at = r.rows.findIndex((x) => x.departmentId === row.departmentId);
        if (row.staffs.length === 0) {
          if (at >= 0) r.rows.splice(at, 1);
        } else if (at >= 0) r.rows[at] = row;
        else r.rows.push(row);
      }
    });
  }

  /** `DELETE /api/openapi/v1.1/roledefs/$<id>/staffs`: removes every row. */
  clearRole(id: string): void {
    const role = this.roles.get(id);
    if (role === undefined) fail(412, "找不到角色");
    this.grants = null;
    role.rows = [];
  }

  private activeDepartment(id: string | undefined): HesiDepartment | undefined {
    const d = id === undefined ? undefined : this.departments.get(id);
    return d?.active ? d : undefined;
  }

  private staffBy(key: string, by: StaffBy): HesiStaff | undefined {
    const matches =
      by === "id"
        ? [this.staff.get(key)].filter((s): s is HesiStaff => s !== undefined)
        : by === "sourceId"
          ? this.staffWith("userId", key)
          : by === "code"
            ? this.staffWith("code", key)
            : by === "cellphone"
              ? this.staffWith("phone", key)
              : this.staffWith("email", key.toLowerCase());
    return matches.find((s) => s.active);
  }

  private nameStaff(id: string, by: StaffBy): string {
    const s = this.staff.get(id);
    if (s === undefined) return id;
    return by === "id"
      ? s.id
      : by === "sourceId"
        ? s.userId
        : by === "code"
          ? s.code
          : by === "cellphone"
            ? s.cellphone
            : s.email;
  }
}

function cloneStaff(s: HesiStaff): HesiStaff {
  return { ...s, departments: [...s.departments], staffCustomForm: { ...s.staffCustomForm } };
}

function page<T>(all: readonly T[], start: number, count: number): Page<T> {
  if (!Number.isInteger(start) || start < 0) fail(400, "start必须是大于等于0的整数");
  if (!Number.isInteger(count) || count < 1) fail(400, "count必须是大于0的整数");
  // count above 100 is capped, not refused [reference §1.7: "max 100"; the answer to more is not stated].
  return { count: all.length, items: all.slice(start, start + Math.min(count, PAGE_MAX)) };
}

function batchList(body: Body, field: string): unknown[] {
  const list = body[field];
  if (!Array.isArray(list) || list.length === 0) fail(400, `${field}不能为空`);
  if (list.length > BATCH_MAX) fail(400, `${field}最多${BATCH_MAX}条`);
  return list;
}

/** Prefixes a failure of one batch item with its index. */
function atIndex<T>(i: number, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof Error && "status" in error) {
      error.message = `第${i + 1}条数据：${error.message}`;
    }
    throw error;
  }
}

function optString(body: Body, key: string): string | undefined {
  const v = body[key];
  return typeof v === "string" ? v : undefined;
}

function objectOf(v: unknown): Body {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Body) : {};
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
