/**
 * The downstream OIDC provider's artefacts (codes, tokens, sessions, grants…), for src/broker/adapter.ts.
 *
 * Every write goes through the driver's relaxed path: a token exchange writes four or five artefacts, and
 * a sync of the disk for each was most of its cost. A power failure may lose the last few hundred
 * milliseconds of them — a code not yet marked used, a new session or token — which means a person signs
 * in again; the database stays consistent, and the audit log keeps its durable commits.
 */
import type { OidcArtifact, OidcArtifactKeys } from "../store.js";
import type { SqlClient, SqlDriver } from "./driver.js";

interface ArtifactRow {
  model: string;
  id: string;
  payload: string;
  expires_at: number | string | null;
  consumed_at: number | string | null;
  [key: string]: unknown;
}

const COLUMNS = "model, id, payload, expires_at, consumed_at";
// An artefact without expiry never expires; one whose time has come is gone even before the sweep runs.
const UNEXPIRED = "(expires_at IS NULL OR expires_at > $3)";

// PostgreSQL returns BIGINT as a string.
function epochMs(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

function toArtifact(row: ArtifactRow | undefined): OidcArtifact | null {
  if (row === undefined) return null;
  return {
    model: row.model,
    id: row.id,
    payload: row.payload,
    expiresAt: epochMs(row.expires_at),
    consumedAt: epochMs(row.consumed_at),
  };
}

/** Inserts or replaces an artefact; a replaced one starts unconsumed (its payload says otherwise if it was). */
export async function upsertArtifact(
  db: SqlDriver,
  model: string,
  id: string,
  payload: string,
  expiresAt: number | null,
  keys: OidcArtifactKeys,
): Promise<void> {
  await db.relaxed.run(
    `INSERT INTO oidc_artifacts (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
     ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
       user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at, consumed_at = NULL`,
    [model, id, payload, keys.grantId ?? null, keys.userCode ?? null, keys.uid ?? null, expiresAt],
  );
}

/** An unexpired artefact by model and id. */
export async function findArtifact(
  db: SqlClient,
  model: string,
  id: string,
  now: number,
): Promise<OidcArtifact | null> {
  const rows = await db.query<ArtifactRow>(
    `SELECT ${COLUMNS} FROM oidc_artifacts WHERE model = $1 AND id = $2 AND ${UNEXPIRED}`,
    [model, id, now],
  );
  return toArtifact(rows[0]);
}

/** An unexpired artefact of a model by a secondary key. */
export async function findArtifactBy(
  db: SqlClient,
  key: "uid" | "user_code",
  model: string,
  value: string,
  now: number,
): Promise<OidcArtifact | null> {
  const rows = await db.query<ArtifactRow>(
    `SELECT ${COLUMNS} FROM oidc_artifacts WHERE model = $1 AND ${key} = $2 AND ${UNEXPIRED} LIMIT 1`,
    [model, value, now],
  );
  return toArtifact(rows[0]);
}

/**
 * Marks an artefact consumed at `at`; true only when this call did. The condition and the write are one
 * statement, so of two racing consumers exactly one changes the row (PostgreSQL re-checks the condition
 * after waiting for the other's row lock; SQLite has one writer at a time).
 */
export async function consumeArtifact(
  db: SqlDriver,
  model: string,
  id: string,
  at: number,
): Promise<boolean> {
  const changed = await db.relaxed.run(
    "UPDATE oidc_artifacts SET consumed_at = $3 WHERE model = $1 AND id = $2 AND consumed_at IS NULL",
    [model, id, at],
  );
  return changed === 1;
}

/** Removes one artefact. */
export async function destroyArtifact(db: SqlDriver, model: string, id: string): Promise<void> {
  await db.relaxed.run("DELETE FROM oidc_artifacts WHERE model = $1 AND id = $2", [model, id]);
}

/** Removes every artefact of a grant, whatever its model. */
export async function revokeGrant(db: SqlDriver, grantId: string): Promise<void> {
  await db.relaxed.run("DELETE FROM oidc_artifacts WHERE grant_id = $1", [grantId]);
}

/** Removes expired artefacts; returns how many. */
export async function deleteExpired(db: SqlDriver, now: number): Promise<number> {
  return db.relaxed.run("DELETE FROM oidc_artifacts WHERE expires_at <= $1", [now]);
}
