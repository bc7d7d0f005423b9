import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The Prometheus metrics of one service instance (a registry of its own, so tests can run several). */
export interface Metrics {
  /** Registry served at /metrics. */
  registry: Registry;
  /** HTTP requests by method, route and status. */
  httpRequests: Counter<"method" | "route" | "status">;
  /** HTTP request duration in seconds by method and route. */
  httpDuration: Histogram<"method" | "route">;
  /** Audit entries committed by this instance. */
  auditEntries: Counter;
}

/** Creates the metrics, including Node's default process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "idbridge_" });
  return {
    registry,
    httpRequests: new Counter({
      name: "idbridge_http_requests_total",
      help: "HTTP requests by method, route and status.",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "idbridge_http_request_duration_seconds",
      help: "HTTP request duration in seconds.",
      labelNames: ["method", "route"],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    auditEntries: new Counter({
      name: "idbridge_audit_entries_appended_total",
      help: "Audit entries committed by this instance.",
      registers: [registry],
    }),
  };
}
