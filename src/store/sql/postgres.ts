import pg from "pg";
import { AppError, describeError } from "../../domain/errors.js";
import type { Row, SqlClient, SqlDriver, TxLock } from "./driver.js";

// Keys for pg_advisory_xact_lock: one per named lock, in idbridge's own range.
const LOCK_KEYS: Record<TxLock, number> = {
  audit: 0x1db0001,
  migrations: 0x1db0002,
  instances: 0x1db0003,
  plans: 0x1db0004,
};

/** `postgres://user@host:port/db` without the password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return `${u.protocol}//${u.username ? `${u.username}@` : ""}${u.host}${u.pathname}`;
  } catch {
    return "postgres://(unparseable url)";
  }
}

/**
 * `url` with `option` added to the session options sent at connect. Put into the URL itself, since pg
 * lets a URL's own `options` parameter override the Pool's `options`; an operator's options are kept.
 */
export function withSessionOption(url: string, option: string): string {
  try {
    const u = new URL(url);
    const own = u.searchParams.get("options");
    u.searchParams.set("options", own === null || own.trim() === "" ? option : `${own} ${option}`);
    return u.toString();
  } catch {
    // Unparseable: the main pool reports it the same way.
    return url;
  }
}

/** Maps connection and server failures to one-line causes a person can act on. */
export function postgresError(err: unknown, url: string): AppError {
  const e = err as { code?: string; message?: string };
  let host = "(unknown host)";
  let db = "";
  try {
    const u = new URL(url);
    host = `${u.hostname}:${u.port || "5432"}`;
    db = decodeURIComponent(u.pathname.slice(1));
  } catch {
    /* reported as unknown host */
  }
  const byCode: Record<string, string> = {
    ECONNREFUSED: `cannot connect to PostgreSQL at ${host}: connection refused (is the server running and listening there?)`,
    ENOTFOUND: `cannot connect to PostgreSQL at ${host}: host name not found`,
    EAI_AGAIN: `cannot connect to PostgreSQL at ${host}: host name lookup failed`,
    ETIMEDOUT: `cannot connect to PostgreSQL at ${host}: connection timed out`,
    ECONNRESET: `connection to PostgreSQL at ${host} was reset`,
    "28P01": `PostgreSQL at ${host} rejected the password (check store.url)`,
    "28000": `PostgreSQL at ${host} refused the login: ${e.message ?? ""}`,
    "3D000": `PostgreSQL at ${host} has no database "${db}" (create it first)`,
    "53100": `PostgreSQL at ${host} is out of disk space`,
    "57P03": `PostgreSQL at ${host} is starting up or shutting down`,
  };
  const message = (e.code && byCode[e.code]) || `PostgreSQL error at ${host}: ${describeError(err)}`;
  return new AppError("STORE_UNAVAILABLE", message, { cause: err });
}

/** PostgreSQL through a pg pool (and a second one for relaxed writes). Named locks are transaction-scoped advisory locks. */
export function openPostgres(url: string, poolSize: number): SqlDriver {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on("error", () => undefined);
  // BIGINT (int8) as number: seqs stay far below 2^53.
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"),
  };
  const wrap = (c: pg.Pool | pg.PoolClient): SqlClient => ({
    async query<T extends Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        return (await c.query<T>({ text: sql, values: params as unknown[], types })).rows;
      } catch (err) {
        throw postgresError(err, url);
      }
    },
    async run(sql: string, params: readonly unknown[] = []): Promise<number> {
      try {
        return (await c.query({ text: sql, values: params as unknown[], types })).rowCount ?? 0;
      } catch (err) {
        throw postgresError(err, url);
      }
    },
  });
  const direct = wrap(pool);

  /**
   * Relaxed durability: a second, smaller pool whose sessions run with `synchronous_commit = off`, so a
   * statement's COMMIT returns before its WAL record is flushed — one round trip per write, where a
   * `SET LOCAL` inside BEGIN … COMMIT took three. A server crash may lose the last such commits (up to
   * 3 × wal_writer_delay), never consistency; the main pool's sessions keep the server's setting.
   * https://www.postgresql.org/docs/current/wal-async-commit.html
   */
  const relaxedPool = new pg.Pool({
    connectionString: withSessionOption(url, "-c synchronous_commit=off"),
    max: Math.max(1, Math.ceil(poolSize / 2)),
    connectionTimeoutMillis: 10_000,
  });
  relaxedPool.on("error", () => undefined);
  const relaxed = wrap(relaxedPool);

  return {
    flavour: "postgres",
    location: redactUrl(url),
    query: direct.query,
    run: direct.run,
    relaxed,
    async transaction<T>(lock: TxLock | null, fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        let conn: pg.PoolClient;
        try {
          conn = await pool.connect();
        } catch (err) {
          throw postgresError(err, url);
        }
        // pg-pool drops its own error listener while a client is checked out: without one of ours, a
        // connection lost mid-transaction (server restart, failover) would be an uncaught 'error' event.
        let broken: unknown = null;
        const onError = (err: unknown): void => {
          broken = err;
        };
        conn.on("error", onError);
        const tx = wrap(conn);
        let begun = false;
        try {
          // READ COMMITTED whatever the server default: the head is read after the lock is granted, and a
          // REPEATABLE READ snapshot taken before the lock would see a stale head.
          await tx.run("BEGIN ISOLATION LEVEL READ COMMITTED");
          begun = true;
          if (lock) await tx.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEYS[lock]]);
          const result = await fn(tx);
          await tx.run("COMMIT");
          return result;
        } catch (err) {
          // A ROLLBACK that fails means the connection itself is gone.
          await conn.query("ROLLBACK").catch((rollbackErr: unknown) => (broken ??= rollbackErr));
          // A pooled connection that died while idle (server restart) fails at BEGIN, before anything of
          // ours ran: one retry on a fresh connection is safe.
          if (!begun && broken !== null && attempt === 1) continue;
          throw err;
        } finally {
          conn.off("error", onError);
          // A client whose connection broke is destroyed, not returned to the pool.
          conn.release(broken ? (broken as Error) : undefined);
        }
      }
    },
    async tableNames() {
      const rows = await direct.query<{ name: string }>(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
      );
      return rows.map((r) => r.name);
    },
    async close() {
      await Promise.all([pool.end(), relaxedPool.end()]);
    },
  };
}
