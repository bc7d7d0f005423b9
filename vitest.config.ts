import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Starts the real peers (PostgreSQL) once for the run; tests reach them through test/peers/index.ts.
    globalSetup: ["test/peers/global-setup.ts"],
    // Integration tests talk to real servers and spawn processes.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Child processes rather than threads: native modules (better-sqlite3) and spawned helpers behave as in production.
    pool: "forks",
    // Every test by name, so the log shows e.g. that the store conformance suite ran on both flavours.
    reporters: ["verbose"],
  },
});
