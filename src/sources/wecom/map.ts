import type { PersonStatus, SourceDepartment, SourcePerson } from "../snapshot.js";
import type { WeComDepartment, WeComUser } from "./schemas.js";

// WX-DOC 90196: 1 active, 2 disabled, 4 not activated (still a member: active, attribute activated=false),
// 5 left the corp.
const STATUS: Record<WeComUser["status"], PersonStatus> = {
  1: "active",
  2: "disabled",
  4: "active",
  5: "left",
};

/** WeCom sends "" for unset text fields; absent and empty both mean "not told". */
const text = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value;

/** A WeCom user as a `SourcePerson` (subject = userid). */
export function toPerson(user: WeComUser, employeeNoAttribute: string): SourcePerson {
  const main = user.main_department ?? user.department[0];
  const employeeNo = text(user.extattr?.attrs?.find((a) => a.name === employeeNoAttribute)?.text?.value);
  const email = text(user.email) ?? text(user.biz_mail);
  const attributes: Record<string, string> = {};
  for (const [key, value] of [
    ["gender", user.gender],
    ["alias", user.alias],
    ["english_name", user.english_name],
    ["telephone", user.telephone],
    ["open_userid", user.open_userid],
    ["biz_mail", user.biz_mail],
  ] as const) {
    const v = text(value);
    if (v !== undefined) attributes[key] = v;
  }
  if (user.status === 4) attributes.activated = "false";
  return {
    subject: user.userid,
    username: user.userid,
    name: user.name,
    ...(email === undefined ? {} : { email }),
    ...(text(user.mobile) === undefined ? {} : { mobile: user.mobile }),
    ...(employeeNo === undefined ? {} : { employeeNo }),
    ...(text(user.position) === undefined ? {} : { title: user.position }),
    departments: user.department.map((id, i) => ({
      departmentId: String(id),
      main: id === main,
      leader: user.is_leader_in_dept?.[i] === 1,
    })),
    managers: user.direct_leader ?? [],
    status: STATUS[user.status],
    attributes,
  };
}

/** A WeCom department as a `SourceDepartment`; a parent outside what was read makes it a root. */
export function toDepartment(dept: WeComDepartment, known: ReadonlySet<number>): SourceDepartment {
  return {
    id: String(dept.id),
    parentId: dept.parentid === 0 || !known.has(dept.parentid) ? null : String(dept.parentid),
    name: dept.name,
    order: dept.order ?? 0,
    leaders: dept.department_leader ?? [],
  };
}
