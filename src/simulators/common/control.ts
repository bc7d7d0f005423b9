import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type Express, type Router } from "express";
import type { SimClock } from "./clock.js";
import { parseFaults, type Faults } from "./faults.js";
import type { TokenStore } from "./tokens.js";

/** The knobs every simulator exposes to tests, benchmarks and the demo. */
export interface SimControls {
  readonly clock: SimClock;
  readonly faults: Faults;
  /** Every token store of the simulator (app tokens, user tokens), for the expire-tokens hook. */
  readonly tokenStores: readonly Pick<TokenStore, "expireAll">[];
  /** API calls served, by path (token calls included), for tests that count requests. */
  readonly calls: Map<string, number>;
}

/** Counts one call to `path`. */
export function countCall(controls: SimControls, path: string): void {
  controls.calls.set(path, (controls.calls.get(path) ?? 0) + 1);
}

/**
 * Admin hooks under `/__simulator/` (no vendor path starts with it):
 * POST faults {spec, replace?}, POST expire-tokens, POST advance-clock {ms}, GET calls.
 */
export function controlRouter(
  controls: SimControls,
  options: {
    /** A simulator's own fault syntax (a superset of the common one); returns what to report back. */
    readonly applyFaults?: (spec: string, replace: boolean) => Record<string, unknown>;
  } = {},
): Router {
  const applyFaults =
    options.applyFaults ??
    ((spec: string, replace: boolean) => {
      const rules = parseFaults(spec);
      if (replace) controls.faults.set(rules);
      else controls.faults.add(rules);
      return { rules };
    });
  const router = express.Router();
  router.use(express.json());
  router.post("/faults", (req, res) => {
    const body = (req.body ?? {}) as { spec?: unknown; replace?: unknown };
    if (typeof body.spec !== "string") {
      res.status(400).json({ error: "body must be {spec: string, replace?: boolean}" });
      return;
    }
    try {
      res.json({ ok: true, ...applyFaults(body.spec, body.replace !== false) });
    } catch (error) {
      res.status(400).json({ error: (error as Error).message });
    }
  });
  router.post("/expire-tokens", (_req, res) => {
    for (const store of controls.tokenStores) store.expireAll();
    res.json({ ok: true });
  });
  router.post("/advance-clock", (req, res) => {
    const ms = (req.body as { ms?: unknown } | undefined)?.ms;
    if (typeof ms !== "number" || !(ms >= 0)) {
      res.status(400).json({ error: "body must be {ms: number ≥ 0}" });
      return;
    }
    controls.clock.advance(ms);
    res.json({ ok: true });
  });
  router.get("/calls", (_req, res) => {
    res.json(Object.fromEntries(controls.calls));
  });
  return router;
}

/** A running simulator. */
export interface RunningSimulator {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (simulators never bind elsewhere). */
export async function listenLocal(app: Express, port = 0): Promise<RunningSimulator> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, "127.0.0.1", (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  // Keep-alive sockets would otherwise hold close() open for the idle timeout.
  server.keepAliveTimeout = 1000;
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
