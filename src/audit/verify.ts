import { createHash } from "node:crypto";
import { jcs } from "./jcs.js";
import type { JSONWebKeySet } from "jose";
import type { AuditRecord } from "../store/store.js";
import { GENESIS_HASH, linkProblem } from "./chain.js";
import { JWS_TYPES, verifyStatement } from "./checkpoint.js";
import { EXPORT_FORMAT, EXPORT_VERSION, type HeadStatement } from "./export-format.js";

/** The verdict on an export. */
export type VerifyResult =
  | {
      ok: true;
      /** Entries in the export. */
      entries: number;
      /** Signed checkpoints checked against the chain. */
      checkpoints: number;
      /** Seq the export spans to. */
      toSeq: number;
      /** Hash of the chain at `toSeq`, as signed in the head. */
      head: string;
      /** When the export was made. */
      createdAt: string;
    }
  | {
      ok: false;
      /** First seq found bad, when the problem belongs to one. */
      seq: number | null;
      /** 1-based line number of the problem. */
      line: number;
      /** What is wrong, in one sentence. */
      reason: string;
    };

const HEX64 = /^[0-9a-f]{64}$/;

type Obj = Record<string, unknown>;

class Bad extends Error {
  constructor(
    readonly seq: number | null,
    reason: string,
  ) {
    super(reason);
  }
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === "string";

function asEntry(o: Obj, seq: number): AuditRecord {
  const ok =
    isInt(o.seq) &&
    isStr(o.time) &&
    isStr(o.actor) &&
    isStr(o.action) &&
    (o.subject === null || isStr(o.subject)) &&
    (o.target === null || isStr(o.target)) &&
    o.details !== null &&
    typeof o.details === "object" &&
    !Array.isArray(o.details) &&
    // prevHash must equal the (hex) hash before it and hash the recomputed one, so strings suffice here.
    isStr(o.prevHash) &&
    isStr(o.hash);
  if (!ok) throw new Bad(seq, "entry line is missing fields or has fields of the wrong type");
  return o as unknown as AuditRecord;
}

/** Runs `fn`; a value with no canonical form (a lone surrogate, 1e999) makes the line bad, not the run. */
function canonicalProblem<T>(fn: () => T, seq: number | null): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError)
      throw new Bad(seq, `the line holds a value with no canonical JSON form (${err.message})`);
    throw err;
  }
}

/**
 * Verifies a JSONL export offline against a JWKS: every entry's hash, every link of the chain (across
 * gaps), every checkpoint's signature and hash, and the signed head over all lines. Stops at the first
 * problem and names its seq. Reads line by line, so memory does not grow with the export.
 */
export async function verifyExport(lines: AsyncIterable<string>, jwks: JSONWebKeySet): Promise<VerifyResult> {
  const digest = createHash("sha256");
  let lineNo = 0;
  let next = 1; // seq the next entry or gap must start at
  let prevHash = GENESIS_HASH;
  let entries = 0;
  let checkpoints = 0;
  let header: Obj | null = null;
  let done: VerifyResult | null = null;
  try {
    for await (const text of lines) {
      lineNo += 1;
      if (done) throw new Bad(null, "there is content after the signed head");
      let o: Obj;
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
          throw new Error("not an object");
        o = parsed as Obj;
      } catch {
        if (lineNo === 1)
          throw new Bad(null, "this is not an idbridge audit export (the first line is not JSON)");
        throw new Bad(
          next,
          text.trim() === "" ? "an empty line was inserted" : "the line is not a JSON object",
        );
      }
      if (!header) {
        if (o.type !== "header" || o.format !== EXPORT_FORMAT) {
          throw new Bad(null, "this is not an idbridge audit export (no export header on the first line)");
        }
        if (o.version !== EXPORT_VERSION)
          throw new Bad(null, `unsupported export version ${String(o.version)}`);
        if (o.fromSeq !== 1 || !isInt(o.toSeq)) throw new Bad(null, "the header's seq range is malformed");
        header = o;
      } else if (o.type === "entry") {
        const seq = o.seq;
        if (!isInt(seq)) throw new Bad(next, "entry line has no valid seq");
        if (seq < next) throw new Bad(seq, `seq ${seq} appears again or out of order (expected seq ${next})`);
        if (seq > next) throw new Bad(next, `seq ${next} is missing (the next line has seq ${seq})`);
        const entry = asEntry(o, seq);
        const problem = canonicalProblem(() => linkProblem(entry, prevHash), seq);
        if (problem) throw new Bad(seq, problem);
        prevHash = entry.hash;
        next = seq + 1;
        entries += 1;
      } else if (o.type === "gap") {
        const { fromSeq, toSeq } = o;
        if (!isInt(fromSeq) || !isInt(toSeq) || toSeq < fromSeq || !isStr(o.hash) || !HEX64.test(o.hash)) {
          throw new Bad(next, "gap line is malformed");
        }
        if (fromSeq < next)
          throw new Bad(fromSeq, `gap from seq ${fromSeq} overlaps what came before (expected seq ${next})`);
        if (fromSeq > next)
          throw new Bad(next, `seq ${next} is missing (the next line is a gap from seq ${fromSeq})`);
        if (o.prevHash !== prevHash) {
          throw new Bad(
            fromSeq,
            "gap's prevHash does not match the hash of the entry before it (an entry was changed)",
          );
        }
        prevHash = o.hash;
        next = toSeq + 1;
      } else if (o.type === "checkpoint") {
        const seq = o.seq;
        if (!isInt(seq) || !isStr(o.jws)) throw new Bad(next - 1, "checkpoint line is malformed");
        if (seq !== next - 1)
          throw new Bad(seq, `checkpoint for seq ${seq} is out of place (after seq ${next - 1})`);
        const signed = await verifyStatement<{ seq: unknown; hash: unknown; time: unknown }>(
          o.jws,
          JWS_TYPES.checkpoint,
          jwks,
        );
        if (!signed.ok) throw new Bad(seq, `checkpoint: ${signed.reason}`);
        const p = signed.payload;
        if (p.seq !== seq || p.hash !== o.hash || p.time !== o.time) {
          throw new Bad(seq, "checkpoint line differs from what its signature covers");
        }
        if (p.hash !== prevHash)
          throw new Bad(seq, "the chain's hash at this seq differs from the signed checkpoint");
        checkpoints += 1;
      } else if (o.type === "head") {
        const last = next - 1;
        // The head is not covered by the digest it carries, so it must be byte-exact canonical JSON.
        if (!isStr(o.jws) || canonicalProblem(() => jcs(o), null) !== text)
          throw new Bad(null, "head line is malformed or was reformatted");
        const signed = await verifyStatement<HeadStatement>(o.jws, JWS_TYPES.exportHead, jwks);
        if (!signed.ok) throw new Bad(null, `export head: ${signed.reason}`);
        const h = signed.payload;
        if (h.toSeq !== header.toSeq)
          throw new Bad(null, "the header's seq range differs from the signed head");
        if (last < h.toSeq)
          throw new Bad(
            last + 1,
            `seq ${last + 1} to ${h.toSeq} are missing at the end (the export was cut)`,
          );
        if (last > h.toSeq)
          throw new Bad(h.toSeq + 1, `seq ${h.toSeq + 1} and later were added after the export was signed`);
        if (h.lastHash !== prevHash)
          throw new Bad(last, "the chain's last hash differs from the signed head");
        if (h.count !== entries)
          throw new Bad(null, `the signed head counts ${h.count} entries, the file has ${entries}`);
        if (h.linesDigest !== digest.digest("hex")) {
          throw new Bad(
            null,
            "the lines differ from what the head signed (a line was reformatted or the header edited)",
          );
        }
        done = { ok: true, entries, checkpoints, toSeq: h.toSeq, head: h.lastHash, createdAt: h.createdAt };
        continue;
      } else {
        throw new Bad(next, `unknown line type ${JSON.stringify(o.type)}`);
      }
      digest.update(`${text}\n`);
    }
  } catch (err) {
    if (err instanceof Bad) return { ok: false, seq: err.seq, line: lineNo, reason: err.message };
    throw err;
  }
  if (!header) return { ok: false, seq: null, line: lineNo, reason: "the file is empty" };
  if (!done) {
    return {
      ok: false,
      seq: next,
      line: lineNo,
      reason: `the export is cut off: no signed head after seq ${next - 1}`,
    };
  }
  return done;
}
