/**
 * The audit hash chain, as pure functions.
 *
 * hash(n) = sha256_hex( prevHash ‖ JCS(entry) ), where prevHash is hash(n-1) (64 zeros for seq 1), ‖ is
 * string concatenation of the UTF-8 text, and JCS is RFC 8785 canonical JSON of
 * `{seq, time, actor, action, subject, target, details}`.
 */
import { hash } from "node:crypto";
import { jcs, jcsString } from "./jcs.js";
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

const nullable = (value: string | null): string => (value === null ? "null" : jcsString(value));

/**
 * The canonical JSON of an entry's hashed fields, split around where an export line inserts `hash` and
 * `prevHash` (JCS sorts members: action, actor, details | hash, prevHash | seq, subject, target, time).
 * The fixed members are written directly, in their sorted order; `details` is the only free-form one.
 */
export function canonicalParts(entry: AuditContent): { before: string; after: string } {
  if (!Number.isSafeInteger(entry.seq)) throw new TypeError("audit seq must be a safe integer");
  return {
    before: `"action":${jcsString(entry.action)},"actor":${jcsString(entry.actor)},"details":${jcs(entry.details)}`,
    after:
      `"seq":${entry.seq},"subject":${nullable(entry.subject)},"target":${nullable(entry.target)},` +
      `"time":${jcsString(entry.time)}`,
  };
}

/** The canonical parts of an entry, split as `canonicalParts` returns them. */
export type CanonicalParts = ReturnType<typeof canonicalParts>;

/** RFC 8785 canonical JSON of the hashed fields of an entry. */
export function canonicalContent(entry: AuditContent, parts: CanonicalParts = canonicalParts(entry)): string {
  return `{${parts.before},${parts.after}}`;
}

/** sha256 hex of prevHash ‖ canonical JSON of the entry (pass `parts` when they are already computed). */
export function entryHash(prevHash: string, entry: AuditContent, parts?: CanonicalParts): string {
  return hash("sha256", prevHash + canonicalContent(entry, parts));
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
  for (const text of [event.subject, event.target]) {
    if (text !== undefined && text !== null && typeof text !== "string")
      throw new TypeError("audit subject and target must be strings");
  }
  // Everything must have a canonical form now, so that one bad event fails its own caller, not the whole
  // group-committed batch it would have joined (lone surrogates, BigInt, non-finite numbers).
  jcs({ ...event, details: JSON.parse(JSON.stringify(event.details ?? {})) as unknown });
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
