/**
 * Vitest global setup: one PostgreSQL server for the whole run, shared by every test file through
 * `inject("postgresUrl")`; each file creates its own databases on it (see createDatabase).
 */
import type { TestProject } from "vitest/node";
import { peerMissing } from "./availability.js";
import { startPostgres, type PostgresPeer } from "./postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the run's PostgreSQL server (its `postgres` database), or null when none could be started. */
    postgresUrl: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let postgres: PostgresPeer | null = null;
  const started = Date.now();
  try {
    postgres = await startPostgres();
    process.stderr.write(`[peers] PostgreSQL ready in ${Date.now() - started} ms\n`);
  } catch (err) {
    // Throws under CI=true, which fails the run before any test starts.
    peerMissing("PostgreSQL", err instanceof Error ? err.message : String(err));
  }
  project.provide("postgresUrl", postgres?.url ?? null);
  return async () => {
    await postgres?.stop();
  };
}
