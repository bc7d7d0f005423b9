import type { LinkDecision, ReviewItem } from "../../identity/link.js";
import type { Person } from "../../identity/person.js";
import type { SqlClient, SqlDriver } from "./driver.js";
import { lastPerKey, placeholders, upsertRows } from "./upsert.js";

/** Code-unit order, the same in both flavours (PostgreSQL's ORDER BY would follow the database's locale). */
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every person, sorted by id. */
export async function listPeople(db: SqlDriver): Promise<Person[]> {
  const rows = await db.query<{ id: string; accounts: string }>("SELECT id, accounts FROM people");
  return rows
    .map((r) => ({ id: r.id, accounts: JSON.parse(r.accounts) as Person["accounts"] }))
    .sort((a, b) => compareStrings(a.id, b.id));
}

/** Inserts or replaces people by id, in one transaction. */
export async function savePeople(db: SqlDriver, people: readonly Person[]): Promise<void> {
  if (people.length === 0) return;
  const rows = lastPerKey(people, (p) => p.id).map((p) => [p.id, JSON.stringify(p.accounts)]);
  await db.transaction(null, (tx) => upsertRows(tx, "people", ["id", "accounts"], ["id"], rows));
}

/** Link decisions, oldest first. */
export async function listLinkDecisions(db: SqlDriver): Promise<LinkDecision[]> {
  const rows = await db.query<{ decision: string }>("SELECT decision FROM link_decisions ORDER BY seq");
  return rows.map((r) => JSON.parse(r.decision) as LinkDecision);
}

/** Appends a link decision. */
export async function addLinkDecision(db: SqlClient, decision: LinkDecision): Promise<void> {
  await db.run("INSERT INTO link_decisions (decision) VALUES ($1)", [JSON.stringify(decision)]);
}

/** The review queue in its stored order. */
export async function getReviewQueue(db: SqlDriver): Promise<ReviewItem[]> {
  const rows = await db.query<{ item: string }>("SELECT item FROM review_queue ORDER BY position");
  return rows.map((r) => JSON.parse(r.item) as ReviewItem);
}

/** Replaces the whole review queue in one transaction (readers see the old queue or the new one). */
export async function setReviewQueue(db: SqlDriver, items: readonly ReviewItem[]): Promise<void> {
  await db.transaction(null, async (tx) => {
    await tx.run("DELETE FROM review_queue");
    for (let i = 0; i < items.length; i += 500) {
      const chunk = items.slice(i, i + 500);
      await tx.run(
        `INSERT INTO review_queue (position, id, item) VALUES ${placeholders(chunk.length, 3)}`,
        chunk.flatMap((item, j) => [i + j, item.id, JSON.stringify(item)]),
      );
    }
  });
}

/** The kept snapshot of a source, if any. */
export async function getLatestSnapshot(
  db: SqlDriver,
  sourceId: string,
): Promise<{ json: string; takenAt: string } | null> {
  const rows = await db.query<{ json: string; taken_at: string }>(
    "SELECT json, taken_at FROM latest_snapshots WHERE source_id = $1",
    [sourceId],
  );
  const row = rows[0];
  return row === undefined ? null : { json: row.json, takenAt: row.taken_at };
}

/** Keeps (replaces) the snapshot of a source. */
export async function putLatestSnapshot(
  db: SqlDriver,
  sourceId: string,
  json: string,
  takenAt: string,
): Promise<void> {
  await db.run(
    `INSERT INTO latest_snapshots (source_id, taken_at, json) VALUES ($1, $2, $3)
     ON CONFLICT (source_id) DO UPDATE SET taken_at = excluded.taken_at, json = excluded.json`,
    [sourceId, takenAt, json],
  );
}
