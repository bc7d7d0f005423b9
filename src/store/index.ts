import { AppError } from "../domain/errors.js";
import type { Store } from "./store.js";
import { migrate } from "./sql/migrations.js";
import { SqlStore } from "./sql/sql-store.js";
import type { SqlDriver } from "./sql/driver.js";

export type {
  Store,
  AuditRecord,
  AuditSearch,
  ChainHead,
  Checkpoint,
  InstanceInfo,
  ListPosition,
  StoreHealth,
  TargetLink,
  TargetLinkKind,
  PlanStatus,
  PlanDecision,
  PlanRecord,
  PlanListing,
  PlanItemRecord,
  SyncRunRecord,
} from "./store.js";

export interface OpenStoreOptions {
  /** `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. */
  url: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
}

/** Opens the store at `url` and brings its schema up to date; a failure leaves nothing open. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { url } = options;
  let driver: SqlDriver;
  // Each driver is loaded only when used: the pg client alone adds ~15 MB to every CLI process.
  if (url.startsWith("sqlite:")) {
    const { openSqlite } = await import("./sql/sqlite.js");
    driver = openSqlite(url.slice("sqlite:".length));
  } else if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { openPostgres } = await import("./sql/postgres.js");
    driver = openPostgres(url, options.poolSize ?? 10);
  } else {
    throw new AppError("CONFIG_INVALID", "store.url: must start with sqlite: or postgres://");
  }
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close().catch(() => undefined);
    throw err;
  }
  return new SqlStore(driver);
}
