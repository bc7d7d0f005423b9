import { AppError } from "../../domain/errors.js";
import type { SqlDriver } from "./driver.js";

/** One numbered schema change: its statements, the same for both flavours unless given per flavour. */
interface Migration {
  version: number;
  name: string;
  statements: readonly string[] | { sqlite: readonly string[]; postgres: readonly string[] };
}

const AUDIT_ENTRIES = `CREATE TABLE audit_entries (
  seq BIGINT PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT, target TEXT, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`;
const AUDIT_CHECKPOINTS = `CREATE TABLE audit_checkpoints (
  seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time TEXT NOT NULL, jws TEXT NOT NULL)`;
const INSTANCES = `CREATE TABLE instances (
  id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL,
  heartbeat_at BIGINT NOT NULL)`;

// JSON is kept as TEXT in both flavours: the store never queries inside it, and TEXT round-trips exactly.
// Times are ISO 8601 TEXT (they sort as strings); lease expiry is epoch ms, compared as a number.
const IDENTITY_AND_SYNC_TABLES = [
  "CREATE TABLE people (id TEXT PRIMARY KEY, accounts TEXT NOT NULL)",
  `CREATE TABLE review_queue (
     position INTEGER PRIMARY KEY, id TEXT NOT NULL, item TEXT NOT NULL)`,
  `CREATE TABLE latest_snapshots (
     source_id TEXT PRIMARY KEY, taken_at TEXT NOT NULL, json TEXT NOT NULL)`,
  `CREATE TABLE target_links (
     target TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, target_record_id TEXT NOT NULL,
     linked_at TEXT NOT NULL, PRIMARY KEY (target, kind, key))`,
  `CREATE TABLE plans (
     id TEXT PRIMARY KEY, target TEXT NOT NULL, created_at TEXT NOT NULL, hash TEXT NOT NULL,
     status TEXT NOT NULL, needs_approval INTEGER NOT NULL, summary TEXT NOT NULL, content TEXT NOT NULL,
     decision TEXT, updated_at TEXT NOT NULL)`,
  "CREATE INDEX plans_target_created ON plans (target, created_at)",
  `CREATE TABLE plan_items (
     plan_id TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, target_record_id TEXT,
     failure TEXT, at TEXT NOT NULL, PRIMARY KEY (plan_id, key))`,
  // "trigger" is a keyword in both dialects; the column is trigger_kind.
  `CREATE TABLE sync_runs (
     id TEXT PRIMARY KEY, target TEXT NOT NULL, trigger_kind TEXT NOT NULL, started_at TEXT NOT NULL,
     finished_at TEXT, status TEXT NOT NULL, plan_id TEXT, summary TEXT NOT NULL)`,
  "CREATE INDEX sync_runs_target_started ON sync_runs (target, started_at)",
  "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)",
];

const PERSON_ACCOUNTS = `CREATE TABLE person_accounts (
  source_id TEXT NOT NULL, subject TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (source_id, subject))`;

/** The schema, in order. Never edit a released migration: add a new one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "audit log, checkpoints, instances",
    statements: {
      sqlite: [
        AUDIT_ENTRIES,
        `CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
           BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END`,
        `CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
           BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END`,
        AUDIT_CHECKPOINTS,
        INSTANCES,
      ],
      postgres: [
        AUDIT_ENTRIES,
        `CREATE FUNCTION idbridge_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$`,
        `CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
           FOR EACH STATEMENT EXECUTE FUNCTION idbridge_audit_append_only()`,
        AUDIT_CHECKPOINTS,
        INSTANCES,
      ],
    },
  },
  {
    version: 2,
    name: "audit checkpoints are append-only",
    statements: {
      sqlite: [
        `CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
           BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END`,
        `CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
           BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END`,
      ],
      postgres: [
        `CREATE FUNCTION idbridge_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'audit checkpoints are append-only'; END $$`,
        `CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
           FOR EACH STATEMENT EXECUTE FUNCTION idbridge_checkpoints_append_only()`,
      ],
    },
  },
  {
    version: 3,
    name: "source read cursors",
    statements: [
      `CREATE TABLE source_cursors (
         source_id TEXT NOT NULL, consumer TEXT NOT NULL, cursor TEXT NOT NULL, updated_at TEXT NOT NULL,
         PRIMARY KEY (source_id, consumer))`,
    ],
  },
  {
    version: 4,
    name: "people, link decisions, review queue, latest snapshots, target links, plans, sync runs, leases",
    statements: {
      sqlite: [
        ...IDENTITY_AND_SYNC_TABLES,
        "CREATE TABLE link_decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, decision TEXT NOT NULL)",
      ],
      postgres: [
        ...IDENTITY_AND_SYNC_TABLES,
        "CREATE TABLE link_decisions (seq BIGSERIAL PRIMARY KEY, decision TEXT NOT NULL)",
      ],
    },
  },
  {
    version: 5,
    name: "oidc provider artefacts",
    statements: [
      // Payloads are the provider's JSON as TEXT; expires_at and consumed_at are epoch ms (NULL: never / not yet).
      `CREATE TABLE oidc_artifacts (
         model TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL, grant_id TEXT, user_code TEXT,
         uid TEXT, expires_at BIGINT, consumed_at BIGINT, PRIMARY KEY (model, id))`,
      "CREATE INDEX oidc_artifacts_grant ON oidc_artifacts (grant_id)",
      "CREATE INDEX oidc_artifacts_user_code ON oidc_artifacts (model, user_code)",
      "CREATE INDEX oidc_artifacts_uid ON oidc_artifacts (model, uid)",
      "CREATE INDEX oidc_artifacts_expires ON oidc_artifacts (expires_at)",
    ],
  },
  // ---------------------------------------------------------------- sign-in: person by account
  {
    version: 6,
    name: "person accounts index (sign-in finds a person by source account)",
    statements: {
      // people.accounts stays the truth; this table is its index, filled from it once here and kept by
      // savePeople in the same transaction.
      sqlite: [
        PERSON_ACCOUNTS,
        "CREATE INDEX person_accounts_person ON person_accounts (person_id)",
        `INSERT INTO person_accounts (source_id, subject, person_id)
           SELECT json_extract(a.value, '$.sourceId'), json_extract(a.value, '$.subject'), p.id
           FROM people p, json_each(p.accounts) a`,
      ],
      postgres: [
        PERSON_ACCOUNTS,
        "CREATE INDEX person_accounts_person ON person_accounts (person_id)",
        `INSERT INTO person_accounts (source_id, subject, person_id)
           SELECT a ->> 'sourceId', a ->> 'subject', p.id
           FROM people p, json_array_elements(p.accounts::json) a`,
      ],
    },
  },
  // ---------------------------------------------------------------- audit search (src/store/sql/audit-search.ts)
  {
    version: 7,
    name: "audit search indexes (time, and actor, action, subject, target each with seq)",
    statements: {
      // With seq second, a filter on one column walks its index newest first and stops after a page.
      sqlite: [
        "CREATE INDEX audit_entries_time ON audit_entries (time)",
        "CREATE INDEX audit_entries_actor ON audit_entries (actor, seq)",
        "CREATE INDEX audit_entries_action ON audit_entries (action, seq)",
        "CREATE INDEX audit_entries_subject ON audit_entries (subject, seq)",
        "CREATE INDEX audit_entries_target ON audit_entries (target, seq)",
      ],
      // Actions compare in byte order (COLLATE "C"): the actions under a prefix are found by seeks in it.
      postgres: [
        "CREATE INDEX audit_entries_time ON audit_entries (time)",
        "CREATE INDEX audit_entries_actor ON audit_entries (actor, seq)",
        'CREATE INDEX audit_entries_action ON audit_entries (action COLLATE "C", seq)',
        "CREATE INDEX audit_entries_subject ON audit_entries (subject, seq)",
        "CREATE INDEX audit_entries_target ON audit_entries (target, seq)",
      ],
    },
  },
];

/** The latest schema version this code knows. */
export const CODE_SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

const HISTORY_TABLE = "idbridge_migrations";

/** Reads the applied schema version (0 for a fresh database). */
export async function schemaVersion(db: SqlDriver): Promise<number> {
  const rows = await db.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${HISTORY_TABLE}`);
  return Number(rows[0]?.v ?? 0);
}

/**
 * Brings the database to the latest schema: each missing migration in its own transaction, recorded in
 * the history table. Refuses a database from a newer idbridge and one that idbridge did not create.
 */
export async function migrate(db: SqlDriver): Promise<number> {
  const tables = await db.tableNames();
  if (!tables.includes(HISTORY_TABLE)) {
    if (tables.length > 0) {
      throw new AppError(
        "STORE_INCOMPATIBLE",
        `${db.location} is not an idbridge database (it has tables ${tables.slice(0, 5).join(", ")}` +
          `${tables.length > 5 ? ", …" : ""} but no ${HISTORY_TABLE}); point store.url at an empty or idbridge database`,
      );
    }
    await db.transaction("migrations", (tx) =>
      tx.run(
        `CREATE TABLE IF NOT EXISTS ${HISTORY_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
      ),
    );
  }
  for (;;) {
    // Re-read under the lock each time so two instances starting together apply each migration once.
    const applied = await db.transaction("migrations", async (tx) => {
      const rows = await tx.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${HISTORY_TABLE}`);
      const current = Number(rows[0]?.v ?? 0);
      if (current > CODE_SCHEMA_VERSION) {
        throw new AppError(
          "STORE_INCOMPATIBLE",
          `${db.location} has schema version ${current}, newer than this idbridge knows (${CODE_SCHEMA_VERSION}); ` +
            "run a newer idbridge or restore a backup made with this version",
        );
      }
      const next = MIGRATIONS.find((m) => m.version === current + 1);
      if (!next) return null;
      const statements = "sqlite" in next.statements ? next.statements[db.flavour] : next.statements;
      for (const statement of statements) await tx.run(statement);
      await tx.run(`INSERT INTO ${HISTORY_TABLE} (version, name, applied_at) VALUES ($1, $2, $3)`, [
        next.version,
        next.name,
        new Date().toISOString(),
      ]);
      return next.version;
    });
    if (applied === null) return CODE_SCHEMA_VERSION;
  }
}
