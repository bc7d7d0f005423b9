import express, { type Router } from "express";
import { gate, standaloneOnly } from "../gate.js";
import { fail } from "../model.js";
import { bodyOf, dollarId, queryBool, queryEnum, queryInt, queryString } from "../params.js";
import { parseTime, presentDepartment } from "../present.js";
import { endpoint } from "../replies.js";
import type { HesiSimState } from "../state.js";

/** Department (部门) endpoints, reference §1.5. Writes are refused outside the standalone edition. */
export function departmentRouter(state: HesiSimState): Router {
  const router = express.Router();
  const { tenant } = state;
  const write = [gate(state), standaloneOnly(state)];

  router.post(
    "/api/openapi/v1/departments",
    ...write,
    endpoint(state, (req) => ({ value: presentDepartment(tenant.createDepartment(bodyOf(req))) })),
  );
  router.post(
    "/api/openapi/v1/departments/batch/create",
    ...write,
    endpoint(state, (req) => ({ items: tenant.createDepartmentBatch(bodyOf(req)).map(presentDepartment) })),
  );
  router.put(
    "/api/openapi/v1/departments/update/:id",
    ...write,
    endpoint(state, (req) => ({
      value: presentDepartment(tenant.updateDepartment(dollarId(req), bodyOf(req))),
    })),
  );
  router.put(
    "/api/openapi/v1/departments/disableOrEnableDepartment/:id",
    ...write,
    endpoint(state, (req) => ({
      items: [presentDepartment(tenant.setDepartmentActive(dollarId(req), queryBool(req, "active")))],
    })),
  );
  router.get(
    "/api/openapi/v1/departments",
    gate(state),
    endpoint(state, (req) => {
      const page = tenant.listDepartments(
        queryInt(req, "start", 0),
        queryInt(req, "count", 100),
        parseTime(queryString(req, "startDate")),
        parseTime(queryString(req, "endDate")),
      );
      return { count: page.count, items: page.items.map(presentDepartment) };
    }),
  );
  router.get(
    "/api/openapi/v1/departments/getDepartmentByPath",
    gate(state),
    endpoint(state, (req) => {
      const path = queryString(req, "path");
      if (!path) fail(400, "path不能为空");
      return { value: presentDepartment(tenant.getDepartmentByPath(path)) };
    }),
  );
  router.get(
    "/api/openapi/v1/departments/getDepartmentByName",
    gate(state),
    endpoint(state, (req) => {
      const name = queryString(req, "name");
      if (!name) fail(400, "name不能为空");
      return { items: tenant.getDepartmentsByName(name).map(presentDepartment) };
    }),
  );
  router.get(
    "/api/openapi/v1/departments/:id",
    gate(state),
    endpoint(state, (req) => ({
      value: presentDepartment(
        tenant.getDepartment(dollarId(req), queryEnum(req, "departmentBy", ["id", "code"], "id")),
      ),
    })),
  );
  return router;
}
