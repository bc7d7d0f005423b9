import express, { type Router } from "express";
import { gate } from "../gate.js";
import { bodyOf, dollarId, queryEnum, queryString } from "../params.js";
import { endpoint } from "../replies.js";
import type { HesiSimState } from "../state.js";
import type { PathType, StaffBy } from "../tenant.js";

const STAFF_BY: readonly StaffBy[] = ["id", "sourceId", "code", "cellphone", "email"];
const PATH_TYPES: readonly PathType[] = ["name", "id", "code"];

/**
 * Role groups, role definitions and role members (reference §1.6, corporation/*.md). Role members are written
 * as rows per role and are allowed on every edition (the DingTalk/WeCom editions manage roles only).
 */
export function roleRouter(state: HesiSimState): Router {
  const router = express.Router();
  const { tenant } = state;

  router.get(
    "/api/openapi/v1/roleDefGroups",
    gate(state),
    endpoint(state, () => ({ items: tenant.listRoleGroups() })),
  );
  router.post(
    "/api/openapi/v1/roledefs",
    gate(state),
    endpoint(state, (req) => {
      const role = tenant.createRole(bodyOf(req));
      return { value: { id: role.id, name: role.name } };
    }),
  );
  router.get(
    "/api/openapi/v1/roledefs/:id",
    gate(state),
    endpoint(state, (req) => ({
      value: tenant.getRole(
        dollarId(req),
        queryEnum(req, "staffBy", STAFF_BY, "id"),
        queryEnum(req, "pathType", PATH_TYPES, "name"),
      ),
    })),
  );
  router.put(
    "/api/openapi/v1/roledefs/:id",
    gate(state),
    endpoint(state, (req) => {
      const role = tenant.renameRole(dollarId(req), queryString(req, "name"));
      return { value: { id: role.id, name: role.name } };
    }),
  );
  for (const version of ["v1", "v1.1"] as const) {
    router.put(
      `/api/openapi/${version}/roledefs/:id/staffs`,
      gate(state),
      endpoint(state, (req) => {
        tenant.putRoleRows(dollarId(req), bodyOf(req), queryEnum(req, "staffBy", STAFF_BY, "id"), version);
        return { noContent: true };
      }),
    );
  }
  router.delete(
    "/api/openapi/v1.1/roledefs/:id/staffs",
    gate(state),
    endpoint(state, (req) => {
      tenant.clearRole(dollarId(req));
      return { noContent: true };
    }),
  );
  return router;
}
