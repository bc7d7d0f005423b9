import express, { type Router } from "express";
import { legacyEndpoint, type LegacyResult } from "../gate.js";
import { intParam, stringParam } from "../params.js";
import { presentListUser, presentUserDetail } from "../present.js";
import type { DingTalkSimState } from "../state.js";

// DingTalk: user/list pages are 1..100, cursor 0..100000 (DTNET OapiV2UserListRequest validation).
const USER_PAGE_MAX = 100;
const CURSOR_MAX = 100_000;

const BAD_PARAM = { errcode: 40035, errmsg: "不合法的参数" } as const;
const NO_DEPT = { errcode: 60003, errmsg: "部门不存在" } as const;

/**
 * Directory reads on the legacy API (reference A6), all `POST /topapi/...?access_token=` with a JSON (or
 * form) body: the department tree and the people in it.
 */
export function directoryRouter(state: DingTalkSimState): Router {
  const router = express.Router();
  const { index, permissions } = state;
  router.use("/topapi", express.json(), express.urlencoded({ extended: false }));

  /** The department named by `dept_id`, or the error for a missing/unknown one. */
  const department = (body: Record<string, unknown>): number | LegacyResult => {
    const id = intParam(body, "dept_id");
    if (id === undefined || Number.isNaN(id)) return BAD_PARAM;
    return index.departments.has(id) ? id : NO_DEPT;
  };

  // Direct children only; not limited by the contact scope.
  router.post(
    "/topapi/v2/department/listsubid",
    legacyEndpoint(state, "qyapi_get_department_list", (body) => {
      const id = department(body);
      if (typeof id !== "number") return id;
      return { payload: { result: { dept_id_list: index.children.get(id) ?? [] } } };
    }),
  );

  // One level only.
  router.post(
    "/topapi/v2/department/listsub",
    legacyEndpoint(state, "qyapi_get_department_list", (body) => {
      const id = department(body);
      if (typeof id !== "number") return id;
      const result = (index.children.get(id) ?? []).map((child) => ({
        dept_id: child,
        name: index.departments.get(child)!.name,
        parent_id: id,
        create_dept_group: true,
        auto_add_user: true,
      }));
      return { payload: { result } };
    }),
  );

  router.post(
    "/topapi/v2/department/get",
    legacyEndpoint(state, "qyapi_get_department_list", (body) => {
      const id = department(body);
      if (typeof id !== "number") return id;
      const dept = index.departments.get(id)!;
      const managers = dept.leaders.filter((userid) => index.people.has(userid));
      const members = index.members.get(id)!.length;
      return {
        payload: {
          result: {
            dept_id: dept.id,
            name: dept.name,
            // The root reports no parent.
            ...(dept.parentId === 0 ? {} : { parent_id: dept.parentId }),
            order: dept.order,
            source_identifier: "",
            ...(managers.length > 0 ? { dept_manager_userid_list: managers } : {}),
            org_dept_owner: managers[0] ?? "",
            hide_dept: false,
            outer_dept: false,
            create_dept_group: true,
            auto_add_user: true,
            group_contain_sub_dept: false,
            member_count: members,
            owning_member_count: members,
          },
        },
      };
    }),
  );

  // Direct members' userids; not limited by the contact scope.
  router.post(
    "/topapi/user/listid",
    legacyEndpoint(state, "qyapi_get_member", (body) => {
      const id = department(body);
      if (typeof id !== "number") return id;
      return { payload: { result: { userid_list: index.members.get(id)!.map((p) => p.userid) } } };
    }),
  );

  // Direct members, paged: cursor is an offset, next_cursor only while has_more.
  router.post(
    "/topapi/v2/user/list",
    legacyEndpoint(state, "qyapi_get_department_member", (body) => {
      const id = department(body);
      if (typeof id !== "number") return id;
      const cursor = intParam(body, "cursor");
      const size = intParam(body, "size");
      if (cursor === undefined || Number.isNaN(cursor) || cursor < 0 || cursor > CURSOR_MAX) return BAD_PARAM;
      if (size === undefined || Number.isNaN(size) || size < 1 || size > USER_PAGE_MAX) return BAD_PARAM;
      // DingTalk: user/list is limited by the app's contact scope (50004), listsubid and listid are not.
      if (state.contactScope !== null && !state.contactScope.has(id)) {
        return { errcode: 50004, errmsg: "部门不在授权范围内" };
      }
      const members = index.members.get(id)!;
      const list = members
        .slice(cursor, cursor + size)
        .map((p) => presentListUser(index, permissions, p, id));
      const hasMore = cursor + size < members.length;
      return {
        payload: {
          result: { has_more: hasMore, ...(hasMore ? { next_cursor: cursor + size } : {}), list },
        },
      };
    }),
  );

  router.post(
    "/topapi/v2/user/get",
    legacyEndpoint(state, "qyapi_get_member", (body) => {
      const userid = stringParam(body, "userid");
      if (userid === undefined) return { errcode: 33012, errmsg: "无效的USERID" };
      const person = index.people.get(userid);
      if (person === undefined) return { errcode: 60121, errmsg: "找不到该用户" };
      return { payload: { result: presentUserDetail(index, permissions, person) } };
    }),
  );

  router.post(
    "/topapi/user/getbyunionid",
    legacyEndpoint(state, "qyapi_get_member", (body) => {
      const unionid = stringParam(body, "unionid");
      if (unionid === undefined) return { errcode: 400002, errmsg: "无效的参数" };
      // An external contact (外部联系人) has a userid in the org's contacts but contact_type 1.
      if (state.signIn.externalContacts.has(unionid)) {
        return { payload: { result: { contact_type: 1, userid: `ext${unionid.slice(0, 10)}` } } };
      }
      const person = index.byUnionid.get(unionid);
      if (person === undefined) return { errcode: 60121, errmsg: "找不到该用户" };
      return { payload: { result: { contact_type: 0, userid: person.userid } } };
    }),
  );

  return router;
}
