/**
 * The Store flavours the conformance suites run on: SQLite (a temp file) and the run's real PostgreSQL
 * server (a fresh database per test).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import type { SqlDriver } from "../../src/store/sql/driver.js";
import { openPostgres } from "../../src/store/sql/postgres.js";
import { openSqlite } from "../../src/store/sql/sqlite.js";
import { createDatabase, postgresUrlOrSkip } from "../peers/index.js";

/** One flavour of store under test. */
export interface Flavour {
  name: "sqlite" | "postgres";
  /** False when the flavour's server could not be had; its suite is then skipped. */
  available: boolean;
  /** The URL of an empty database of this flavour, for one test. */
  freshUrl(): Promise<string>;
  /** A driver on that database below the Store, to do what the Store never does. */
  openRaw(url: string): SqlDriver;
}

/** Both flavours; call once per test file (registers the temp directory's removal). */
export function storeFlavours(): { sqlite: Flavour; postgres: Flavour } {
  const sqliteDir = mkdtempSync(join(tmpdir(), "idbridge-conformance-"));
  afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));
  let sqliteFiles = 0;
  const sqlite: Flavour = {
    name: "sqlite",
    available: true,
    freshUrl: async () => `sqlite:${join(sqliteDir, `store-${++sqliteFiles}.db`)}`,
    openRaw: (url) => openSqlite(url.slice("sqlite:".length)),
  };
  const postgresUrl = postgresUrlOrSkip();
  const postgres: Flavour = {
    name: "postgres",
    available: postgresUrl !== null,
    freshUrl: () => createDatabase(postgresUrl as string, `conformance_${randomBytes(6).toString("hex")}`),
    openRaw: (url) => openPostgres(url, 2),
  };
  return { sqlite, postgres };
}
