import type { SqlClient } from "./driver.js";

// SQLite (as bundled by better-sqlite3) allows 32,766 parameters per statement, PostgreSQL 65,535.
const MAX_PARAMS = 30_000;
// Past a few hundred rows a bigger statement saves no round trips worth having and costs parse time.
const MAX_ROWS = 1_000;

/** `($1, $2), ($3, $4)…` for `rows` rows of `width` values. */
export function placeholders(rows: number, width: number, first = 1): string {
  const tuples: string[] = [];
  for (let i = 0; i < rows; i++) {
    const base = first + i * width;
    tuples.push(`(${Array.from({ length: width }, (_, k) => `$${base + k}`).join(", ")})`);
  }
  return tuples.join(", ");
}

/**
 * Inserts `rows` into `table`, replacing rows with the same `keyColumns`, as multi-row statements in
 * chunks (one round trip per chunk). Run it inside a transaction to make the whole batch atomic.
 * Rows must not repeat a key: PostgreSQL refuses to update one row twice in a statement.
 */
export async function upsertRows(
  tx: SqlClient,
  table: string,
  columns: readonly string[],
  keyColumns: readonly string[],
  rows: readonly (readonly unknown[])[],
): Promise<void> {
  const width = columns.length;
  const perChunk = Math.max(1, Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / width)));
  const updates = columns.filter((c) => !keyColumns.includes(c)).map((c) => `${c} = excluded.${c}`);
  const onConflict =
    updates.length > 0
      ? `ON CONFLICT (${keyColumns.join(", ")}) DO UPDATE SET ${updates.join(", ")}`
      : `ON CONFLICT (${keyColumns.join(", ")}) DO NOTHING`;
  for (let i = 0; i < rows.length; i += perChunk) {
    const chunk = rows.slice(i, i + perChunk);
    await tx.run(
      `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${placeholders(chunk.length, width)} ${onConflict}`,
      chunk.flat(),
    );
  }
}

/** The last row for each key, in first-seen order of the keys (so one statement never updates a row twice). */
export function lastPerKey<T>(items: readonly T[], keyOf: (item: T) => string): T[] {
  const byKey = new Map<string, T>();
  for (const item of items) byKey.set(keyOf(item), item);
  return [...byKey.values()];
}
