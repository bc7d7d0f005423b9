/**
 * The auditors' operations (src/admin/audit-operations.ts) on SQLite and on a real PostgreSQL server:
 * search with filters and paging, input checks, permission refusals, exports that verify, holders at a
 * past time, "why" with the approval, and the access review.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { JSONWebKeySet } from "jose";
import type { Caller, AdminRole } from "../../src/admin/access.js";
import { AuditOperations } from "../../src/admin/audit-operations.js";
import { chainEvents, type AuditEvent } from "../../src/audit/chain.js";
import { matchesFilter } from "../../src/audit/export-format.js";
import { AuditLog } from "../../src/audit/log.js";
import type { Config } from "../../src/config/load.js";
import { AppError } from "../../src/domain/errors.js";
import { generateKeys, type KeySet } from "../../src/keys/keys.js";
import { policySchema, type Policy } from "../../src/policy/schema.js";
import { openStore, type AuditRecord, type AuditSearch, type Store } from "../../src/store/index.js";
import { verifyText } from "../helpers/audit.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

const { sqlite, postgres } = storeFlavours();
const T0 = Date.parse("2026-11-02T01:00:00.000Z");
const MINUTE = 60_000;
const at = (minutes: number): string => new Date(T0 + minutes * MINUTE).toISOString();

let keys: KeySet;
let keysDir: string;
beforeAll(async () => {
  keysDir = mkdtempSync(join(tmpdir(), "idbridge-admin-audit-"));
  keys = await generateKeys(join(keysDir, "keys"));
});
afterAll(() => rmSync(keysDir, { recursive: true, force: true }));

const caller = (...roles: AdminRole[]): Caller => ({
  actor: `person:${roles[0] ?? "nobody"}-1`,
  name: roles[0] ?? "nobody",
  roles: new Set(roles),
});
const AUDITOR = caller("auditor");
const VIEWER = caller("viewer");
const ADMIN = caller("security-admin");

const POLICY: Policy = {
  ...policySchema.parse({
    version: 1,
    target: "hesi-main",
    roles: {
      cashier: { targetRole: "出纳" },
      "finance-director": { targetRole: "财务总监", sensitive: true },
      approver: { targetRole: "部门审批人", scope: "department" },
    },
    guardrails: {},
  }),
  file: "test: policy",
};

interface Env {
  store: Store;
  log: AuditLog;
  ops: AuditOperations;
  /** Records events one after the other, a minute apart each (minute n of the test clock). */
  record(...events: AuditEvent[]): Promise<AuditRecord[]>;
}

async function env(flavour: Flavour): Promise<Env> {
  const store = await openStore({ url: await flavour.freshUrl(), poolSize: 2 });
  let minute = 0;
  const log = new AuditLog(store, keys.audit, {
    checkpointEvery: 5,
    checkpointIntervalMs: 0,
    now: () => new Date(T0 + ++minute * MINUTE),
  });
  const config = {
    targets: [{ id: "hesi-main" }, { id: "scim-hr" }],
    policiesDir: keysDir,
  } as unknown as Config;
  const ops = new AuditOperations({
    config,
    store,
    audit: log,
    keys,
    policies: () => [POLICY],
    now: () => new Date("2026-11-28T10:00:30.000Z"),
  });
  onTestFinished(async () => {
    await log.close();
    await store.close();
  });
  return {
    store,
    log,
    ops,
    record: async (...events) => {
      const records: AuditRecord[] = [];
      for (const event of events) records.push(await log.record(event));
      return records;
    },
  };
}

const grant = (
  person: string,
  role: string,
  target = "hesi-main",
  extra: Record<string, unknown> = {},
): AuditEvent => ({
  actor: "system",
  action: "role.granted",
  subject: person,
  target,
  details: {
    plan: "plan_1",
    role,
    targetRole: role,
    scope: "",
    name: `名字 ${person}`,
    sensitive: false,
    ...extra,
  } as never,
});
const revoke = (person: string, role: string, target = "hesi-main"): AuditEvent => ({
  actor: "system",
  action: "role.revoked",
  subject: person,
  target,
  details: { plan: "plan_2", role, targetRole: role, scope: "" },
});

/** A varied log: grants, revokes, sign-ins of several people, plan decisions, in two targets. */
function variedEvents(count: number): AuditEvent[] {
  return Array.from({ length: count }, (_, i): AuditEvent => {
    const person = `p${i % 6}`;
    switch (i % 5) {
      case 0:
        return grant(person, i % 2 === 0 ? "cashier" : "approver", i % 3 === 0 ? "scim-hr" : "hesi-main");
      case 1:
        return revoke(person, "cashier");
      case 2:
        return { actor: `person:${person}`, action: "login.succeeded", subject: person, details: { n: i } };
      case 3:
        return {
          actor: "person:admin-1",
          action: "plan.approved",
          subject: `plan_${i}`,
          target: "hesi-main",
        };
      default:
        return { actor: `person:${person}`, action: "login.failed", subject: person, details: { n: i } };
    }
  });
}

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error("expected a refusal");
}

async function all(store: Store): Promise<AuditRecord[]> {
  const head = await store.auditHead();
  return store.readAudit(0, head.seq, head.seq + 1);
}

async function exportedEntries(store: Store): Promise<AuditRecord[]> {
  return store.searchAudit({ action: "audit.exported" }, null, 100);
}

describe.each([sqlite, postgres])("admin audit operations on $name", (flavour) => {
  it.skipIf(!flavour.available)(
    "finds entries by actor, action, action prefix, subject, target and time, newest first",
    async () => {
      const e = await env(flavour);
      await e.record(...variedEvents(60));
      const entries = await all(e.store);
      const filters: (AuditSearch & { target?: string })[] = [
        { actor: "person:p1" },
        { action: "role.granted" },
        { action: "role.*" },
        { action: "login.*", subject: "p2" },
        { subject: "p3" },
        { target: "scim-hr" },
        { target: "hesi-main", action: "role.*" },
        { from: at(10), to: at(20) },
        { from: "2026-11-02T09:20+08:00", action: "plan.approved" },
      ];
      for (const filter of filters) {
        const page = await e.ops.searchAudit(AUDITOR, { ...filter, limit: 200 });
        const expected = entries
          .filter(
            (r) => matchesFilter(r, filter) && (filter.target === undefined || r.target === filter.target),
          )
          .map((r) => r.seq)
          .reverse();
        expect(expected.length, JSON.stringify(filter)).toBeGreaterThan(0);
        expect(
          page.items.map((r) => r.seq),
          JSON.stringify(filter),
        ).toEqual(expected);
        expect(page.next).toBeNull();
      }
    },
  );

  it.skipIf(!flavour.available)(
    "pages without duplicates or misses while new entries are appended",
    async () => {
      const e = await env(flavour);
      await e.record(...variedEvents(50));
      const before = (await all(e.store)).filter((r) => r.action.startsWith("role.")).map((r) => r.seq);
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await e.ops.searchAudit(AUDITOR, {
          action: "role.*",
          limit: 7,
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page.items.map((r) => r.seq));
        cursor = page.next ?? undefined;
        pages += 1;
        // Newer entries arrive between pages: they belong before the first page, never inside a later one.
        await e.record(grant(`new-${pages}`, "cashier"), revoke(`new-${pages}`, "cashier"));
      } while (cursor !== undefined);
      expect(pages).toBe(Math.ceil(before.length / 7));
      expect(seen).toEqual([...before].reverse());
    },
  );

  it.skipIf(!flavour.available)("refuses bad input with INPUT_INVALID and clear messages", async () => {
    const e = await env(flavour);
    const refusal = async (query: object): Promise<string> => {
      try {
        await e.ops.searchAudit(AUDITOR, query as never);
      } catch (err) {
        expect(err).toBeInstanceOf(AppError);
        expect((err as AppError).code).toBe("INPUT_INVALID");
        return (err as AppError).message;
      }
      throw new Error("expected INPUT_INVALID");
    };
    expect(await refusal({ actorr: "x" })).toMatch(/unknown search field "actorr"/);
    expect(await refusal({ from: "yesterday" })).toMatch(/from "yesterday" is not an ISO 8601 time/);
    expect(await refusal({ to: "2026-13-01" })).toMatch(/to .* is not an ISO 8601 time/);
    expect(await refusal({ from: "2026-11-02T10:00Z", to: "2026-11-01T10:00Z" })).toMatch(
      /from .* is after to/,
    );
    expect(await refusal({ subject: "x".repeat(201) })).toMatch(/subject is longer than 200 characters/);
    expect(await refusal({ limit: 0 })).toMatch(/limit must be a whole number from 1 to 200/);
    expect(await refusal({ limit: 201 })).toMatch(/limit/);
    expect(await refusal({ limit: 2.5 })).toMatch(/limit/);
    expect(await refusal({ cursor: "abc" })).toMatch(/cursor/);
    expect(await refusal({ action: "role*.granted" })).toMatch(/only at its end/);
    expect(await refusal({ actor: 42 })).toMatch(/actor must be text/);
    await expect(e.ops.exportAudit(AUDITOR, { target: "x" } as never, "jsonl")).rejects.toMatchObject({
      code: "INPUT_INVALID",
    });
    await expect(e.ops.exportAudit(AUDITOR, {}, "xml" as never)).rejects.toMatchObject({
      code: "INPUT_INVALID",
    });
    await expect(e.ops.roleHolders(AUDITOR, "hesi-main", "cashier", "soon")).rejects.toMatchObject({
      code: "INPUT_INVALID",
    });
    // Nothing was exported on the way.
    expect(await exportedEntries(e.store)).toEqual([]);
  });

  it.skipIf(!flavour.available)(
    "treats HTML in search text as data: matched exactly, returned unchanged",
    async () => {
      const e = await env(flavour);
      const script = "<script>alert('x')</script>";
      await e.record(
        { actor: script, action: "login.failed", subject: "p1" },
        { actor: "system", action: "x.y" },
      );
      expect((await e.ops.searchAudit(AUDITOR, { actor: script })).items.map((r) => r.actor)).toEqual([
        script,
      ]);
      expect((await e.ops.searchAudit(AUDITOR, { subject: "<b>p1</b>" })).items).toEqual([]);
    },
  );

  it.skipIf(!flavour.available)("refuses callers without the permission before doing anything", async () => {
    const e = await env(flavour);
    await e.record(grant("p1", "finance-director"));
    await expect(e.ops.exportAudit(VIEWER, {}, "jsonl")).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    await expect(e.ops.exportAudit(ADMIN, {}, "csv")).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    await expect(e.ops.accessReviewCsv(VIEWER)).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    expect(await codeOf(e.ops.searchAudit(caller(), {}))).toBe("ACCESS_DENIED");
    expect(await codeOf(e.ops.roleHolders(caller(), "hesi-main", "cashier"))).toBe("ACCESS_DENIED");
    expect(await codeOf(e.ops.explainHolding(caller(), "p1", "hesi-main", "cashier"))).toBe("ACCESS_DENIED");
    expect(await codeOf(e.ops.accessReview(caller()))).toBe("ACCESS_DENIED");
    expect(await codeOf(e.ops.auditJwks(caller()))).toBe("ACCESS_DENIED");
    // A viewer still reads.
    expect((await e.ops.searchAudit(VIEWER, {})).items).toHaveLength(1);
    expect(await exportedEntries(e.store)).toEqual([]);
  });

  it.skipIf(!flavour.available)(
    "exports JSONL that verifies with the audit JWKS, and records the export first",
    async () => {
      const e = await env(flavour);
      await e.record(...variedEvents(23));
      const download = await e.ops.exportAudit(AUDITOR, { action: "role.*" }, "jsonl");
      expect(download.fileName).toBe("idbridge-audit-2026-11-28T10-00Z.jsonl");
      expect(download.contentType).toMatch(/^application\/x-ndjson/);
      const exported = await text(download.body);
      const jwks = (await e.ops.auditJwks(VIEWER)) as JSONWebKeySet;
      expect(jwks.keys.map((k) => k.kid)).toEqual([keys.audit.kid]);
      const verdict = await verifyText(exported, jwks);
      expect(verdict).toMatchObject({ ok: true, toSeq: 24 });
      // The export's own evidence is in the log, with who, the format and the filter.
      const [evidence] = await exportedEntries(e.store);
      expect(evidence).toMatchObject({
        seq: 24,
        actor: AUDITOR.actor,
        details: { kind: "audit", format: "jsonl", filter: { action: "role.*" } },
      });
      // A tampered copy does not verify.
      const tampered = exported.replace('"role":"cashier"', '"role":"finance-director"');
      expect(tampered).not.toBe(exported);
      expect(await verifyText(tampered, jwks)).toMatchObject({ ok: false });
    },
  );

  it.skipIf(!flavour.available)(
    "stops an export quietly when the download is abandoned, and the log stays usable",
    async () => {
      const e = await env(flavour);
      // Enough entries (about 300 KB of export) that the export is still writing when the reader goes away.
      await e.store.appendAudit((head) => chainEvents(head, variedEvents(1000), at(0)));
      const download = await e.ops.exportAudit(AUDITOR, {}, "jsonl");
      const first = await new Promise<Buffer>((resolve) => download.body.once("data", resolve));
      expect(first.toString("utf8")).toMatch(/^\{"createdAt"/);
      expect(first.length).toBeLessThan(150_000);
      download.body.destroy();
      await new Promise((resolve) => setImmediate(resolve));
      const again = await e.ops.exportAudit(AUDITOR, {}, "jsonl");
      expect(await verifyText(await text(again.body), keys.jwks)).toMatchObject({ ok: true, toSeq: 1002 });
      expect(await exportedEntries(e.store)).toHaveLength(2);
    },
  );

  it.skipIf(!flavour.available)("exports CSV with a BOM and formula cells neutralised", async () => {
    const e = await env(flavour);
    await e.record({ actor: '=HYPERLINK("x")', action: "login.failed", subject: "p1" });
    const download = await e.ops.exportAudit(AUDITOR, { action: "login.*" }, "csv");
    expect(download.fileName).toBe("idbridge-audit-2026-11-28T10-00Z.csv");
    const csv = await text(download.body);
    expect(csv.startsWith("\ufeffseq,time,actor,action")).toBe(true);
    expect(csv).toContain(`"'=HYPERLINK(""x"")"`);
    expect(await exportedEntries(e.store)).toHaveLength(1);
  });

  it.skipIf(!flavour.available)("tells who held a role at a past time and who holds it now", async () => {
    const e = await env(flavour);
    // The log's clock ticks a minute per entry (and per checkpoint): ask at the times entries got.
    const [g1] = await e.record(grant("p1", "cashier"));
    await e.record(grant("p2", "cashier"), grant("p3", "approver", "hesi-main", { scope: "财务部" }));
    const [other] = await e.record(grant("p4", "cashier", "scim-hr"));
    await e.record(revoke("p1", "cashier"));
    const [g5] = await e.record(grant("p5", "cashier"));
    await e.record({ actor: "system", action: "target.user.disabled", subject: "p2", target: "hesi-main" });
    const names = async (when?: string): Promise<string[]> =>
      (await e.ops.roleHolders(AUDITOR, "hesi-main", "cashier", when)).map((h) => h.personId);
    expect(await names(other!.time)).toEqual(["p1", "p2"]);
    expect(await names(g5!.time)).toEqual(["p2", "p5"]);
    expect(await names()).toEqual(["p5"]);
    expect(await names(at(0))).toEqual([]);
    const [p1] = await e.ops.roleHolders(AUDITOR, "hesi-main", "cashier", g1!.time);
    expect(p1).toEqual({
      personId: "p1",
      name: "名字 p1",
      target: "hesi-main",
      role: "cashier",
      targetRole: "cashier",
      since: g1!.time,
      grantSeq: g1!.seq,
      sensitive: false,
    });
    expect((await e.ops.roleHolders(AUDITOR, "hesi-main", "cashier"))[0]?.grantSeq).toBe(g5!.seq);
    expect(await e.ops.roleHolders(AUDITOR, "hesi-main", "approver")).toMatchObject([
      { personId: "p3", scope: "财务部" },
    ]);
  });

  it.skipIf(!flavour.available)(
    "explains a holding with its lineage, plan and approval, oldest first",
    async () => {
      const e = await env(flavour);
      await e.record(grant("p1", "cashier", "hesi-main", { plan: "plan_0" }), revoke("p1", "cashier"));
      const [approved] = await e.record({
        actor: "person:admin-1",
        action: "plan.approved",
        subject: "plan_7",
        target: "hesi-main",
        details: { hash: "h", comment: "季度复核，同意" },
      });
      const lineage = [
        { rule: "finance-cashiers", facts: ["member of 财务部 in dingtalk-hq", "title 出纳 in dingtalk-hq"] },
      ];
      const [inForce] = await e.record(grant("p1", "cashier", "hesi-main", { plan: "plan_7", lineage }));
      await e.record(grant("p1", "approver"), grant("p2", "cashier"));
      const why = await e.ops.explainHolding(AUDITOR, "p1", "hesi-main", "cashier");
      expect(why.holder).toMatchObject({ personId: "p1", grantSeq: inForce!.seq });
      expect(why.lineage).toEqual([
        "rule finance-cashiers: member of 财务部 in dingtalk-hq, title 出纳 in dingtalk-hq",
      ]);
      expect(why.approval).toEqual({
        plan: "plan_7",
        by: "person:admin-1",
        at: approved!.time,
        comment: "季度复核，同意",
      });
      expect(why.entries.map((r) => `${r.seq} ${r.action}`)).toEqual([
        "1 role.granted",
        "2 role.revoked",
        `${approved!.seq} plan.approved`,
        `${inForce!.seq} role.granted`,
      ]);
      // Asked about a time it did not hold the role: no holder, and the grant it had before explains.
      const then = await e.ops.explainHolding(AUDITOR, "p1", "hesi-main", "cashier", at(2));
      expect(then.holder).toBeNull();
      expect(then.approval).toBeNull();
      expect(then.entries.map((r) => r.action)).toEqual(["role.granted", "role.revoked"]);
    },
  );

  it.skipIf(!flavour.available)(
    "lists every holder of a sensitive role and downloads the review as audited CSV",
    async () => {
      const e = await env(flavour);
      await e.record(
        grant("p1", "finance-director"), // sensitive by the policy
        grant("p2", "cashier", "scim-hr", { sensitive: true, name: "=cmd|' /C calc'!A0" }), // by the grant
        grant("p3", "cashier"), // not sensitive
        grant("p4", "finance-director"),
        revoke("p4", "finance-director"),
      );
      const review = await e.ops.accessReview(AUDITOR);
      expect(review.map((h) => `${h.target}/${h.role}/${h.personId}`)).toEqual([
        "hesi-main/finance-director/p1",
        "scim-hr/cashier/p2",
      ]);
      expect(review.every((h) => h.sensitive)).toBe(true);
      expect((await e.ops.accessReview(VIEWER, "scim-hr")).map((h) => h.personId)).toEqual(["p2"]);
      const download = await e.ops.accessReviewCsv(AUDITOR);
      expect(download.fileName).toBe("idbridge-access-review-2026-11-28T10-00Z.csv");
      const csv = await text(download.body);
      expect(csv.split("\r\n")[0]).toBe(
        "\ufefftarget,role,targetRole,scope,personId,name,since,grantSeq,sensitive",
      );
      expect(csv).toContain("hesi-main,finance-director,finance-director,,p1,名字 p1,");
      expect(csv).toContain("'=cmd|' /C calc'!A0");
      expect(await exportedEntries(e.store)).toMatchObject([
        { actor: AUDITOR.actor, details: { kind: "access-review", format: "csv", count: 2 } },
      ]);
    },
  );
});
