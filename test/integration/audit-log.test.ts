/**
 * The audit log over a real store of each flavour: group commit, checkpoints by count and by time,
 * and two writers (two connections, as two instances would be) forming one linear chain.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { AuditLog } from "../../src/audit/log.js";
import { generateKeys, type KeySet } from "../../src/keys/keys.js";
import { openStore, type Store } from "../../src/store/index.js";
import { createDatabase, postgresUrlOrSkip } from "../peers/index.js";
import { exportText, sampleEvents, verifyText } from "../helpers/audit.js";

const dir = mkdtempSync(join(tmpdir(), "idbridge-auditlog-"));
const keysPromise: Promise<KeySet> = generateKeys(join(dir, "keys"));
const pgUrl = postgresUrlOrSkip();
let files = 0;

const flavours = [
  { name: "sqlite", available: true, url: async () => `sqlite:${join(dir, `log-${++files}.db`)}` },
  {
    name: "postgres",
    available: pgUrl !== null,
    url: () => createDatabase(pgUrl as string, `auditlog_${randomBytes(6).toString("hex")}`),
  },
] as const;

async function open(url: string): Promise<Store> {
  const store = await openStore({ url, poolSize: 4 });
  onTestFinished(() => store.close());
  return store;
}

for (const flavour of flavours) {
  describe.skipIf(!flavour.available)(`audit log (${flavour.name})`, () => {
    it("commits concurrent records together and resolves each with its own seq", async () => {
      const keys = await keysPromise;
      const store = await open(await flavour.url());
      const batches: number[] = [];
      const log = new AuditLog(store, keys.audit, {
        checkpointEvery: 1000,
        checkpointIntervalMs: 0,
        onAppend: (records) => batches.push(records.length),
      });
      const records = await Promise.all(sampleEvents(300).map((e) => log.record(e)));
      await log.close();
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(batches.reduce((a, b) => a + b, 0)).toBe(300);
      expect(batches.length).toBeLessThan(300); // grouped, not one transaction per entry
    });

    it("rejects an event without a canonical form alone, not the batch it would have joined", async () => {
      const keys = await keysPromise;
      const store = await open(await flavour.url());
      const log = new AuditLog(store, keys.audit, { checkpointEvery: 1000, checkpointIntervalMs: 0 });
      const outcomes = await Promise.allSettled([
        log.record({ actor: "system", action: "login.succeeded", subject: "person:a" }),
        log.record({ actor: "system", action: "login.succeeded", details: { name: "broken \ud800" } }),
        log.record({ actor: "system", action: "login.succeeded", details: { n: 10n } as never }),
        log.record({ actor: "system", action: "login.succeeded", subject: "person:b" }),
      ]);
      await log.close();
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
      expect((await store.readAudit(0, 10, 10)).map((r) => r.subject)).toEqual(["person:a", "person:b"]);
    });

    it("signs a checkpoint every N entries and on close", async () => {
      const keys = await keysPromise;
      const store = await open(await flavour.url());
      const log = new AuditLog(store, keys.audit, { checkpointEvery: 10, checkpointIntervalMs: 0 });
      for (const e of sampleEvents(35)) await log.record(e);
      expect((await store.listCheckpoints(1, 35)).map((c) => c.seq)).toEqual([10, 20, 30]);
      await log.close();
      expect((await store.latestCheckpoint())?.seq).toBe(35);
      expect(await log.checkpoint()).toBeNull(); // nothing new since: no duplicate checkpoint
    });

    it("signs a checkpoint after T seconds even when fewer than N entries arrived", async () => {
      const keys = await keysPromise;
      const store = await open(await flavour.url());
      const log = new AuditLog(store, keys.audit, { checkpointEvery: 1000, checkpointIntervalMs: 100 });
      log.start();
      onTestFinished(() => log.close());
      await log.record({ actor: "system", action: "service.started" });
      await expect.poll(() => store.latestCheckpoint().then((c) => c?.seq ?? 0), { timeout: 5000 }).toBe(1);
    });

    it("keeps one linear, verifiable chain with two writers on two connections", async () => {
      const keys = await keysPromise;
      const url = await flavour.url();
      const [a, b] = [await open(url), await open(url)];
      const logA = new AuditLog(a, keys.audit, { checkpointEvery: 50, checkpointIntervalMs: 0 });
      const logB = new AuditLog(b, keys.audit, { checkpointEvery: 50, checkpointIntervalMs: 0 });
      await Promise.all([
        ...sampleEvents(200).map((e) => logA.record({ ...e, actor: "instance-a" })),
        ...sampleEvents(200).map((e) => logB.record({ ...e, actor: "instance-b" })),
      ]);
      await Promise.all([logA.close(), logB.close()]);
      const verdict = await verifyText(await exportText(a, keys), keys.jwks);
      expect(verdict).toMatchObject({ ok: true, entries: 400, toSeq: 400 });
      // Each writer committed its 200 entries as one group, so each signed one checkpoint (>= 50 new entries).
      expect(verdict.ok && verdict.checkpoints).toBeGreaterThanOrEqual(2);
      expect((await a.latestCheckpoint())?.seq).toBe(400);
    });
  });
}
