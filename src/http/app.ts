import { randomUUID } from "node:crypto";
import express, { type Express, type Router } from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import { errorHandler, notFound } from "./errors.js";
import type { Metrics } from "./metrics.js";

export interface AppDeps {
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** Whether users reach idbridge over https (server.publicUrl). */
  https: boolean;
  /** Trust X-Forwarded-* from a reverse proxy. */
  trustProxy: boolean;
  /** True once shutdown began: /readyz answers 503 so load balancers drain this instance. */
  isShuttingDown?: () => boolean;
  /** Routers mounted after logging and security headers, before any body parser (they read their own). */
  routers?: ReadonlyArray<{ readonly path: string; readonly router: Router }>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Builds the express app; listening is the caller's job. */
export function createApp(deps: AppDeps): Express {
  const { store, logger, metrics } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", deps.trustProxy);

  app.use(
    pinoHttp({
      logger,
      genReqId: (req, res) => {
        const incoming = req.headers["x-request-id"];
        const id = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader("x-request-id", id);
        return id;
      },
      // Paths only, no query strings, and no response headers: sign-in callbacks carry codes and states in
      // the query, and redirects (authorization responses, /launch's 合思 link) carry codes and bearer
      // links in Location.
      serializers: {
        req: (req: { id?: unknown; method?: string; url?: string; remoteAddress?: string }) => ({
          id: req.id,
          method: req.method,
          path: (req.url ?? "").split("?")[0],
          remoteAddress: req.remoteAddress,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      },
      // Health probes every few seconds would drown the log.
      autoLogging: {
        ignore: (req) => req.url === "/healthz" || req.url === "/readyz" || req.url === "/metrics",
      },
    }),
  );
  // HSTS and upgrade-insecure-requests only make sense (and only work) when users reach us over https.
  app.use(
    helmet({
      strictTransportSecurity: deps.https,
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: deps.https ? [] : null } },
    }),
  );
  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on("finish", () => {
      const route = typeof req.route?.path === "string" ? req.route.path : "(unmatched)";
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      end({ method: req.method, route });
    });
    next();
  });

  for (const { path, router } of deps.routers ?? []) app.use(path, router);

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/readyz", async (req, res) => {
    if (deps.isShuttingDown?.()) {
      res.status(503).json({ status: "not_ready", reason: "shutting down" });
      return;
    }
    try {
      const health = await store.health();
      if (health.schemaVersion !== health.codeVersion) {
        res.status(503).json({
          status: "not_ready",
          reason: `schema version ${health.schemaVersion}, code expects ${health.codeVersion}`,
        });
        return;
      }
      res.json({ status: "ready", store: store.flavour, schemaVersion: health.schemaVersion });
    } catch (err) {
      req.log.warn({ err }, "readiness check failed");
      res.status(503).json({ status: "not_ready", reason: "store unreachable (details in the log)" });
    }
  });

  app.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
