/**
 * The audit hash chain, as pure functions.
 *
 * hash(n) = sha256_hex( prevHash ‖ JCS(entry) ), where prevHash is hash(n-1) (64 zeros for seq 1), ‖ is
 * string concatenation of the UTF-8 text, and JCS is RFC 8785 canonical JSON of
 * `{seq, time, actor, action, subject, target, details}`.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { JsonObject } from "../domain/json.js";
import type { AuditRecord, ChainHead } from "../store/store.js";

/** The prevHash of the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What a caller records; the log adds seq, time and hashes. */
export interface AuditEvent {
  /** Who did it: a person id, `system`, `cli:<user>`, a client id. */
  actor: string;
  /** Dotted verb (`role.granted`, `login.failed`, `plan.approved`). */
  action: string;
  /** Whom or what it concerns, if anything. */
  subject?: string | null;
  /** Where it took effect (a target id), if anywhere. */
  target?: string | null;
  /** Structured facts; never secrets. */
  details?: JsonObject;
}

/** The fields that are hashed, in the order they are shown (JCS sorts them anyway). */
export type AuditContent = Omit<AuditRecord, "prevHash" | "hash">;

/**
 * RFC 8785 canonical JSON of a string member. For well-formed strings JSON.stringify produces exactly the
 * JCS escaping (RFC 8785 §3.2.2.2); lone surrogates cannot be canonicalised and are refused.
 */
function jcsString(value: string | null): string {
  if (value === null) return "null";
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new TypeError("audit entry text contains a lone surrogate");
  }
  return JSON.stringify(value);
}

/**
 * The canonical JSON of an entry's hashed fields, split around where an export line inserts `hash` and
 * `prevHash` (JCS sorts members: action, actor, details | hash, prevHash | seq, subject, target, time).
 * The fixed members are written directly — the canonicalize package is generic and was a third of the
 * time of verifying an export (docs/benchmarks.md); `details`, the only free-form member, goes through it.
 */
export function canonicalParts(entry: AuditContent): { before: string; after: string } {
  const details = canonicalize(entry.details);
  if (details === undefined) throw new TypeError("audit details cannot be canonicalised");
  if (!Number.isSafeInteger(entry.seq)) throw new TypeError("audit seq must be a safe integer");
  return {
    before: `"action":${jcsString(entry.action)},"actor":${jcsString(entry.actor)},"details":${details}`,
    after:
      `"seq":${entry.seq},"subject":${jcsString(entry.subject)},"target":${jcsString(entry.target)},` +
      `"time":${jcsString(entry.time)}`,
  };
}

/** RFC 8785 canonical JSON of the hashed fields of an entry. */
export function canonicalContent(entry: AuditContent): string {
  const { before, after } = canonicalParts(entry);
  return `{${before},${after}}`;
}

/** sha256 hex of prevHash ‖ canonical JSON of the entry. */
export function entryHash(prevHash: string, entry: AuditContent): string {
  return createHash("sha256").update(prevHash).update(canonicalContent(entry)).digest("hex");
}

const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$/;

/** Throws TypeError for an event that must not enter the log (a caller's mistake, not a user's). */
export function checkEvent(event: AuditEvent): void {
  if (typeof event.actor !== "string" || event.actor.length === 0)
    throw new TypeError("audit event needs an actor");
  if (!ACTION.test(event.action))
    throw new TypeError(`audit action "${event.action}" must be dotted lowercase`);
  if (
    event.details !== undefined &&
    (event.details === null || typeof event.details !== "object" || Array.isArray(event.details))
  ) {
    throw new TypeError("audit details must be a JSON object");
  }
}

/** Builds the records that follow `head` for `events`, all stamped `time`. Pure. */
export function chainEvents(head: ChainHead, events: readonly AuditEvent[], time: string): AuditRecord[] {
  let prev = head;
  return events.map((event) => {
    const content: AuditContent = {
      seq: prev.seq + 1,
      time,
      actor: event.actor,
      action: event.action,
      subject: event.subject ?? null,
      target: event.target ?? null,
      // A JSON round trip drops undefined and functions, so what is hashed is exactly what is stored.
      details: JSON.parse(JSON.stringify(event.details ?? {})) as JsonObject,
    };
    const record: AuditRecord = { ...content, prevHash: prev.hash, hash: entryHash(prev.hash, content) };
    prev = record;
    return record;
  });
}

/** Why a record does not continue the chain at `expectedPrevHash`, or null if it does. */
export function linkProblem(record: AuditRecord, expectedPrevHash: string | null): string | null {
  if (expectedPrevHash !== null && record.prevHash !== expectedPrevHash) {
    return "prevHash does not match the hash of the entry before it (an entry was removed, inserted or changed)";
  }
  if (entryHash(record.prevHash, record) !== record.hash) {
    return "hash does not match the entry's content (the entry was edited)";
  }
  return null;
}
