import type { SimPerson } from "../common/org.js";
import type { DingTalkOrgIndex } from "./org-index.js";
import type { DingTalkPermissions } from "./state.js";

/**
 * A person as `topapi/v2/user/list` lists them (reference A6): native JSON types; mobile/state_code only
 * with the mobile permission, email/org_email only with the email permission — omitted, never blank.
 * `leader` answers for the queried department.
 */
export function presentListUser(
  index: DingTalkOrgIndex,
  permissions: DingTalkPermissions,
  person: SimPerson,
  deptId: number,
): Record<string, unknown> {
  return {
    userid: person.userid,
    unionid: person.unionid,
    name: person.name,
    avatar: "",
    ...(permissions.mobile ? { state_code: "86", mobile: person.mobile } : {}),
    hide_mobile: false,
    job_number: person.jobNumber,
    title: person.title,
    ...(permissions.email ? { email: person.email, org_email: person.email } : {}),
    dept_id_list: person.departments,
    dept_order: person.order,
    hired_date: person.hiredAt,
    active: person.status === "active",
    admin: index.boss === person.userid,
    boss: index.boss === person.userid,
    leader: index.leads(person, deptId),
    exclusive_account: false,
  };
}

/** A person as `topapi/v2/user/get` returns them: the list fields plus manager, leader and role details. */
export function presentUserDetail(
  index: DingTalkOrgIndex,
  permissions: DingTalkPermissions,
  person: SimPerson,
): Record<string, unknown> {
  const { leader: _leader, dept_order: _order, ...listed } = presentListUser(index, permissions, person, 0);
  const manager =
    person.manager !== undefined && index.people.has(person.manager) ? person.manager : undefined;
  return {
    ...listed,
    ...(manager === undefined ? {} : { manager_userid: manager }),
    real_authed: person.status === "active",
    senior: false,
    dept_order_list: person.departments.map((dept_id) => ({ dept_id, order: person.order })),
    leader_in_dept: person.departments.map((dept_id) => ({ dept_id, leader: index.leads(person, dept_id) })),
    role_list: (index.rolesOf.get(person.userid) ?? []).map((role) => ({
      id: role.id,
      name: role.name,
      group_name: role.group.name,
    })),
    union_emp_ext: {},
  };
}
