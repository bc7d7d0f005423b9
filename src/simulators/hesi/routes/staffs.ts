import express, { type Router } from "express";
import { gate, standaloneOnly } from "../gate.js";
import { fail } from "../model.js";
import { bodyOf, bracketList, dollarId, queryBool, queryEnum, queryInt, queryString } from "../params.js";
import { parseTime, presentStaff } from "../present.js";
import { endpoint } from "../replies.js";
import type { HesiSimState } from "../state.js";

const KEY_TYPES = ["id", "code"] as const;

/** Staff (员工) endpoints, reference §1.4 and contacts/*.md. Writes are refused outside the standalone edition. */
export function staffRouter(state: HesiSimState): Router {
  const router = express.Router();
  const { tenant } = state;
  const write = [gate(state), standaloneOnly(state)];

  router.post(
    "/api/openapi/v1.1/staffs",
    ...write,
    endpoint(state, (req) => ({ value: presentStaff(tenant.createStaff(bodyOf(req))) })),
  );
  router.post(
    "/api/openapi/v1.1/staffs/batch/create",
    ...write,
    endpoint(state, (req) => ({ items: tenant.createStaffBatch(bodyOf(req)).map((s) => presentStaff(s)) })),
  );
  router.put(
    "/api/openapi/v1.1/staffs/batch/update",
    ...write,
    endpoint(state, (req) => ({ items: tenant.updateStaffBatch(bodyOf(req)).map((s) => presentStaff(s)) })),
  );
  router.put(
    "/api/openapi/v1.1/staffs/update/:id",
    ...write,
    endpoint(state, (req) => ({
      value: presentStaff(
        tenant.updateStaff(dollarId(req), queryEnum(req, "type", KEY_TYPES, "id"), bodyOf(req)),
      ),
    })),
  );
  router.put(
    "/api/openapi/v1.1/staffs/:id/customFields",
    gate(state),
    endpoint(state, (req) => ({
      value: presentStaff(
        tenant.updateCustomFields(dollarId(req), queryEnum(req, "type", KEY_TYPES, "id"), bodyOf(req)),
      ),
    })),
  );
  router.put(
    "/api/openapi/v1/staffs/:id/code",
    ...write,
    endpoint(state, (req) => {
      const code = bodyOf(req).code;
      if (typeof code !== "string") fail(400, "工号不能为空");
      return { value: presentStaff(tenant.updateStaffCode(dollarId(req), code)) };
    }),
  );
  router.put(
    "/api/openapi/v1.1/staffs/disableOrEnableStaff/:list",
    ...write,
    endpoint(state, (req) => ({
      items: tenant
        .setStaffActive(
          bracketList(req),
          queryEnum(req, "type", KEY_TYPES, "id"),
          queryBool(req, "active"),
          queryBool(req, "doCheck") ?? true,
        )
        .map((s) => presentStaff(s)),
    })),
  );
  router.post(
    "/api/openapi/v2.1/flows/relay",
    gate(state),
    endpoint(state, (req) => ({ raw: tenant.relay(bodyOf(req), queryEnum(req, "type", KEY_TYPES, "id")) })),
  );
  router.post(
    "/api/openapi/v1/charge/powers/authStaff",
    gate(state),
    endpoint(state, (req) => ({ value: tenant.authorizeStaff(bodyOf(req)) })),
  );
  router.get(
    "/api/openapi/v1.1/staffs",
    gate(state),
    endpoint(state, (req) => {
      const activeText = queryString(req, "active");
      const externalText = queryString(req, "external");
      const startDate = parseTime(queryString(req, "startDate"));
      const endDate = parseTime(queryString(req, "endDate"));
      const page = tenant.listStaff({
        start: queryInt(req, "start", 0),
        count: queryInt(req, "count", 100),
        // active omitted = all; "true" = active; anything else = disabled only (get-all-staffs.md).
        ...(activeText === undefined ? {} : { active: activeText === "true" }),
        ...(externalText === undefined ? {} : { external: externalText === "true" }),
        ...(startDate === undefined ? {} : { startDate }),
        ...(endDate === undefined ? {} : { endDate }),
        ...(queryString(req, "orderBy") === "updateTime" ? { orderBy: "updateTime" as const } : {}),
      });
      return { count: page.count, items: page.items.map((s) => presentStaff(s)) };
    }),
  );
  router.get(
    "/api/openapi/v1/staffs/authorized",
    gate(state),
    endpoint(state, (req) => {
      const page = tenant.listAuthorized(queryInt(req, "start", 0), queryInt(req, "count", 100));
      return { count: page.count, items: page.items.map((s) => presentStaff(s)) };
    }),
  );
  router.post(
    "/api/openapi/v1/staffs/getStaffIds",
    gate(state),
    endpoint(state, (req) => {
      const body = bodyOf(req);
      return { items: tenant.lookupStaff(body.type, body.conditionIds).map((s) => presentStaff(s, tenant)) };
    }),
  );
  return router;
}
