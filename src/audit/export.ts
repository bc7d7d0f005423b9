import { createHash, type Hash } from "node:crypto";
import { once } from "node:events";
import type { Writable } from "node:stream";
import type { JSONWebKeySet } from "jose";
import { stringify } from "csv-stringify";
import { AppError } from "../domain/errors.js";
import type { SigningKey } from "../keys/keys.js";
import type { AuditRecord, Checkpoint, Store } from "../store/store.js";
import { GENESIS_HASH, canonicalParts, entryHash, linkProblem } from "./chain.js";
import { jcs } from "./jcs.js";
import { JWS_TYPES, signStatement, verifyStatement } from "./checkpoint.js";
import {
  EXPORT_FORMAT,
  EXPORT_VERSION,
  matchesFilter,
  type AuditFilter,
  type ExportLine,
  type GapLine,
  type HeadStatement,
} from "./export-format.js";

// Entries read per query. Larger batches live longer, get promoted and grow V8's old generation: a 1M-entry
// export peaked at 126 MB RSS with 200, 168 MB with 500 and 320 MB with 5,000 (docs/benchmarks.md).
const BATCH = 200;

/** Refuses a stored checkpoint that is not signed by one of our keys or does not pin this entry. */
async function checkCheckpoint(
  checkpoint: Checkpoint,
  record: AuditRecord,
  jwks: JSONWebKeySet,
): Promise<void> {
  const signed = await verifyStatement<{ seq: unknown; hash: unknown; time: unknown }>(
    checkpoint.jws,
    JWS_TYPES.checkpoint,
    jwks,
  );
  const p = signed.ok ? signed.payload : null;
  const why = !signed.ok
    ? `its signature is not valid (${signed.reason})`
    : p?.seq !== checkpoint.seq || p.hash !== checkpoint.hash || p.time !== checkpoint.time
      ? "the stored checkpoint differs from what was signed"
      : checkpoint.hash !== record.hash
        ? "the entry differs from its signed checkpoint (the chain was rewritten)"
        : null;
  if (why) throw new AppError("AUDIT_CHAIN_BROKEN", `audit log checkpoint at seq ${record.seq}: ${why}`);
}

/** An entry read back and checked, with the checkpoint at its seq and its export line. */
interface VerifiedEntry {
  record: AuditRecord;
  checkpoint: Checkpoint | null;
  line: string;
}

/**
 * Reads the chain from seq 1 to `toSeq` in batches, checking every link and every stored checkpoint on
 * the way, so that an export never vouches for a database that was edited behind idbridge's back.
 * Yields a batch at a time: one await per batch, not per entry, keeps the garbage (and RSS) down.
 */
export async function* readVerifiedChain(
  store: Store,
  toSeq: number,
  jwks: JSONWebKeySet,
): AsyncGenerator<VerifiedEntry[]> {
  let prevHash = GENESIS_HASH;
  let after = 0;
  while (after < toSeq) {
    const [records, checkpoints] = await Promise.all([
      store.readAudit(after, toSeq, BATCH),
      store.listCheckpoints(after + 1, Math.min(after + BATCH, toSeq)),
    ]);
    const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
    const batch: VerifiedEntry[] = [];
    for (const record of records) {
      if (record.seq !== after + 1) {
        throw new AppError(
          "AUDIT_CHAIN_BROKEN",
          `audit log is missing entry seq ${after + 1} (next stored is ${record.seq})`,
        );
      }
      // Serialise once: the same canonical parts give the hash input and the export line.
      const parts = canonicalParts(record);
      if (record.prevHash !== prevHash || entryHash(record.prevHash, record, parts) !== record.hash) {
        throw new AppError(
          "AUDIT_CHAIN_BROKEN",
          `audit log entry seq ${record.seq}: ${linkProblem(record, prevHash)}`,
        );
      }
      // The entry line is JCS of {type, …record}: hash and prevHash are hex, so they need no escaping.
      const line = `{${parts.before},"hash":"${record.hash}","prevHash":"${record.prevHash}",${parts.after},"type":"entry"}\n`;
      const checkpoint = bySeq.get(record.seq) ?? null;
      if (checkpoint) await checkCheckpoint(checkpoint, record, jwks);
      batch.push({ record, checkpoint, line });
      prevHash = record.hash;
      after = record.seq;
    }
    if (records.length === 0) {
      throw new AppError(
        "AUDIT_CHAIN_BROKEN",
        `audit log is missing entries after seq ${after} (head was ${toSeq})`,
      );
    }
    yield batch;
  }
}

/** Writes with backpressure; rejects (never hangs) when the output failed or was closed. */
async function write(out: Writable, text: string): Promise<void> {
  const failed = (): Error | null =>
    out.errored ?? (out.destroyed || out.writableEnded ? new Error("the output was closed") : null);
  const before = failed();
  if (before) throw before;
  if (out.write(text)) return;
  const after = failed();
  if (after) throw after;
  // The signal removes the losing listeners, which would otherwise pile up on every wait.
  const done = new AbortController();
  try {
    await Promise.race([
      once(out, "drain", { signal: done.signal }),
      once(out, "close", { signal: done.signal }).then(() => {
        throw failed() ?? new Error("the output was closed");
      }),
    ]);
  } finally {
    done.abort();
  }
}

/** Collects lines into chunks of about 64 KiB before writing, keeping the running digest of them. */
class LineSink {
  private chunk: string[] = [];
  private size = 0;
  readonly digest: Hash = createHash("sha256");

  constructor(private readonly out: Writable) {}

  /** Adds one line (ending in "\n"). */
  add(line: string): void {
    this.digest.update(line);
    this.chunk.push(line);
    this.size += line.length;
  }

  /** Writes the collected lines when there are enough of them (or always, with `force`). */
  async flush(force = false): Promise<void> {
    if (this.size === 0 || (!force && this.size < 65_536)) return;
    const text = this.chunk.join("");
    this.chunk = [];
    this.size = 0;
    await write(this.out, text);
  }
}

export interface ExportOptions {
  store: Store;
  filter: AuditFilter;
  out: Writable;
  /** Public keys the stored checkpoints must verify with (the keys directory's jwks.json). */
  jwks: JSONWebKeySet;
  now?: () => Date;
}

/** The result of an export. */
export interface ExportSummary {
  /** Entries written. */
  count: number;
  /** Seq of the chain head the export spans to. */
  toSeq: number;
  /** Hash of that head. */
  lastHash: string;
}

/**
 * Streams a JSONL export with its proof (see export-format.ts) to `out`, in constant memory.
 * The export spans the whole chain up to the head at its start; unselected runs become gap lines.
 */
export async function exportJsonl(options: ExportOptions & { key: SigningKey }): Promise<ExportSummary> {
  const { store, filter, out, key } = options;
  const createdAt = (options.now?.() ?? new Date()).toISOString();
  const head = await store.auditHead();
  const sink = new LineSink(out);
  const emit = (line: ExportLine): void => sink.add(`${jcs(line)}\n`);
  emit({
    type: "header",
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    createdAt,
    filter,
    fromSeq: 1,
    toSeq: head.seq,
  });

  let gap: GapLine | null = null;
  let count = 0;
  let lastHash = GENESIS_HASH;
  const closeGap = (): void => {
    if (gap) emit(gap);
    gap = null;
  };
  for await (const batch of readVerifiedChain(store, head.seq, options.jwks)) {
    for (const { record, checkpoint, line } of batch) {
      if (matchesFilter(record, filter)) {
        closeGap();
        sink.add(line);
        count += 1;
      } else if (gap) {
        gap.toSeq = record.seq;
        gap.hash = record.hash;
      } else {
        gap = {
          type: "gap",
          fromSeq: record.seq,
          toSeq: record.seq,
          prevHash: record.prevHash,
          hash: record.hash,
        };
      }
      if (checkpoint) {
        // A checkpoint follows the line that ends at its seq, so the verifier can compare hashes there.
        closeGap();
        const { seq, hash: cpHash, time, jws } = checkpoint;
        emit({ type: "checkpoint", seq, hash: cpHash, time, jws });
      }
      lastHash = record.hash;
    }
    await sink.flush();
  }
  closeGap();
  await sink.flush(true);

  const statement: HeadStatement = {
    format: EXPORT_FORMAT,
    createdAt,
    count,
    fromSeq: 1,
    toSeq: head.seq,
    lastHash,
    linesDigest: sink.digest.digest("hex"),
  };
  await write(
    out,
    `${jcs({ type: "head", jws: await signStatement(key, JWS_TYPES.exportHead, statement) })}\n`,
  );
  return { count, toSeq: head.seq, lastHash };
}

const CSV_COLUMNS = [
  "seq",
  "time",
  "actor",
  "action",
  "subject",
  "target",
  "details",
  "prevHash",
  "hash",
] as const;

/**
 * A spreadsheet cell must not start a formula: `= + - @`, tab and CR get a leading apostrophe
 * (OWASP "CSV injection").
 */
export function neutraliseCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/**
 * Streams the selected entries as RFC 4180 CSV, UTF-8 with a BOM so that Excel shows Chinese text.
 * CSV carries no proof: use JSONL for verification. The chain is still checked while reading.
 */
export async function exportCsv(options: ExportOptions): Promise<ExportSummary> {
  const { store, filter, out } = options;
  const head = await store.auditHead();
  const csv = stringify({
    bom: true,
    header: true,
    columns: [...CSV_COLUMNS],
    record_delimiter: "windows",
    cast: { string: neutraliseCell },
  });
  const piped = new Promise<void>((resolve, reject) => {
    csv.on("error", reject);
    csv.on("end", resolve);
  });
  // A failing output (disk full, closed pipe) fails the export instead of leaving it paused for ever.
  const onOutputError = (err: Error): void => {
    csv.destroy(err);
  };
  out.once("error", onOutputError);
  csv.on("data", (chunk: Buffer) => {
    if (!out.write(chunk)) {
      csv.pause();
      out.once("drain", () => csv.resume());
    }
  });
  let count = 0;
  let lastHash = GENESIS_HASH;
  for await (const batch of readVerifiedChain(store, head.seq, options.jwks))
    for (const { record } of batch) {
      lastHash = record.hash;
      if (!matchesFilter(record, filter)) continue;
      count += 1;
      const row = {
        ...record,
        subject: record.subject ?? "",
        target: record.target ?? "",
        details: JSON.stringify(record.details),
      };
      if (!csv.write(row)) await once(csv, "drain");
    }
  csv.end();
  try {
    await piped;
  } finally {
    out.off("error", onOutputError);
  }
  if (out.errored) throw out.errored;
  return { count, toSeq: head.seq, lastHash };
}
