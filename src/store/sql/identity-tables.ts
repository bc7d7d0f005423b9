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

/** Inserts or replaces people by id, and their rows of the account index, in one transaction. */
export async function savePeople(db: SqlDriver, people: readonly Person[]): Promise<void> {
  if (people.length === 0) return;
  const saved = lastPerKey(people, (p) => p.id);
  const rows = saved.map((p) => [p.id, JSON.stringify(p.accounts)]);
  await db.transaction(null, async (tx) => {
    await upsertRows(tx, "people", ["id", "accounts"], ["id"], rows);
    await indexAccounts(tx, saved);
  });
}

// ---------------------------------------------------------------- sign-in: person by account

/**
 * Rewrites the account index rows of `people`: their old rows go, their accounts' rows come (an account
 * that moved from a person not saved here moves with the upsert).
 */
async function indexAccounts(tx: SqlClient, people: readonly Person[]): Promise<void> {
  for (let i = 0; i < people.length; i += 1000) {
    const ids = people.slice(i, i + 1000).map((p) => p.id);
    await tx.run(
      `DELETE FROM person_accounts WHERE person_id IN (${ids.map((_, k) => `$${k + 1}`).join(", ")})`,
      ids,
    );
  }
  const accounts = lastPerKey(
    people.flatMap((p) => p.accounts.map((a) => [a.sourceId, a.subject, p.id] as const)),
    ([sourceId, subject]) => `${sourceId}\u0000${subject}`,
  );
  await upsertRows(
    tx,
    "person_accounts",
    ["source_id", "subject", "person_id"],
    ["source_id", "subject"],
    accounts,
  );
}

/** The person with the account (sourceId, subject), or null; one indexed look-up, not a scan of people. */
export async function findPersonByAccount(
  db: SqlDriver,
  sourceId: string,
  subject: string,
): Promise<Person | null> {
  const rows = await db.query<{ id: string; accounts: string }>(
    `SELECT p.id, p.accounts FROM person_accounts a JOIN people p ON p.id = a.person_id
     WHERE a.source_id = $1 AND a.subject = $2`,
    [sourceId, subject],
  );
  const row = rows[0];
  if (row === undefined) return null;
  const person = { id: row.id, accounts: JSON.parse(row.accounts) as Person["accounts"] };
  // people.accounts is the truth: an index row it does not back names nobody.
  return person.accounts.some((a) => a.sourceId === sourceId && a.subject === subject) ? person : null;
}

/** One person by id, or null. */
export async function getPerson(db: SqlDriver, id: string): Promise<Person | null> {
  const rows = await db.query<{ id: string; accounts: string }>(
    "SELECT id, accounts FROM people WHERE id = $1",
    [id],
  );
  const row = rows[0];
  return row === undefined ? null : { id: row.id, accounts: JSON.parse(row.accounts) as Person["accounts"] };
}

/** When each kept snapshot was taken, sorted by source id, without the snapshots. */
export async function listLatestSnapshotTimes(
  db: SqlDriver,
): Promise<{ sourceId: string; takenAt: string }[]> {
  const rows = await db.query<{ source_id: string; taken_at: string }>(
    "SELECT source_id, taken_at FROM latest_snapshots",
  );
  return rows
    .map((r) => ({ sourceId: r.source_id, takenAt: r.taken_at }))
    .sort((a, b) => compareStrings(a.sourceId, b.sourceId));
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
