import { beforeAll, afterAll, describe, expect, it } from "vitest";
import { generateKeys, type KeySet } from "../../src/keys/keys.js";
import { JWS_TYPES, signStatement } from "../../src/audit/checkpoint.js";
import { chainEvents, entryHash } from "../../src/audit/chain.js";
import type { Store } from "../../src/store/index.js";
import {
  exportCsvBytes,
  exportText,
  freshAuditEnv,
  recordAll,
  sampleEvents,
  verifyText,
} from "../helpers/audit.js";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { Writable } from "node:stream";
import { exportCsv, exportJsonl } from "../../src/audit/export.js";
import { openSqlite } from "../../src/store/sql/sqlite.js";

let store: Store;
let keys: KeySet;
let dir: string;
let text: string;

const lines = (): string[] => text.trimEnd().split("\n");
const rejoin = (ls: string[]): string => `${ls.join("\n")}\n`;
const lineOfSeq = (ls: string[], seq: number): number =>
  ls.findIndex((l) => {
    const o = JSON.parse(l) as { type: string; seq?: number };
    return o.type === "entry" && o.seq === seq;
  });

beforeAll(async () => {
  ({ store, keys, dir } = await freshAuditEnv());
  await recordAll(store, keys, sampleEvents(25), 10);
  text = await exportText(store, keys);
});
afterAll(async () => {
  await store.close();
});

describe("audit export and offline verification", () => {
  it("verifies an untouched export with its checkpoints", async () => {
    const verdict = await verifyText(text, keys.jwks);
    expect(verdict).toMatchObject({ ok: true, entries: 25, checkpoints: 3, toSeq: 25 });
    const head = await store.auditHead();
    expect(verdict.ok && verdict.head).toBe(head.hash);
  });

  it("writes every line as RFC 8785 canonical JSON", async () => {
    for (const line of lines()) expect(line).toBe(canonicalize(JSON.parse(line)));
  });

  it("names the seq of an edited field", async () => {
    const ls = lines();
    const i = lineOfSeq(ls, 8);
    const edited = ls[i]!.replace('"部门审批人"', '"出纳"');
    expect(edited).not.toBe(ls[i]);
    ls[i] = edited;
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({
      ok: false,
      seq: 8,
      reason: expect.stringMatching(/edited/),
    });
  });

  it("names the next seq when an entry was edited and re-hashed", async () => {
    const ls = lines();
    const i = lineOfSeq(ls, 4);
    const o = JSON.parse(ls[i]!) as Record<string, unknown> & { prevHash: string };
    o.actor = "person:intruder";
    o.hash = entryHash(o.prevHash, o as never);
    ls[i] = JSON.stringify(o);
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({ ok: false, seq: 5 });
  });

  it("names a removed, a duplicated and a reordered line", async () => {
    const removed = lines();
    removed.splice(lineOfSeq(removed, 12), 1);
    expect(await verifyText(rejoin(removed), keys.jwks)).toMatchObject({
      ok: false,
      seq: 12,
      reason: expect.stringMatching(/missing/),
    });

    const duplicated = lines();
    const d = lineOfSeq(duplicated, 3);
    duplicated.splice(d + 1, 0, duplicated[d]!);
    expect(await verifyText(rejoin(duplicated), keys.jwks)).toMatchObject({ ok: false, seq: 3 });

    const swapped = lines();
    const s = lineOfSeq(swapped, 15);
    [swapped[s], swapped[s + 1]] = [swapped[s + 1]!, swapped[s]!];
    expect(await verifyText(rejoin(swapped), keys.jwks)).toMatchObject({ ok: false, seq: 15 });
  });

  it("detects a cut-off tail and a removed last entry", async () => {
    const noHead = lines().slice(0, -1);
    expect(await verifyText(rejoin(noHead), keys.jwks)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/cut off/),
    });

    const ls = lines();
    ls.splice(lineOfSeq(ls, 25), 1);
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({ ok: false, seq: 25 });
    // Also without the checkpoint that pinned it: the signed head still knows the export went to seq 25.
    const both = lines();
    both.splice(lineOfSeq(both, 25), 2);
    expect(await verifyText(rejoin(both), keys.jwks)).toMatchObject({
      ok: false,
      seq: 25,
      reason: expect.stringMatching(/missing at the end/),
    });
  });

  it("rejects a forged checkpoint and a wrong key set", async () => {
    const other = await generateKeys(join(dir, "other-keys"));
    const ls = lines();
    const i = ls.findIndex((l) => l.includes('"type":"checkpoint"'));
    const cp = JSON.parse(ls[i]!) as { seq: number; hash: string; time: string; jws: string };
    // Signed with another key that claims our kid.
    const impostor = { ...other.audit, kid: keys.audit.kid };
    cp.jws = await signStatement(impostor, JWS_TYPES.checkpoint, {
      seq: cp.seq,
      hash: cp.hash,
      time: cp.time,
    });
    ls[i] = JSON.stringify(cp);
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({
      ok: false,
      seq: 10,
      reason: expect.stringMatching(/signature does not verify/),
    });
    expect(await verifyText(text, other.jwks)).toMatchObject({
      ok: false,
      seq: 10,
      reason: expect.stringMatching(/no key with kid/),
    });
  });

  it("detects reformatting and header edits through the signed head", async () => {
    const ls = lines();
    ls[0] = ls[0]!.replace('"filter":{}', '"filter":{"actor":"x"}');
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/head signed/),
    });
    const spaced = lines();
    const i = lineOfSeq(spaced, 2);
    spaced[i] = JSON.stringify(JSON.parse(spaced[i]!), null, 0).replace(/^\{/, "{ ");
    expect(await verifyText(rejoin(spaced), keys.jwks)).toMatchObject({ ok: false });
  });

  it("refuses a file that is not an export", async () => {
    expect(await verifyText("seq,time\n1,2\n", keys.jwks)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not an idbridge audit export/),
    });
    expect(await verifyText('{"hello":1}\n', keys.jwks)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not an idbridge audit export/),
    });
    expect(await verifyText("", keys.jwks)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/empty/),
    });
  });

  it("keeps a filtered export verifiable, bridging the gaps, and still detects tampering", async () => {
    const filtered = await exportText(store, keys, { actor: "admin:security-1" });
    const types = filtered
      .trimEnd()
      .split("\n")
      .map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types.filter((t) => t === "entry")).toHaveLength(5);
    expect(types).toContain("gap");
    expect(await verifyText(filtered, keys.jwks)).toMatchObject({
      ok: true,
      entries: 5,
      checkpoints: 3,
      toSeq: 25,
    });

    const ls = filtered.trimEnd().split("\n");
    const i = ls.findIndex((l) => l.includes('"type":"entry"'));
    ls[i] = ls[i]!.replace('"admin:security-1"', '"admin:security-2"');
    expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({ ok: false, seq: 4 });

    const noGap = filtered.trimEnd().split("\n");
    noGap.splice(
      noGap.findIndex((l) => l.includes('"type":"gap"')),
      1,
    );
    expect(await verifyText(rejoin(noGap), keys.jwks)).toMatchObject({ ok: false, seq: 1 });
  });

  it("filters by time range and action prefix", async () => {
    const byTime = await exportText(store, keys, {
      from: "2026-11-02T01:05:00.000Z",
      to: "2026-11-02T01:08:00.000Z",
    });
    const seqs = byTime
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; seq?: number })
      .filter((o) => o.type === "entry")
      .map((o) => o.seq);
    expect(seqs).toEqual([5, 6, 7]);
    const byAction = await exportText(store, keys, { action: "login.*" });
    expect(await verifyText(byAction, keys.jwks)).toMatchObject({ ok: true, entries: 10 });
  });

  it("writes RFC 4180 CSV with a BOM and neutralised formulas", async () => {
    const bytes = await exportCsvBytes(store, keys, { subject: "person:zhang-wei" });
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const csv = bytes.toString("utf8").slice(1);
    const rows = csv.split("\r\n").filter(Boolean);
    expect(rows[0]).toBe("seq,time,actor,action,subject,target,details,prevHash,hash");
    expect(rows).toHaveLength(1 + 7);
    expect(csv).toContain("部门审批人");
    // The details cell is JSON (quoted, inner quotes doubled); a cell that itself starts with = gets a quote.
    expect(csv).toContain('""note"":""=HYPERLINK(\\""x\\"")""');
  });

  it("returns a failed verdict, not a crash, for values with no canonical form", async () => {
    for (const [needle, replacement] of [
      ['"报销提交人"', '"\\ud800"'],
      ['"n":1,', '"n":1e999,'],
    ] as const) {
      const ls = lines();
      const i = lineOfSeq(ls, 2);
      const edited = ls[i]!.replace(needle, replacement);
      expect(edited).not.toBe(ls[i]);
      ls[i] = edited;
      expect(await verifyText(rejoin(ls), keys.jwks)).toMatchObject({ ok: false, seq: 2 });
    }
  });

  it("fails, never hangs or succeeds, when the output fails", async () => {
    const failing = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, callback) {
        callback(new Error("ENOSPC: no space left on device"));
      },
    });
    failing.on("error", () => undefined);
    await expect(
      exportJsonl({ store, filter: {}, out: failing, key: keys.audit, jwks: keys.jwks }),
    ).rejects.toThrow(/ENOSPC|closed/);
    const failingCsv = new Writable({ write: (_c, _e, cb) => cb(new Error("EPIPE")) });
    failingCsv.on("error", () => undefined);
    await expect(exportCsv({ store, filter: {}, out: failingCsv, jwks: keys.jwks })).rejects.toThrow(
      /EPIPE|closed/,
    );
  });

  it("waits for a slow output without piling up listeners (regression: MaxListenersExceededWarning)", async () => {
    // 3,000 entries make ~1.2 MB: about 20 chunk writes that each wait for "drain".
    const env = await freshAuditEnv();
    for (let i = 0; i < 3; i++) {
      await env.store.appendAudit((head) =>
        chainEvents(head, sampleEvents(1000), "2026-11-02T02:00:00.000Z"),
      );
    }
    let bytes = 0;
    const slow = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _enc, callback) {
        bytes += chunk.length;
        setImmediate(callback);
      },
    });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on("warning", onWarning);
    try {
      await exportJsonl({
        store: env.store,
        filter: {},
        out: slow,
        key: env.keys.audit,
        jwks: env.keys.jwks,
      });
    } finally {
      process.off("warning", onWarning);
      await env.store.close();
    }
    expect(bytes).toBeGreaterThan(1_000_000);
    expect(slow.listenerCount("close") + slow.listenerCount("drain")).toBe(0);
    expect(warnings).not.toContain("MaxListenersExceededWarning");
  });

  it("refuses to export a chain rewritten behind idbridge's back, even with fresh hashes", async () => {
    const env = await freshAuditEnv();
    await recordAll(env.store, env.keys, sampleEvents(12), 5);
    const raw = openSqlite(join(env.dir, "idbridge.db"));
    await raw.run("DROP TRIGGER audit_entries_no_update");
    // Rewrite seq 3 and re-hash everything after it, as an attacker with the database would.
    const rows = await env.store.readAudit(0, 100, 100);
    let prev = rows[1]!.hash;
    for (const r of rows.slice(2)) {
      const actor = r.seq === 3 ? "person:mallory" : r.actor;
      const hash = entryHash(prev, { ...r, actor });
      await raw.run("UPDATE audit_entries SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4", [
        actor,
        prev,
        hash,
        r.seq,
      ]);
      prev = hash;
    }
    await expect(exportText(env.store, env.keys)).rejects.toMatchObject({
      code: "AUDIT_CHAIN_BROKEN",
      message: expect.stringMatching(/checkpoint at seq 5: .*rewritten/),
    });
    // Forging the checkpoint row too needs the signing key: a self-made signature is refused.
    await raw.run("DROP TRIGGER audit_checkpoints_no_update");
    const other = await generateKeys(join(env.dir, "intruder-keys"));
    for (const cp of await env.store.listCheckpoints(1, 100)) {
      const r = (await env.store.readAudit(cp.seq - 1, cp.seq, 1))[0]!;
      const jws = await signStatement({ ...other.audit, kid: env.keys.audit.kid }, JWS_TYPES.checkpoint, {
        seq: cp.seq,
        hash: r.hash,
        time: cp.time,
      });
      await raw.run("UPDATE audit_checkpoints SET hash = $1, jws = $2 WHERE seq = $3", [r.hash, jws, cp.seq]);
    }
    await expect(exportText(env.store, env.keys)).rejects.toMatchObject({
      code: "AUDIT_CHAIN_BROKEN",
      message: expect.stringMatching(/checkpoint at seq 5: its signature is not valid/),
    });
    await raw.close();
    await env.store.close();
  });
});
