import type { DepartmentMembership, SourcePerson } from "../snapshot.js";
import type { ListedUser, UserDetail } from "./schemas.js";

/**
 * A DingTalk person as a `SourcePerson`. DingTalk omits fields the app may not see (mobile without
 * 企业员工手机号信息, email without 邮箱等个人信息) and empty ones; both stay absent here, never blank.
 *
 * Status: everyone DingTalk lists is `active` — people who left are simply not listed, and a person who
 * has not activated the account yet (`active: false`) is still a member, marked `activated: "false"`.
 * The main department: DingTalk's user/list and user/get do not mark one; `dept_id_list` lists it first
 * [unverified: observed order, not documented], so the first entry is taken as main.
 */
export function toSourcePerson(
  user: ListedUser,
  leaderOf: (deptId: number) => boolean,
  managers: readonly string[],
): SourcePerson {
  const departments: DepartmentMembership[] = user.dept_id_list.map((id, i) => ({
    departmentId: String(id),
    main: i === 0,
    leader: leaderOf(id),
  }));
  const email = present(user.org_email) ?? present(user.email);
  const attributes: Record<string, string> = { activated: String(user.active !== false) };
  if (user.admin !== undefined) attributes.admin = String(user.admin);
  if (user.boss !== undefined) attributes.boss = String(user.boss);
  if (present(user.state_code) !== undefined) attributes.stateCode = user.state_code!;
  if (present(user.email) !== undefined && user.email !== email) attributes.personalEmail = user.email!;
  return {
    subject: user.userid,
    ...(present(user.unionid) === undefined ? {} : { altIds: { unionid: user.unionid! } }),
    username: user.userid,
    ...optional("name", present(user.name)),
    ...optional("email", email),
    ...optional("mobile", present(user.mobile)),
    ...optional("employeeNo", present(user.job_number)),
    ...optional("title", present(user.title)),
    departments,
    managers,
    status: "active",
    attributes,
  };
}

/** A person from user/list, seen in department `deptId` (whose `leader` flag the item carries). */
export function fromUserList(user: ListedUser, deptId: number): SourcePerson {
  const listed = user.dept_id_list.includes(deptId)
    ? user
    : { ...user, dept_id_list: [...user.dept_id_list, deptId] };
  return toSourcePerson(listed, (id) => id === deptId && user.leader === true, []);
}

/** A person from user/get: manager and the leader flag of every department. */
export function fromUserDetail(user: UserDetail): SourcePerson {
  const leads = new Set((user.leader_in_dept ?? []).filter((d) => d.leader).map((d) => d.dept_id));
  const manager = present(user.manager_userid);
  return toSourcePerson(user, (id) => leads.has(id), manager === undefined ? [] : [manager]);
}

function present(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
