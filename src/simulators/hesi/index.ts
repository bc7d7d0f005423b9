/**
 * The 合思 (Hesi / Ekuaibao) simulator: the open API of a standalone tenant as finance-targets.md §1 describes
 * it — token with refresh, staff, departments, role definitions and role rows — with its traps (re-enable on a
 * disabled staff's phone, userid ignored for a registered phone, 412 when disabling a department with staff,
 * role rows overwritten per row, 100-item caps, 403 on an expired token, 403 on disabling a staff with
 * pending approvals) and fault knobs (429 with Retry-After, 5xx, timeouts, seeded random failures).
 * `GET /` is a read-only page of its data; admin hooks live under `/__simulator/`.
 */
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { controlRouter, listenLocal, type SimControls } from "../common/control.js";
import { FailureDraw, parseHesiFaults, type RandomFailures } from "./failures.js";
import type { HesiDepartment, HesiRoleDef, HesiStaff } from "./model.js";
import { sendFailure } from "./replies.js";
import { authRouter } from "./routes/auth.js";
import { departmentRouter } from "./routes/departments.js";
import { pageRouter } from "./routes/page.js";
import { provisionalRouter } from "./routes/provisional.js";
import { roleRouter } from "./routes/roles.js";
import { staffRouter } from "./routes/staffs.js";
import {
  createState,
  type HesiCredentials,
  type HesiSimState,
  type HesiSimulatorOptions,
  type Launch,
} from "./state.js";
import type { HesiTenant, HesiTenantSnapshot } from "./tenant.js";

export { demoExistingData, existingFromOrg } from "./state.js";
export type {
  HesiCredentials,
  HesiEdition,
  HesiExistingData,
  HesiSimulatorOptions,
  Launch,
} from "./state.js";
export type { RandomFailureKind, RandomFailures } from "./failures.js";
export type { HesiDepartment, HesiRoleDef, HesiRoleRow, HesiStaff } from "./model.js";
export type { HesiTenant, HesiTenantSnapshot } from "./tenant.js";

/** A Hesi simulator, not yet listening. */
export interface HesiSimulator {
  /** The Express app. */
  readonly app: Express;
  /** Clock, faults and call counters (tokens: POST /__simulator/expire-tokens or {@link expireTokens}). */
  readonly controls: SimControls;
  /** The tenant's open-API credentials. */
  readonly credentials: HesiCredentials;
  /** The tenant's data and operations (tests may read it or arrange state through it). */
  readonly tenant: HesiTenant;
  /** Replies by HTTP status (0 = connection dropped). */
  readonly statuses: ReadonlyMap<number, number>;
  /** Arrivals through provisional access links (who signed in where), oldest first. */
  readonly launches: readonly Launch[];
  /** Every staff, disabled ones included. */
  staff(): HesiStaff[];
  /** Every department, disabled ones included. */
  departments(): HesiDepartment[];
  /** Every role definition with its rows. */
  roles(): HesiRoleDef[];
  /** The tenant's data as JSON, to start a simulator with later (`restore`). */
  snapshot(): HesiTenantSnapshot;
  /** Expires every token now. */
  expireTokens(): void;
  /** Turns random failures on (or off with null). */
  setRandomFailures(failures: RandomFailures | null): void;
  /** The `config:` of a `targets:` entry of type `hesi` pointing at this simulator at `baseUrl`. */
  targetConfig(baseUrl: string): Record<string, unknown>;
}

/** A Hesi simulator listening on 127.0.0.1. */
export interface RunningHesiSimulator extends Omit<HesiSimulator, "app" | "targetConfig"> {
  /** Base URL (the 地址前缀), e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /** The `config:` of a `targets:` entry of type `hesi` pointing at this simulator. */
  targetConfig(): Record<string, unknown>;
}

/** Builds the simulator's app and state. */
export function createHesiSimulator(options: HesiSimulatorOptions = {}): HesiSimulator {
  const state = createState(options);
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use("/__simulator", hesiControlRouter(state));
  app.use(
    "/__simulator",
    controlRouter(state.controls, {
      // Hesi's spec adds seeded random failures to the common rules.
      applyFaults: (spec, replace) => {
        const { rules, random } = parseHesiFaults(spec);
        if (replace) {
          state.controls.faults.set(rules);
          state.failures = null;
        } else state.controls.faults.add(rules);
        if (random !== undefined) state.failures = new FailureDraw(random);
        return { rules, random: random ?? null };
      },
    }),
  );
  app.use(pageRouter(state));
  const { onChange } = options;
  if (onChange !== undefined) app.use("/api", notifyWrites(onChange));
  app.use("/api", express.json({ limit: "5mb" }));
  app.use(authRouter(state));
  app.use(staffRouter(state));
  app.use(departmentRouter(state));
  app.use(roleRouter(state));
  app.use(provisionalRouter(state));
  app.use((_req, res) => sendFailure(state, res, 404, "接口不存在"));
  // Malformed JSON and anything unexpected: Hesi's error envelope, never a stack trace.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === "number" && status >= 400 && status < 500)
      sendFailure(state, res, 400, "请求参数格式错误");
    else sendFailure(state, res, 500, "系统异常");
  });
  const { tenant } = state;
  return {
    app,
    controls: state.controls,
    credentials: state.credentials,
    tenant,
    statuses: state.statuses,
    launches: state.launches,
    staff: () => [...tenant.staff.values()],
    departments: () => [...tenant.departments.values()],
    roles: () => [...tenant.roles.values()],
    snapshot: () => tenant.snapshot(),
    expireTokens: () => state.tokens.expireAll(),
    setRandomFailures: (failures) => {
      state.failures = failures === null ? null : new FailureDraw(failures);
    },
    targetConfig: (baseUrl) => targetConfigFor(state, baseUrl),
  };
}

/** Starts a simulator on 127.0.0.1 (`port` 0 or absent: any free port). */
export async function startHesiSimulator(
  options: HesiSimulatorOptions & { readonly port?: number } = {},
): Promise<RunningHesiSimulator> {
  const simulator = createHesiSimulator(options);
  const running = await listenLocal(simulator.app, options.port ?? 0);
  const { app: _app, targetConfig, ...rest } = simulator;
  return {
    ...rest,
    url: running.url,
    port: running.port,
    close: running.close,
    targetConfig: () => targetConfig(running.url),
  };
}

/** Calls `onChange` once a write (any method but GET and HEAD) has been answered with success. */
function notifyWrites(onChange: () => void): express.RequestHandler {
  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD")
      res.on("finish", () => {
        if (res.statusCode < 400) onChange();
      });
    next();
  };
}

function targetConfigFor(state: HesiSimState, baseUrl: string): Record<string, unknown> {
  return {
    baseUrl: baseUrl.replace(/\/+$/, ""),
    appKey: state.credentials.appKey,
    appSecurity: state.credentials.appSecurity,
    ...(state.edition === "standalone" ? {} : { rolesOnly: true }),
    ...(state.requestsPerSecond === undefined ? {} : { requestsPerSecond: state.requestsPerSecond }),
  };
}

/**
 * Hesi's own admin hooks beside the common ones: POST pending-approvals {staffId}, GET state (JSON of the
 * data).
 */
function hesiControlRouter(state: HesiSimState): express.Router {
  const router = express.Router();
  router.use(express.json());
  router.post("/pending-approvals", (req, res) => {
    const staffId = (req.body as { staffId?: unknown } | undefined)?.staffId;
    if (typeof staffId !== "string" || !state.tenant.staff.has(staffId)) {
      res.status(400).json({ error: "body must be {staffId: an existing staff id}" });
      return;
    }
    state.tenant.pendingApprovals.add(staffId);
    res.json({ ok: true });
  });
  router.get("/state", (_req, res) => {
    const { tenant } = state;
    res.json({
      staff: [...tenant.staff.values()],
      departments: [...tenant.departments.values()],
      roles: [...tenant.roles.values()],
    });
  });
  return router;
}
