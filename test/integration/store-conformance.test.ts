/**
 * One conformance suite for every Store flavour (dex's storage/conformance habit): the same cases run on
 * SQLite (a temp file) and on a real PostgreSQL server (a fresh database per test).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { setTimeout } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { chainEvents, GENESIS_HASH, linkProblem, type AuditEvent } from "../../src/audit/chain.js";
import { openStore, type AuditRecord, type Checkpoint, type Store } from "../../src/store/index.js";
import type { SqlClient, SqlDriver } from "../../src/store/sql/driver.js";
import { CODE_SCHEMA_VERSION, migrate } from "../../src/store/sql/migrations.js";
import { openPostgres } from "../../src/store/sql/postgres.js";
import { SqlStore } from "../../src/store/sql/sql-store.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const SECOND_WRITER = fileURLToPath(new URL("fixtures/append-audit.ts", import.meta.url));
const TIME = "2026-03-01T08:00:00.000Z";
const ALL = 1_000_000;

const { sqlite, postgres } = storeFlavours();

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function events(actor: string, count: number): AuditEvent[] {
  return range(1, count).map((i) => ({ actor, action: "test.appended", details: { i } }));
}

function append(store: Store, batch: readonly AuditEvent[]): Promise<AuditRecord[]> {
  return store.appendAudit((head) => chainEvents(head, batch, TIME));
}

/** Every problem that keeps `records` from being the whole chain 1..count, linked from the genesis hash. */
function chainProblems(records: readonly AuditRecord[], count: number): string[] {
  const problems: string[] = [];
  const seqs = records.map((r) => r.seq);
  if (JSON.stringify(seqs) !== JSON.stringify(range(1, count))) {
    problems.push(
      `seqs are not exactly 1..${count}: ${seqs.length} records, first ${seqs.slice(0, 5).join(",")}`,
    );
  }
  let prevHash = GENESIS_HASH;
  for (const record of records) {
    const problem = linkProblem(record, prevHash);
    if (problem) problems.push(`seq ${record.seq}: ${problem}`);
    prevHash = record.hash;
  }
  return problems;
}

/** How often the actor changes along the chain: 1 means one writer went entirely before the other. */
function actorChanges(records: readonly AuditRecord[]): number {
  return records.filter((r, i) => i > 0 && r.actor !== records[i - 1]?.actor).length;
}

function checkpoint(seq: number, hash = "c".repeat(64)): Checkpoint {
  return { seq, hash, time: TIME, jws: `header.payload-${seq}.signature` };
}

/** Runs test/integration/fixtures/append-audit.ts; resolves once it has opened the store. */
async function startSecondWriter(url: string, count: number, actor: string) {
  const child = spawn(process.execPath, ["--import", "tsx", SECOND_WRITER, url, String(count), actor], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
  });
  // A failed assertion must not leave the writer waiting on stdin.
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value as string | undefined;
  const first = await next();
  if (first !== "ready") throw new Error(`second writer did not start (${first}): ${stderr}`);
  return {
    go: () => child.stdin.end("go\n"),
    /** Waits for the writer to finish; returns its last line, or throws with its stderr. */
    async finished(): Promise<string | undefined> {
      const last = await next();
      const code = await exit;
      if (code !== 0) throw new Error(`second writer exited ${code}: ${stderr}`);
      return last;
    },
  };
}

/** The suite, once per flavour; the flavour is in the suite name so vitest output shows which one failed. */
function describeConformance(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`store conformance (${flavour.name})`, () => {
    /** Opens a Store that is closed when the test ends. */
    async function open(url: string): Promise<Store> {
      const store = await openStore({ url, poolSize: 4 });
      onTestFinished(() => store.close());
      return store;
    }

    async function openFresh(): Promise<{ url: string; store: Store }> {
      const url = await flavour.freshUrl();
      return { url, store: await open(url) };
    }

    function openRaw(url: string): SqlDriver {
      const raw = flavour.openRaw(url);
      onTestFinished(() => raw.close());
      return raw;
    }

    it("reports seq 0 and the genesis hash as the head of an empty log", async () => {
      const { store } = await openFresh();
      expect(await store.auditHead()).toEqual({ seq: 0, hash: GENESIS_HASH });
      expect(await store.readAudit(0, ALL, 100)).toEqual([]);
    });

    it("appends from the current head and reads the records back exactly, Chinese details included", async () => {
      const { store } = await openFresh();
      const heads: unknown[] = [];
      const details = {
        姓名: "张三",
        部门: ["财务部", "审批组"],
        note: 'quotes " and \\ backslash, emoji 🔐, tab\t',
        nested: { level: 2, ok: true, none: null, ratio: 0.25 },
      };
      const first = await store.appendAudit((head) => {
        heads.push(head);
        return chainEvents(
          head,
          [
            {
              actor: "person:8f3a",
              action: "role.granted",
              subject: "person:1234",
              target: "hesi-main",
              details,
            },
            { actor: "system", action: "sync.finished" },
          ],
          TIME,
        );
      });
      const second = await store.appendAudit((head) => {
        heads.push(head);
        return chainEvents(
          head,
          [{ actor: "cli:root", action: "plan.approved", details: { 计划: "plan-001" } }],
          TIME,
        );
      });

      expect(heads).toEqual([
        { seq: 0, hash: GENESIS_HASH },
        { seq: 2, hash: first[1]?.hash },
      ]);
      const read = await store.readAudit(0, ALL, 100);
      expect(read).toStrictEqual([...first, ...second]);
      expect(read[0]?.details).toStrictEqual(details);
      expect(read[0]).toMatchObject({ subject: "person:1234", target: "hesi-main" });
      expect(read[1]).toMatchObject({ subject: null, target: null, details: {} });
      expect(chainProblems(read, 3)).toEqual([]);
      expect(await store.auditHead()).toEqual({ seq: 3, hash: second[0]?.hash });
    });

    it("stores a batch larger than one INSERT chunk whole and in order", async () => {
      const { store } = await openFresh();
      await append(store, events("system", 250));
      const read = await store.readAudit(0, ALL, ALL);
      expect(chainProblems(read, 250)).toEqual([]);
      expect(read.map((r) => r.details.i)).toEqual(range(1, 250));
    });

    it("pages readAudit by afterSeq, toSeq and limit", async () => {
      const { store } = await openFresh();
      await append(store, events("system", 10));
      const seqs = async (after: number, to: number, limit: number) =>
        (await store.readAudit(after, to, limit)).map((r) => r.seq);
      expect(await seqs(0, 10, 3)).toEqual([1, 2, 3]);
      expect(await seqs(3, 10, 3)).toEqual([4, 5, 6]);
      expect(await seqs(2, 5, 100)).toEqual([3, 4, 5]);
      expect(await seqs(9, ALL, 100)).toEqual([10]);
      expect(await seqs(10, ALL, 100)).toEqual([]);
      expect(await seqs(5, 5, 100)).toEqual([]);
      expect(await seqs(0, 10, 0)).toEqual([]);
    });

    it("writes nothing when the builder throws", async () => {
      const { store } = await openFresh();
      const [kept] = await append(store, events("system", 1));
      await expect(
        store.appendAudit(() => {
          throw new Error("builder failed");
        }),
      ).rejects.toThrow("builder failed");
      expect(await store.auditHead()).toEqual({ seq: 1, hash: kept?.hash });
      expect(await store.readAudit(0, ALL, 100)).toEqual([kept]);
      // The connection is usable afterwards (the failed transaction was rolled back, not left open).
      await append(store, events("system", 1));
      expect(chainProblems(await store.readAudit(0, ALL, 100), 2)).toEqual([]);
    });

    it("rolls back the whole batch when a later INSERT chunk fails", async () => {
      const { store } = await openFresh();
      const [kept] = await append(store, events("system", 1));
      // 150 records: the first chunk of 100 goes in, then the second clashes with seq 2 from the first.
      const batch = store.appendAudit((head) => {
        const records = chainEvents(head, events("system", 150), TIME);
        const clash = records[0] as AuditRecord;
        return [...records.slice(0, 120), clash, ...records.slice(121)];
      });
      await expect(batch).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
      expect(await store.readAudit(0, ALL, ALL)).toEqual([kept]);
    });

    it("the database itself refuses UPDATE and DELETE of audit entries", async () => {
      const { url, store } = await openFresh();
      const written = await append(store, events("system", 2));
      const raw = openRaw(url);
      await expect(raw.run("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1")).rejects.toThrow(
        /append-only/,
      );
      await expect(raw.run("DELETE FROM audit_entries WHERE seq = 2")).rejects.toThrow(/append-only/);
      await expect(raw.run("DELETE FROM audit_entries")).rejects.toThrow(/append-only/);
      if (flavour.name === "postgres") {
        await expect(raw.run("TRUNCATE audit_entries")).rejects.toThrow(/append-only/);
      }
      expect(await store.readAudit(0, ALL, 100)).toEqual(written);
    });

    it("the database itself refuses UPDATE and DELETE of checkpoints", async () => {
      const { url, store } = await openFresh();
      await store.addCheckpoint(checkpoint(3));
      const raw = openRaw(url);
      await expect(
        raw.run("UPDATE audit_checkpoints SET hash = $1 WHERE seq = 3", ["e".repeat(64)]),
      ).rejects.toThrow(/append-only/);
      await expect(raw.run("DELETE FROM audit_checkpoints")).rejects.toThrow(/append-only/);
      expect(await store.latestCheckpoint()).toEqual(checkpoint(3));
    });

    it("stores checkpoints once per seq and lists them by range", async () => {
      const { store } = await openFresh();
      expect(await store.latestCheckpoint()).toBeNull();
      expect(await store.addCheckpoint(checkpoint(5))).toBe(true);
      expect(await store.addCheckpoint(checkpoint(2))).toBe(true);
      expect(await store.addCheckpoint(checkpoint(9))).toBe(true);
      expect(await store.addCheckpoint(checkpoint(5, "d".repeat(64)))).toBe(false);

      expect(await store.latestCheckpoint()).toEqual(checkpoint(9));
      expect(await store.listCheckpoints(2, 5)).toEqual([checkpoint(2), checkpoint(5)]);
      expect(await store.listCheckpoints(3, 8)).toEqual([checkpoint(5)]);
      expect(await store.listCheckpoints(0, ALL)).toEqual([checkpoint(2), checkpoint(5), checkpoint(9)]);
      expect(await store.listCheckpoints(10, 20)).toEqual([]);
    });

    it("keeps one source cursor per source and consumer, replacing it on save", async () => {
      const { store } = await openFresh();
      const ad = { type: "ldap", state: { invocationId: "9a1b", usn: "4711" } };
      expect(await store.getSourceCursor("ad-hq", "sync")).toBeNull();
      await store.setSourceCursor("ad-hq", "sync", ad, new Date(TIME));
      await store.setSourceCursor("ad-hq", "cli", { type: "ldap", state: { usn: "1" } }, new Date(TIME));
      expect(await store.getSourceCursor("ad-hq", "sync")).toEqual(ad);
      const later = { type: "ldap", state: { invocationId: "9a1b", usn: "5000" } };
      await store.setSourceCursor("ad-hq", "sync", later, new Date(TIME));
      expect(await store.getSourceCursor("ad-hq", "sync")).toEqual(later);
      expect(await store.getSourceCursor("ad-hq", "cli")).toEqual({ type: "ldap", state: { usn: "1" } });
      expect(await store.getSourceCursor("dingtalk-hq", "sync")).toBeNull();
    });

    describe("instance registration", () => {
      const a = { id: "instance-a", host: "node-a.test", pid: 111 };
      const b = { id: "instance-b", host: "node-b.test", pid: 222 };
      const exclusive = { exclusive: true, staleAfterMs: 60_000 };
      const registered = async (raw: SqlDriver) =>
        (await raw.query<{ id: string }>("SELECT id FROM instances ORDER BY id")).map((r) => r.id);
      const ageHeartbeat = (raw: SqlDriver, id: string) =>
        raw.run("UPDATE instances SET heartbeat_at = $1 WHERE id = $2", [Date.now() - 10 * 60_000, id]);

      it("exclusive registration refuses while another live instance is registered", async () => {
        const { url, store } = await openFresh();
        await store.registerInstance(a, exclusive);
        await expect(store.registerInstance(b, exclusive)).rejects.toMatchObject({
          code: "STORE_LOCKED",
          message: expect.stringContaining("pid 111 on node-a.test"),
        });
        expect(await registered(openRaw(url))).toEqual(["instance-a"]);
      });

      it("exclusive registration takes over an instance whose heartbeat is older than staleAfterMs", async () => {
        const { url, store } = await openFresh();
        const raw = openRaw(url);
        await store.registerInstance(a, exclusive);
        await ageHeartbeat(raw, a.id);
        await store.registerInstance(b, exclusive);
        expect(await registered(raw)).toEqual(["instance-b"]);
      });

      it("a heartbeat keeps an instance live", async () => {
        const { url, store } = await openFresh();
        const raw = openRaw(url);
        await store.registerInstance(a, exclusive);
        await ageHeartbeat(raw, a.id);
        await store.heartbeatInstance(a.id);
        await expect(store.registerInstance(b, exclusive)).rejects.toMatchObject({ code: "STORE_LOCKED" });
      });

      it("unregistering frees the store for an exclusive instance", async () => {
        const { url, store } = await openFresh();
        await store.registerInstance(a, exclusive);
        await store.unregisterInstance(a.id);
        await store.registerInstance(b, exclusive);
        expect(await registered(openRaw(url))).toEqual(["instance-b"]);
      });

      it("exclusive registration takes over an instance on this host whose process has exited", async () => {
        const { url, store } = await openFresh();
        const gone = spawn(process.execPath, ["-e", ""]);
        await new Promise((resolve) => gone.on("exit", resolve));
        await store.registerInstance(
          { id: "instance-gone", host: hostname(), pid: gone.pid as number },
          exclusive,
        );
        await store.registerInstance({ id: "instance-here", host: hostname(), pid: process.pid }, exclusive);
        expect(await registered(openRaw(url))).toEqual(["instance-here"]);
      });

      it("non-exclusive registration lets two instances run", async () => {
        const { url, store } = await openFresh();
        await store.registerInstance(a, { exclusive: false, staleAfterMs: 60_000 });
        await store.registerInstance(b, { exclusive: false, staleAfterMs: 60_000 });
        expect(await registered(openRaw(url))).toEqual(["instance-a", "instance-b"]);
      });
    });

    it("health reports the schema version the code knows", async () => {
      const { store } = await openFresh();
      expect(CODE_SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
      expect(await store.health()).toEqual({
        schemaVersion: CODE_SCHEMA_VERSION,
        codeVersion: CODE_SCHEMA_VERSION,
      });
    });

    it("reopening a database keeps its data and does not run migrations again", async () => {
      const url = await flavour.freshUrl();
      const first = await openStore({ url });
      const written = await append(first, events("system", 3));
      await first.addCheckpoint(checkpoint(3, written[2]?.hash));
      await first.close();
      const raw = openRaw(url);
      const history = () =>
        raw.query("SELECT version, name, applied_at FROM idbridge_migrations ORDER BY version");
      const before = await history();
      expect(before.map((r) => Number(r.version))).toEqual(range(1, CODE_SCHEMA_VERSION));

      const again = await open(url);
      expect(await history()).toEqual(before);
      expect(await again.readAudit(0, ALL, 100)).toEqual(written);
      expect(await again.latestCheckpoint()).toEqual(checkpoint(3, written[2]?.hash));
    });

    it("refuses a database whose schema is newer than the code (STORE_INCOMPATIBLE)", async () => {
      const url = await flavour.freshUrl();
      await (await openStore({ url })).close();
      await openRaw(url).run(
        "INSERT INTO idbridge_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        [999, "from a newer idbridge", TIME],
      );
      await expect(openStore({ url })).rejects.toMatchObject({
        code: "STORE_INCOMPATIBLE",
        message: expect.stringContaining("schema version 999"),
      });
    });

    it("refuses a database with foreign tables and no migration history (STORE_INCOMPATIBLE)", async () => {
      const url = await flavour.freshUrl();
      const raw = openRaw(url);
      await raw.run("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
      await expect(openStore({ url })).rejects.toMatchObject({
        code: "STORE_INCOMPATIBLE",
        message: expect.stringMatching(/not an idbridge database.*customers/),
      });
      expect(await raw.tableNames()).toEqual(["customers"]);
    });

    if (flavour.name === "sqlite") {
      it("refuses a file that is not an SQLite database (STORE_UNAVAILABLE) and leaves it alone", async () => {
        const file = (await flavour.freshUrl()).slice("sqlite:".length);
        const junk = Buffer.from("this is a spreadsheet, not a database\n".repeat(200));
        writeFileSync(file, junk);
        await expect(openStore({ url: `sqlite:${file}` })).rejects.toMatchObject({
          code: "STORE_UNAVAILABLE",
          message: expect.stringContaining("not an SQLite database"),
        });
        expect(readFileSync(file).equals(junk)).toBe(true);
      });

      // Bug: each openSqlite queued only its own transactions, so a second connection of the same process
      // waited for the write lock inside better-sqlite3's synchronous busy handler, blocking the event loop
      // the first connection needed to reach COMMIT; after 5 s it failed with SQLITE_BUSY.
      it("two connections in one process do not block each other until the busy timeout (SQLITE_BUSY)", async () => {
        const url = await flavour.freshUrl();
        const one = await open(url);
        const two = await open(url);
        const started = Date.now();
        await Promise.all(
          [one, two, one, two].map((store, i) => append(store, events(`writer-${i % 2}`, 1))),
        );
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(chainProblems(await one.readAudit(0, ALL, ALL), 4)).toEqual([]);
      });
    }

    it("two connections appending concurrently form one linear chain without gaps or forks", async () => {
      const url = await flavour.freshUrl();
      const one = await open(url);
      const two = await open(url);
      const count = 200;
      // Calls alternate between the connections, so each append has to see the other connection's commit.
      const returned = await Promise.all(
        range(1, count).flatMap((i) => [
          append(one, [{ actor: "writer-one", action: "test.appended", details: { i } }]),
          append(two, [{ actor: "writer-two", action: "test.appended", details: { i } }]),
        ]),
      );

      const read = await one.readAudit(0, ALL, ALL);
      expect(chainProblems(read, 2 * count)).toEqual([]);
      expect(read).toEqual(returned.flat().sort((x, y) => x.seq - y.seq));
      expect(actorChanges(read), "the two writers never overlapped").toBeGreaterThanOrEqual(2);
      for (const actor of ["writer-one", "writer-two"]) {
        const mine = read.filter((r) => r.actor === actor).map((r) => Number(r.details.i));
        expect(mine.sort((x, y) => x - y)).toEqual(range(1, count));
      }
    });

    it("a second process appending concurrently joins the same linear chain", async () => {
      const url = await flavour.freshUrl();
      const store = await open(url);
      const count = 200;
      const other = await startSecondWriter(url, count, "process-two");
      other.go();
      // Paced like the other writer (fixtures/append-audit.ts): SQLite's lock is not fair, and a writer in a
      // tight loop starves the other process, so the two would run one after the other instead of together.
      for (const event of events("process-one", count)) {
        await append(store, [event]);
        await setTimeout(1);
      }
      expect(await other.finished()).toBe(`done ${count}`);

      const read = await store.readAudit(0, ALL, ALL);
      expect(chainProblems(read, 2 * count)).toEqual([]);
      expect(read.filter((r) => r.actor === "process-one")).toHaveLength(count);
      expect(read.filter((r) => r.actor === "process-two")).toHaveLength(count);
      expect(actorChanges(read), "the two processes never overlapped").toBeGreaterThanOrEqual(2);
    });
  });
}

describeConformance(sqlite);
describeConformance(postgres);

/** Which path of the driver each write statement took, by the table it wrote. */
async function storeOnSpiedDriver(
  raw: SqlDriver,
): Promise<{ store: SqlStore; writes: { path: "durable" | "relaxed"; table: string }[] }> {
  await migrate(raw);
  const writes: { path: "durable" | "relaxed"; table: string }[] = [];
  const note = (path: "durable" | "relaxed", sql: string): void => {
    const table = /^\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)/i.exec(sql)?.[1];
    if (table !== undefined) writes.push({ path, table });
  };
  const spied = (path: "durable" | "relaxed", client: SqlClient): SqlClient => ({
    query: (sql, params) => (note(path, sql), client.query(sql, params)),
    run: (sql, params) => (note(path, sql), client.run(sql, params)),
  });
  const driver: SqlDriver = {
    ...raw,
    ...spied("durable", raw),
    relaxed: spied("relaxed", raw.relaxed),
    transaction: (lock, fn) => raw.transaction(lock, (tx) => fn(spied("durable", tx))),
  };
  return { store: new SqlStore(driver), writes };
}

describe("relaxed durability (sqlite)", () => {
  async function openRaw(): Promise<SqlDriver> {
    const raw = sqlite.openRaw(await sqlite.freshUrl());
    onTestFinished(() => raw.close());
    return raw;
  }
  const synchronous = async (client: SqlClient): Promise<unknown> =>
    (await client.query<{ synchronous: number }>("PRAGMA synchronous"))[0]?.synchronous;

  it("runs a relaxed statement with synchronous = NORMAL and every other one with FULL", async () => {
    const raw = await openRaw();
    expect(await synchronous(raw)).toBe(2);
    expect(await synchronous(raw.relaxed)).toBe(1);
    expect(await synchronous(raw)).toBe(2);
    expect(await raw.transaction(null, (tx) => synchronous(tx))).toBe(2);
  });

  it("puts synchronous back to FULL when the relaxed statement fails", async () => {
    const raw = await openRaw();
    await expect(raw.relaxed.run("INSERT INTO no_such_table VALUES (1)")).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
    });
    expect(await synchronous(raw)).toBe(2);
  });

  it("keeps synchronous = FULL for statements queued behind a relaxed one", async () => {
    const raw = await openRaw();
    // Issued together: the turn queue must not let the second run while the first has NORMAL set.
    const [inside, after] = await Promise.all([synchronous(raw.relaxed), synchronous(raw)]);
    expect([inside, after]).toEqual([1, 2]);
  });

  it("writes artefacts and flows relaxed, then commits an audit append with FULL", async () => {
    const raw = await openRaw();
    const { store, writes } = await storeOnSpiedDriver(raw);
    await store.upsertOidcArtifact("AccessToken", "at-1", "{}", Date.now() + 60_000, { grantId: "g-1" });
    await store.consumeOidcArtifact("AccessToken", "at-1", Date.now());
    await store.putSignInFlow("state-1", "{}", Date.now() + 60_000);
    expect(await store.takeSignInFlow("state-1", Date.now())).toBe("{}");
    expect(await store.claimOnce("once-1", Date.now() + 60_000, Date.now())).toBe(true);
    expect(await synchronous(raw)).toBe(2);
    await store.appendAudit((head) => chainEvents(head, events("system", 1), TIME));
    expect(writes).toEqual([
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "durable", table: "audit_entries" },
    ]);
    expect((await store.auditHead()).seq).toBe(1);
  });
});

describe.skipIf(!postgres.available)("relaxed durability (postgres)", () => {
  /** A driver with one connection per pool on a fresh database whose default is synchronous_commit = on. */
  async function openRaw(sessionOptions?: string): Promise<SqlDriver> {
    const url = new URL(await postgres.freshUrl());
    if (sessionOptions !== undefined) url.searchParams.set("options", sessionOptions);
    const setup = openPostgres(url.toString(), 1);
    // The test server runs with synchronous_commit = off; the database default makes the change visible.
    await setup.run(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$",
    );
    await setup.close();
    const raw = openPostgres(url.toString(), 1);
    onTestFinished(() => raw.close());
    return raw;
  }
  const synchronousCommit = async (client: SqlClient): Promise<unknown> =>
    (await client.query<{ synchronous_commit: string }>("SHOW synchronous_commit"))[0]?.synchronous_commit;

  it("runs relaxed statements with synchronous_commit off and the main pool's with it on", async () => {
    const raw = await openRaw();
    expect(await synchronousCommit(raw)).toBe("on");
    expect(await synchronousCommit(raw.relaxed)).toBe("off");
    // Interleaved on one connection per pool: neither session's setting leaks into the other.
    expect(await synchronousCommit(raw)).toBe("on");
    expect(await raw.transaction(null, (tx) => synchronousCommit(tx))).toBe("on");
    expect(await synchronousCommit(raw.relaxed)).toBe("off");
  });

  it("runs each relaxed statement in its own commit, also after one failed", async () => {
    const raw = await openRaw();
    await expect(raw.relaxed.run("INSERT INTO no_such_table VALUES (1)")).rejects.toMatchObject({
      code: "STORE_UNAVAILABLE",
    });
    expect(await synchronousCommit(raw.relaxed)).toBe("off");
    // Outside a transaction, now() moves between statements.
    const [a] = await raw.relaxed.query<{ t: string }>("SELECT now()::text AS t");
    await setTimeout(5);
    const [b] = await raw.relaxed.query<{ t: string }>("SELECT now()::text AS t");
    expect(b?.t).not.toBe(a?.t);
    // A relaxed write is committed, and so seen at once by the main pool.
    await raw.relaxed.run("CREATE TABLE relaxed_seen (n int)");
    await raw.relaxed.run("INSERT INTO relaxed_seen VALUES (7)");
    expect(await raw.query("SELECT n FROM relaxed_seen")).toEqual([{ n: 7 }]);
  });

  it("keeps session options of the store URL on both pools", async () => {
    const raw = await openRaw("-c statement_timeout=12345");
    const timeout = async (client: SqlClient): Promise<unknown> =>
      (await client.query<{ statement_timeout: string }>("SHOW statement_timeout"))[0]?.statement_timeout;
    expect(await timeout(raw)).toBe("12345ms");
    expect(await timeout(raw.relaxed)).toBe("12345ms");
    expect(await synchronousCommit(raw.relaxed)).toBe("off");
    expect(await synchronousCommit(raw)).toBe("on");
  });

  it("writes artefacts and flows relaxed and appends audit entries durably", async () => {
    const raw = await openRaw();
    const { store, writes } = await storeOnSpiedDriver(raw);
    await store.upsertOidcArtifact("Session", "s-1", "{}", Date.now() + 60_000, { uid: "u-1" });
    await store.destroyOidcArtifact("Session", "s-1");
    await store.appendAudit((head) => chainEvents(head, events("system", 1), TIME));
    expect(writes).toEqual([
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "relaxed", table: "oidc_artifacts" },
      { path: "durable", table: "audit_entries" },
    ]);
    expect(await synchronousCommit(raw)).toBe("on");
  });
});

// PostgreSQL only: SQLite has no connection to lose.
describe.skipIf(!postgres.available)("postgres store under connection loss", () => {
  const openFresh = async (): Promise<{ url: string; store: Store }> => {
    const url = await postgres.freshUrl();
    const store = await openStore({ url, poolSize: 4 });
    onTestFinished(() => store.close());
    return { url, store };
  };
  const openRaw = postgres.openRaw;
  it("a connection killed mid-transaction fails that append with STORE_UNAVAILABLE and the process goes on", async () => {
    const { url, store } = await openFresh();
    const raw = openRaw(url);
    const attempt = store.appendAudit((head) => chainEvents(head, events("system", 1), TIME));
    // Kill every other backend of this database while the append holds its transaction.
    const killer = raw.transaction(null, async (tx) => {
      await tx.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
    });
    await killer;
    // Either the append committed before the kill, or it failed cleanly; never an uncaught error.
    const outcome = await attempt.then(
      () => "committed",
      (err: unknown) => (err as { code?: string }).code,
    );
    expect(["committed", "STORE_UNAVAILABLE"]).toContain(outcome);
    // The store recovers with fresh connections.
    await append(store, events("system", 1));
    expect((await store.auditHead()).seq).toBe(outcome === "committed" ? 2 : 1);
  });
});
