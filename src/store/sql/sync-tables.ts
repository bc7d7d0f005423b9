import type { JsonObject } from "../../domain/json.js";
import type {
  ListPosition,
  PlanDecision,
  PlanItemRecord,
  PlanListing,
  PlanRecord,
  PlanStatus,
  SyncRunRecord,
  TargetLink,
  TargetLinkKind,
} from "../store.js";
import type { Row, SqlClient, SqlDriver } from "./driver.js";
import { lastPerKey, upsertRows } from "./upsert.js";

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------- target links

/** A target's links, by kind then key. */
export async function listTargetLinks(db: SqlDriver, target: string): Promise<TargetLink[]> {
  const rows = await db.query<{ kind: string; key: string; target_record_id: string; linked_at: string }>(
    "SELECT kind, key, target_record_id, linked_at FROM target_links WHERE target = $1",
    [target],
  );
  return rows
    .map((r) => ({
      kind: r.kind as TargetLinkKind,
      key: r.key,
      targetRecordId: r.target_record_id,
      linkedAt: r.linked_at,
    }))
    .sort((a, b) => compareStrings(a.kind, b.kind) || compareStrings(a.key, b.key));
}

/** One link by (kind, key), through the primary key. */
export async function getTargetLink(
  db: SqlDriver,
  target: string,
  kind: TargetLinkKind,
  key: string,
): Promise<TargetLink | null> {
  const rows = await db.query<{ target_record_id: string; linked_at: string }>(
    "SELECT target_record_id, linked_at FROM target_links WHERE target = $1 AND kind = $2 AND key = $3",
    [target, kind, key],
  );
  const row = rows[0];
  return row === undefined
    ? null
    : { kind, key, targetRecordId: row.target_record_id, linkedAt: row.linked_at };
}

/** Inserts or replaces links by (kind, key), in one transaction. */
export async function saveTargetLinks(
  db: SqlDriver,
  target: string,
  links: readonly TargetLink[],
): Promise<void> {
  if (links.length === 0) return;
  const rows = lastPerKey(links, (l) => `${l.kind}\u0000${l.key}`).map((l) => [
    target,
    l.kind,
    l.key,
    l.targetRecordId,
    l.linkedAt,
  ]);
  await db.transaction(null, (tx) =>
    upsertRows(
      tx,
      "target_links",
      ["target", "kind", "key", "target_record_id", "linked_at"],
      ["target", "kind", "key"],
      rows,
    ),
  );
}

// ---------------------------------------------------------------- plans

const LISTING_COLUMNS = "id, target, created_at, hash, status, needs_approval, summary, decision, updated_at";

function toListing(row: Row): PlanListing {
  return {
    id: String(row.id),
    target: String(row.target),
    createdAt: String(row.created_at),
    hash: String(row.hash),
    status: row.status as PlanStatus,
    needsApproval: Number(row.needs_approval) === 1,
    summary: JSON.parse(String(row.summary)) as JsonObject,
    decision: row.decision === null ? null : (JSON.parse(String(row.decision)) as PlanDecision),
    updatedAt: String(row.updated_at),
  };
}

function toPlan(row: Row): PlanRecord {
  return { ...toListing(row), content: String(row.content) };
}

/**
 * Inserts a plan and supersedes the target's pending and approved plans, under the `plans` lock so that
 * two plans of one target made at once cannot both stay pending.
 */
export async function insertPlan(db: SqlDriver, plan: PlanRecord): Promise<string[]> {
  return db.transaction("plans", async (tx) => {
    const superseded = await tx.query<{ id: string }>(
      `UPDATE plans SET status = 'superseded', updated_at = $1
       WHERE target = $2 AND status IN ('pending', 'approved') AND id <> $3 RETURNING id`,
      [plan.createdAt, plan.target, plan.id],
    );
    await tx.run(
      `INSERT INTO plans (${LISTING_COLUMNS}, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        plan.id,
        plan.target,
        plan.createdAt,
        plan.hash,
        plan.status,
        plan.needsApproval ? 1 : 0,
        JSON.stringify(plan.summary),
        plan.decision === null ? null : JSON.stringify(plan.decision),
        plan.updatedAt,
        plan.content,
      ],
    );
    return superseded.map((r) => r.id).sort(compareStrings);
  });
}

/** A plan with its content. */
export async function getPlan(db: SqlDriver, id: string): Promise<PlanRecord | null> {
  const rows = await db.query(`SELECT ${LISTING_COLUMNS}, content FROM plans WHERE id = $1`, [id]);
  return rows[0] ? toPlan(rows[0]) : null;
}

/** Plans without content, newest first. */
export async function listPlans(
  db: SqlDriver,
  filter: { target?: string; statuses?: readonly PlanStatus[]; limit: number; before?: ListPosition },
): Promise<PlanListing[]> {
  if (filter.statuses?.length === 0) return [];
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.target !== undefined) {
    params.push(filter.target);
    where.push(`target = $${params.length}`);
  }
  if (filter.statuses !== undefined) {
    const first = params.length + 1;
    params.push(...filter.statuses);
    where.push(`status IN (${filter.statuses.map((_, i) => `$${first + i}`).join(", ")})`);
  }
  if (filter.before !== undefined) where.push(olderThan("created_at", filter.before, params));
  params.push(filter.limit);
  const rows = await db.query(
    `SELECT ${LISTING_COLUMNS} FROM plans ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map(toListing);
}

/** Compare-and-set of a plan's status: one UPDATE whose WHERE checks the expected statuses. */
export async function transitionPlan(
  db: SqlDriver,
  id: string,
  from: readonly PlanStatus[],
  to: PlanStatus,
  at: string,
  decision?: PlanDecision,
): Promise<PlanRecord | null> {
  if (from.length === 0) return null;
  const params: unknown[] = [to, at, id, ...from];
  const inList = from.map((_, i) => `$${4 + i}`).join(", ");
  let setDecision = "";
  if (decision !== undefined) {
    params.push(JSON.stringify(decision));
    setDecision = `, decision = $${params.length}`;
  }
  const rows = await db.query(
    `UPDATE plans SET status = $1, updated_at = $2${setDecision} WHERE id = $3 AND status IN (${inList})
     RETURNING ${LISTING_COLUMNS}, content`,
    params,
  );
  return rows[0] ? toPlan(rows[0]) : null;
}

// ---------------------------------------------------------------- plan items

const ITEM_COLUMNS = ["plan_id", "key", "status", "target_record_id", "failure", "at"];

function toItem(row: Row): PlanItemRecord {
  return {
    key: String(row.key),
    status: row.status as PlanItemRecord["status"],
    ...(row.target_record_id === null ? {} : { targetRecordId: String(row.target_record_id) }),
    ...(row.failure === null ? {} : { failure: JSON.parse(String(row.failure)) as JsonObject }),
    at: String(row.at),
  };
}

/** A plan's item outcomes, by key. */
export async function listPlanItems(db: SqlClient, planId: string): Promise<PlanItemRecord[]> {
  const rows = await db.query(`SELECT ${ITEM_COLUMNS.join(", ")} FROM plan_items WHERE plan_id = $1`, [
    planId,
  ]);
  return rows.map(toItem).sort((a, b) => compareStrings(a.key, b.key));
}

/** Of `items`, those not yet recorded as final (applied or noop) — the last per key. */
export async function freshPlanItems(
  tx: SqlClient,
  planId: string,
  items: readonly PlanItemRecord[],
): Promise<PlanItemRecord[]> {
  const unique = lastPerKey(items, (i) => i.key);
  const final = new Set<string>();
  for (let i = 0; i < unique.length; i += 1_000) {
    const keys = unique.slice(i, i + 1_000).map((item) => item.key);
    const rows = await tx.query<{ key: string }>(
      `SELECT key FROM plan_items WHERE plan_id = $1 AND status IN ('applied', 'noop')
       AND key IN (${keys.map((_, j) => `$${j + 2}`).join(", ")})`,
      [planId, ...keys],
    );
    for (const row of rows) final.add(row.key);
  }
  return unique.filter((item) => !final.has(item.key));
}

/** Inserts or replaces item outcomes by (plan, key); keys must be unique. */
export async function upsertPlanItems(
  tx: SqlClient,
  planId: string,
  items: readonly PlanItemRecord[],
): Promise<void> {
  await upsertRows(
    tx,
    "plan_items",
    ITEM_COLUMNS,
    ["plan_id", "key"],
    items.map((item) => [
      planId,
      item.key,
      item.status,
      item.targetRecordId ?? null,
      item.failure === undefined ? null : JSON.stringify(item.failure),
      item.at,
    ]),
  );
}

// ---------------------------------------------------------------- sync runs

const RUN_COLUMNS = "id, target, trigger_kind, started_at, finished_at, status, plan_id, summary";

function toRun(row: Row): SyncRunRecord {
  return {
    id: String(row.id),
    target: String(row.target),
    trigger: row.trigger_kind as SyncRunRecord["trigger"],
    startedAt: String(row.started_at),
    finishedAt: row.finished_at === null ? null : String(row.finished_at),
    status: row.status as SyncRunRecord["status"],
    planId: row.plan_id === null ? null : String(row.plan_id),
    summary: JSON.parse(String(row.summary)) as JsonObject,
  };
}

/** Records a run's start. */
export async function insertSyncRun(db: SqlDriver, run: SyncRunRecord): Promise<void> {
  await db.run(`INSERT INTO sync_runs (${RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
    run.id,
    run.target,
    run.trigger,
    run.startedAt,
    run.finishedAt,
    run.status,
    run.planId,
    JSON.stringify(run.summary),
  ]);
}

/** Updates what moves on a run; its id, target, trigger and start stay as inserted. */
export async function updateSyncRun(db: SqlDriver, run: SyncRunRecord): Promise<void> {
  await db.run(
    "UPDATE sync_runs SET finished_at = $1, status = $2, plan_id = $3, summary = $4 WHERE id = $5",
    [run.finishedAt, run.status, run.planId, JSON.stringify(run.summary), run.id],
  );
}

/** Runs, newest first. */
export async function listSyncRuns(
  db: SqlDriver,
  filter: { target?: string; limit: number; before?: ListPosition },
): Promise<SyncRunRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.target !== undefined) {
    params.push(filter.target);
    where.push(`target = $${params.length}`);
  }
  if (filter.before !== undefined) where.push(olderThan("started_at", filter.before, params));
  params.push(filter.limit);
  const rows = await db.query(
    `SELECT ${RUN_COLUMNS} FROM sync_runs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY started_at DESC, id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map(toRun);
}

/**
 * The keyset condition of a newest-first listing ordered by (`column` DESC, id DESC): the rows after
 * `before` in that order. Unlike an offset, a page stays right while newer rows are inserted.
 */
function olderThan(column: string, before: ListPosition, params: unknown[]): string {
  params.push(before.at, before.id);
  const at = `$${params.length - 1}`;
  const id = `$${params.length}`;
  return `(${column} < ${at} OR (${column} = ${at} AND id < ${id}))`;
}

// ---------------------------------------------------------------- leases

/**
 * Takes or renews a lease with one compare-and-set upsert: the row changes only when the lease is free,
 * expired or already ours. PostgreSQL locks the conflicting row and re-checks the condition on its latest
 * version; SQLite runs writers one at a time. Expiry is the caller's clock: instances' clocks are assumed
 * to agree to well within a TTL (NTP), and a skew of s ms shortens or lengthens a lease by s.
 */
export async function acquireLease(
  db: SqlDriver,
  name: string,
  holder: string,
  ttlMs: number,
  now: number,
): Promise<boolean> {
  const changed = await db.run(
    `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4`,
    [name, holder, now + ttlMs, now],
  );
  return changed > 0;
}

/** Gives a lease up if `holder` holds it. */
export async function releaseLease(db: SqlDriver, name: string, holder: string): Promise<void> {
  await db.run("DELETE FROM leases WHERE name = $1 AND holder = $2", [name, holder]);
}

/** Who holds a lease now (unexpired), or null. */
export async function leaseHolder(db: SqlDriver, name: string, now: number): Promise<string | null> {
  const rows = await db.query<{ holder: string }>(
    "SELECT holder FROM leases WHERE name = $1 AND expires_at > $2",
    [name, now],
  );
  return rows[0]?.holder ?? null;
}
