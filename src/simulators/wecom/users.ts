import { createHash } from "node:crypto";
import type { SimPerson, SimStatus } from "../common/org.js";
import { canSeeDepartment, type Principal, type WeComSimState } from "./state.js";

/** WeCom member status: 1 active, 2 disabled, 4 not activated, 5 left the corp (WX-DOC 90196). */
const STATUS: Record<SimStatus, number> = { active: 1, disabled: 2, "not-activated": 4, left: 5 };

/** Fields that apps created after 2022-06-20 no longer get from user/get and user/list (WX-DOC 96255). */
const RESTRICTED = ["avatar", "thumb_avatar", "gender", "mobile", "email", "biz_mail", "qr_code", "address"];

function openUserid(state: WeComSimState, userid: string): string {
  return `wo${createHash("sha256").update(`${state.corpId}/${userid}`).digest("hex").slice(0, 30)}`;
}

/** user/simplelist row. */
export function renderSimpleUser(
  state: WeComSimState,
  principal: Principal,
  p: SimPerson,
): Record<string, unknown> {
  return {
    userid: p.userid,
    name: p.name,
    department: visibleDepartments(state, principal, p),
    open_userid: openUserid(state, p.userid),
  };
}

function visibleDepartments(state: WeComSimState, principal: Principal, p: SimPerson): number[] {
  return p.departments.filter((d) => canSeeDepartment(state, principal, d));
}

/**
 * The user object of user/get and user/list. Decision [unverified]: `department` lists only departments
 * the caller can see, so an app never learns ids outside its visible range; `order` and
 * `is_leader_in_dept` follow it index by index. The job number travels as the 工号 extattr.
 */
export function renderUser(
  state: WeComSimState,
  principal: Principal,
  p: SimPerson,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const departments = visibleDepartments(state, principal, p);
  const digest = createHash("sha256").update(p.userid).digest();
  const user: Record<string, unknown> = {
    userid: p.userid,
    name: p.name,
    department: departments,
    order: departments.map((d) => (d === p.departments[0] ? p.order : 0)),
    position: p.title,
    mobile: p.mobile,
    gender: String(1 + (digest[0]! % 2)),
    email: p.email,
    biz_mail: `${p.userid}@${state.index.org.domain.replace(/\..*$/, "")}.wecom.work`,
    is_leader_in_dept: departments.map((d) => (p.leaderOf.includes(d) ? 1 : 0)),
    direct_leader: p.manager === undefined ? [] : [p.manager],
    avatar: `https://wework.qpic.cn/wwhead/${digest.toString("hex").slice(0, 24)}/0`,
    thumb_avatar: `https://wework.qpic.cn/wwhead/${digest.toString("hex").slice(0, 24)}/100`,
    telephone: "",
    alias: p.pinyin,
    address: "",
    open_userid: openUserid(state, p.userid),
    main_department: p.departments[0],
    extattr: { attrs: [{ type: 0, name: "工号", text: { value: p.jobNumber } }] },
    status: STATUS[p.status],
    qr_code: `https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=${digest.toString("hex").slice(0, 16)}`,
    external_position: "",
    ...extra,
  };
  if (principal.kind === "app" && principal.app.createdAfter2022)
    for (const field of RESTRICTED) delete user[field];
  return user;
}

/** True when the caller may read the person (some department of theirs is in its visible range). */
export function canSeePerson(state: WeComSimState, principal: Principal, p: SimPerson): boolean {
  return p.departments.some((d) => canSeeDepartment(state, principal, d));
}
