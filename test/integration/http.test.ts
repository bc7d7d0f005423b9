import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app.js";
import { errorHandler } from "../../src/http/errors.js";
import { createMetrics } from "../../src/http/metrics.js";
import { AppError } from "../../src/domain/errors.js";
import { openStore, type Store } from "../../src/store/index.js";
import { CODE_SCHEMA_VERSION } from "../../src/store/sql/migrations.js";

const logLines: string[] = [];
const logger = pino({ level: "info" }, { write: (line: string) => logLines.push(line) });

function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => {
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
  });
}

let store: Store;
let server: Server;
let url: string;
let shuttingDown = false;

beforeAll(async () => {
  store = await openStore({
    url: `sqlite:${join(mkdtempSync(join(tmpdir(), "idbridge-http-")), "db.sqlite")}`,
  });
  const app = createApp({
    store,
    logger,
    metrics: createMetrics(),
    https: false,
    trustProxy: false,
    isShuttingDown: () => shuttingDown,
  });
  ({ server, url } = await listen(app));
});
afterAll(async () => {
  server.close();
  await store.close();
});

describe("HTTP skeleton", () => {
  it("answers /healthz and /readyz with the schema version", async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: "ready",
      store: "sqlite",
      schemaVersion: CODE_SCHEMA_VERSION,
    });
  });

  it("reports not ready while shutting down", async () => {
    shuttingDown = true;
    try {
      const r = await fetch(`${url}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: "not_ready", reason: "shutting down" });
    } finally {
      shuttingDown = false;
    }
  });

  it("serves Prometheus metrics that count requests", async () => {
    await fetch(`${url}/healthz`);
    const r = await fetch(`${url}/metrics`);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(text).toMatch(/idbridge_http_requests_total\{method="GET",route="\/healthz",status="200"\} [1-9]/);
    expect(text).toContain("idbridge_process_resident_memory_bytes");
  });

  it("answers unknown routes with {error, error_description} and sets security headers and a request id", async () => {
    const r = await fetch(`${url}/nope`, { headers: { "x-request-id": "abc-123" } });
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: "not_found", error_description: "no route for GET /nope" });
    expect(r.headers.get("x-request-id")).toBe("abc-123");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(r.headers.get("strict-transport-security")).toBeNull(); // plain http: no HSTS
    expect(r.headers.get("x-powered-by")).toBeNull();
    const bogusId = await fetch(`${url}/nope`, { headers: { "x-request-id": "<script>" } });
    expect(bogusId.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("error handler", () => {
  it("exposes AppErrors marked expose and hides everything else behind server_error", async () => {
    const app = express();
    app.use((req, _res, next) => {
      (req as unknown as { id: string; log: unknown }).id = "req-1";
      (req as unknown as { log: unknown }).log = logger;
      next();
    });
    app.get("/denied", () => {
      throw new AppError("ACCESS_DENIED", "auditors cannot approve plans", { expose: true });
    });
    app.get("/secret", () => {
      throw new Error("relation internal_table_x does not exist");
    });
    app.get("/hidden", () => {
      throw new AppError("STORE_UNAVAILABLE", "store at db:5432 is down");
    });
    app.use(errorHandler);
    const { server: s, url: u } = await listen(app);
    try {
      const denied = await fetch(`${u}/denied`);
      expect(denied.status).toBe(403);
      expect(await denied.json()).toEqual({
        error: "access_denied",
        error_description: "auditors cannot approve plans",
      });
      for (const path of ["/secret", "/hidden"]) {
        const r = await fetch(`${u}${path}`);
        expect(r.status).toBe(500);
        const body = await r.text();
        expect(JSON.parse(body)).toEqual({
          error: "server_error",
          error_description: "internal error (request id req-1)",
        });
        expect(body).not.toMatch(/internal_table_x|5432/);
      }
      expect(logLines.join("")).toContain("internal_table_x"); // the detail goes to the log only
    } finally {
      s.close();
    }
  });
});
