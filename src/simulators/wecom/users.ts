import { createHash } from "node:crypto";
import type { SimPerson, SimStatus } from "../common/org.js";
import { canSeeDepartment, type Principal, type WeComSimState } from "./state.js";

/**
 * WeCom member status: 1 active, 2 disabled, 4 not activated, 5 left the corp (WX-DOC 90196). Decision:
 * members who left stay listed everywhere with status 5 (the status the docs define for them) rather than
 * disappearing, so a reader has to map the status and cannot rely on absence alone.
 */
const STATUS: Record<SimStatus, number> = { active: 1, disabled: 2, "not-activated": 4, left: 5 };

// Apps created after 2022-06-20 no longer get avatar, thumb_avatar, gender, mobile, email, biz_mail, qr_code
// and address from user/get and user/list (WX-DOC 96255, 96260).

/** Values derived by hashing, computed once per person (100,000 people are listed again and again). */
interface Derived {
  readonly openUserid: string;
  readonly gender: string;
  readonly avatarKey: string;
  readonly bizMail: string;
}

const derivedByState = new WeakMap<WeComSimState, Map<string, Derived>>();

function derived(state: WeComSimState, p: SimPerson): Derived {
  let cache = derivedByState.get(state);
  if (cache === undefined) derivedByState.set(state, (cache = new Map()));
  let entry = cache.get(p.userid);
  if (entry === undefined) {
    const digest = createHash("sha256").update(p.userid).digest();
    entry = {
      openUserid: `wo${createHash("sha256").update(`${state.corpId}/${p.userid}`).digest("hex").slice(0, 30)}`,
      gender: String(1 + (digest[0]! % 2)),
      avatarKey: digest.toString("hex").slice(0, 24),
      bizMail: `${p.userid}@${state.index.org.domain.replace(/\..*$/, "")}.wecom.work`,
    };
    cache.set(p.userid, entry);
  }
  return entry;
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
    open_userid: derived(state, p).openUserid,
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
  const d = derived(state, p);
  const restricted = principal.kind === "app" && principal.app.createdAfter2022;
  // Built in one go (no `delete`): the restricted fields are simply not added.
  return {
    userid: p.userid,
    name: p.name,
    department: departments,
    order: departments.map((id) => (id === p.departments[0] ? p.order : 0)),
    position: p.title,
    ...(restricted ? {} : { mobile: p.mobile, gender: d.gender, email: p.email, biz_mail: d.bizMail }),
    is_leader_in_dept: departments.map((id) => (p.leaderOf.includes(id) ? 1 : 0)),
    direct_leader: p.manager === undefined ? [] : [p.manager],
    ...(restricted
      ? {}
      : {
          avatar: `https://wework.qpic.cn/wwhead/${d.avatarKey}/0`,
          thumb_avatar: `https://wework.qpic.cn/wwhead/${d.avatarKey}/100`,
        }),
    telephone: "",
    alias: p.pinyin,
    ...(restricted ? {} : { address: "" }),
    open_userid: d.openUserid,
    main_department: p.departments[0],
    extattr: { attrs: [{ type: 0, name: "工号", text: { value: p.jobNumber } }] },
    status: STATUS[p.status],
    ...(restricted
      ? {}
      : { qr_code: `https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=${d.avatarKey.slice(0, 16)}` }),
    external_position: "",
    ...extra,
  };
}

/** True when the caller may read the person (some department of theirs is in its visible range). */
export function canSeePerson(state: WeComSimState, principal: Principal, p: SimPerson): boolean {
  return p.departments.some((d) => canSeeDepartment(state, principal, d));
}
