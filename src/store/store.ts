import type { ReadCursor } from "../sources/snapshot.js";
import type { JsonObject } from "../domain/json.js";

/** One row of the audit log as stored; `hash` chains it to the row before (see src/audit/chain.ts). */
export interface AuditRecord {
  /** Position in the chain, 1-based, without gaps. */
  seq: number;
  /** ISO 8601 time of recording, UTC, millisecond precision. */
  time: string;
  /** Who did it: a person id, `system`, `cli:<user>` or a client id. */
  actor: string;
  /** What happened, dotted (`role.granted`, `login.failed`, `plan.approved`). */
  action: string;
  /** Whom or what it concerns (a person id, a plan id), if anything. */
  subject: string | null;
  /** Where it took effect (a target id), if anywhere. */
  target: string | null;
  /** Structured facts of the event; never secrets. */
  details: JsonObject;
  /** `hash` of the entry before, or the genesis hash for seq 1. */
  prevHash: string;
  /** sha256 hex of prevHash ‖ canonical JSON of the entry. */
  hash: string;
}

/** The last entry of the chain: seq 0 with the genesis hash when the log is empty. */
export interface ChainHead {
  /** Seq of the last entry (0 for an empty log). */
  seq: number;
  /** Hash of the last entry (the genesis hash for an empty log). */
  hash: string;
}

/** A signed statement that the chain had `hash` at `seq`. */
export interface Checkpoint {
  /** Seq of the entry the checkpoint pins. */
  seq: number;
  /** Hash of that entry. */
  hash: string;
  /** ISO time of signing. */
  time: string;
  /** Compact JWS (EdDSA) over `{seq, hash, time}`. */
  jws: string;
}

/** A running idbridge server registered in the store. */
export interface InstanceInfo {
  /** Random id of this process's registration. */
  id: string;
  /** Host name of the machine. */
  host: string;
  /** Process id on that host. */
  pid: number;
}

/** What `/readyz` reports about the store. */
export interface StoreHealth {
  /** Migration version of the database. */
  schemaVersion: number;
  /** Latest migration this code knows. */
  codeVersion: number;
}

/**
 * Durable state of idbridge. Narrow and domain-named: every method is one thing the service needs.
 * Audit rows can be appended and read, never updated or deleted.
 */
export interface Store {
  /** `sqlite` or `postgres`. */
  readonly flavour: "sqlite" | "postgres";
  /** Where the store lives, without credentials (for messages). */
  readonly location: string;

  /**
   * Appends audit entries built from the current head, in one transaction serialised in the database,
   * so that concurrent writers (threads, processes, instances) form one linear chain.
   */
  appendAudit(build: (head: ChainHead) => AuditRecord[]): Promise<AuditRecord[]>;
  /** The last entry's seq and hash. */
  auditHead(): Promise<ChainHead>;
  /** Entries with `afterSeq < seq <= toSeq`, ascending, at most `limit`. */
  readAudit(afterSeq: number, toSeq: number, limit: number): Promise<AuditRecord[]>;
  /** Stores a checkpoint; returns false if one for that seq already exists. */
  addCheckpoint(checkpoint: Checkpoint): Promise<boolean>;
  /** The checkpoint with the highest seq, if any. */
  latestCheckpoint(): Promise<Checkpoint | null>;
  /** Checkpoints with `fromSeq <= seq <= toSeq`, ascending. */
  listCheckpoints(fromSeq: number, toSeq: number): Promise<Checkpoint[]>;

  /**
   * Registers a running server. With `exclusive`, refuses (STORE_LOCKED) while another live server is
   * registered — used for SQLite, which one server at a time may own.
   */
  registerInstance(
    instance: InstanceInfo,
    options: { exclusive: boolean; staleAfterMs: number },
  ): Promise<void>;
  /** Marks a registered server as alive. */
  heartbeatInstance(id: string): Promise<void>;
  /** Removes a server's registration at shutdown. */
  unregisterInstance(id: string): Promise<void>;

  /**
   * The cursor an earlier complete read of `sourceId` left for `consumer` (the sync, the CLI), so that
   * one consumer's incremental reads never skip changes another consumer has already seen.
   */
  getSourceCursor(sourceId: string, consumer: string): Promise<ReadCursor | null>;
  /** Saves (replaces) the cursor of `sourceId` for `consumer`. */
  setSourceCursor(sourceId: string, consumer: string, cursor: ReadCursor, at: Date): Promise<void>;

  /** Checks that the store answers and reports its schema version. */
  health(): Promise<StoreHealth>;
  /** Closes connections. */
  close(): Promise<void>;
}
