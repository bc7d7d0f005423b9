import { setMaxListeners } from "node:events";
import { SnapshotBuilder, isSourceReadError } from "../builder.js";
import type { DirectorySnapshot, IncompleteCode, IncompleteReason, SourceDepartment } from "../snapshot.js";
import type { DirectoryReader, ReadOptions, SourceContext, SourceTestReport } from "../source.js";
import { DingTalkClient } from "./client.js";
import type { DingTalkConfig } from "./config.js";
import { fromUserDetail, fromUserList } from "./person.js";
import type { Endpoint } from "./replies.js";
import {
  departmentSchema,
  roleGroupPageSchema,
  roleMemberPageSchema,
  subDepartmentsSchema,
  userDetailSchema,
  userPageSchema,
  type ListedUser,
} from "./schemas.js";

export const DINGTALK_SOURCE_TYPE = "dingtalk";

/** The endpoints a read calls (reference A6), with the permission point each needs. */
const ENDPOINTS = {
  listSubDepartments: { path: "/topapi/v2/department/listsubid", permission: "qyapi_get_department_list" },
  getDepartment: { path: "/topapi/v2/department/get", permission: "qyapi_get_department_list" },
  listUsers: { path: "/topapi/v2/user/list", permission: "qyapi_get_department_member" },
  getUser: { path: "/topapi/v2/user/get", permission: "qyapi_get_member" },
  listRoles: { path: "/topapi/role/list", permission: "qyapi_get_department_list" },
  listRoleMembers: { path: "/topapi/role/simplelist", permission: "qyapi_get_department_member" },
} as const satisfies Record<string, Endpoint>;

// DingTalk: user/list pages are 1..100; role/list pages up to 200; role/simplelist up to 100.
const USER_PAGE = 100;
const ROLE_GROUP_PAGE = 200;
const ROLE_MEMBER_PAGE = 100;

// After these nothing else can succeed in this read: stop instead of piling up the same reason.
const FATAL: ReadonlySet<IncompleteCode> = new Set([
  "AUTH_FAILED",
  "BANNED",
  "ABORTED",
  "TLS_FAILED",
  "UNREACHABLE",
]);

const MOBILE_UNAVAILABLE =
  "DingTalk sent no mobile number for anyone: the app lacks the 企业员工手机号信息 permission (grant it in the developer console)";
const EMAIL_UNAVAILABLE =
  "DingTalk sent no email for anyone: the app lacks the 邮箱等个人信息 permission (grant it in the developer console)";
const MANAGERS_UNAVAILABLE =
  "user/list carries no manager; set fetchUserDetails: true to read manager_userid with one user/get call per person";

/** Opens a reader of one DingTalk org. Nothing is called until `test()` or `read()`. */
export function openDingTalkDirectory(context: SourceContext, config: DingTalkConfig): DirectoryReader {
  return {
    test: () => testDingTalk(context, config),
    read: (options) => new DingTalkRead(context, config, options ?? { mode: "full" }).run(),
    close: () => Promise.resolve(),
  };
}

/**
 * One full read: a breadth-first walk from the root department (listsubid for the children, department/get
 * for name, order and managers, user/list pages of 100 for the direct members), roles alongside, and
 * user/get per person when `fetchUserDetails` is on. Each API runs under its own rate limit, so the walk
 * takes about as long as the busiest API needs (user/list: one call per department and 100 members).
 */
class DingTalkRead {
  private readonly builder: SnapshotBuilder;
  private readonly client: DingTalkClient;
  private readonly departments = new Map<string, SourceDepartment>();
  private readonly leaders = new Map<string, Set<string>>();
  private readonly visited = new Set<number>();
  private readonly detailed = new Set<string>();
  private readonly details: Promise<unknown>[] = [];
  private readonly denied = new Set<string>();
  private stopped = false;
  private readonly halt = new AbortController();
  private withMobile = 0;
  private withEmail = 0;
  private departmentsDone = 0;

  constructor(
    private readonly context: SourceContext,
    private readonly config: DingTalkConfig,
    private readonly options: ReadOptions,
  ) {
    this.builder = new SnapshotBuilder(context, DINGTALK_SOURCE_TYPE, "full");
    // Calls already queued behind the rate limits must not go out after a fatal problem (a ban especially).
    const signal = options.signal ? AbortSignal.any([options.signal, this.halt.signal]) : this.halt.signal;
    // Every request and every wait in flight listens to it: dozens at once is expected, not a leak.
    setMaxListeners(0, signal);
    this.client = new DingTalkClient(context, config, signal);
  }

  async run(): Promise<DirectorySnapshot> {
    if (this.options.mode === "incremental") {
      this.builder.warn(
        `${this.context.sourceId}: DingTalk has no incremental directory read; read everything instead`,
      );
    }
    await Promise.all([
      this.walk(this.config.rootDepartmentId, true),
      this.config.readRoles ? this.readRoles() : Promise.resolve(),
    ]);
    await Promise.all(this.details);
    for (const department of this.departments.values()) {
      const leaders = [...new Set([...department.leaders, ...(this.leaders.get(department.id) ?? [])])];
      this.builder.addDepartment({ ...department, leaders });
    }
    const people = this.builder.peopleCount;
    if (people > 0 && this.withMobile === 0) this.builder.markUnavailable("mobile", MOBILE_UNAVAILABLE);
    if (people > 0 && this.withEmail === 0) this.builder.markUnavailable("email", EMAIL_UNAVAILABLE);
    if (!this.config.fetchUserDetails) this.builder.markUnavailable("managers", MANAGERS_UNAVAILABLE);
    return this.builder.finish();
  }

  /** Reads a department, its members and (concurrently) its subtree. */
  private async walk(id: number, isRoot: boolean): Promise<void> {
    if (this.visited.has(id)) return;
    this.visited.add(id);
    const own = Promise.all([this.readDepartment(id, isRoot), this.readMembers(id)]).then(() => {
      this.departmentsDone++;
      this.options.onProgress?.({ phase: "departments", done: this.departmentsDone });
    });
    // The subtree starts as soon as the children are known, not after this department's members.
    const children = await this.step(ENDPOINTS.listSubDepartments, () =>
      this.client.post(
        ENDPOINTS.listSubDepartments,
        { dept_id: id },
        `POST ${ENDPOINTS.listSubDepartments.path} dept ${id}`,
        subDepartmentsSchema,
      ),
    );
    const subtree = (children?.result.dept_id_list ?? []).map((child) => this.walk(child, false));
    await Promise.all([own, ...subtree]);
  }

  private async readDepartment(id: number, isRoot: boolean): Promise<void> {
    const reply = await this.step(ENDPOINTS.getDepartment, () =>
      this.client.post(
        ENDPOINTS.getDepartment,
        { dept_id: id },
        `POST ${ENDPOINTS.getDepartment.path} dept ${id}`,
        departmentSchema,
      ),
    );
    if (reply === undefined) return;
    const dept = reply.result;
    this.departments.set(String(id), {
      id: String(id),
      // The walk's root is a root of this snapshot even when it has a parent in DingTalk.
      parentId:
        isRoot || dept.parent_id === undefined || dept.parent_id === 0 ? null : String(dept.parent_id),
      name: dept.name,
      order: dept.order ?? 0,
      leaders: dept.dept_manager_userid_list ?? [],
    });
  }

  /** Pages through the direct members of a department; the cursor is DingTalk's, repeated as is on retry. */
  private async readMembers(id: number): Promise<void> {
    let cursor = 0;
    for (;;) {
      const at = cursor;
      const where = `POST ${ENDPOINTS.listUsers.path} dept ${id} cursor ${at}`;
      const page = await this.step(ENDPOINTS.listUsers, () =>
        this.client.post(
          ENDPOINTS.listUsers,
          { dept_id: id, cursor: at, size: USER_PAGE },
          where,
          userPageSchema,
        ),
      );
      if (page === undefined) return;
      const { has_more, next_cursor, list } = page.result;
      for (const user of list) this.addListed(user, id);
      this.options.onProgress?.({ phase: "people", done: this.builder.peopleCount });
      if (!has_more) return;
      if (next_cursor === undefined || next_cursor <= at) {
        this.record({
          code: "MALFORMED_RESPONSE",
          message: `${this.context.sourceId}: DingTalk answered ${where} with next_cursor ${next_cursor} that does not move forward; the department's remaining members were not read`,
          where,
        });
        return;
      }
      cursor = next_cursor;
    }
  }

  private addListed(user: ListedUser, deptId: number): void {
    const known = this.builder.getPerson(user.userid) !== undefined;
    const person = fromUserList(user, deptId);
    this.builder.addPerson(person);
    if (user.leader === true) this.leaderOf(String(deptId)).add(user.userid);
    if (known) return;
    if (person.mobile !== undefined) this.withMobile++;
    if (person.email !== undefined) this.withEmail++;
    if (this.config.fetchUserDetails && !this.detailed.has(user.userid)) {
      this.detailed.add(user.userid);
      this.details.push(this.readDetail(user.userid));
    }
  }

  private async readDetail(userid: string): Promise<void> {
    const reply = await this.step(ENDPOINTS.getUser, () =>
      this.client.post(
        ENDPOINTS.getUser,
        { userid },
        `POST ${ENDPOINTS.getUser.path} userid ${userid}`,
        userDetailSchema,
      ),
    );
    if (reply !== undefined) this.builder.addPerson(fromUserDetail(reply.result));
  }

  /** Roles (kind `role`, path = role group) and role groups (kind `role-group`, members of all its roles). */
  private async readRoles(): Promise<void> {
    const groups: { groupId: number; name: string; roles: { id: number; name: string }[] }[] = [];
    for (let offset = 0; ; offset += ROLE_GROUP_PAGE) {
      const where = `POST ${ENDPOINTS.listRoles.path} offset ${offset}`;
      const page = await this.step(ENDPOINTS.listRoles, () =>
        this.client.post(ENDPOINTS.listRoles, { offset, size: ROLE_GROUP_PAGE }, where, roleGroupPageSchema),
      );
      if (page === undefined) return;
      groups.push(...page.result.list);
      if (!page.result.hasMore) break;
      if (page.result.list.length === 0) {
        this.record({
          code: "MALFORMED_RESPONSE",
          message: `${this.context.sourceId}: DingTalk answered ${where} with an empty page and hasMore true; the remaining role groups were not read`,
          where,
        });
        return;
      }
    }
    await Promise.all(
      groups.map(async (group) => {
        const members = await Promise.all(group.roles.map((role) => this.readRole(role, group.name)));
        if (members.some((m) => m === undefined)) return;
        this.builder.addGroup({
          id: `group-${group.groupId}`,
          name: group.name,
          kind: "role-group",
          members: [...new Set(members.flatMap((m) => m!))],
          directMembers: [],
        });
      }),
    );
  }

  /** A role's members, or undefined when they could not all be read (the role is then left out). */
  private async readRole(
    role: { id: number; name: string },
    groupName: string,
  ): Promise<string[] | undefined> {
    const members: string[] = [];
    for (let offset = 0; ; offset += ROLE_MEMBER_PAGE) {
      const where = `POST ${ENDPOINTS.listRoleMembers.path} role ${role.id} offset ${offset}`;
      const page = await this.step(ENDPOINTS.listRoleMembers, () =>
        this.client.post(
          ENDPOINTS.listRoleMembers,
          { role_id: role.id, offset, size: ROLE_MEMBER_PAGE },
          where,
          roleMemberPageSchema,
        ),
      );
      if (page === undefined) return undefined;
      members.push(...page.result.list.map((m) => m.userid));
      if (!page.result.hasMore) break;
      if (page.result.list.length === 0) {
        this.record({
          code: "MALFORMED_RESPONSE",
          message: `${this.context.sourceId}: DingTalk answered ${where} with an empty page and hasMore true; the role's remaining members were not read`,
          where,
        });
        return undefined;
      }
    }
    const unique = [...new Set(members)];
    this.builder.addGroup({
      id: String(role.id),
      name: role.name,
      path: groupName,
      kind: "role",
      members: unique,
      directMembers: unique,
    });
    return unique;
  }

  /**
   * Runs one call; a source problem is recorded and gives undefined. After a fatal problem (credentials,
   * ban, abort, network) nothing more is called; after a missing permission point, that endpoint is not called again.
   */
  private async step<T>(endpoint: Endpoint, run: () => Promise<T>): Promise<T | undefined> {
    if (this.stopped || this.denied.has(endpoint.path)) return undefined;
    try {
      return await run();
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      if (this.stopped || this.denied.has(endpoint.path)) return undefined;
      this.record(error.reason);
      // A permission point refused covers the whole API (the reason then names the endpoint, not a page).
      if (error.reason.code === "PERMISSION_DENIED" && error.reason.where === endpoint.path) {
        this.denied.add(endpoint.path);
      }
      return undefined;
    }
  }

  private record(reason: IncompleteReason): void {
    this.builder.fail(reason);
    if (FATAL.has(reason.code) || this.builder.giveUpIfFailing()) {
      this.stopped = true;
      this.halt.abort();
    }
  }

  private leaderOf(deptId: string): Set<string> {
    let set = this.leaders.get(deptId);
    if (set === undefined) {
      set = new Set();
      this.leaders.set(deptId, set);
    }
    return set;
  }
}

/**
 * `idbridge sources test`: the token, the root department and its sub-departments, one page of people,
 * and one page of roles; reports missing permissions and fields DingTalk will not send.
 */
async function testDingTalk(context: SourceContext, config: DingTalkConfig): Promise<SourceTestReport> {
  const client = new DingTalkClient(context, config);
  const found: string[] = [];
  const problems: IncompleteReason[] = [];
  const unavailableFields: { field: string; reason: string }[] = [];
  const attempt = async <T>(run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run();
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      problems.push(error.reason);
      return undefined;
    }
  };

  if ((await attempt(() => client.tokens.get())) === undefined) {
    return { ok: false, found, problems, unavailableFields };
  }
  found.push(`authenticated as app ${config.appKey}${config.corpId ? ` of org ${config.corpId}` : ""}`);

  const root = config.rootDepartmentId;
  const dept = await attempt(() =>
    client.post(
      ENDPOINTS.getDepartment,
      { dept_id: root },
      `POST ${ENDPOINTS.getDepartment.path} dept ${root}`,
      departmentSchema,
    ),
  );
  if (dept !== undefined) found.push(`root department ${dept.result.name} (id ${root})`);
  const children = await attempt(() =>
    client.post(
      ENDPOINTS.listSubDepartments,
      { dept_id: root },
      `POST ${ENDPOINTS.listSubDepartments.path} dept ${root}`,
      subDepartmentsSchema,
    ),
  );
  if (children !== undefined) found.push(`${children.result.dept_id_list.length} sub-departments below it`);

  // The root often has few direct members; the first sub-department shows more of what DingTalk sends.
  const sample = [root, ...(children?.result.dept_id_list.slice(0, 1) ?? [])];
  const users: ListedUser[] = [];
  for (const id of sample) {
    const page = await attempt(() =>
      client.post(
        ENDPOINTS.listUsers,
        { dept_id: id, cursor: 0, size: USER_PAGE },
        `POST ${ENDPOINTS.listUsers.path} dept ${id} cursor 0`,
        userPageSchema,
      ),
    );
    if (page === undefined) break;
    users.push(...page.result.list);
    found.push(
      `${page.result.list.length} people on the first page of department ${id}${page.result.has_more ? " (more pages follow)" : ""}`,
    );
  }
  if (users.length > 0 && users.every((u) => !u.mobile))
    unavailableFields.push({ field: "mobile", reason: MOBILE_UNAVAILABLE });
  if (users.length > 0 && users.every((u) => !u.email && !u.org_email)) {
    unavailableFields.push({ field: "email", reason: EMAIL_UNAVAILABLE });
  }
  if (!config.fetchUserDetails) unavailableFields.push({ field: "managers", reason: MANAGERS_UNAVAILABLE });
  else if (users[0] !== undefined) {
    const userid = users[0].userid;
    const detail = await attempt(() =>
      client.post(
        ENDPOINTS.getUser,
        { userid },
        `POST ${ENDPOINTS.getUser.path} userid ${userid}`,
        userDetailSchema,
      ),
    );
    if (detail !== undefined) found.push(`details of ${userid} readable (user/get)`);
  }
  if (config.readRoles) {
    const roles = await attempt(() =>
      client.post(
        ENDPOINTS.listRoles,
        { offset: 0, size: ROLE_GROUP_PAGE },
        `POST ${ENDPOINTS.listRoles.path} offset 0`,
        roleGroupPageSchema,
      ),
    );
    if (roles !== undefined) {
      const count = roles.result.list.reduce((n, g) => n + g.roles.length, 0);
      found.push(`${roles.result.list.length} role groups with ${count} roles`);
    }
  }
  return { ok: problems.length === 0, found, problems, unavailableFields };
}
