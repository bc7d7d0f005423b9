import { AppError } from "../../domain/errors.js";
import { processAlive } from "../../domain/process.js";
import type { JsonObject } from "../../domain/json.js";
import type { ReadCursor } from "../../sources/snapshot.js";
import type { LinkDecision, ReviewItem } from "../../identity/link.js";
import type { Person } from "../../identity/person.js";
import type {
  AuditRecord,
  AuditSearch,
  ChainHead,
  Checkpoint,
  InstanceInfo,
  ListPosition,
  OidcArtifact,
  OidcArtifactKeys,
  PlanDecision,
  PlanItemRecord,
  PlanListing,
  PlanRecord,
  PlanStatus,
  Store,
  StoreHealth,
  SyncRunRecord,
  TargetLink,
  TargetLinkKind,
} from "../store.js";
import type { SqlClient, SqlDriver } from "./driver.js";
import { searchAuditRows } from "./audit-search.js";
import * as identity from "./identity-tables.js";
import * as oidc from "./oidc-tables.js";
import * as signIn from "./sign-in-tables.js";
import * as sync from "./sync-tables.js";
import { placeholders } from "./upsert.js";
import { CODE_SCHEMA_VERSION, schemaVersion } from "./migrations.js";
import { GENESIS_HASH } from "../../audit/chain.js";

interface AuditRow {
  seq: number;
  time: string;
  actor: string;
  action: string;
  subject: string | null;
  target: string | null;
  details: string;
  prev_hash: string;
  hash: string;
  [key: string]: unknown;
}

const AUDIT_COLUMNS = "seq, time, actor, action, subject, target, details, prev_hash, hash";

function toRecord(row: AuditRow): AuditRecord {
  return {
    seq: Number(row.seq),
    time: row.time,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    target: row.target,
    details: JSON.parse(row.details) as JsonObject,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** The chain head as `client` sees it (inside the audit transaction: as no other writer can change it). */
async function readHead(client: SqlClient): Promise<ChainHead> {
  const rows = await client.query<{ seq: number; hash: string }>(
    "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
  );
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS_HASH };
}

/** Inserts built audit records; call only inside the audit transaction that read the head they chain to. */
async function insertAudit(tx: SqlClient, records: readonly AuditRecord[]): Promise<void> {
  // Multi-row INSERT in chunks: one round trip per chunk, the whole batch in one transaction.
  for (let i = 0; i < records.length; i += 100) {
    const chunk = records.slice(i, i + 100);
    await tx.run(
      `INSERT INTO audit_entries (${AUDIT_COLUMNS}) VALUES ${placeholders(chunk.length, 9)}`,
      chunk.flatMap((r) => [
        r.seq,
        r.time,
        r.actor,
        r.action,
        r.subject,
        r.target,
        JSON.stringify(r.details),
        r.prevHash,
        r.hash,
      ]),
    );
  }
}

function toCheckpoint(row: Record<string, unknown>): Checkpoint {
  return { seq: Number(row.seq), hash: String(row.hash), time: String(row.time), jws: String(row.jws) };
}

/** The Store on an SQL database (SQLite or PostgreSQL); the driver hides the flavour. */
export class SqlStore implements Store {
  readonly flavour: "sqlite" | "postgres";
  readonly location: string;

  constructor(private readonly db: SqlDriver) {
    this.flavour = db.flavour;
    this.location = db.location;
  }

  async appendAudit(build: (head: ChainHead) => AuditRecord[]): Promise<AuditRecord[]> {
    return this.db.transaction("audit", async (tx) => {
      const records = build(await readHead(tx));
      await insertAudit(tx, records);
      return records;
    });
  }

  auditHead(): Promise<ChainHead> {
    return readHead(this.db);
  }

  async readAudit(afterSeq: number, toSeq: number, limit: number): Promise<AuditRecord[]> {
    const rows = await this.db.query<AuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM audit_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
      [afterSeq, toSeq, limit],
    );
    return rows.map(toRecord);
  }

  async searchAudit(filter: AuditSearch, beforeSeq: number | null, limit: number): Promise<AuditRecord[]> {
    const rows = await searchAuditRows<AuditRow>(
      this.db,
      this.flavour,
      AUDIT_COLUMNS,
      filter,
      beforeSeq,
      limit,
    );
    return rows.map(toRecord);
  }

  async addCheckpoint(checkpoint: Checkpoint): Promise<boolean> {
    const changed = await this.db.run(
      "INSERT INTO audit_checkpoints (seq, hash, time, jws) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING",
      [checkpoint.seq, checkpoint.hash, checkpoint.time, checkpoint.jws],
    );
    return changed > 0;
  }

  async latestCheckpoint(): Promise<Checkpoint | null> {
    const rows = await this.db.query(
      "SELECT seq, hash, time, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
    );
    return rows[0] ? toCheckpoint(rows[0]) : null;
  }

  async listCheckpoints(fromSeq: number, toSeq: number): Promise<Checkpoint[]> {
    const rows = await this.db.query(
      "SELECT seq, hash, time, jws FROM audit_checkpoints WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
      [fromSeq, toSeq],
    );
    return rows.map(toCheckpoint);
  }

  async registerInstance(
    instance: InstanceInfo,
    options: { exclusive: boolean; staleAfterMs: number },
  ): Promise<void> {
    await this.db.transaction("instances", async (tx) => {
      const now = Date.now();
      const others = await tx.query<{
        id: string;
        host: string;
        pid: number;
        heartbeat_at: number;
        started_at: string;
      }>("SELECT id, host, pid, heartbeat_at, started_at FROM instances");
      for (const other of others) {
        const stale =
          now - Number(other.heartbeat_at) > options.staleAfterMs ||
          (other.host === instance.host &&
            // Our own pid counts as dead: a restarted container reuses it.
            (Number(other.pid) === instance.pid || !processAlive(Number(other.pid))));
        if (stale) {
          await tx.run("DELETE FROM instances WHERE id = $1", [other.id]);
        } else if (options.exclusive) {
          throw new AppError(
            "STORE_LOCKED",
            `${this.location} is in use by another idbridge server (pid ${other.pid} on ${other.host}, ` +
              `started ${other.started_at}); stop it first, or use PostgreSQL to run several instances`,
          );
        }
      }
      await tx.run(
        "INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5)",
        [instance.id, instance.host, instance.pid, new Date(now).toISOString(), now],
      );
    });
  }

  async heartbeatInstance(id: string): Promise<void> {
    await this.db.run("UPDATE instances SET heartbeat_at = $1 WHERE id = $2", [Date.now(), id]);
  }

  async unregisterInstance(id: string): Promise<void> {
    await this.db.run("DELETE FROM instances WHERE id = $1", [id]);
  }

  async getSourceCursor(sourceId: string, consumer: string): Promise<ReadCursor | null> {
    const rows = await this.db.query<{ cursor: string }>(
      "SELECT cursor FROM source_cursors WHERE source_id = $1 AND consumer = $2",
      [sourceId, consumer],
    );
    const row = rows[0];
    return row === undefined ? null : (JSON.parse(row.cursor) as ReadCursor);
  }

  async setSourceCursor(sourceId: string, consumer: string, cursor: ReadCursor, at: Date): Promise<void> {
    // One statement both flavours understand (SQLite ≥ 3.24 and PostgreSQL ≥ 9.5 upsert).
    await this.db.run(
      `INSERT INTO source_cursors (source_id, consumer, cursor, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (source_id, consumer) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
      [sourceId, consumer, JSON.stringify(cursor), at.toISOString()],
    );
  }

  listPeople(): Promise<Person[]> {
    return identity.listPeople(this.db);
  }

  savePeople(people: readonly Person[]): Promise<void> {
    return identity.savePeople(this.db, people);
  }

  listLinkDecisions(): Promise<LinkDecision[]> {
    return identity.listLinkDecisions(this.db);
  }

  addLinkDecision(decision: LinkDecision, build: (head: ChainHead) => AuditRecord[]): Promise<AuditRecord[]> {
    return this.db.transaction("audit", async (tx) => {
      await identity.addLinkDecision(tx, decision);
      const records = build(await readHead(tx));
      await insertAudit(tx, records);
      return records;
    });
  }

  getReviewQueue(): Promise<ReviewItem[]> {
    return identity.getReviewQueue(this.db);
  }

  setReviewQueue(items: readonly ReviewItem[]): Promise<void> {
    return identity.setReviewQueue(this.db, items);
  }

  getLatestSnapshot(sourceId: string): Promise<{ json: string; takenAt: string } | null> {
    return identity.getLatestSnapshot(this.db, sourceId);
  }

  // ---------------------------------------------------------------- sign-in: person by account

  findPersonByAccount(sourceId: string, subject: string): Promise<Person | null> {
    return identity.findPersonByAccount(this.db, sourceId, subject);
  }

  getPerson(id: string): Promise<Person | null> {
    return identity.getPerson(this.db, id);
  }

  listLatestSnapshotTimes(): Promise<{ sourceId: string; takenAt: string }[]> {
    return identity.listLatestSnapshotTimes(this.db);
  }

  putLatestSnapshot(sourceId: string, json: string, takenAt: string): Promise<void> {
    return identity.putLatestSnapshot(this.db, sourceId, json, takenAt);
  }

  listTargetLinks(target: string): Promise<TargetLink[]> {
    return sync.listTargetLinks(this.db, target);
  }

  getTargetLink(target: string, kind: TargetLinkKind, key: string): Promise<TargetLink | null> {
    return sync.getTargetLink(this.db, target, kind, key);
  }

  saveTargetLinks(target: string, links: readonly TargetLink[]): Promise<void> {
    return sync.saveTargetLinks(this.db, target, links);
  }

  insertPlan(plan: PlanRecord): Promise<string[]> {
    return sync.insertPlan(this.db, plan);
  }

  getPlan(id: string): Promise<PlanRecord | null> {
    return sync.getPlan(this.db, id);
  }

  listPlans(filter: {
    target?: string;
    statuses?: readonly PlanStatus[];
    limit: number;
    before?: ListPosition;
  }): Promise<PlanListing[]> {
    return sync.listPlans(this.db, filter);
  }

  transitionPlan(
    id: string,
    from: readonly PlanStatus[],
    to: PlanStatus,
    at: string,
    decision?: PlanDecision,
  ): Promise<PlanRecord | null> {
    return sync.transitionPlan(this.db, id, from, to, at, decision);
  }

  listPlanItems(planId: string): Promise<PlanItemRecord[]> {
    return sync.listPlanItems(this.db, planId);
  }

  async recordPlanItems(
    planId: string,
    items: readonly PlanItemRecord[],
    build: (head: ChainHead, fresh: readonly PlanItemRecord[]) => AuditRecord[],
  ): Promise<PlanItemRecord[]> {
    // Under the audit lock, so the read of final items, their upsert and the audit entries are one step:
    // a second apply of the same plan (another instance, a retry after a crash) sees them or waits.
    return this.db.transaction("audit", async (tx) => {
      const fresh = await sync.freshPlanItems(tx, planId, items);
      if (fresh.length === 0) return fresh;
      await sync.upsertPlanItems(tx, planId, fresh);
      await insertAudit(tx, build(await readHead(tx), fresh));
      return fresh;
    });
  }

  insertSyncRun(run: SyncRunRecord): Promise<void> {
    return sync.insertSyncRun(this.db, run);
  }

  updateSyncRun(run: SyncRunRecord): Promise<void> {
    return sync.updateSyncRun(this.db, run);
  }

  listSyncRuns(filter: { target?: string; limit: number; before?: ListPosition }): Promise<SyncRunRecord[]> {
    return sync.listSyncRuns(this.db, filter);
  }

  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return sync.acquireLease(this.db, name, holder, ttlMs, Date.now());
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return sync.releaseLease(this.db, name, holder);
  }

  leaseHolder(name: string): Promise<string | null> {
    return sync.leaseHolder(this.db, name, Date.now());
  }

  upsertOidcArtifact(
    model: string,
    id: string,
    payload: string,
    expiresAt: number | null,
    keys: OidcArtifactKeys,
  ): Promise<void> {
    return oidc.upsertArtifact(this.db, model, id, payload, expiresAt, keys);
  }

  findOidcArtifact(model: string, id: string, now: number): Promise<OidcArtifact | null> {
    return oidc.findArtifact(this.db, model, id, now);
  }

  findOidcArtifactByUid(model: string, uid: string, now: number): Promise<OidcArtifact | null> {
    return oidc.findArtifactBy(this.db, "uid", model, uid, now);
  }

  findOidcArtifactByUserCode(model: string, userCode: string, now: number): Promise<OidcArtifact | null> {
    return oidc.findArtifactBy(this.db, "user_code", model, userCode, now);
  }

  consumeOidcArtifact(model: string, id: string, at: number): Promise<boolean> {
    return oidc.consumeArtifact(this.db, model, id, at);
  }

  destroyOidcArtifact(model: string, id: string): Promise<void> {
    return oidc.destroyArtifact(this.db, model, id);
  }

  revokeOidcGrant(grantId: string): Promise<void> {
    return oidc.revokeGrant(this.db, grantId);
  }

  deleteExpiredOidcArtifacts(now: number): Promise<number> {
    return oidc.deleteExpired(this.db, now);
  }

  // ---------------------------------------------------------------- sign-in flows

  putSignInFlow(state: string, payload: string, expiresAt: number): Promise<void> {
    return signIn.putFlow(this.db, state, payload, expiresAt);
  }

  takeSignInFlow(state: string, now: number): Promise<string | null> {
    return signIn.takeFlow(this.db, state, now);
  }

  claimOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return signIn.claimOnce(this.db, key, expiresAt, now);
  }

  async health(): Promise<StoreHealth> {
    return { schemaVersion: await schemaVersion(this.db), codeVersion: CODE_SCHEMA_VERSION };
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
