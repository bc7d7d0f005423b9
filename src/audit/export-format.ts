/**
 * The JSONL audit export format (version 1). Every line is RFC 8785 canonical JSON with a `type`:
 *
 * - `header`     first line: format, version, filter, the seq range the export spans (always from 1).
 * - `entry`      a selected audit entry with its prevHash and hash.
 * - `gap`        a run of entries the filter left out: `fromSeq..toSeq`, the prevHash of the first and
 *                the hash of the last, so the chain can be followed across it.
 * - `checkpoint` a signed checkpoint, right after the entry or gap that ends at its seq.
 * - `head`       last line: a JWS over the export (count, range, last hash, sha256 of all lines before it),
 *                so that a removed, added, reordered or edited line, or a cut-off tail, is detected.
 */
import type { AuditRecord } from "../store/store.js";

export const EXPORT_FORMAT = "idbridge-audit-export";
export const EXPORT_VERSION = 1;

/** Which entries an export selects. */
export interface AuditFilter {
  /** ISO time, inclusive. */
  from?: string | undefined;
  /** ISO time, exclusive. */
  to?: string | undefined;
  /** Exact actor. */
  actor?: string | undefined;
  /** Exact action, or a prefix ending in `*` (`role.*`). */
  action?: string | undefined;
  /** Exact subject. */
  subject?: string | undefined;
}

export interface HeaderLine {
  type: "header";
  format: typeof EXPORT_FORMAT;
  version: number;
  createdAt: string;
  filter: AuditFilter;
  fromSeq: number;
  toSeq: number;
}

/** An entry line: the stored record as it is, tagged. */
export type EntryLine = { type: "entry" } & AuditRecord;

export interface GapLine {
  type: "gap";
  fromSeq: number;
  toSeq: number;
  prevHash: string;
  hash: string;
}

export interface CheckpointLine {
  type: "checkpoint";
  seq: number;
  hash: string;
  time: string;
  jws: string;
}

export interface HeadLine {
  type: "head";
  jws: string;
}

/** What the head JWS signs. */
export interface HeadStatement {
  format: typeof EXPORT_FORMAT;
  createdAt: string;
  count: number;
  fromSeq: number;
  toSeq: number;
  lastHash: string;
  /** sha256 hex over every line before the head, each followed by "\n". */
  linesDigest: string;
}

export type ExportLine = HeaderLine | EntryLine | GapLine | CheckpointLine | HeadLine;

/** Whether an entry passes the filter. Pure. */
export function matchesFilter(
  entry: { time: string; actor: string; action: string; subject: string | null },
  filter: AuditFilter,
): boolean {
  if (filter.from !== undefined && Date.parse(entry.time) < Date.parse(filter.from)) return false;
  if (filter.to !== undefined && Date.parse(entry.time) >= Date.parse(filter.to)) return false;
  if (filter.actor !== undefined && entry.actor !== filter.actor) return false;
  if (filter.subject !== undefined && entry.subject !== filter.subject) return false;
  if (filter.action !== undefined) {
    const prefix = filter.action.endsWith("*") ? filter.action.slice(0, -1) : null;
    if (prefix !== null ? !entry.action.startsWith(prefix) : entry.action !== filter.action) return false;
  }
  return true;
}
