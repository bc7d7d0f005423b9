/**
 * Audit search in SQL: filters as WHERE clauses on indexed columns (migration 7), newest first,
 * keyset-paged by seq, so a page costs index seeks and never a scan of the log in JavaScript.
 *
 * One index drives each query, the most selective the filter offers: subject, then actor, then an exact
 * action, then target; the other conditions only filter the rows it yields in seq order. An action prefix
 * (`role.*`) is first expanded to the actions the log holds under it (one index seek each), and each is
 * then read as an exact action and the pages merged: a range of actions would have to be sorted by seq
 * in full before the first row is known (about 300,000 rows for `role.*` in the 1M-entry benchmark).
 */
import type { AuditSearch } from "../store.js";
import type { Row, SqlClient } from "./driver.js";

type Flavour = "sqlite" | "postgres";

/** A statement with PostgreSQL-style `$n` placeholders and its parameters. */
export interface SqlStatement {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/**
 * `action` compared in byte (code point) order on both flavours: SQLite's default BINARY collation is
 * that already; a PostgreSQL database collation may be linguistic (ignoring the dots of `role.`), so the
 * action index and every comparison use "C" there.
 */
const actionColumn = (flavour: Flavour): string => (flavour === "postgres" ? 'action COLLATE "C"' : "action");

/** ISO text as stored (`Date#toISOString`), so that times compare as strings. */
const storedTime = (iso: string): string => new Date(iso).toISOString();

/** The column whose index leads a query for `filter`, or null to leave the choice to the planner. */
function drivingColumn(filter: AuditSearch): "subject" | "actor" | "action" | "target" | null {
  if (filter.subject !== undefined) return "subject";
  if (filter.actor !== undefined) return "actor";
  if (filter.action !== undefined && !filter.action.endsWith("*")) return "action";
  if (filter.target !== undefined) return "target";
  return null;
}

/**
 * `SELECT <columns> FROM audit_entries` for the entries matching `filter` (an action prefix is matched as
 * a range here) with seq below `beforeSeq` (all when null), newest first, at most `limit`.
 */
export function auditSearchStatement(
  flavour: Flavour,
  columns: string,
  filter: AuditSearch,
  beforeSeq: number | null,
  limit: number,
): SqlStatement {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  const driver = drivingColumn(filter);
  // SQLite's planner has no statistics (no ANALYZE): a unary + keeps it off every index but the driver's.
  // PostgreSQL has them (autovacuum analyses), and + is not defined on text there.
  const col = (name: string, expression = name): string =>
    flavour === "sqlite" && driver !== null && driver !== name ? `+${expression}` : expression;
  const action = col("action", actionColumn(flavour));
  if (beforeSeq !== null) where.push(`seq < ${param(beforeSeq)}`);
  if (filter.from !== undefined) where.push(`${col("time")} >= ${param(storedTime(filter.from))}`);
  if (filter.to !== undefined) where.push(`${col("time")} < ${param(storedTime(filter.to))}`);
  for (const name of ["actor", "subject", "target"] as const) {
    const value = filter[name];
    if (value !== undefined) where.push(`${col(name)} = ${param(value)}`);
  }
  if (filter.action !== undefined) {
    if (filter.action.endsWith("*")) {
      const prefix = filter.action.slice(0, -1);
      if (prefix !== "") {
        where.push(`${action} >= ${param(prefix)}`);
        const end = prefixEnd(prefix);
        // Where no range end can be made, substr keeps the match exact.
        if (end !== null) where.push(`${action} < ${param(end)}`);
        else where.push(`substr(action, 1, ${param([...prefix].length)}) = ${param(prefix)}`);
      }
    } else {
      where.push(`${action} = ${param(filter.action)}`);
    }
  }
  if (filter.actions !== undefined) {
    if (filter.actions.length === 0) where.push("1 = 0");
    else where.push(`${action} IN (${filter.actions.map((a) => param(a)).join(", ")})`);
  }
  const sql =
    `SELECT ${columns} FROM audit_entries` +
    (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY seq DESC LIMIT ${param(limit)}`;
  return { sql, params };
}

/** The smallest string above every string starting with `prefix`; null when code-unit order would mislead. */
export function prefixEnd(prefix: string): string | null {
  const last = prefix.charCodeAt(prefix.length - 1);
  if (prefix.length === 0 || (last >= 0xd800 && last <= 0xdfff) || last === 0xffff) return null;
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

/** The distinct actions in the log that start with `prefix`, by one index seek each. */
async function actionsWithPrefix(db: SqlClient, flavour: Flavour, prefix: string): Promise<string[] | null> {
  const end = prefixEnd(prefix);
  if (end === null) return null;
  const action = actionColumn(flavour);
  const found: string[] = [];
  let low = prefix;
  let op = ">=";
  // Audit actions are a small vocabulary; a log with more under one prefix is searched as a range.
  while (found.length < 50) {
    const rows = await db.query<{ action: string }>(
      `SELECT action FROM audit_entries WHERE ${action} ${op} $1 AND ${action} < $2 ORDER BY ${action} LIMIT 1`,
      [low, end],
    );
    const next = rows[0]?.action;
    if (next === undefined) return found;
    found.push(next);
    low = next;
    op = ">";
  }
  return null;
}

/** Runs an audit search on `db` (see the module comment); rows newest first. */
export async function searchAuditRows<T extends Row & { seq: unknown }>(
  db: SqlClient,
  flavour: Flavour,
  columns: string,
  filter: AuditSearch,
  beforeSeq: number | null,
  limit: number,
): Promise<T[]> {
  const run = (f: AuditSearch): Promise<T[]> => {
    const { sql, params } = auditSearchStatement(flavour, columns, f, beforeSeq, limit);
    return db.query<T>(sql, params);
  };
  const prefix = filter.action?.endsWith("*") ? filter.action.slice(0, -1) : null;
  if (prefix === null || prefix === "" || drivingColumn(filter) === "subject" || filter.actor !== undefined)
    return run(filter);
  const actions = await actionsWithPrefix(db, flavour, prefix);
  if (actions === null) return run(filter);
  const pages = await Promise.all(actions.map((action) => run({ ...filter, action })));
  return pages
    .flat()
    .sort((a, b) => Number(b.seq) - Number(a.seq))
    .slice(0, limit);
}
