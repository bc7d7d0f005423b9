/**
 * The plans, sync runs, identity review and people operations of the console and the admin API, against
 * a real SQLite store, the DingTalk simulator as the source and the 合思 simulator as the target: what a
 * security admin, an auditor, a viewer and a caller without a role may do, filters and paging, and the
 * bad input the issue names (stale hash, double approval, unknown ids, huge text, HTML in text).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Caller } from "../../src/admin/access.js";
import { MAX_NAMED_PEOPLE } from "../../src/admin/contracts.js";
import { SyncOperations } from "../../src/admin/sync-operations.js";
import { AppError } from "../../src/domain/errors.js";
import type { ReviewItem } from "../../src/identity/link.js";
import { AuditLog } from "../../src/audit/log.js";
import { openStore, type PlanRecord, type Store, type SyncRunRecord } from "../../src/store/index.js";
import { countChanges, type Plan, type PlanChange } from "../../src/sync/plan.js";
import { SyncService } from "../../src/sync/service.js";
import type { TargetConnector } from "../../src/targets/target.js";
import { hesiPolicy } from "../fixtures/sync/policies.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";
import {
  DINGTALK_ID,
  departmentPaths,
  listedPeople,
  startSyncEnv,
  type SyncEnv,
} from "../helpers/sync-env.js";

const admin: Caller = {
  actor: "person:p_admin",
  name: "安全管理员 <b>Ann</b>",
  roles: new Set(["security-admin"]),
};
const auditor: Caller = { actor: "person:p_auditor", name: "审计员", roles: new Set(["auditor"]) };
const viewer: Caller = { actor: "client:viewer-bot", name: "viewer-bot", roles: new Set(["viewer"]) };
const nobody: Caller = { actor: "person:p_nobody", name: "路人", roles: new Set() };

/** Cashiers also submit: every active cashier is named by this flag constraint. */
const SOD = `separationOfDuties:
  - { id: submit-or-pay, roles: [submitter, cashier], effect: flag }
`;

async function failure(work: Promise<unknown>): Promise<AppError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

async function expectCode(work: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  const error = await failure(work);
  expect(error.code).toBe(code);
  if (pattern !== undefined) expect(error.message).toMatch(pattern);
}

const flavours = storeFlavours();
const TIME = "2026-03-01T08:00:00.000Z";

function describeOperations(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`admin sync operations (${flavour.name})`, () => {
    let env: SyncEnv;
    let store: Store;
    let ops: SyncOperations;
    let auditLog: AuditLog;
    let planId: string;
    let plan: Plan;
    let record: PlanRecord;
    let close: () => Promise<void> = async () => undefined;
    const auditCount = async () => (await store.auditHead()).seq;
    const auditEntries = () => store.readAudit(0, Number.MAX_SAFE_INTEGER, 1_000_000);
    const planOf = async (id: string) => JSON.parse((await store.getPlan(id))!.content) as Plan;
    const personOf = async (userid: string) => (await store.findPersonByAccount(DINGTALK_ID, userid))!;
    const runsOf = async (id: string) =>
      (await ops.listSyncRuns(viewer, { limit: 200 })).items.filter((r) => r.planId === id);

    beforeAll(async () => {
      env = await startSyncEnv({
        people: 80,
        target: { kind: "hesi" },
        policies: { "hesi-main.yaml": hesiPolicy({ guardrails: SOD }) },
      });
      let sync = env.sync;
      let audit = env.audit;
      store = env.store;
      if (flavour.name === "postgres") {
        // The same sources, target and config over a fresh PostgreSQL database.
        const pg = await openStore({ url: await flavour.freshUrl() });
        store = pg;
        audit = new AuditLog(pg, env.keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
        sync = new SyncService({ config: env.config, store: pg, audit, holder: "test" });
        const pgAudit = audit;
        close = async () => {
          await pgAudit.close();
          await pg.close();
        };
      }
      ops = new SyncOperations({ config: env.config, store, sync, audit });
      auditLog = audit;
      record = await sync.plan(env.targetId);
      planId = record.id;
      plan = await planOf(planId);
    });
    afterAll(async () => {
      await close();
      await env?.close();
    });

    it("refuses every operation to a caller without the permission, and records nothing", async () => {
      const before = await auditCount();
      const decision = { decision: "approve" as const, comment: "ok", hash: record.hash };
      const link = { kind: "ignore" as const, account: `${DINGTALK_ID}:x`, comment: "test" };
      await expectCode(
        ops.listPlans(nobody, {}),
        "ACCESS_DENIED",
        /路人 \(no console role\) may not sync\.read/,
      );
      await expectCode(ops.getPlan(nobody, planId, {}), "ACCESS_DENIED");
      await expectCode(ops.listSyncRuns(nobody, {}), "ACCESS_DENIED");
      await expectCode(ops.reviewQueue(nobody), "ACCESS_DENIED");
      await expectCode(ops.searchPeople(nobody, {}), "ACCESS_DENIED");
      await expectCode(ops.getPerson(nobody, "p_1"), "ACCESS_DENIED");
      for (const caller of [nobody, auditor, viewer]) {
        await expectCode(ops.decidePlan(caller, planId, decision), "ACCESS_DENIED", /may not sync\.decide/);
        await expectCode(ops.applyPlan(caller, planId), "ACCESS_DENIED");
        await expectCode(ops.decideLink(caller, link), "ACCESS_DENIED");
      }
      expect(await auditCount()).toBe(before);
      expect((await store.getPlan(planId))!.status).toBe("pending");
      expect(await store.listLinkDecisions()).toEqual([]);
      // Reading is every role's.
      expect((await ops.listPlans(viewer, {})).items.map((p) => p.id)).toContain(planId);
    });

    it("shows a plan with counts, its content without the change list, and outcomes", async () => {
      const view = await ops.getPlan(auditor, planId, { limit: 200 });
      expect(view.plan.id).toBe(planId);
      expect(view.plan).not.toHaveProperty("content");
      expect(view.content).not.toHaveProperty("changes");
      expect(view.content.sod.length).toBeGreaterThan(0);
      expect(view.counts.all).toEqual(countChanges(plan));
      expect(view.counts.matching).toBe(plan.changes.length);
      expect(view.changes.items.every((c) => c.outcome === null)).toBe(true);
      expect(view.outcomes).toEqual({
        applied: 0,
        noop: 0,
        failed: 0,
        notAttempted: plan.changes.length,
        failures: [],
      });
    });

    it("filters changes by kind, person, role, flag and free text", async () => {
      const keys = async (query: Parameters<SyncOperations["getPlan"]>[2]) => {
        const view = await ops.getPlan(viewer, planId, { ...query, limit: 200 });
        expect(view.counts.matching).toBe(view.changes.items.length);
        return view.changes.items.map((c) => c.change.key);
      };
      const of = (keep: (c: PlanChange) => boolean) => plan.changes.filter(keep).map((c) => c.key);
      const grants = of((c) => c.kind === "grant");
      expect(grants.length).toBeGreaterThan(0);
      expect(await keys({ kinds: ["grant"] })).toEqual(grants);
      expect(await keys({ kinds: ["grant", "create-user"] })).toEqual(
        of((c) => c.kind === "grant" || c.kind === "create-user"),
      );

      const cashierGrant = plan.changes.find((c) => c.kind === "grant" && c.role === "cashier")!;
      const person = (cashierGrant as { person: string }).person;
      expect(await keys({ person })).toEqual(of((c) => "person" in c && c.person === person));
      expect(await keys({ role: "cashier" })).toEqual(of((c) => "role" in c && c.role === "cashier"));

      // Case-insensitive over roles and lineage: the role key, its rule's id in the lineage.
      expect(await keys({ text: "CASHIER" })).toEqual(of((c) => "role" in c && c.role === "cashier"));
      // A person's name (Chinese) finds their changes.
      const name = (cashierGrant as { name: string }).name;
      expect(await keys({ text: name })).toEqual(of((c) => "name" in c && c.name.includes(name)));
      // A department path finds the approver grants scoped to it and the department itself.
      const finance = await keys({ text: "财务部", kinds: ["create-department"] });
      expect(finance).toEqual(of((c) => c.kind === "create-department" && c.path.includes("财务部")));
      expect(finance.length).toBeGreaterThan(0);

      const sodPeople = new Set(plan.sod.map((s) => s.person));
      expect(await keys({ flagged: true })).toEqual(
        of((c) => (c.kind === "grant" && c.sensitive) || ("person" in c && sodPeople.has(c.person))),
      );
      expect(await keys({ text: "<script>alert(1)</script>" })).toEqual([]);
      expect(await keys({ kinds: ["grant"], role: "cashier", text: "nobody-matches-this" })).toEqual([]);
    });

    it("groups changes per person or per role, each group in apply order", async () => {
      const order = async (groupBy: "person" | "role") => {
        const out: PlanChange[] = [];
        let cursor: string | undefined;
        do {
          const view = await ops.getPlan(viewer, planId, {
            groupBy,
            limit: 200,
            ...(cursor ? { cursor } : {}),
          });
          out.push(...view.changes.items.map((c) => c.change));
          cursor = view.changes.next ?? undefined;
        } while (cursor !== undefined);
        return out;
      };
      const byPerson = await order("person");
      expect(byPerson.map((c) => c.key).sort()).toEqual(plan.changes.map((c) => c.key).sort());
      // Each person's changes are together, in the plan's order, and changes of no person come last.
      const runs = byPerson
        .map((c) => ("person" in c ? c.person : ""))
        .filter((p, i, all) => p !== all[i - 1]);
      expect(new Set(runs).size).toBe(runs.length);
      expect(runs[runs.length - 1]).toBe("");
      for (const person of runs.filter((p) => p !== ""))
        expect(byPerson.filter((c) => "person" in c && c.person === person).map((c) => c.key)).toEqual(
          plan.changes.filter((c) => "person" in c && c.person === person).map((c) => c.key),
        );
      const roles = (await order("role")).filter((c) => "role" in c).map((c) => (c as { role: string }).role);
      expect(roles).toEqual([...roles].sort());
      await expectCode(
        ops.getPlan(viewer, planId, { groupBy: "department" as "role" }),
        "INPUT_INVALID",
        /groupBy must be person or role/,
      );
    });

    it("pages a plan's changes with an opaque cursor, each change once", async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const view = await ops.getPlan(viewer, planId, { limit: 7, ...(cursor ? { cursor } : {}) });
        expect(view.changes.items.length).toBeLessThanOrEqual(7);
        seen.push(...view.changes.items.map((c) => c.change.key));
        cursor = view.changes.next ?? undefined;
        pages += 1;
      } while (cursor !== undefined);
      expect(seen).toEqual(plan.changes.map((c) => c.key));
      expect(pages).toBe(Math.ceil(plan.changes.length / 7));
    });

    it("refuses bad queries with INPUT_INVALID and unknown plans with NOT_FOUND", async () => {
      await expectCode(
        ops.getPlan(viewer, planId, { text: "x".repeat(201) }),
        "INPUT_INVALID",
        /at most 200/,
      );
      expect((await ops.getPlan(viewer, planId, { text: "x".repeat(200) })).counts.matching).toBe(0);
      for (const limit of [0, 201, 1.5, -1])
        await expectCode(ops.getPlan(viewer, planId, { limit }), "INPUT_INVALID", /limit must be/);
      const forged = Buffer.from(JSON.stringify({ at: "x" })).toString("base64url");
      for (const cursor of ["!!not-base64!!", "e30", forged, "x".repeat(2000)])
        await expectCode(ops.getPlan(viewer, planId, { cursor }), "INPUT_INVALID", /cursor/);
      await expectCode(ops.listPlans(viewer, { cursor: forged }), "INPUT_INVALID", /cursor/);
      await expectCode(
        ops.listPlans(viewer, { status: "<b>done</b>" as "applied" }),
        "INPUT_INVALID",
        /unknown plan status "<b>done<\/b>"/,
      );
      await expectCode(
        ops.getPlan(viewer, planId, { kinds: ["grant", "delete-everything" as "grant"] }),
        "INPUT_INVALID",
        /unknown change kind "delete-everything"/,
      );
      await expectCode(ops.getPlan(viewer, "plan_unknown", {}), "NOT_FOUND", /no plan "plan_unknown"/);
      await expectCode(ops.getPlan(viewer, "p".repeat(5000), {}), "INPUT_INVALID");
    });

    it("lists plans newest first in pages, filtered by status and target", async () => {
      const at = "2026-01-01T00:00:00.000Z";
      const ids = ["plan_a1", "plan_a2", "plan_a3", "plan_a4", "plan_a5"];
      // Same creation time: the id orders them, and a page boundary between equals loses none.
      for (const id of ids)
        await store.insertPlan({ ...record, id, target: "paging-target", createdAt: at, updatedAt: at });
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await ops.listPlans(viewer, {
          target: "paging-target",
          limit: 2,
          ...(cursor ? { cursor } : {}),
        });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((p) => p.id));
        cursor = page.next ?? undefined;
      } while (cursor !== undefined);
      // Each insert supersedes the pending plan before it (one pending plan per target).
      expect(seen).toEqual([...ids].reverse());
      expect(
        (await ops.listPlans(viewer, { target: "paging-target", status: "pending" })).items.map((p) => p.id),
      ).toEqual(["plan_a5"]);
      const all = await ops.listPlans(viewer, { limit: 200 });
      expect(all.items[0]!.id).toBe(planId); // created now, after 2026-01-01
      expect(all.next).toBeNull();
    });

    it("lists sync runs newest first in pages, filtered by target", async () => {
      const run = (n: number, target: string): SyncRunRecord => ({
        id: `run_${String(n).padStart(2, "0")}`,
        target,
        trigger: "schedule",
        startedAt: `2026-02-0${1 + (n % 3)}T00:00:00.000Z`,
        finishedAt: null,
        status: "failed",
        planId: null,
        summary: { error: "<b>DingTalk</b> said no" },
      });
      const runs = Array.from({ length: 9 }, (_, n) => run(n, n % 2 === 0 ? "hesi-main" : "other"));
      for (const r of runs) await store.insertSyncRun(r);
      const collect = async (target?: string) => {
        const out: SyncRunRecord[] = [];
        let cursor: string | undefined;
        do {
          const page = await ops.listSyncRuns(auditor, {
            limit: 2,
            ...(target ? { target } : {}),
            ...(cursor ? { cursor } : {}),
          });
          out.push(...page.items);
          cursor = page.next ?? undefined;
        } while (cursor !== undefined);
        return out;
      };
      const newestFirst = (list: SyncRunRecord[]) =>
        [...list]
          .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id))
          .map((r) => r.id);
      expect((await collect()).map((r) => r.id)).toEqual(newestFirst(runs));
      expect((await collect("hesi-main")).map((r) => r.id)).toEqual(
        newestFirst(runs.filter((r) => r.target === "hesi-main")),
      );
      expect((await collect())[0]!.summary).toEqual({ error: "<b>DingTalk</b> said no" });
    });

    it("finds people by name, employee number, email and account, in pages", async () => {
      const listed = [...listedPeople(env.org).values()];
      const people = await store.listPeople();
      const someone = listed.find((p) => p.status === "active")!;
      const byName = await ops.searchPeople(viewer, { text: someone.name });
      expect(byName.items.map((p) => p.name).every((n) => n.includes(someone.name))).toBe(true);
      const mine = byName.items.find((p) => p.accounts.includes(`${DINGTALK_ID}:${someone.userid}`))!;
      expect(mine).toEqual({
        id: (await personOf(someone.userid)).id,
        name: someone.name,
        employeeNo: someone.jobNumber,
        email: someone.email,
        status: "active",
        accounts: [`${DINGTALK_ID}:${someone.userid}`],
      });
      for (const text of [someone.jobNumber, someone.email.toUpperCase(), `${DINGTALK_ID}:${someone.userid}`])
        expect((await ops.searchPeople(viewer, { text })).items.map((p) => p.id)).toContain(mine.id);
      expect((await ops.searchPeople(viewer, { text: "<img src=x onerror=alert(1)>" })).items).toEqual([]);
      await expectCode(ops.searchPeople(viewer, { text: "张".repeat(201) }), "INPUT_INVALID");

      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await ops.searchPeople(viewer, { limit: 13, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((p) => p.id));
        cursor = page.next ?? undefined;
      } while (cursor !== undefined);
      expect([...seen].sort()).toEqual(people.map((p) => p.id).sort());
    });

    it("names people by id in one call, leaving unknown ids out, and only for audit readers", async () => {
      const listed = (await ops.searchPeople(viewer, { limit: 3 })).items;
      const names = await ops.peopleNames(auditor, [...listed.map((p) => p.id), listed[0]!.id, "p_nobody"]);
      expect(names).toEqual(new Map(listed.map((p) => [p.id, p.name])));
      await expectCode(ops.peopleNames(nobody, [listed[0]!.id]), "ACCESS_DENIED");
      const tooMany = Array.from({ length: MAX_NAMED_PEOPLE + 1 }, (_, i) => `p_${i}`);
      await expectCode(ops.peopleNames(viewer, tooMany), "INPUT_INVALID");
    });

    it("refuses a decision without a comment or with a stale hash, recording nothing", async () => {
      const before = await auditCount();
      for (const comment of ["", "   ", "x".repeat(2001)])
        await expectCode(
          ops.decidePlan(admin, planId, { decision: "approve", comment, hash: record.hash }),
          "INPUT_INVALID",
          /comment/,
        );
      await expectCode(
        ops.decidePlan(admin, planId, { decision: "approve", comment: "ok", hash: "0".repeat(64) }),
        "PLAN_STALE",
        /the plan changed since you opened it/,
      );
      await expectCode(
        ops.decidePlan(admin, "plan_unknown", { decision: "approve", comment: "ok", hash: record.hash }),
        "NOT_FOUND",
      );
      expect(await auditCount()).toBe(before);
      expect((await store.getPlan(planId))!.status).toBe("pending");
    });

    it("shows a person's desired roles with lineage before anything is applied, none held", async () => {
      const grant = plan.changes.find((c) => c.kind === "grant" && c.role === "cashier") as Extract<
        PlanChange,
        { kind: "grant" }
      >;
      const view = await ops.getPerson(viewer, grant.person);
      const cashier = view.roles.find((r) => r.role === "cashier")!;
      expect(cashier).toMatchObject({
        target: "hesi-main",
        targetRole: "出纳",
        desired: true,
        held: false,
        sensitive: true,
      });
      expect(cashier.why).toEqual([expect.stringMatching(/^rule cashiers: /)]);
      expect(view.explain["hesi-main"]).toContain("+ 出纳 — rule cashiers:");
      expect(view.accounts[0]).toMatchObject({ sourceId: DINGTALK_ID, name: grant.name, status: "active" });
      await expectCode(ops.getPerson(viewer, "p_nobody"), "NOT_FOUND", /no person "p_nobody"/);
    });

    it("applying a pending plan is refused; two approvals at once record one decision", async () => {
      await expectCode(ops.applyPlan(admin, planId), "PLAN_STATE", /needs approval/);
      // Nothing was attempted, so no run is recorded for the refusal.
      expect(await runsOf(planId)).toEqual([]);
      const comment = "  <script>alert('x')</script> reviewed the cashier grants  ";
      const input = { decision: "approve" as const, comment, hash: record.hash };
      const results = await Promise.allSettled([
        ops.decidePlan(admin, planId, input),
        ops.decidePlan(admin, planId, input),
      ]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(AppError);
      expect((lost[0]!.reason as AppError).code).toBe("PLAN_STATE");
      expect((lost[0]!.reason as AppError).message).toMatch(
        /is approved \(approved by 安全管理员 <b>Ann<\/b>\)/,
      );
      // Returned and stored as data, unescaped: escaping is the page's.
      expect(won[0]!.value.decision).toMatchObject({
        kind: "approved",
        by: "安全管理员 <b>Ann</b>",
        comment: "<script>alert('x')</script> reviewed the cashier grants",
      });
      const entries = (await auditEntries()).filter(
        (e) => e.subject === planId && e.action === "plan.approved",
      );
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        actor: "person:p_admin",
        details: {
          hash: record.hash,
          by: "安全管理员 <b>Ann</b>",
          comment: "<script>alert('x')</script> reviewed the cashier grants",
        },
      });
    });

    it("applies an approved plan once, audited with the caller, and the person then holds the roles", async () => {
      const result = await ops.applyPlan(admin, planId);
      expect(result.plan.status).toBe("applied");
      expect(result.failed).toBe(0);
      expect(result.applied + result.noop).toBe(plan.changes.length);
      expect(result.plan).not.toHaveProperty("content");
      const applied = (await auditEntries()).filter(
        (e) => e.subject === planId && e.action === "plan.applied",
      );
      expect(applied.map((e) => e.actor)).toEqual(["person:p_admin"]);
      await expectCode(ops.applyPlan(admin, planId), "PLAN_STATE", /applied already/);

      // The apply is a sync run in the history: trigger api, who applied, the counts; once.
      const runs = await runsOf(planId);
      expect(runs).toHaveLength(1);
      expect(result.run).toEqual(runs[0]);
      const [run] = runs;
      expect(run).toMatchObject({ target: "hesi-main", trigger: "api", status: "applied", planId });
      expect(run!.finishedAt).not.toBeNull();
      expect(run!.finishedAt! >= run!.startedAt).toBe(true);
      expect(run!.summary).toMatchObject({
        actor: "person:p_admin",
        plan: { changes: plan.changes.length },
        apply: { applied: result.applied, failed: 0, failures: [] },
      });
      const apply = run!.summary.apply as Record<string, number>;
      expect(apply.observed! + apply.skipped!).toBe(result.noop);
      expect(run!.summary.durationMs).toEqual(expect.any(Number));

      const view = await ops.getPlan(viewer, planId, { kinds: ["grant"], limit: 5 });
      expect(view.changes.items.every((c) => c.outcome?.status === "applied")).toBe(true);
      // Counted over the whole plan, whatever the filter and page: what the apply reported.
      expect(view.outcomes).toEqual({
        applied: result.applied,
        noop: result.noop,
        failed: 0,
        notAttempted: 0,
        failures: [],
      });

      const grant = plan.changes.find((c) => c.kind === "grant" && c.role === "cashier") as Extract<
        PlanChange,
        { kind: "grant" }
      >;
      const person = await ops.getPerson(viewer, grant.person);
      const granted = plan.changes.filter(
        (c): c is Extract<PlanChange, { kind: "grant" }> => c.kind === "grant" && c.person === grant.person,
      );
      expect(
        person.roles.map((r) => ({ role: r.role, scope: r.scope ?? "", held: r.held, desired: r.desired })),
      ).toEqual(
        granted
          .map((g) => ({ role: g.role, scope: g.scopeLabel, held: true, desired: true }))
          .sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : a.scope < b.scope ? -1 : 1)),
      );

      // Without the cashiers rule, the role is still held (granted, not yet revoked) but no longer desired.
      const policy = hesiPolicy({ guardrails: SOD });
      const withoutCashiers = policy.replace(/ {2}- id: cashiers\n.*\n {4}grant: cashier\n/, "");
      expect(withoutCashiers).not.toBe(policy);
      env.writePolicy("hesi-main.yaml", withoutCashiers);
      try {
        const after = await ops.getPerson(viewer, grant.person);
        expect(after.roles.find((r) => r.role === "cashier")).toEqual({
          target: "hesi-main",
          role: "cashier",
          targetRole: "出纳",
          held: true,
          desired: false,
          sensitive: true,
          why: [],
        });
        expect(after.explain["hesi-main"]).not.toContain("rule cashiers");
      } finally {
        env.writePolicy("hesi-main.yaml", policy);
      }
    });

    it("records a failed apply (a stale plan, the target down) as a failed api run with its cause", async () => {
      const someone = plan.changes.find((c) => c.kind === "grant") as Extract<PlanChange, { kind: "grant" }>;
      // An approved plan that disables a 合思 user nobody has: the target no longer matches it.
      const stale: Plan = {
        ...plan,
        id: `plan_stale_${flavour.name}`,
        changes: [
          {
            kind: "disable-user",
            key: `disable-user:${someone.person}`,
            person: someone.person,
            name: someone.name,
            targetId: "staff-that-is-gone",
            reason: "left",
          },
        ],
      };
      const at = new Date().toISOString();
      await store.insertPlan({
        ...record,
        id: stale.id,
        content: JSON.stringify(stale),
        status: "approved",
        decision: { kind: "approved", by: "someone", at },
        createdAt: at,
        updatedAt: at,
      });
      await expectCode(ops.applyPlan(admin, stale.id), "PLAN_STALE", /staff-that-is-gone/);
      const [staleRun, ...more] = await runsOf(stale.id);
      expect(more).toEqual([]);
      expect(staleRun).toMatchObject({
        trigger: "api",
        status: "failed",
        planId: stale.id,
        summary: {
          actor: "person:p_admin",
          errorCode: "PLAN_STALE",
          error: expect.stringMatching(/changed since plan .* staff-that-is-gone/),
        },
      });
      expect(staleRun!.finishedAt).not.toBeNull();
      // Back to approved: nothing was written, it may be tried again.
      expect((await store.getPlan(stale.id))!.status).toBe("approved");

      // The same plan against a 合思 that does not answer.
      const down = new SyncService({
        config: env.config,
        store,
        audit: auditLog,
        holder: "test-down",
        openTarget: async (entry) =>
          ({
            id: entry.id,
            readState: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:9")),
          }) as unknown as TargetConnector,
      });
      const downOps = new SyncOperations({ config: env.config, store, sync: down, audit: auditLog });
      await expectCode(downOps.applyPlan(admin, stale.id), "TARGET_UNAVAILABLE", /ECONNREFUSED/);
      const failed = await runsOf(stale.id);
      expect(failed).toHaveLength(2);
      expect(failed.find((r) => r.id !== staleRun!.id)).toMatchObject({
        trigger: "api",
        status: "failed",
        summary: { errorCode: "TARGET_UNAVAILABLE", error: expect.stringMatching(/ECONNREFUSED/) },
      });
    });

    it("counts a plan's failed changes with their causes in its outcomes", async () => {
      const id = `plan_stale_${flavour.name}`;
      const [change] = (await planOf(id)).changes;
      const failure = { code: "TARGET_REJECTED", message: "合思: 员工不存在 <b>x</b>" };
      await store.recordPlanItems(id, [{ key: change!.key, status: "failed", failure, at: TIME }], () => []);
      const view = await ops.getPlan(viewer, id, { kinds: ["grant"] });
      expect(view.counts.matching).toBe(0);
      expect(view.outcomes).toEqual({
        applied: 0,
        noop: 0,
        failed: 1,
        notAttempted: 0,
        failures: [{ key: change!.key, ...failure }],
      });
    });

    it("answers the review queue with each account's facts from its source and the candidates' summaries", async () => {
      const listed = [...listedPeople(env.org).values()].filter((p) => p.status === "active");
      const [someone, other] = [listed[3]!, listed[4]!];
      const [candidate, gone] = [await personOf(other.userid), "p_gone_since"];
      await store.setReviewQueue([
        {
          id: "r_facts",
          accounts: [{ sourceId: DINGTALK_ID, subject: someone.userid }],
          candidates: [gone, candidate.id],
          reasons: [{ code: "rules-disagree", message: "the rules link it to different people" }],
          evidence: [],
        },
      ]);
      const [item] = await ops.reviewQueue(viewer);
      const paths = departmentPaths(env.org);
      expect(item!.accounts).toEqual([
        {
          sourceId: DINGTALK_ID,
          subject: someone.userid,
          listed: true,
          name: someone.name,
          username: someone.userid,
          status: "active",
          departments: someone.departments.map((d) => paths.get(d)),
          email: someone.email,
          employeeNo: someone.jobNumber,
          title: someone.title,
        },
      ]);
      // A candidate gone since is left out; the others are summarised as a people search shows them.
      const [summary] = (await ops.searchPeople(viewer, { text: other.jobNumber })).items;
      expect(item!.candidatePeople).toEqual([
        { ...summary, departments: other.departments.map((d) => paths.get(d)) },
      ]);
      expect(item!.candidates).toEqual([gone, candidate.id]);
      await store.setReviewQueue([]);
    });

    it("shows the review queue and records link decisions with the caller as actor", async () => {
      const [first, second] = await store.listPeople();
      const stray = { sourceId: DINGTALK_ID, subject: "stray-account" };
      const item: ReviewItem = {
        id: "r_test",
        accounts: [stray],
        candidates: [first!.id, second!.id],
        reasons: [{ code: "several-candidates", message: "rule email matches 2 people" }],
        evidence: [],
      };
      await store.setReviewQueue([item]);
      const [view, ...others] = await ops.reviewQueue(auditor);
      expect(others).toEqual([]);
      // The item as stored, each account with what its source's kept read says (this one: nothing).
      expect(view).toEqual({
        ...item,
        accounts: [{ ...stray, listed: false }],
        candidatePeople: [
          expect.objectContaining({ id: first!.id }),
          expect.objectContaining({ id: second!.id }),
        ],
      });
      expect((await ops.getPerson(viewer, first!.id)).reviews).toEqual([item]);

      const account = `${DINGTALK_ID}:stray-account`;
      const before = await auditCount();
      await expectCode(
        ops.decideLink(admin, { kind: "link", account, personId: first!.id, comment: " " }),
        "INPUT_INVALID",
      );
      await expectCode(
        ops.decideLink(admin, { kind: "link", account, personId: "p_missing", comment: "same email" }),
        "INPUT_INVALID",
        /no person "p_missing"/,
      );
      await expectCode(
        ops.decideLink(admin, { kind: "ignore", account: "nosuch-source:x", comment: "test account" }),
        "INPUT_INVALID",
        /no source "nosuch-source"/,
      );
      await expectCode(
        ops.decideLink(admin, { kind: "ignore", account: "no-colon", comment: "test account" }),
        "INPUT_INVALID",
        /SOURCE:SUBJECT/,
      );
      expect(await auditCount()).toBe(before);

      await ops.decideLink(admin, {
        kind: "link",
        account,
        personId: first!.id,
        comment: "same email, checked with HR",
      });
      expect(await store.listLinkDecisions()).toEqual([
        expect.objectContaining({
          kind: "link",
          account: stray,
          personId: first!.id,
          by: admin.name,
          comment: "same email, checked with HR",
        }),
      ]);
      const [entry] = (await auditEntries()).slice(before);
      expect(entry).toMatchObject({
        actor: "person:p_admin",
        action: "identity.linked",
        subject: first!.id,
        details: { account, personId: first!.id, comment: "same email, checked with HR", by: admin.name },
      });
      expect(await auditCount()).toBe(before + 1);
    });

    it("search follows a person's accounts as they change between searches", async () => {
      const [person] = await store.listPeople();
      const account = `${DINGTALK_ID}:moved-here-${flavour.name}`;
      expect((await ops.searchPeople(viewer, { text: account })).items).toEqual([]);
      await store.savePeople([
        {
          ...person!,
          accounts: [
            ...person!.accounts,
            { sourceId: DINGTALK_ID, subject: `moved-here-${flavour.name}`, rule: "manual", linkedAt: TIME },
          ],
        },
      ]);
      const found = await ops.searchPeople(viewer, { text: account });
      expect(found.items.map((p) => [p.id, p.accounts.includes(account)])).toEqual([[person!.id, true]]);
      await store.savePeople([person!]);
      expect((await ops.searchPeople(viewer, { text: account })).items).toEqual([]);
    });
  });
}

describeOperations(flavours.sqlite);
describeOperations(flavours.postgres);
