import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Server } from "node:http";
import express from "express";
import type { Logger } from "pino";
import type { Config } from "../config/load.js";
import { createAdminService } from "../admin/service.js";
import { AuditLog } from "../audit/log.js";
import type { PersonDirectory } from "../broker/contracts.js";
import { LaunchService, openLaunchTargets } from "../broker/launch.js";
import { ADMIN_API_PATH } from "../broker/provider.js";
import { startSignIn } from "../broker/service.js";
import type { PasswordLimits } from "../http/login.js";
import { AppError, describeError } from "../domain/errors.js";
import { createAdminAuth } from "../http/admin-auth.js";
import { adminApiRouter } from "../http/api/routes.js";
import { CONSOLE_PATH } from "../console/layout.js";
import { consoleRouter } from "../console/router.js";
import { createApp } from "../http/app.js";
import { callbackRouter } from "../http/callbacks.js";
import { launchRouter } from "../http/launch.js";
import { createLogger } from "../http/logging.js";
import { createMetrics } from "../http/metrics.js";
import { ensureKeys, tokenSigningJwks } from "../keys/keys.js";
import { openStore } from "../store/index.js";
import { SyncScheduler } from "../sync/scheduler.js";
import { SyncService } from "../sync/service.js";

const HEARTBEAT_MS = 5_000;
const STALE_AFTER_MS = 30_000;

/** A running service, for tests and the CLI. */
export interface RunningService {
  /** Base URL it listens on. */
  url: string;
  /** Stops it gracefully (finish requests, last checkpoint, unregister, close the store). */
  stop(): Promise<void>;
}

/** What tests may replace in a service. */
export interface ServiceOverrides {
  /** People for sign-in instead of the Store-backed directory. */
  readonly people?: PersonDirectory;
  /** Limits of the password form. */
  readonly passwordLimits?: PasswordLimits;
}

/**
 * Starts idbridge: store (migrated), keys (generated on first start), the audit log with its checkpoint
 * timer, the HTTP server with the contact-change callbacks and sign-in (`/oidc`, `/login`, `/saml`), and
 * the sync scheduler when targets are configured. Start-up failures release what was already opened.
 */
export async function startService(
  config: Config,
  logger: Logger = createLogger(config.log.level),
  overrides: ServiceOverrides = {},
): Promise<RunningService> {
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse())
      await fn().catch((err: unknown) => logger.error({ err }, "shutdown step failed"));
  };
  try {
    const store = await openStore({ url: config.store.url, poolSize: config.store.poolSize });
    cleanups.push(() => store.close());

    const instance = { id: randomUUID(), host: hostname(), pid: process.pid };
    await store.registerInstance(instance, {
      exclusive: store.flavour === "sqlite",
      staleAfterMs: STALE_AFTER_MS,
    });
    cleanups.push(() => store.unregisterInstance(instance.id));
    const heartbeat = setInterval(() => {
      store
        .heartbeatInstance(instance.id)
        .catch((err: unknown) => logger.warn({ err }, "instance heartbeat failed"));
    }, HEARTBEAT_MS);
    heartbeat.unref();
    cleanups.push(async () => clearInterval(heartbeat));

    const keys = await ensureKeys(config.keys.dir, config.keys.generateIfMissing);
    const metrics = createMetrics();
    const audit = new AuditLog(store, keys.audit, {
      checkpointEvery: config.audit.checkpointEvery,
      checkpointIntervalMs: config.audit.checkpointIntervalSeconds * 1000,
      logger,
      onAppend: (records) => metrics.auditEntries.inc(records.length),
    });
    audit.start();
    cleanups.push(() => audit.close());
    if (keys.generated) {
      logger.info({ dir: config.keys.dir }, "generated signing keys on first start");
      await audit.record({
        actor: "system",
        action: "keys.generated",
        details: { kids: keys.jwks.keys.map((k) => k.kid ?? "") },
      });
    }
    await audit.record({
      actor: "system",
      action: "service.started",
      details: { instance: instance.id, host: instance.host, store: store.flavour },
    });
    cleanups.push(async () => {
      await audit.record({ actor: "system", action: "service.stopped", details: { instance: instance.id } });
    });

    // The lease holder is this instance, so a second server on the same PostgreSQL waits its turn.
    const sync = new SyncService({
      config,
      store,
      audit,
      holder: instance.id,
      note: (line) => logger.info({ instance: instance.id }, line),
    });
    const scheduler =
      config.targets.length > 0
        ? new SyncScheduler({
            runner: sync,
            store,
            config: config.sync,
            logger: logger.child({ component: "sync-scheduler" }),
            stopTimeoutMs: config.server.shutdownTimeoutSeconds * 1000,
          })
        : null;
    const callbacks = callbackRouter({
      sources: config.sources,
      audit: async (event) => {
        await audit.record(event);
      },
      onContactChange: (change) => {
        if (scheduler !== null) scheduler.notifyContactChange(change);
        else logger.info({ sourceId: change.sourceId }, "contact change ignored: no targets are configured");
      },
    });

    // Sign-in needs the public URL, which needs the port, which is known only after listening: its routes
    // are mounted on this router once they exist.
    const signInRoutes = express.Router();
    let shuttingDown = false;
    const app = createApp({
      store,
      logger,
      metrics,
      https: config.server.publicUrl?.startsWith("https:") ?? false,
      trustProxy: config.server.trustProxy,
      isShuttingDown: () => shuttingDown,
      routers: [
        { path: "/callbacks", router: callbacks },
        { path: "/", router: signInRoutes },
      ],
    });
    const server = await listen(app, config.server.host, config.server.port);
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : config.server.port;
    const url = `http://${config.server.host}:${port}`;
    const publicUrl = (config.server.publicUrl ?? url).replace(/\/+$/, "");
    try {
      const signIn = await startSignIn({
        config,
        store,
        audit,
        publicUrl,
        // Rotation (`idbridge keys rotate`) takes effect here, at start: the new key signs, retired ones
        // verify until their grace ends.
        signingKeys: tokenSigningJwks(keys.tokenKeys, new Date(), config.signIn.signingKeyGraceDays).keys,
        cookieSecrets: keys.cookieSecrets,
        logger,
        ...(overrides.people === undefined ? {} : { people: overrides.people }),
        ...(overrides.passwordLimits === undefined ? {} : { passwordLimits: overrides.passwordLimits }),
      });
      cleanups.push(() => signIn.close());
      signInRoutes.use(signIn.router);
      const launch = new LaunchService({
        targets: await openLaunchTargets(config),
        store,
        people: signIn.people,
        audit: (event) => audit.record(event),
      });
      signInRoutes.use("/launch", launchRouter({ launch, firstParty: signIn.firstParty, logger }));
      const adminAuth = createAdminAuth({
        provider: signIn.provider,
        firstParty: signIn.firstParty,
        people: signIn.people,
        console: config.console,
        publicUrl,
        cookieSecrets: keys.cookieSecrets,
      });
      const admin = createAdminService({ config, store, sync, audit, keys });
      signInRoutes.use(ADMIN_API_PATH, adminApiRouter({ service: admin, auth: adminAuth, publicUrl }));
      signInRoutes.use(
        CONSOLE_PATH,
        consoleRouter({
          service: admin,
          auth: adminAuth,
          firstParty: signIn.firstParty,
          https: publicUrl.startsWith("https:"),
        }),
      );
    } catch (err) {
      await closeServer(server, 0);
      throw err;
    }
    logger.info({ url, store: store.location, instance: instance.id }, `idbridge listening on ${url}`);

    if (scheduler !== null) {
      // Stopped before the audit log and the store close (cleanups run in reverse).
      cleanups.push(() => scheduler.stop());
      await scheduler.start();
    } else logger.info("no targets configured: the sync scheduler is off");

    let stopping: Promise<void> | null = null;
    return {
      url,
      stop() {
        stopping ??= (async () => {
          shuttingDown = true;
          await closeServer(server, config.server.shutdownTimeoutSeconds * 1000);
          await cleanup();
          logger.info("idbridge stopped");
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function listen(app: ReturnType<typeof createApp>, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once("listening", () => resolve(server));
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE"
          ? "is already in use"
          : err.code === "EACCES"
            ? "needs privileges"
            : describeError(err);
      reject(
        new AppError("CONFIG_INVALID", `server.port: cannot listen on ${host}:${port}: ${why}`, {
          cause: err,
        }),
      );
    });
  });
}

/** Stops accepting, lets open requests finish up to `timeoutMs`, then cuts what is left. */
function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
