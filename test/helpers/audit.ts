import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { createInterface } from "node:readline";
import type { JSONWebKeySet } from "jose";
import { AuditLog } from "../../src/audit/log.js";
import type { AuditEvent } from "../../src/audit/chain.js";
import { exportCsv, exportJsonl } from "../../src/audit/export.js";
import type { AuditFilter } from "../../src/audit/export-format.js";
import { verifyExport, type VerifyResult } from "../../src/audit/verify.js";
import { generateKeys, type KeySet } from "../../src/keys/keys.js";
import { openStore, type Store } from "../../src/store/index.js";

/** A realistic day of audit events, with Chinese names and a formula-looking value. */
export function sampleEvents(count: number): AuditEvent[] {
  const people = ["person:zhang-wei", "person:li-na", "person:wang-fang", "person:chen-jing"];
  const actions = ["role.granted", "role.revoked", "login.succeeded", "plan.approved", "login.failed"];
  return Array.from({ length: count }, (_, i): AuditEvent => ({
    actor: i % 5 === 3 ? "admin:security-1" : "system",
    action: actions[i % actions.length] as string,
    subject: people[i % people.length] as string,
    target: i % 5 < 2 ? "hesi-main" : null,
    details:
      i % 7 === 0
        ? {
            role: "部门审批人",
            scope: ["财务部"],
            rule: "leaders-approve-their-departments",
            note: '=HYPERLINK("x")',
          }
        : { role: "报销提交人", source: "dingtalk-hq", n: i },
  }));
}

/** A fresh SQLite store and freshly generated keys in a temp dir (test-only keys, never committed). */
export async function freshAuditEnv(): Promise<{ dir: string; store: Store; keys: KeySet }> {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-audit-"));
  const store = await openStore({ url: `sqlite:${join(dir, "idbridge.db")}` });
  const keys = await generateKeys(join(dir, "keys"));
  return { dir, store, keys };
}

/** Records `events` one at a time, checkpointing every `checkpointEvery` entries. */
export async function recordAll(
  store: Store,
  keys: KeySet,
  events: AuditEvent[],
  checkpointEvery: number,
): Promise<void> {
  let tick = Date.parse("2026-11-02T01:00:00.000Z");
  const log = new AuditLog(store, keys.audit, {
    checkpointEvery,
    checkpointIntervalMs: 0,
    now: () => new Date((tick += 60_000)),
  });
  for (const event of events) await log.record(event);
  await log.close();
}

async function collect(stream: PassThrough, run: () => Promise<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  await run();
  stream.end();
  return Buffer.concat(chunks);
}

/** The JSONL export of `store` as text. */
export async function exportText(store: Store, keys: KeySet, filter: AuditFilter = {}): Promise<string> {
  const out = new PassThrough();
  return (
    await collect(out, () => exportJsonl({ store, filter, out, key: keys.audit, jwks: keys.jwks }))
  ).toString("utf8");
}

/** The CSV export of `store` as bytes. */
export async function exportCsvBytes(store: Store, keys: KeySet, filter: AuditFilter = {}): Promise<Buffer> {
  const out = new PassThrough();
  return collect(out, () => exportCsv({ store, filter, out, jwks: keys.jwks }));
}

/** Verifies export text the way the CLI does (line by line). */
export function verifyText(text: string, jwks: JSONWebKeySet): Promise<VerifyResult> {
  return verifyExport(createInterface({ input: Readable.from([text]), crlfDelay: Infinity }), jwks);
}
