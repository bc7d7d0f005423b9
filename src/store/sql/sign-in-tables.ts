/**
 * Sign-in flow records and one-time markers, for the broker (src/broker/login.ts). They live in the
 * `oidc_artifacts` table under model names the provider never uses (`@SignInFlow`, `@Once`), so they
 * expire and are swept with the provider's own short-lived artefacts and need no table of their own.
 * Their writes are relaxed like the provider's (see oidc-tables.ts): losing one to a power failure means
 * a person starts the sign-in again. Such a failure loses a suffix of the commits (SQLite's WAL and
 * PostgreSQL's are flushed in order), so a lost one-time marker takes with it the sign-in it admitted: a
 * replay after the restart still yields at most one surviving sign-in per assertion or code.
 */
import type { SqlDriver } from "./driver.js";

const FLOW = "@SignInFlow";
const ONCE = "@Once";

/** Stores a flow record under its state; a second put of the same state replaces it. */
export async function putFlow(
  db: SqlDriver,
  state: string,
  payload: string,
  expiresAt: number,
): Promise<void> {
  await db.relaxed.run(
    `INSERT INTO oidc_artifacts (model, id, payload, expires_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at`,
    [FLOW, state, payload, expiresAt],
  );
}

/**
 * Removes and returns the unexpired flow record of `state` in one statement, so that of two callbacks
 * with the same state (a replay, two instances) exactly one gets it.
 */
export async function takeFlow(db: SqlDriver, state: string, now: number): Promise<string | null> {
  const rows = await db.relaxed.query<{ payload: string }>(
    `DELETE FROM oidc_artifacts WHERE model = $1 AND id = $2 AND (expires_at IS NULL OR expires_at > $3)
     RETURNING payload`,
    [FLOW, state, now],
  );
  return rows[0]?.payload ?? null;
}

/** Marks `key` used until `expiresAt`: true when it was free (never used, or its mark expired). */
export async function claimOnce(
  db: SqlDriver,
  key: string,
  expiresAt: number,
  now: number,
): Promise<boolean> {
  const changed = await db.relaxed.run(
    `INSERT INTO oidc_artifacts (model, id, payload, expires_at) VALUES ($1, $2, '{}', $3)
     ON CONFLICT (model, id) DO UPDATE SET expires_at = excluded.expires_at
     WHERE oidc_artifacts.expires_at IS NOT NULL AND oidc_artifacts.expires_at <= $4`,
    [ONCE, key, expiresAt, now],
  );
  return changed > 0;
}
