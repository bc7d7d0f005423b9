import express, { type Router } from "express";
import { legacyEndpoint, type LegacyResult } from "../gate.js";
import { intParam } from "../params.js";
import type { DingTalkSimState } from "../state.js";

// DingTalk: role/list size defaults to 20, at most 200; role/simplelist at most 100.
const ROLE_LIST_MAX = 200;
const ROLE_MEMBERS_MAX = 100;
const DEFAULT_SIZE = 20;

/**
 * Roles and role groups (reference A6). Paging is `offset`/`size` with camelCase `hasMore`, no cursor;
 * role/getrole and role/getrolegroup answer at the top level, without `result`.
 */
export function roleRouter(state: DingTalkSimState): Router {
  const router = express.Router();
  const { index } = state;
  router.use("/topapi/role", express.json(), express.urlencoded({ extended: false }));

  /** `offset` and `size` checked against the endpoint's maximum (40068 bad offset, 40069 bad size). */
  const page = (
    body: Record<string, unknown>,
    max: number,
  ): { offset: number; size: number } | LegacyResult => {
    const offset = intParam(body, "offset") ?? 0;
    const size = intParam(body, "size") ?? DEFAULT_SIZE;
    if (Number.isNaN(offset) || offset < 0) return { errcode: 40068, errmsg: "不合法的偏移量" };
    if (Number.isNaN(size) || size < 1 || size > max) return { errcode: 40069, errmsg: "不合法的分页大小" };
    return { offset, size };
  };

  // Pages over role groups, each with all its roles.
  router.post(
    "/topapi/role/list",
    legacyEndpoint(state, "qyapi_get_department_list", (body) => {
      const p = page(body, ROLE_LIST_MAX);
      if (!("offset" in p)) return p;
      const groups = [...index.roleGroups.values()];
      const list = groups.slice(p.offset, p.offset + p.size).map((group) => ({
        groupId: group.id,
        name: group.name,
        roles: group.roles.map((role) => ({ id: role.id, name: role.name })),
      }));
      return { payload: { result: { hasMore: p.offset + p.size < groups.length, list } } };
    }),
  );

  router.post(
    "/topapi/role/simplelist",
    legacyEndpoint(state, "qyapi_get_department_member", (body) => {
      const roleId = intParam(body, "role_id");
      const role = roleId === undefined ? undefined : index.roles.get(roleId);
      // The simplelist error for an unknown role is [unverified]; getrole's 33011 is the neighbour.
      if (role === undefined) return { errcode: 33011, errmsg: "无效的角色ID" };
      const p = page(body, ROLE_MEMBERS_MAX);
      if (!("offset" in p)) return p;
      const list = role.members.slice(p.offset, p.offset + p.size).map((userid) => ({
        userid,
        name: index.people.get(userid)!.name,
      }));
      return { payload: { result: { hasMore: p.offset + p.size < role.members.length, list } } };
    }),
  );

  router.post(
    "/topapi/role/getrole",
    legacyEndpoint(state, "qyapi_get_department_member", (body) => {
      const roleId = intParam(body, "roleId");
      const role = roleId === undefined ? undefined : index.roles.get(roleId);
      if (role === undefined) return { errcode: 33011, errmsg: "无效的角色ID" };
      return { payload: { role: { name: role.name, groupId: role.group.id } } };
    }),
  );

  router.post(
    "/topapi/role/getrolegroup",
    legacyEndpoint(state, "qyapi_get_department_list", (body) => {
      const groupId = intParam(body, "group_id");
      const group = groupId === undefined ? undefined : index.roleGroups.get(groupId);
      // The error for an unknown group is [unverified]; 400002 "无效的参数" is the generic neighbour.
      if (group === undefined) return { errcode: 400002, errmsg: "无效的参数" };
      return {
        payload: {
          role_group: {
            group_name: group.name,
            roles: group.roles.map((role) => ({ role_id: role.id, role_name: role.name })),
          },
        },
      };
    }),
  );

  return router;
}
