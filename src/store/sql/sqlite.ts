import { accessSync, constants, existsSync, mkdirSync, realpathSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { AppError, describeError } from "../../domain/errors.js";
import type { Row, SqlClient, SqlDriver, TxLock } from "./driver.js";

/** Turns `$1`-style placeholders into SQLite's positional `?`: the new text and, per `?`, which parameter. */
function positional(sql: string): { sql: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    order.push(Number(n) - 1);
    return "?";
  });
  return { sql: text, order };
}

// Enough for every fixed statement of the Store; multi-row inserts of varying width come and go.
const STATEMENT_CACHE_SIZE = 500;

/** Why the directory of `file` cannot take writes, if the file system can tell: full, read-only, missing. */
function diagnoseDirectory(file: string): string | null {
  const dir = dirname(file);
  if (!existsSync(dir)) return `cannot open ${file}: the directory ${dir} does not exist`;
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EROFS") return `cannot write to ${file}: the file system is read-only`;
    if (code === "EACCES") return `cannot write to ${file}: the directory ${dir} is read-only for this user`;
  }
  try {
    if (statfsSync(dir).bavail === 0) return `cannot write to ${file}: the disk is full`;
  } catch {
    /* no statfs: fall back to SQLite's own words */
  }
  return null;
}

/** Maps SQLite failures to one-line causes a person can act on. */
export function sqliteError(err: unknown, file: string): AppError {
  const code = (err as { code?: string }).code ?? "";
  // SQLite reports a full or read-only disk under several codes (IOERR_SHMSIZE, CANTOPEN, READONLY_DIRECTORY…).
  if (/^SQLITE_(IOERR|CANTOPEN|READONLY|FULL)/.test(code) && file !== ":memory:") {
    const diagnosis = diagnoseDirectory(file);
    if (diagnosis) return new AppError("STORE_UNAVAILABLE", diagnosis, { cause: err });
  }
  const reasons: Record<string, string> = {
    SQLITE_NOTADB: `${file} is not an SQLite database (corrupt, encrypted or another kind of file)`,
    SQLITE_CORRUPT: `${file} is corrupt; restore it from a backup`,
    SQLITE_FULL: `cannot write to ${file}: the disk is full`,
    SQLITE_READONLY: `cannot write to ${file}: the file or its directory is read-only`,
    SQLITE_CANTOPEN: `cannot open ${file}: check that the directory exists and is writable`,
    SQLITE_IOERR: `input/output error on ${file}: ${describeError(err)}`,
    SQLITE_BUSY: `${file} is locked by another process for longer than the busy timeout`,
  };
  const key = Object.keys(reasons).find((k) => code === k || code.startsWith(`${k}_`));
  if (key) return new AppError("STORE_UNAVAILABLE", reasons[key] as string, { cause: err });
  return new AppError("STORE_UNAVAILABLE", `SQLite error on ${file}: ${describeError(err)}`, { cause: err });
}

/**
 * Statements on one connection, prepared once by their `$1`-style text: the token path runs the same few
 * statements thousands of times a second, and preparing one costs about as much as running it.
 */
function clientOf(db: Database.Database, file: string): SqlClient {
  // Oldest out first when full.
  const statements = new Map<string, { stmt: Database.Statement; order: number[] }>();
  const prepared = (sql: string, params: readonly unknown[]): [Database.Statement, unknown[]] => {
    let entry = statements.get(sql);
    if (entry === undefined) {
      const p = positional(sql);
      entry = { stmt: db.prepare(p.sql), order: p.order };
      // SQLite applies (and reads) many pragmas while preparing, so a cached PRAGMA would replay a stale one.
      if (!/^\s*PRAGMA/i.test(sql)) {
        if (statements.size >= STATEMENT_CACHE_SIZE)
          statements.delete(statements.keys().next().value as string);
        statements.set(sql, entry);
      }
    }
    return [entry.stmt, entry.order.map((i) => params[i])];
  };

  return {
    async query<T extends Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        const [stmt, values] = prepared(sql, params);
        return (stmt.reader ? stmt.all(...values) : (stmt.run(...values), [])) as T[];
      } catch (err) {
        throw sqliteError(err, file);
      }
    },
    async run(sql: string, params: readonly unknown[] = []): Promise<number> {
      try {
        const [stmt, values] = prepared(sql, params);
        return stmt.run(...values).changes;
      } catch (err) {
        throw sqliteError(err, file);
      }
    },
  };
}

/**
 * The turn queue of every connection this process has open on one file. better-sqlite3 is synchronous: a
 * connection waiting for SQLite's write lock sleeps in the busy handler with the event loop blocked, so if
 * another connection of the same process held that lock across an `await` it could never commit, and the
 * waiter failed with SQLITE_BUSY after the busy timeout. Connections of one process therefore take turns
 * here; other processes still wait on the file lock.
 */
const fileQueues = new Map<string, { tail: Promise<unknown>; connections: number }>();

/**
 * SQLite through better-sqlite3. WAL mode so CLI readers work beside a running server; FULL sync so a
 * committed audit entry survives power loss; BEGIN IMMEDIATE so writers from other processes wait their
 * turn instead of failing halfway.
 */
export function openSqlite(file: string): SqlDriver {
  let opened: Database.Database | undefined;
  let relaxedDb: Database.Database | null = null;
  let key: string | null;
  try {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    opened = new Database(file, { timeout: 5000 });
    // An in-memory database (and a file system without shared memory) stays in another journal mode.
    const wal = opened.pragma("journal_mode = WAL", { simple: true }) === "wal";
    opened.pragma("synchronous = FULL");
    opened.pragma("foreign_keys = ON");
    key = file === ":memory:" ? null : realpathSync(file);
    // Relaxed durability: in WAL mode, synchronous = NORMAL commits without syncing the WAL. SQLite stays
    // consistent and keeps the commit through a process crash; only a power failure or OS crash can lose
    // it, and only until the next FULL commit or checkpoint syncs the WAL up to there (the WAL is one file
    // for every connection, so a durable commit after a relaxed one makes both durable). The setting is
    // per connection, so relaxed statements get a second connection that keeps it, instead of setting it
    // and putting it back around each (two pragmas prepared afresh per write). Outside WAL (in memory, where
    // a second connection would be another database) NORMAL would be no faster, and in a rollback journal
    // less safe. https://www.sqlite.org/pragma.html#pragma_synchronous
    if (wal) {
      relaxedDb = new Database(file, { timeout: 5000 });
      relaxedDb.pragma("synchronous = NORMAL");
      relaxedDb.pragma("foreign_keys = ON");
    }
  } catch (err) {
    if (relaxedDb?.open) relaxedDb.close();
    if (opened?.open) opened.close();
    if ((err as { code?: string }).code === "EACCES" || (err as { code?: string }).code === "EROFS") {
      throw new AppError(
        "STORE_UNAVAILABLE",
        `cannot create the data directory ${dirname(file)}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
    throw sqliteError(err, file);
  }
  const db = opened;

  const client = clientOf(db, file);
  const relaxedClient = relaxedDb === null ? client : clientOf(relaxedDb, file);

  // Statements and transactions of all this process's connections to the file take turns (see fileQueues).
  const shared = (key !== null && fileQueues.get(key)) || { tail: Promise.resolve(), connections: 0 };
  shared.connections++;
  if (key !== null) fileQueues.set(key, shared);
  let own: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = shared.tail.then(fn, fn);
    shared.tail = own = next.catch(() => undefined);
    return next;
  };

  return {
    flavour: "sqlite",
    location: file,
    query: (sql, params) => exclusive(() => client.query(sql, params)),
    run: (sql, params) => exclusive(() => client.run(sql, params)),
    relaxed: {
      query: (sql, params) => exclusive(() => relaxedClient.query(sql, params)),
      run: (sql, params) => exclusive(() => relaxedClient.run(sql, params)),
    },
    transaction<T>(_lock: TxLock | null, fn: (tx: SqlClient) => Promise<T>): Promise<T> {
      // BEGIN IMMEDIATE takes SQLite's single write lock, which serialises every named lock at once.
      return exclusive(async () => {
        await client.run("BEGIN IMMEDIATE");
        try {
          const result = await fn(client);
          await client.run("COMMIT");
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec("ROLLBACK");
          throw err;
        }
      });
    },
    async tableNames() {
      const rows = await client.query<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      );
      return rows.map((r) => r.name);
    },
    async close() {
      await own;
      if (!db.open) return;
      relaxedDb?.close();
      db.close();
      if (--shared.connections === 0 && key !== null) fileQueues.delete(key);
    },
  };
}
