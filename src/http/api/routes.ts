/**
 * The admin API (`/api/v1`) over HTTP: each route parses and checks its input (zod, unknown keys
 * refused by name), calls the {@link AdminService} with the authenticated caller, and sends JSON. No
 * business logic here: permissions, filters and audit entries are the service's. Described by
 * src/http/api/openapi.ts, served at `/api/v1/openapi.json`.
 */
import { pipeline } from "node:stream/promises";
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from "express";
import { rateLimit } from "express-rate-limit";
import { z } from "zod";
import { permissionsOf } from "../../admin/access.js";
import type { AdminService, ExportDownload, LinkDecisionInput } from "../../admin/contracts.js";
import { AppError } from "../../domain/errors.js";
import type { PlanStatus } from "../../store/store.js";
import { APPLY_ORDER, type PlanChangeKind } from "../../sync/plan.js";
import { authOf, type AdminAuth } from "../admin-auth.js";
import { overlongQuery, requestFailure, sendFailure } from "../errors.js";
import { openApiDocument } from "./openapi.js";

/** Largest JSON body accepted. */
export const MAX_BODY_BYTES = 16 * 1024;

/** What the admin API router needs. */
export interface AdminApiOptions {
  /** The operations. */
  readonly service: AdminService;
  /** Who is calling. */
  readonly auth: AdminAuth;
  /** idbridge's public base URL, no trailing slash (the document's server URL). */
  readonly publicUrl: string;
  /** Requests per minute one IP address may make; default {@link API_REQUESTS_PER_MINUTE}. */
  readonly requestsPerMinute?: number;
}

/**
 * Requests per minute per IP address: far above what a person or a reporting job needs, low enough that a
 * stolen token or a runaway script cannot make the Store answer unbounded searches and exports.
 */
export const API_REQUESTS_PER_MINUTE = 600;

// ------------------------------------------------------------------------------------------ input

const text = (max = 200) => z.string().max(max, `at most ${max} characters`);
const limit = z
  .string()
  .regex(/^\d{1,4}$/, "a whole number")
  .transform(Number)
  .optional();
const page = { limit, cursor: text(512).optional() };
const boolean = z.enum(["true", "false"]).transform((v) => v === "true");
const kinds = z
  .string()
  .max(400)
  .transform((v) => v.split(",").filter((k) => k !== ""))
  .pipe(z.array(z.enum(APPLY_ORDER as readonly [PlanChangeKind, ...PlanChangeKind[]])));
const auditFilter = {
  from: text(40).optional(),
  to: text(40).optional(),
  actor: text().optional(),
  action: text().optional(),
  subject: text().optional(),
};
const at = { at: text(40).optional() };

const queries = {
  none: z.strictObject({}),
  plans: z.strictObject({ ...page, status: text(40).optional(), target: text().optional() }),
  plan: z.strictObject({
    ...page,
    kinds: kinds.optional(),
    person: text().optional(),
    role: text().optional(),
    text: text().optional(),
    flagged: boolean.optional(),
    groupBy: z.enum(["person", "role"]).optional(),
  }),
  runs: z.strictObject({ ...page, target: text().optional() }),
  people: z.strictObject({ ...page, text: text().optional() }),
  audit: z.strictObject({ ...page, ...auditFilter, target: text().optional() }),
  export: z.strictObject({ ...auditFilter, format: z.enum(["jsonl", "csv"]).default("jsonl") }),
  at: z.strictObject(at),
  review: z.strictObject({ target: text().optional(), format: z.enum(["json", "csv"]).default("json") }),
};

const bodies = {
  none: z.strictObject({}),
  decision: z.strictObject({
    decision: z.enum(["approve", "reject"]),
    comment: z.string().trim().min(1, "required: say why").max(2000, "at most 2000 characters"),
    hash: text(200),
  }),
  link: z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.enum(["link", "unlink"]),
      account: text(),
      personId: text(),
      comment: z.string().trim().min(1, "required: say why").max(2000),
    }),
    z.strictObject({
      kind: z.literal("ignore"),
      account: text(),
      comment: z.string().trim().min(1, "required: say why").max(2000),
    }),
  ]),
};

const param = text(200).min(1);

/** `where.path: message` for each problem, every problem at once; unknown keys named. */
function describeIssues(where: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = [where, ...issue.path.map(String)].join(".");
      if (issue.code === "unrecognized_keys")
        return `${path}: unknown ${issue.keys.length === 1 ? "key" : "keys"} ${issue.keys.join(", ")}`;
      if (issue.code === "invalid_type" && issue.input === undefined) return `${path}: required`;
      if (issue.code === "invalid_type" && Array.isArray(issue.input)) return `${path}: give it once`;
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}

function parse<T extends z.ZodType>(schema: T, where: string, value: unknown): z.output<T> {
  const result = schema.safeParse(value ?? {}, { reportInput: true });
  if (!result.success)
    throw new AppError("INPUT_INVALID", describeIssues(where, result.error), { expose: true });
  return result.data;
}

/** Path parameters, each one checked. */
function params(req: Request, ...names: string[]): string[] {
  return names.map((name) => parse(param, `path.${name}`, req.params[name]));
}

const defined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

// ------------------------------------------------------------------------------------------ output

/** Sends a download, streamed; a stream that fails midway cuts the response (the file is incomplete). */
async function download(res: Response, file: ExportDownload): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", file.contentType);
  // RFC 6266: ASCII file name; ours are made of ids and times.
  res.setHeader("Content-Disposition", `attachment; filename="${file.fileName.replace(/[^\w.-]/g, "_")}"`);
  try {
    await pipeline(file.body, res);
  } catch {
    res.destroy();
  }
}

type Handler = (req: Request, res: Response) => Promise<void>;
const handle =
  (fn: Handler): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

/** `{ error: { code, message } }` with the AppError's status; never a stack. */
const apiErrors: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const failure = requestFailure(err, req.id);
  const message =
    failure.parserType === undefined
      ? failure.message
      : failure.parserType === "entity.too.large"
        ? `the body is larger than ${MAX_BODY_BYTES} bytes`
        : `the body is not valid JSON: ${failure.message}`;
  sendFailure(req, res, err, failure, { error: { code: failure.code, message } });
};

// ------------------------------------------------------------------------------------------ routes

/** The admin API router; mount at `/api/v1`. */
export function adminApiRouter(options: AdminApiOptions): Router {
  const { service, auth } = options;
  const document = openApiDocument(options.publicUrl);
  const router = express.Router();

  router.use((req, res, next) => {
    // Answers carry people's data and plans: never cached, by the browser or a proxy.
    res.setHeader("Cache-Control", "no-store");
    const overlong = overlongQuery(req);
    if (overlong !== null) {
      res.status(414).json({ error: { code: "INPUT_INVALID", message: overlong } });
      return;
    }
    next();
  });
  router.use(
    rateLimit({
      windowMs: 60_000,
      limit: options.requestsPerMinute ?? API_REQUESTS_PER_MINUTE,
      standardHeaders: "draft-8",
      legacyHeaders: false,
      // server.trustProxy is the operator saying a proxy in front sets X-Forwarded-For.
      validate: { trustProxy: false },
      handler: (req, res) => {
        req.log.warn({ ip: req.ip }, "admin API rate limit reached");
        res.status(429).json({
          error: { code: "RATE_LIMITED", message: "too many requests from this address: wait a minute" },
        });
      },
    }),
  );
  router.use(express.json({ limit: MAX_BODY_BYTES, strict: true }));

  router.get("/openapi.json", (_req, res) => {
    res.json(document);
  });

  router.use(auth.requireCaller());

  router.get(
    "/me",
    handle(async (req, res) => {
      parse(queries.none, "query", req.query);
      const me = authOf(res);
      res.json({
        actor: me.caller.actor,
        name: me.caller.name,
        kind: me.kind,
        roles: [...me.caller.roles],
        permissions: [...permissionsOf(me.caller)],
        ...(me.kind === "session" ? { csrfToken: me.csrfToken } : {}),
      });
    }),
  );

  router.get(
    "/plans",
    handle(async (req, res) => {
      const q = parse(queries.plans, "query", req.query);
      const { status, ...rest } = q;
      res.json(
        await service.listPlans(
          authOf(res).caller,
          defined({ ...rest, ...(status === undefined ? {} : { status: status as PlanStatus }) }),
        ),
      );
    }),
  );

  router.get(
    "/plans/:id",
    handle(async (req, res) => {
      const [id] = params(req, "id");
      const q = parse(queries.plan, "query", req.query);
      res.json(await service.getPlan(authOf(res).caller, id!, defined(q)));
    }),
  );

  router.post(
    "/plans/:id/decision",
    handle(async (req, res) => {
      const [id] = params(req, "id");
      parse(queries.none, "query", req.query);
      const body = parse(bodies.decision, "body", req.body);
      res.json(await service.decidePlan(authOf(res).caller, id!, body));
    }),
  );

  router.post(
    "/plans/:id/apply",
    handle(async (req, res) => {
      const [id] = params(req, "id");
      parse(queries.none, "query", req.query);
      parse(bodies.none, "body", req.body);
      res.json(await service.applyPlan(authOf(res).caller, id!));
    }),
  );

  router.get(
    "/sync/runs",
    handle(async (req, res) => {
      const q = parse(queries.runs, "query", req.query);
      res.json(await service.listSyncRuns(authOf(res).caller, defined(q)));
    }),
  );

  router.get(
    "/identities/review",
    handle(async (req, res) => {
      parse(queries.none, "query", req.query);
      res.json({ items: await service.reviewQueue(authOf(res).caller) });
    }),
  );

  router.post(
    "/identities/decisions",
    handle(async (req, res) => {
      parse(queries.none, "query", req.query);
      const body = parse(bodies.link, "body", req.body) as LinkDecisionInput;
      await service.decideLink(authOf(res).caller, body);
      res.status(204).end();
    }),
  );

  router.get(
    "/people",
    handle(async (req, res) => {
      const q = parse(queries.people, "query", req.query);
      res.json(await service.searchPeople(authOf(res).caller, defined(q)));
    }),
  );

  router.get(
    "/people/:id",
    handle(async (req, res) => {
      const [id] = params(req, "id");
      parse(queries.none, "query", req.query);
      res.json(await service.getPerson(authOf(res).caller, id!));
    }),
  );

  router.get(
    "/people/:id/roles/:target/:role/why",
    handle(async (req, res) => {
      const [id, target, role] = params(req, "id", "target", "role");
      const q = parse(queries.at, "query", req.query);
      res.json(await service.explainHolding(authOf(res).caller, id!, target!, role!, q.at));
    }),
  );

  router.get(
    "/audit/entries",
    handle(async (req, res) => {
      const q = parse(queries.audit, "query", req.query);
      res.json(await service.searchAudit(authOf(res).caller, defined(q)));
    }),
  );

  router.get(
    "/audit/export",
    handle(async (req, res) => {
      const { format, ...filter } = parse(queries.export, "query", req.query);
      await download(res, await service.exportAudit(authOf(res).caller, defined(filter), format));
    }),
  );

  router.get(
    "/audit/jwks",
    handle(async (req, res) => {
      parse(queries.none, "query", req.query);
      res.json(await service.auditJwks(authOf(res).caller));
    }),
  );

  router.get(
    "/roles/:target/:role/holders",
    handle(async (req, res) => {
      const [target, role] = params(req, "target", "role");
      const q = parse(queries.at, "query", req.query);
      res.json({ items: await service.roleHolders(authOf(res).caller, target!, role!, q.at) });
    }),
  );

  router.get(
    "/reports/access-review",
    handle(async (req, res) => {
      const { target, format } = parse(queries.review, "query", req.query);
      const caller = authOf(res).caller;
      if (format === "csv") await download(res, await service.accessReviewCsv(caller, target));
      else res.json({ items: await service.accessReview(caller, target) });
    }),
  );

  router.use((req, _res, next) => {
    next(new AppError("NOT_FOUND", `no route for ${req.method} /api/v1${req.path}`, { expose: true }));
  });
  router.use(apiErrors);
  return router;
}
