import { randomBytes, randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

/**
 * An independent SCIM 2.0 peer for the SCIM target's tests: scimmy (schemas, filters, PatchOp, ListResponse)
 * behind scimmy-routers on express, with in-memory Users and Groups. We did not write the protocol side, so
 * our client has to interoperate with someone else's reading of RFC 7643/7644. What scimmy leaves out
 * (ETag / If-Match, reference finance-targets.md §5) and the faults a test needs are middleware in front.
 */

type Stored = Record<string, unknown> & { id: string; meta: Record<string, unknown> };

/** One server's data; scimmy's resource handlers are process-wide, so each request carries its store. */
interface Store {
  readonly users: Map<string, Stored>;
  readonly groups: Map<string, Stored>;
  version: number;
}

/** Knobs a test turns while the server runs. */
export interface ScimServerKnobs {
  /** Advertise and enforce ETags (meta.version, If-Match → 412). */
  etag: boolean;
  /** Advertise PATCH; false answers PATCH with 501 so clients must PUT. */
  patch: boolean;
  /** Every n-th request (from now) is answered 429 with `Retry-After: retryAfterSeconds`; 0 = off. */
  throttleEvery: number;
  /** Seconds in the injected 429's Retry-After. */
  retryAfterSeconds: number;
  /** Every n-th request is answered 500; 0 = off. */
  failEvery: number;
  /** For injected 500s: `before` = nothing happened; `after` = the request was applied, the answer lost. */
  failMode: "before" | "after";
  /** Drop `startIndex` from list requests, as a server that ignores paging would. */
  ignoreStartIndex: boolean;
  /** Called with each request before anything else (a test can change data "concurrently" here). */
  onRequest?: (request: ScimRequestLog) => void;
}

/** A recorded request (no headers: the token stays out of test output). */
export interface ScimRequestLog {
  readonly method: string;
  readonly path: string;
  /** Query string without the leading `?`. */
  readonly query: string;
  readonly body: unknown;
  /** The If-Match header, when sent. */
  readonly ifMatch: string | undefined;
  /** The status sent back. */
  status: number;
}

/** A running peer. */
export interface ScimServer {
  /** Base URL of the SCIM service, e.g. `http://127.0.0.1:1234/scim/v2`. */
  readonly baseUrl: string;
  /** The bearer token it accepts (random per server). */
  readonly token: string;
  /** Stored users by id (as the server keeps them). */
  readonly users: Map<string, Stored>;
  /** Stored groups by id. */
  readonly groups: Map<string, Stored>;
  /** Every request, in order. */
  readonly requests: ScimRequestLog[];
  /** Current knobs; change them freely. */
  readonly knobs: ScimServerKnobs;
  /** Adds a user directly (as if provisioned by someone else); returns its id. */
  seedUser(user: Record<string, unknown>): string;
  /** Adds a group directly; returns its id. */
  seedGroup(group: Record<string, unknown>): string;
  close(): Promise<void>;
}

const STORE = Symbol("scim-store");
let declared = false;

function storeOf(ctx: unknown): Store {
  const store = (ctx as { [STORE]?: Store } | undefined)?.[STORE];
  if (store === undefined) throw new Error("scim peer: request without a store");
  return store;
}

function nextMeta(
  store: Store,
  resourceType: string,
  previous?: Record<string, unknown>,
): Record<string, unknown> {
  const now = new Date().toISOString();
  store.version += 1;
  return {
    resourceType,
    created: previous?.created ?? now,
    lastModified: now,
    version: `W/"${store.version}"`,
  };
}

/** scimmy's ingress for one resource type: create (POST) or replace (PUT, also PATCH after apply). */
function ingress(kind: "users" | "groups", resourceType: string) {
  return (resource: { id?: string }, instance: Record<string, unknown>, ctx: unknown): Stored => {
    const store = storeOf(ctx);
    const map = store[kind];
    const data = JSON.parse(JSON.stringify(instance)) as Record<string, unknown>;
    delete data.id;
    delete data.meta;
    delete data.schemas;
    if (kind === "users") {
      const userName = String(data.userName ?? "").toLowerCase();
      for (const other of map.values()) {
        if (other.id !== resource.id && String(other.userName).toLowerCase() === userName)
          throw new SCIMMY.Types.Error(
            409,
            "uniqueness",
            `userName ${String(data.userName)} is already taken`,
          );
      }
    }
    if (kind === "groups" && Array.isArray(data.members)) {
      for (const m of data.members as { value?: unknown }[]) {
        if (!store.users.has(String(m.value)) && !store.groups.has(String(m.value)))
          throw new SCIMMY.Types.Error(400, "invalidValue", `member ${String(m.value)} does not exist`);
      }
    }
    if (resource.id !== undefined) {
      const previous = map.get(resource.id);
      if (previous === undefined) throw new SCIMMY.Types.Error(404, "", `Resource ${resource.id} not found`);
      const next: Stored = { ...data, id: resource.id, meta: nextMeta(store, resourceType, previous.meta) };
      map.set(resource.id, next);
      return next;
    }
    const id = randomUUID();
    const created: Stored = { ...data, id, meta: nextMeta(store, resourceType) };
    map.set(id, created);
    return created;
  };
}

function egress(kind: "users" | "groups") {
  return (resource: { id?: string; filter?: { match(values: unknown[]): unknown[] } }, ctx: unknown) => {
    const map = storeOf(ctx)[kind];
    if (resource.id !== undefined) {
      const one = map.get(resource.id);
      if (one === undefined) throw new SCIMMY.Types.Error(404, "", `Resource ${resource.id} not found`);
      return [structuredClone(one)];
    }
    const all = [...map.values()].map((v) => structuredClone(v));
    return resource.filter === undefined ? all : resource.filter.match(all);
  };
}

function degress(kind: "users" | "groups") {
  return (resource: { id?: string }, ctx: unknown) => {
    const store = storeOf(ctx);
    if (resource.id === undefined || !store[kind].delete(resource.id))
      throw new SCIMMY.Types.Error(404, "", `Resource ${resource.id} not found`);
    if (kind === "users") {
      // RFC 7644 §3.6: a deleted user is no longer a member anywhere.
      for (const g of store.groups.values()) {
        if (Array.isArray(g.members))
          g.members = (g.members as { value?: unknown }[]).filter((m) => m.value !== resource.id);
      }
    }
  };
}

function declareOnce(): void {
  if (declared) return;
  declared = true;
  SCIMMY.Resources.declare(SCIMMY.Resources.User, {
    extensions: [{ schema: SCIMMY.Schemas.EnterpriseUser, required: false }],
    ingress: ingress("users", "User"),
    egress: egress("users"),
    degress: degress("users"),
  });
  SCIMMY.Resources.declare(SCIMMY.Resources.Group, {
    ingress: ingress("groups", "Group"),
    egress: egress("groups"),
    degress: degress("groups"),
  });
}

function scimError(res: Response, status: number, detail: string, scimType?: string): void {
  res
    .status(status)
    .type("application/scim+json")
    .send({
      schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
      status: String(status),
      ...(scimType === undefined ? {} : { scimType }),
      detail,
    });
}

/** Starts a peer on 127.0.0.1 (random port). */
export async function startScimServer(initial: Partial<ScimServerKnobs> = {}): Promise<ScimServer> {
  declareOnce();
  const store: Store = { users: new Map(), groups: new Map(), version: 0 };
  const token = randomBytes(24).toString("base64url");
  const knobs: ScimServerKnobs = {
    etag: false,
    patch: true,
    throttleEvery: 0,
    retryAfterSeconds: 1,
    failEvery: 0,
    failMode: "before",
    ignoreStartIndex: false,
    ...initial,
  };
  const requests: ScimRequestLog[] = [];
  let counter = 0;

  const app = express();
  app.set("etag", false); // only resource versions are ETags here, not express's body hashes
  const scim = express.Router();

  // Log every request with the status that went out.
  scim.use(express.json({ type: ["application/scim+json", "application/json"] }));
  // scimmy-routers turn startIndex/count into numbers by assigning to req.query, which Express 5 re-parses
  // on every read (a getter), so paging would be ignored; a plain, writable copy keeps their casts.
  scim.use((req: Request, _res: Response, next: NextFunction) => {
    const query: Record<string, unknown> = { ...req.query };
    if (knobs.ignoreStartIndex) delete query.startIndex;
    Object.defineProperty(req, "query", { value: query, writable: true, configurable: true });
    next();
  });
  scim.use((req: Request, res: Response, next: NextFunction) => {
    const entry: ScimRequestLog = {
      method: req.method,
      path: req.path,
      query: req.originalUrl.includes("?") ? req.originalUrl.slice(req.originalUrl.indexOf("?") + 1) : "",
      body: req.body as unknown,
      ifMatch: req.header("if-match"),
      status: 0,
    };
    requests.push(entry);
    knobs.onRequest?.(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });
    next();
  });

  // Injected faults, counted over every request (auth included: a real proxy throttles before auth).
  scim.use((req: Request, res: Response, next: NextFunction) => {
    counter += 1;
    if (knobs.throttleEvery > 0 && counter % knobs.throttleEvery === 0) {
      res.setHeader("Retry-After", String(knobs.retryAfterSeconds));
      scimError(res, 429, "too many requests");
      return;
    }
    if (knobs.failEvery > 0 && counter % knobs.failEvery === 0) {
      if (knobs.failMode === "before" || req.method === "GET") {
        scimError(res, 500, "injected failure");
        return;
      }
      // Let the request be applied, then replace the answer: the client cannot know it worked.
      const send = res.send.bind(res);
      res.send = ((_body?: unknown) => {
        res.status(500);
        return send(
          JSON.stringify({
            schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"],
            status: "500",
            detail: "injected failure after the change was applied",
          }),
        );
      }) as typeof res.send;
    }
    next();
  });

  // scimmy-routers advertise patch/filter/sort/bulk and never ETags; this server says what it does.
  scim.get("/ServiceProviderConfig", (req: Request, res: Response) => {
    if (req.header("authorization") !== `Bearer ${token}`) {
      scimError(res, 401, "bad token");
      return;
    }
    res.type("application/scim+json").send({
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
      patch: { supported: knobs.patch },
      bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
      filter: { supported: true, maxResults: 200 },
      changePassword: { supported: false },
      sort: { supported: true },
      etag: { supported: knobs.etag },
      authenticationSchemes: [
        { type: "oauthbearertoken", name: "OAuth Bearer Token", description: "bearer" },
      ],
      meta: { resourceType: "ServiceProviderConfig", location: "/ServiceProviderConfig" },
    });
  });

  // ETags (RFC 7644 §3.14), which scimmy-routers leave to the application.
  scim.use((req: Request, res: Response, next: NextFunction) => {
    if (!knobs.patch && req.method === "PATCH") {
      scimError(res, 501, "PATCH is not supported");
      return;
    }
    if (!knobs.etag) return next();
    const match = /^\/(Users|Groups)\/([^/]+)$/.exec(req.path);
    if (match !== null && ["PUT", "PATCH", "DELETE"].includes(req.method)) {
      const map = match[1] === "Users" ? store.users : store.groups;
      const current = map.get(match[2]!);
      const ifMatch = req.header("if-match");
      if (
        current !== undefined &&
        ifMatch !== undefined &&
        ifMatch !== "*" &&
        ifMatch !== current.meta.version
      ) {
        scimError(res, 412, `version ${ifMatch} is not current`, "invalidVers");
        return;
      }
    }
    const send = res.send.bind(res);
    res.send = ((body?: unknown) => {
      try {
        const parsed = (typeof body === "string" ? JSON.parse(body) : body) as {
          meta?: { version?: unknown };
        } | null;
        if (typeof parsed?.meta?.version === "string") res.setHeader("ETag", parsed.meta.version);
      } catch {
        // not JSON: no ETag
      }
      return send(body);
    }) as typeof res.send;
    next();
  });

  scim.use(
    new SCIMMYRouters({
      type: "bearer",
      handler: (req: Request) => {
        if (req.header("authorization") !== `Bearer ${token}`) throw new Error("bad token");
        return "admin";
      },
      context: () => ({ [STORE]: store }),
    }),
  );
  app.use("/scim/v2", scim);

  const server = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;

  const seed =
    (kind: "users" | "groups", resourceType: string) =>
    (data: Record<string, unknown>): string => {
      const id = randomUUID();
      store[kind].set(id, { ...structuredClone(data), id, meta: nextMeta(store, resourceType) });
      return id;
    };

  return {
    baseUrl: `http://127.0.0.1:${port}/scim/v2`,
    token,
    users: store.users,
    groups: store.groups,
    requests,
    knobs,
    seedUser: seed("users", "User"),
    seedGroup: seed("groups", "Group"),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
