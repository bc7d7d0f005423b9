/** A row as returned by a driver: column name to value. */
export type Row = Record<string, unknown>;

/** Runs statements written with PostgreSQL-style `$1` placeholders. */
export interface SqlClient {
  /** Runs a statement and returns its rows. */
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement and returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** Named database-wide locks held for the length of a transaction. */
export type TxLock = "audit" | "migrations" | "instances" | "plans";

/** One flavour of SQL database. */
export interface SqlDriver extends SqlClient {
  /** `sqlite` or `postgres`. */
  readonly flavour: "sqlite" | "postgres";
  /** Where the database is, without credentials. */
  readonly location: string;
  /**
   * The same database with relaxed durability, each statement its own commit: on a power failure or an
   * operating-system crash the last commits made through it may be lost (never the database's
   * consistency, and never anything committed through the durable path, nor on a mere process crash).
   * Only for data whose loss means someone signs in again: OIDC provider artefacts and sign-in flow
   * state — never audit entries, plans, links or people.
   */
  readonly relaxed: SqlClient;
  /**
   * Runs `fn` in a transaction that holds `lock` (serialised across connections and processes), commits
   * when it resolves and rolls back when it throws.
   */
  transaction<T>(lock: TxLock | null, fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /** Names of the tables in the database (to recognise a database idbridge did not create). */
  tableNames(): Promise<string[]>;
  /** Closes the connection(s). */
  close(): Promise<void>;
}
