/**
 * Conformance of the identity and sync state (people, link decisions, review queue, snapshots, target
 * links, plans, plan items, sync runs, leases): the same cases on SQLite and on a real PostgreSQL server.
 */
import { setTimeout } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import { chainEvents, GENESIS_HASH, linkProblem } from "../../src/audit/chain.js";
import type { LinkDecision, ReviewItem } from "../../src/identity/link.js";
import type { Person } from "../../src/identity/person.js";
import {
  openStore,
  type PlanItemRecord,
  type PlanRecord,
  type Store,
  type SyncRunRecord,
  type TargetLink,
} from "../../src/store/index.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

const { sqlite, postgres } = storeFlavours();
const TIME = "2026-03-01T08:00:00.000Z";
const ALL = 1_000_000;

function person(id: string, n: number): Person {
  return {
    id,
    accounts: [
      { sourceId: "ad-hq", subject: `guid-${n}`, rule: "created", linkedAt: TIME },
      { sourceId: "dingtalk-hq", subject: `ding-${n}`, rule: "employee-no", linkedAt: TIME },
    ],
  };
}

function plan(
  id: string,
  target: string,
  createdAt: string,
  status: PlanRecord["status"] = "pending",
): PlanRecord {
  return {
    id,
    target,
    createdAt,
    hash: "a".repeat(64),
    status,
    needsApproval: true,
    summary: { creates: 2, guardrails: ["many-disables"] },
    content: JSON.stringify({ changes: [{ key: "user:p_1", kind: "create" }], note: "计划" }),
    decision: null,
    updatedAt: createdAt,
  };
}

/** Audit entries for plan items, one per item, like the sync's apply makes them. */
function itemAudit(planId: string) {
  return (head: { seq: number; hash: string }, fresh: readonly PlanItemRecord[]) =>
    chainEvents(
      head,
      fresh.map((item) => ({
        actor: "system",
        action: `change.${item.status}`,
        subject: item.key,
        target: "hesi-main",
        details: { plan: planId },
      })),
      TIME,
    );
}

function describeSyncConformance(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`store identity and sync conformance (${flavour.name})`, () => {
    async function open(url: string): Promise<Store> {
      const store = await openStore({ url, poolSize: 4 });
      onTestFinished(() => store.close());
      return store;
    }
    async function openFresh(): Promise<{ url: string; store: Store }> {
      const url = await flavour.freshUrl();
      return { url, store: await open(url) };
    }

    describe("people", () => {
      it("upserts people by id and lists them sorted by id, accounts exactly as saved", async () => {
        const { store } = await openFresh();
        expect(await store.listPeople()).toEqual([]);
        await store.savePeople([person("p_b", 2), person("p_a", 1)]);
        const renamed: Person = {
          id: "p_b",
          accounts: [{ sourceId: "wecom-hq", subject: "张伟", rule: "manual", linkedAt: TIME }],
        };
        await store.savePeople([renamed, person("p_c", 3)]);
        expect(await store.listPeople()).toStrictEqual([person("p_a", 1), renamed, person("p_c", 3)]);
      });

      it("keeps the last of two people with the same id in one call", async () => {
        const { store } = await openFresh();
        await store.savePeople([person("p_a", 1), person("p_a", 2)]);
        expect(await store.listPeople()).toStrictEqual([person("p_a", 2)]);
      });

      it("saves 100,000 people with two accounts each in one call", async () => {
        const { store } = await openFresh();
        const people = Array.from({ length: 100_000 }, (_, i) =>
          person(`p_${String(i).padStart(6, "0")}`, i),
        );
        const started = performance.now();
        await store.savePeople(people);
        const insertMs = performance.now() - started;
        // And again: every row an update, as on a sync run where nothing changed.
        const again = performance.now();
        await store.savePeople(people);
        const updateMs = performance.now() - again;
        console.log(
          `savePeople 100k (${flavour.name}): insert ${Math.round(insertMs)} ms, update ${Math.round(updateMs)} ms`,
        );
        const stored = await store.listPeople();
        expect(stored).toHaveLength(100_000);
        expect(stored[0]).toStrictEqual(people[0]);
        expect(stored[99_999]).toStrictEqual(people[99_999]);
        expect(insertMs).toBeLessThan(30_000);
      }, 120_000);
    });

    // ---------------------------------------------------------------- sign-in: person by account
    describe("person by account (sign-in)", () => {
      it("finds the person of each account, and nobody for an account no one has", async () => {
        const { store } = await openFresh();
        await store.savePeople([person("p_a", 1), person("p_b", 2)]);
        expect(await store.findPersonByAccount("ad-hq", "guid-1")).toStrictEqual(person("p_a", 1));
        expect(await store.findPersonByAccount("dingtalk-hq", "ding-2")).toStrictEqual(person("p_b", 2));
        expect(await store.findPersonByAccount("dingtalk-hq", "guid-1")).toBeNull();
        expect(await store.findPersonByAccount("ad-hq", "guid-3")).toBeNull();
      });

      it("gets one person by id, and null for an unknown id", async () => {
        const { store } = await openFresh();
        await store.savePeople([person("p_a", 1), person("p_b", 2)]);
        expect(await store.getPerson("p_b")).toStrictEqual(person("p_b", 2));
        expect(await store.getPerson("p_c")).toBeNull();
      });

      it("lists when each kept snapshot was taken, sorted by source, following replacements", async () => {
        const { store } = await openFresh();
        expect(await store.listLatestSnapshotTimes()).toEqual([]);
        await store.putLatestSnapshot("wecom-hq", "{}", "2026-03-01T08:00:00.000Z");
        await store.putLatestSnapshot("ad-hq", "{}", "2026-03-01T07:00:00.000Z");
        await store.putLatestSnapshot("wecom-hq", "{}", "2026-03-02T08:00:00.000Z");
        expect(await store.listLatestSnapshotTimes()).toEqual([
          { sourceId: "ad-hq", takenAt: "2026-03-01T07:00:00.000Z" },
          { sourceId: "wecom-hq", takenAt: "2026-03-02T08:00:00.000Z" },
        ]);
      });

      it("follows accounts that move between people, in one call or in two", async () => {
        const { store } = await openFresh();
        await store.savePeople([person("p_a", 1), person("p_b", 2)]);
        const moved = person("p_a", 1).accounts[1]!;
        // One call: p_a loses its DingTalk account to p_b.
        await store.savePeople([
          { id: "p_a", accounts: [person("p_a", 1).accounts[0]!] },
          { id: "p_b", accounts: [person("p_b", 2).accounts[0]!, moved] },
        ]);
        expect((await store.findPersonByAccount("dingtalk-hq", "ding-1"))?.id).toBe("p_b");
        expect(await store.findPersonByAccount("dingtalk-hq", "ding-2")).toBeNull();
        // Two calls: p_c takes it first, p_b is saved without it after.
        await store.savePeople([{ id: "p_c", accounts: [moved] }]);
        expect((await store.findPersonByAccount("dingtalk-hq", "ding-1"))?.id).toBe("p_c");
        await store.savePeople([{ id: "p_b", accounts: [person("p_b", 2).accounts[0]!] }]);
        expect((await store.findPersonByAccount("dingtalk-hq", "ding-1"))?.id).toBe("p_c");
        expect((await store.findPersonByAccount("ad-hq", "guid-2"))?.id).toBe("p_b");
      });

      it("indexes the people stored before the index existed when the store is upgraded", async () => {
        const { url, store } = await openFresh();
        await store.savePeople([person("p_a", 1), person("p_b", 2)]);
        // Back to schema 5: the index, the later migrations' indexes and their records gone, the people
        // left as they were (the store migrates from the highest version recorded).
        const raw = flavour.openRaw(url);
        await raw.run("DROP TABLE person_accounts");
        for (const column of ["time", "actor", "action", "subject", "target"])
          await raw.run(`DROP INDEX audit_entries_${column}`);
        await raw.run("DELETE FROM idbridge_migrations WHERE version >= 6");
        await raw.close();
        const upgraded = await open(url);
        expect((await upgraded.findPersonByAccount("dingtalk-hq", "ding-2"))?.id).toBe("p_b");
        expect((await upgraded.findPersonByAccount("ad-hq", "guid-1"))?.id).toBe("p_a");
      });
    });

    it("appends link decisions and lists them oldest first", async () => {
      const { store } = await openFresh();
      const decisions: LinkDecision[] = [
        {
          kind: "link",
          account: { sourceId: "wecom-hq", subject: "zhangwei" },
          personId: "p_1",
          by: "alice",
          at: TIME,
          comment: "同一人",
        },
        { kind: "ignore", account: { sourceId: "ad-hq", subject: "guid-test" }, by: "bob", at: TIME },
        {
          kind: "unlink",
          account: { sourceId: "wecom-hq", subject: "zhangwei" },
          personId: "p_1",
          by: "alice",
          at: TIME,
        },
      ];
      for (const d of decisions)
        await store.addLinkDecision(d, (head) =>
          chainEvents(head, [{ actor: `cli:${d.by}`, action: `identity.${d.kind}`, details: {} }], TIME),
        );
      expect(await store.listLinkDecisions()).toStrictEqual(decisions);
      // Each decision came with its audit entry, in the same order.
      const audit = await store.readAudit(0, 100, 100);
      expect(audit.map((r) => r.action)).toEqual(decisions.map((d) => `identity.${d.kind}`));
    });

    it("stores neither the decision nor its audit entry when building the entry fails", async () => {
      const { store } = await openFresh();
      const decision: LinkDecision = {
        kind: "ignore",
        account: { sourceId: "ad-hq", subject: "guid-test" },
        by: "bob",
        at: TIME,
      };
      await expect(
        store.addLinkDecision(decision, () => {
          throw new Error("audit entry could not be built");
        }),
      ).rejects.toThrow("audit entry could not be built");
      expect(await store.listLinkDecisions()).toEqual([]);
      expect((await store.auditHead()).seq).toBe(0);
    });

    it("replaces the whole review queue and keeps its order", async () => {
      const { store } = await openFresh();
      const item = (id: string): ReviewItem => ({
        id,
        accounts: [{ sourceId: "wecom-hq", subject: `${id}-w` }],
        candidates: ["p_1", "p_2"],
        reasons: [{ code: "several-candidates", message: "两个候选人" }],
        evidence: [
          {
            rule: "username",
            account: { sourceId: "wecom-hq", subject: `${id}-w` },
            matched: { sourceId: "ad-hq", subject: "g1" },
            value: "zhangwei",
          },
        ],
      });
      expect(await store.getReviewQueue()).toEqual([]);
      await store.setReviewQueue([item("r_c"), item("r_a"), item("r_b")]);
      expect((await store.getReviewQueue()).map((i) => i.id)).toEqual(["r_c", "r_a", "r_b"]);
      await store.setReviewQueue([item("r_d")]);
      expect(await store.getReviewQueue()).toStrictEqual([item("r_d")]);
      await store.setReviewQueue([]);
      expect(await store.getReviewQueue()).toEqual([]);
    });

    it("keeps one latest snapshot per source, tens of megabytes included", async () => {
      const { store } = await openFresh();
      expect(await store.getLatestSnapshot("ad-hq")).toBeNull();
      const big = JSON.stringify({ people: "张".repeat(4_000_000), tail: "x".repeat(10_000_000) });
      await store.putLatestSnapshot("ad-hq", '{"old":true}', TIME);
      await store.putLatestSnapshot("ad-hq", big, "2026-03-02T08:00:00.000Z");
      await store.putLatestSnapshot("wecom-hq", "{}", TIME);
      const got = await store.getLatestSnapshot("ad-hq");
      expect(got?.takenAt).toBe("2026-03-02T08:00:00.000Z");
      expect(got?.json.length).toBe(big.length);
      expect(got?.json === big).toBe(true);
      expect(await store.getLatestSnapshot("wecom-hq")).toEqual({ json: "{}", takenAt: TIME });
    }, 60_000);

    it("keeps target links per target, replacing by kind and key", async () => {
      const { store } = await openFresh();
      const link = (kind: TargetLink["kind"], key: string, id: string): TargetLink => ({
        kind,
        key,
        targetRecordId: id,
        linkedAt: TIME,
      });
      await store.saveTargetLinks("hesi-main", [
        link("user", "p_2", "staff-2"),
        link("user", "p_1", "staff-1"),
        link("department", "ad-hq:finance", "dept-9"),
      ]);
      await store.saveTargetLinks("hesi-other", [link("user", "p_1", "other-1")]);
      await store.saveTargetLinks("hesi-main", [
        link("user", "p_2", "staff-2b"),
        link("role", "p_2", "role-1"),
      ]);
      expect(await store.listTargetLinks("hesi-main")).toStrictEqual([
        link("department", "ad-hq:finance", "dept-9"),
        link("role", "p_2", "role-1"),
        link("user", "p_1", "staff-1"),
        link("user", "p_2", "staff-2b"),
      ]);
      expect(await store.listTargetLinks("hesi-other")).toStrictEqual([link("user", "p_1", "other-1")]);
      expect(await store.listTargetLinks("nowhere")).toEqual([]);
    });

    it("gets one target link by target, kind and key, and null for any other", async () => {
      const { store } = await openFresh();
      const link: TargetLink = { kind: "user", key: "p_1", targetRecordId: "corp1:s1", linkedAt: TIME };
      await store.saveTargetLinks("hesi-main", [link, { ...link, kind: "role", targetRecordId: "role-1" }]);
      await store.saveTargetLinks("hesi-other", [{ ...link, targetRecordId: "corp2:s9" }]);
      expect(await store.getTargetLink("hesi-main", "user", "p_1")).toStrictEqual(link);
      expect(await store.getTargetLink("hesi-other", "user", "p_1")).toStrictEqual({
        ...link,
        targetRecordId: "corp2:s9",
      });
      expect(await store.getTargetLink("hesi-main", "department", "p_1")).toBeNull();
      expect(await store.getTargetLink("hesi-main", "user", "p_2")).toBeNull();
      expect(await store.getTargetLink("nowhere", "user", "p_1")).toBeNull();
    });

    it("saves 50,000 target links in one call", async () => {
      const { store } = await openFresh();
      const links = Array.from({ length: 50_000 }, (_, i) => ({
        kind: "user" as const,
        key: `p_${String(i).padStart(6, "0")}`,
        targetRecordId: `staff-${i}`,
        linkedAt: TIME,
      }));
      await store.saveTargetLinks("hesi-main", links);
      expect(await store.listTargetLinks("hesi-main")).toStrictEqual(links);
    }, 60_000);

    describe("plans", () => {
      it("stores a plan exactly and returns null for an unknown id", async () => {
        const { store } = await openFresh();
        const p = plan("plan_1", "hesi-main", TIME);
        expect(await store.insertPlan(p)).toEqual([]);
        expect(await store.getPlan("plan_1")).toStrictEqual(p);
        expect(await store.getPlan("plan_unknown")).toBeNull();
      });

      it("a new plan supersedes the target's pending and approved plans, and only those", async () => {
        const { store } = await openFresh();
        await store.insertPlan(plan("plan_pending", "hesi-main", "2026-03-01T01:00:00.000Z"));
        await store.insertPlan(plan("plan_other", "hesi-other", "2026-03-01T01:00:00.000Z"));
        // Inserted one at a time: each insert supersedes the one before.
        expect(
          await store.insertPlan(plan("plan_approved", "hesi-main", "2026-03-01T02:00:00.000Z", "approved")),
        ).toEqual(["plan_pending"]);
        await store
          .insertPlan(plan("plan_pending_2", "hesi-main", "2026-03-01T02:30:00.000Z"))
          .then((ids) => expect(ids).toEqual(["plan_approved"]));
        expect(await store.transitionPlan("plan_pending_2", ["pending"], "applying", TIME)).not.toBeNull();

        const superseded = await store.insertPlan(plan("plan_new", "hesi-main", "2026-03-01T03:00:00.000Z"));
        expect(superseded).toEqual([]);
        const statuses = Object.fromEntries(
          (await store.listPlans({ limit: 100 })).map((p) => [p.id, p.status]),
        );
        expect(statuses).toEqual({
          plan_pending: "superseded",
          plan_approved: "superseded",
          plan_pending_2: "applying",
          plan_other: "pending",
          plan_new: "pending",
        });
        expect((await store.getPlan("plan_pending"))?.updatedAt).toBe("2026-03-01T02:00:00.000Z");
      });

      it("lists plans newest first without content, filtered by target and status, up to the limit", async () => {
        const { store } = await openFresh();
        await store.insertPlan(plan("plan_a", "hesi-main", "2026-03-01T01:00:00.000Z", "applied"));
        await store.insertPlan(plan("plan_b", "hesi-other", "2026-03-01T02:00:00.000Z"));
        await store.insertPlan(plan("plan_c", "hesi-main", "2026-03-01T03:00:00.000Z", "empty"));
        await store.insertPlan(plan("plan_d", "hesi-main", "2026-03-01T04:00:00.000Z"));
        const ids = async (filter: Parameters<Store["listPlans"]>[0]) =>
          (await store.listPlans(filter)).map((p) => p.id);
        expect(await ids({ limit: 10 })).toEqual(["plan_d", "plan_c", "plan_b", "plan_a"]);
        expect(await ids({ limit: 2 })).toEqual(["plan_d", "plan_c"]);
        expect(await ids({ target: "hesi-main", limit: 10 })).toEqual(["plan_d", "plan_c", "plan_a"]);
        expect(await ids({ target: "hesi-main", statuses: ["applied", "empty"], limit: 10 })).toEqual([
          "plan_c",
          "plan_a",
        ]);
        expect(await ids({ statuses: [], limit: 10 })).toEqual([]);
        const [listing] = await store.listPlans({ target: "hesi-other", limit: 1 });
        expect(listing).not.toHaveProperty("content");
        const { content: _content, ...rest } = plan("plan_b", "hesi-other", "2026-03-01T02:00:00.000Z");
        expect(listing).toStrictEqual(rest);
      });

      it("pages plans and sync runs after a position, ties in time broken by id, filters kept", async () => {
        const { store } = await openFresh();
        const early = "2026-03-01T01:00:00.000Z";
        const late = "2026-03-01T02:00:00.000Z";
        // Distinct targets, so no insert supersedes another.
        for (const [id, at] of [
          ["plan_a", early],
          ["plan_b", late],
          ["plan_c", late],
          ["plan_d", late],
        ] as const)
          await store.insertPlan(plan(id, `t-${id}`, at, "applied"));
        const planIds = async (filter: Parameters<Store["listPlans"]>[0]) =>
          (await store.listPlans(filter)).map((p) => p.id);
        expect(await planIds({ limit: 10, before: { at: late, id: "plan_c" } })).toEqual([
          "plan_b",
          "plan_a",
        ]);
        expect(await planIds({ limit: 1, before: { at: late, id: "plan_b" } })).toEqual(["plan_a"]);
        expect(await planIds({ limit: 10, before: { at: early, id: "plan_a" } })).toEqual([]);
        expect(await planIds({ limit: 10, target: "t-plan_d", before: { at: late, id: "plan_c" } })).toEqual(
          [],
        );
        expect(
          await planIds({
            limit: 10,
            statuses: ["applied"],
            before: { at: "2026-03-01T03:00:00.000Z", id: "" },
          }),
        ).toEqual(["plan_d", "plan_c", "plan_b", "plan_a"]);

        const run = (id: string, target: string, startedAt: string): SyncRunRecord => ({
          id,
          target,
          trigger: "schedule",
          startedAt,
          finishedAt: null,
          status: "running",
          planId: null,
          summary: {},
        });
        await store.insertSyncRun(run("run_1", "hesi-main", early));
        await store.insertSyncRun(run("run_2", "hesi-main", late));
        await store.insertSyncRun(run("run_3", "hesi-other", late));
        await store.insertSyncRun(run("run_4", "hesi-main", late));
        const runIds = async (filter: Parameters<Store["listSyncRuns"]>[0]) =>
          (await store.listSyncRuns(filter)).map((r) => r.id);
        expect(await runIds({ limit: 10, before: { at: late, id: "run_4" } })).toEqual([
          "run_3",
          "run_2",
          "run_1",
        ]);
        expect(await runIds({ limit: 10, target: "hesi-main", before: { at: late, id: "run_4" } })).toEqual([
          "run_2",
          "run_1",
        ]);
        expect(await runIds({ limit: 1, before: { at: late, id: "run_2" } })).toEqual(["run_1"]);
      });

      it("transitions a plan only from the expected statuses, setting the decision", async () => {
        const { store } = await openFresh();
        await store.insertPlan(plan("plan_1", "hesi-main", TIME));
        const decision = {
          kind: "approved" as const,
          by: "alice",
          at: "2026-03-01T09:00:00.000Z",
          comment: "ok",
        };
        expect(await store.transitionPlan("plan_1", ["approved"], "applying", TIME)).toBeNull();
        expect(await store.transitionPlan("plan_1", [], "approved", TIME)).toBeNull();
        expect(await store.transitionPlan("plan_unknown", ["pending"], "approved", TIME)).toBeNull();
        const approved = await store.transitionPlan(
          "plan_1",
          ["pending"],
          "approved",
          "2026-03-01T09:00:00.000Z",
          decision,
        );
        expect(approved).toStrictEqual({
          ...plan("plan_1", "hesi-main", TIME),
          status: "approved",
          decision,
          updatedAt: "2026-03-01T09:00:00.000Z",
        });
        // A later move without a decision keeps the one made.
        const applying = await store.transitionPlan(
          "plan_1",
          ["approved"],
          "applying",
          "2026-03-01T09:01:00.000Z",
        );
        expect(applying).toMatchObject({ status: "applying", decision });
        expect(await store.getPlan("plan_1")).toStrictEqual(applying);
      });

      it("of two concurrent approvals from two store instances, exactly one wins", async () => {
        const { url, store } = await openFresh();
        const other = await open(url);
        for (let round = 0; round < 10; round++) {
          const id = `plan_${round}`;
          await store.insertPlan(plan(id, `target-${round}`, TIME));
          const approve = (s: Store, by: string) =>
            s.transitionPlan(id, ["pending"], "approved", TIME, { kind: "approved", by, at: TIME });
          const results = await Promise.all([approve(store, "alice"), approve(other, "bob")]);
          const winners = results.filter((r) => r !== null);
          expect(winners).toHaveLength(1);
          expect((await store.getPlan(id))?.decision?.by).toBe(winners[0]?.decision?.by);
        }
      });
    });

    describe("plan items", () => {
      const applied = (key: string): PlanItemRecord => ({
        key,
        status: "applied",
        targetRecordId: `staff-${key}`,
        at: TIME,
      });

      it("records an applied item and its audit entry once, however often it is recorded", async () => {
        const { store } = await openFresh();
        const seen: (readonly PlanItemRecord[])[] = [];
        const build = (head: { seq: number; hash: string }, fresh: readonly PlanItemRecord[]) => {
          seen.push(fresh);
          return itemAudit("plan_1")(head, fresh);
        };
        expect(await store.recordPlanItems("plan_1", [applied("user:p_1")], build)).toStrictEqual([
          applied("user:p_1"),
        ]);
        expect(await store.recordPlanItems("plan_1", [applied("user:p_1")], build)).toEqual([]);
        const noop: PlanItemRecord = { key: "user:p_2", status: "noop", at: TIME };
        expect(await store.recordPlanItems("plan_1", [applied("user:p_1"), noop], build)).toStrictEqual([
          noop,
        ]);
        expect(seen).toEqual([[applied("user:p_1")], [noop]]);
        const audit = await store.readAudit(0, ALL, ALL);
        expect(audit.map((r) => [r.action, r.subject])).toEqual([
          ["change.applied", "user:p_1"],
          ["change.noop", "user:p_2"],
        ]);
        expect(linkProblem(audit[0]!, GENESIS_HASH)).toBeNull();
        expect(linkProblem(audit[1]!, audit[0]!.hash)).toBeNull();
        expect(await store.listPlanItems("plan_1")).toStrictEqual([applied("user:p_1"), noop]);
      });

      it("a failed item recorded and later applied gives two audit entries and ends applied", async () => {
        const { store } = await openFresh();
        const failed: PlanItemRecord = {
          key: "user:p_1",
          status: "failed",
          failure: { code: "TARGET_REJECTED", message: "手机号已存在" },
          at: TIME,
        };
        expect(await store.recordPlanItems("plan_1", [failed], itemAudit("plan_1"))).toStrictEqual([failed]);
        expect(await store.listPlanItems("plan_1")).toStrictEqual([failed]);
        expect(
          await store.recordPlanItems("plan_1", [applied("user:p_1")], itemAudit("plan_1")),
        ).toStrictEqual([applied("user:p_1")]);
        expect(await store.listPlanItems("plan_1")).toStrictEqual([applied("user:p_1")]);
        expect((await store.readAudit(0, ALL, ALL)).map((r) => r.action)).toEqual([
          "change.failed",
          "change.applied",
        ]);
        // Items are per plan: the same key in another plan is another item.
        expect(
          await store.recordPlanItems("plan_2", [applied("user:p_1")], itemAudit("plan_2")),
        ).toHaveLength(1);
        expect(await store.listPlanItems("plan_1")).toStrictEqual([applied("user:p_1")]);
      });

      it("records neither items nor audit entries when the builder throws", async () => {
        const { store } = await openFresh();
        await expect(
          store.recordPlanItems("plan_1", [applied("user:p_1")], () => {
            throw new Error("builder failed");
          }),
        ).rejects.toThrow("builder failed");
        expect(await store.listPlanItems("plan_1")).toEqual([]);
        expect(await store.auditHead()).toEqual({ seq: 0, hash: GENESIS_HASH });
      });

      it("two instances recording the same items at once audit each item exactly once", async () => {
        const { url, store } = await openFresh();
        const other = await open(url);
        const items = Array.from({ length: 50 }, (_, i) => applied(`user:p_${i}`));
        const [one, two] = await Promise.all([
          store.recordPlanItems("plan_1", items, itemAudit("plan_1")),
          other.recordPlanItems("plan_1", items, itemAudit("plan_1")),
        ]);
        expect(one.length + two.length).toBe(50);
        const audit = await store.readAudit(0, ALL, ALL);
        expect(audit.map((r) => r.subject).sort()).toEqual(items.map((i) => i.key).sort());
      });
    });

    it("records, updates and lists sync runs newest first", async () => {
      const { store } = await openFresh();
      const run = (id: string, target: string, startedAt: string): SyncRunRecord => ({
        id,
        target,
        trigger: "schedule",
        startedAt,
        finishedAt: null,
        status: "running",
        planId: null,
        summary: {},
      });
      await store.insertSyncRun(run("run_1", "hesi-main", "2026-03-01T01:00:00.000Z"));
      await store.insertSyncRun(run("run_2", "hesi-other", "2026-03-01T02:00:00.000Z"));
      await store.insertSyncRun(run("run_3", "hesi-main", "2026-03-01T03:00:00.000Z"));
      const finished: SyncRunRecord = {
        ...run("run_1", "hesi-main", "2026-03-01T01:00:00.000Z"),
        finishedAt: "2026-03-01T01:05:00.000Z",
        status: "needs-approval",
        planId: "plan_1",
        summary: { sources: { "ad-hq": { complete: true } }, creates: 3 },
      };
      await store.updateSyncRun(finished);
      expect(await store.listSyncRuns({ limit: 10 })).toStrictEqual([
        run("run_3", "hesi-main", "2026-03-01T03:00:00.000Z"),
        run("run_2", "hesi-other", "2026-03-01T02:00:00.000Z"),
        finished,
      ]);
      expect((await store.listSyncRuns({ target: "hesi-main", limit: 1 })).map((r) => r.id)).toEqual([
        "run_3",
      ]);
    });

    describe("leases", () => {
      it("only one of two store instances holds a lease; the holder renews; the other gets it after release", async () => {
        const { url, store } = await openFresh();
        const other = await open(url);
        expect(await other.leaseHolder("sync:hesi-main")).toBeNull();
        expect(await store.acquireLease("sync:hesi-main", "instance-a", 60_000)).toBe(true);
        expect(await other.acquireLease("sync:hesi-main", "instance-b", 60_000)).toBe(false);
        expect(await other.leaseHolder("sync:hesi-main")).toBe("instance-a");
        expect(await store.acquireLease("sync:hesi-main", "instance-a", 60_000)).toBe(true);
        expect(await other.acquireLease("sync:hesi-other", "instance-b", 60_000)).toBe(true);
        // Only the holder can release.
        await other.releaseLease("sync:hesi-main", "instance-b");
        expect(await other.acquireLease("sync:hesi-main", "instance-b", 60_000)).toBe(false);
        await store.releaseLease("sync:hesi-main", "instance-a");
        expect(await other.acquireLease("sync:hesi-main", "instance-b", 60_000)).toBe(true);
        expect(await store.acquireLease("sync:hesi-main", "instance-a", 60_000)).toBe(false);
      });

      it("another instance takes an expired lease, and the old holder then cannot renew it", async () => {
        const { url, store } = await openFresh();
        const other = await open(url);
        expect(await store.acquireLease("sync:hesi-main", "instance-a", 300)).toBe(true);
        expect(await other.acquireLease("sync:hesi-main", "instance-b", 300)).toBe(false);
        await setTimeout(400);
        expect(await other.leaseHolder("sync:hesi-main")).toBeNull();
        expect(await other.acquireLease("sync:hesi-main", "instance-b", 60_000)).toBe(true);
        expect(await store.acquireLease("sync:hesi-main", "instance-a", 60_000)).toBe(false);
      });

      it("of many concurrent attempts on a free lease from two instances, exactly one holder wins", async () => {
        const { url, store } = await openFresh();
        const other = await open(url);
        for (let round = 0; round < 5; round++) {
          const name = `lease-${round}`;
          const attempts = Array.from({ length: 8 }, (_, i) =>
            (i % 2 === 0 ? store : other)
              .acquireLease(name, `holder-${i}`, 60_000)
              .then((ok) => (ok ? i : null)),
          );
          const winners = (await Promise.all(attempts)).filter((w) => w !== null);
          expect(winners).toHaveLength(1);
        }
      });
    });
  });
}

describeSyncConformance(sqlite);
describeSyncConformance(postgres);
