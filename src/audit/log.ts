import type { Logger } from "pino";
import type { AuditRecord, Checkpoint, Store } from "../store/store.js";
import type { SigningKey } from "../keys/keys.js";
import { chainEvents, checkEvent, type AuditEvent } from "./chain.js";
import { JWS_TYPES, signStatement } from "./checkpoint.js";

export interface AuditLogOptions {
  /** Sign a checkpoint after this many new entries. */
  checkpointEvery: number;
  /** Sign a checkpoint at least this often (ms) while entries arrive; 0 disables the timer. */
  checkpointIntervalMs: number;
  /** Clock, pinned in tests. */
  now?: () => Date;
  /** Where failures of background checkpoints go. */
  logger?: Pick<Logger, "error">;
  /** Called with each committed batch (metrics). */
  onAppend?: (records: readonly AuditRecord[]) => void;
}

interface Pending {
  event: AuditEvent;
  resolve: (record: AuditRecord) => void;
  reject: (err: unknown) => void;
}

const MAX_BATCH = 500;

/**
 * The audit log: `record()` appends an entry durably and resolves once it is committed.
 * Entries recorded while a commit is in flight are committed together in the next transaction
 * (group commit), so throughput does not stop at one disk flush per entry.
 */
export class AuditLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private lastCheckpointSeq: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checkpointing: Promise<Checkpoint | null> | null = null;
  private readonly now: () => Date;

  constructor(
    private readonly store: Store,
    private readonly key: SigningKey,
    private readonly options: AuditLogOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Appends one entry; resolves with it once it is committed, rejects if it was not (nothing half-written). */
  record(event: AuditEvent): Promise<AuditRecord> {
    try {
      checkEvent(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.pending.push({ event, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Starts the timer that signs a checkpoint every `checkpointIntervalMs` while entries arrive. */
  start(): void {
    if (this.timer || this.options.checkpointIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.checkpoint().catch((err: unknown) =>
        this.options.logger?.error({ err }, "audit checkpoint failed"),
      );
    }, this.options.checkpointIntervalMs);
    this.timer.unref();
  }

  /** Signs a checkpoint of the current head if it is at least `minAdvance` entries past the last one. */
  checkpoint(minAdvance = 1): Promise<Checkpoint | null> {
    this.checkpointing ??= this.signHead(minAdvance).finally(() => {
      this.checkpointing = null;
    });
    return this.checkpointing;
  }

  /** Commits what is pending, signs a last checkpoint and stops the timer. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushing;
    await this.checkpoint();
  }

  private async flush(): Promise<void> {
    // Yield once so that records made in the same tick join this batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      try {
        const time = this.now().toISOString();
        const records = await this.store.appendAudit((head) =>
          chainEvents(
            head,
            batch.map((p) => p.event),
            time,
          ),
        );
        batch.forEach((p, i) => p.resolve(records[i] as AuditRecord));
        this.options.onAppend?.(records);
        const last = records[records.length - 1];
        if (last && last.seq - (this.lastCheckpointSeq ?? 0) >= this.options.checkpointEvery) {
          await this.checkpoint(this.options.checkpointEvery).catch((err: unknown) =>
            this.options.logger?.error({ err }, "audit checkpoint failed"),
          );
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = null;
  }

  private async signHead(minAdvance: number): Promise<Checkpoint | null> {
    const [head, latest] = await Promise.all([this.store.auditHead(), this.store.latestCheckpoint()]);
    this.lastCheckpointSeq = Math.max(this.lastCheckpointSeq ?? 0, latest?.seq ?? 0);
    // Another instance may have checkpointed meanwhile: sign only when the head moved far enough past it.
    if (head.seq === 0 || head.seq - this.lastCheckpointSeq < minAdvance) return null;
    const time = this.now().toISOString();
    const statement = { seq: head.seq, hash: head.hash, time };
    const checkpoint: Checkpoint = {
      ...statement,
      jws: await signStatement(this.key, JWS_TYPES.checkpoint, statement),
    };
    if (await this.store.addCheckpoint(checkpoint)) this.lastCheckpointSeq = head.seq;
    return checkpoint;
  }
}
