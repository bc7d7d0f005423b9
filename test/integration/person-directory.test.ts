/**
 * The people side of sign-in (StorePersonDirectory) on SQLite and on a real PostgreSQL server: kept
 * snapshots and people made by the sync's own linking, then sign-in identities resolved against them, the
 * accounts' states asked of a "live" directory (a second snapshot standing for the source now), and claims
 * with roles from the sync tests' 合思 policy.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { stringify } from "yaml";
import { AuditLog } from "../../src/audit/log.js";
import type { PersonDirectory } from "../../src/broker/contracts.js";
import { createPersonDirectory } from "../../src/broker/people.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { generateKeys, type KeySet } from "../../src/keys/keys.js";
import type { LiveStatus, SignInIdentity } from "../../src/sources/sign-in.js";
import type { DirectorySnapshot, PersonStatus, SourcePerson } from "../../src/sources/snapshot.js";
import { openStore, type Store } from "../../src/store/index.js";
import { SyncService } from "../../src/sync/service.js";
import { fullSnapshot, sourcePerson } from "../fixtures/identity/people.js";
import { hesiPolicy, HESI_ROLES } from "../fixtures/sync/policies.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

const { sqlite, postgres } = storeFlavours();
const DING = "dingtalk-hq";
const AD = "ad-hq";
const OIDC = "corp-oidc";
const READ_AT = "2026-03-01T02:00:00.000Z";
const NOW = new Date("2026-03-01T08:00:00.000Z");

let dir: string;
let keys: KeySet;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "idbridge-people-"));
  mkdirSync(join(dir, "policies"));
  writeFileSync(join(dir, "policies", "hesi-main.yaml"), hesiPolicy());
  keys = await generateKeys(join(dir, "keys"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The config: DingTalk (primary, org chart), AD and a corporate OIDC IdP linked by employee number and work email. */
function config(options: { justInTime?: boolean } = {}): Config {
  const file = join(dir, `idbridge-${options.justInTime ? "jit" : "plain"}.yaml`);
  writeFileSync(
    file,
    stringify({
      policiesDir: join(dir, "policies"),
      sources: [
        {
          id: DING,
          type: "dingtalk",
          config: { appKey: "test-app", appSecret: "not-a-secret", corpId: "ding-corp" },
        },
        {
          id: AD,
          type: "ldap",
          config: {
            url: "ldaps://127.0.0.1:1",
            flavor: "ad",
            bindDn: "CN=svc,DC=corp,DC=example,DC=test",
            bindPassword: "not-a-secret",
            users: { baseDns: ["DC=corp,DC=example,DC=test"] },
          },
        },
        { id: OIDC, type: "oidc", config: { issuer: "https://idp.corp.example.com", clientId: "idbridge" } },
      ],
      identity: {
        primarySource: DING,
        rules: [
          {
            id: "employee-no",
            match: [
              { source: DING, attribute: "employeeNo" },
              { source: AD, attribute: "attributes.employeeID" },
            ],
          },
          {
            id: "work-email",
            match: [
              { source: OIDC, attribute: "email", verified: true, domains: ["corp.example.com"] },
              { source: AD, attribute: "email", verified: true, domains: ["corp.example.com"] },
            ],
          },
        ],
      },
      signIn: { justInTime: options.justInTime ?? false },
    }),
  );
  return loadConfig({ file, env: {}, cwd: dir });
}

/** A full read of a source as the last sync kept it, read at {@link READ_AT}. */
function kept(
  sourceId: string,
  sourceType: string,
  people: SourcePerson[],
  extra: Partial<DirectorySnapshot> = {},
): DirectorySnapshot {
  return fullSnapshot(sourceId, people, { sourceType, startedAt: READ_AT, finishedAt: READ_AT, ...extra });
}

const DEPARTMENTS = [
  { id: "1", parentId: null, name: "示例科技", order: 1, leaders: [] },
  { id: "2", parentId: "1", name: "财务部", order: 1, leaders: [] },
];

/** The company as the last sync read it. */
function keptDingTalk(extraPeople: SourcePerson[] = []): DirectorySnapshot {
  return kept(
    DING,
    "dingtalk",
    [
      sourcePerson("ding-1", {
        name: "张伟",
        employeeNo: "E001",
        departments: [{ departmentId: "2", main: true, leader: false }],
      }),
      sourcePerson("ding-2", {
        name: "李娜",
        employeeNo: "E002",
        departments: [{ departmentId: "1", main: true, leader: true }],
      }),
      sourcePerson("ding-3", { name: "王芳", employeeNo: "E003" }),
      sourcePerson("ding-5", { name: "赵强", employeeNo: "E005" }),
      ...extraPeople,
    ],
    {
      departments: DEPARTMENTS,
      groups: [{ id: "r1", name: "会计", kind: "role", members: ["ding-1"], directMembers: ["ding-1"] }],
    },
  );
}
const KEPT_AD = kept(AD, "ldap", [
  sourcePerson("ad-1", { attributes: { employeeID: "E001" }, email: "zhang.wei@corp.example.com" }),
  sourcePerson("ad-2", { attributes: { employeeID: "E002" } }),
  sourcePerson("ad-3", { attributes: { employeeID: "E003" }, status: "disabled" }),
  sourcePerson("ad-4", { attributes: { employeeID: "E004" }, email: "chen.jie@corp.example.com" }),
  sourcePerson("ad-5", { attributes: { employeeID: "E005" } }),
]);

/**
 * The directories now: in AD 李娜 (ad-2) was disabled since the last read and 赵强 (ad-5) deleted; DingTalk
 * has two new people. The live check answers from
 * this directory; `down` makes it unavailable, as a source that does not answer.
 */
function liveDirectory(down: Set<string>): (sourceId: string, subject: string) => Promise<LiveStatus> {
  const now = new Map<string, Map<string, PersonStatus>>([
    // DingTalk now: as last read, plus two people who joined since.
    [
      DING,
      new Map<string, PersonStatus>([
        ...keptDingTalk().people.map((p): [string, PersonStatus] => [p.subject, p.status]),
        ["ding-4", "active"],
        ["ding-9", "active"],
      ]),
    ],
    [
      AD,
      new Map<string, PersonStatus>([
        ["ad-1", "active"],
        ["ad-2", "disabled"],
        ["ad-3", "disabled"],
        ["ad-4", "active"],
      ]),
    ],
  ]);
  return async (sourceId, subject) => {
    if (down.has(sourceId)) return "unavailable";
    return now.get(sourceId)?.get(subject) ?? "not-found";
  };
}

function identity(sourceId: string, subject: string, fields: Partial<SourcePerson> = {}): SignInIdentity {
  return { sourceId, subject, person: sourcePerson(subject, fields) };
}

function describePeople(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`person directory (${flavour.name})`, () => {
    interface Env {
      store: Store;
      audit: AuditLog;
      down: Set<string>;
      people: (options?: { justInTime?: boolean }) => PersonDirectory;
      personOf: (sourceId: string, subject: string) => Promise<string>;
    }

    /** A fresh store holding the kept snapshots and the people the sync linked from them. */
    async function seeded(dingtalk = keptDingTalk()): Promise<Env> {
      const store = await openStore({ url: await flavour.freshUrl() });
      const audit = new AuditLog(store, keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
      onTestFinished(async () => {
        await audit.close();
        await store.close();
      });
      for (const s of [dingtalk, KEPT_AD])
        await store.putLatestSnapshot(s.sourceId, JSON.stringify(s), s.finishedAt);
      const sync = new SyncService({
        config: config(),
        store,
        audit,
        holder: "test",
        now: () => new Date(READ_AT),
      });
      await sync.linkAccounts([dingtalk, KEPT_AD]);
      const down = new Set<string>();
      let n = 0;
      return {
        store,
        audit,
        down,
        people: (options = {}) =>
          createPersonDirectory({
            config: config(options),
            store,
            audit,
            liveStatus: liveDirectory(down),
            now: () => NOW,
            newId: () => `p_signin_${++n}`,
          }),
        personOf: async (sourceId, subject) => (await store.findPersonByAccount(sourceId, subject))!.id,
      };
    }

    it("resolves a linked account to its person, the same person from either source", async () => {
      const env = await seeded();
      const people = env.people();
      const id = await env.personOf(DING, "ding-1");
      expect(await people.resolve(identity(DING, "ding-1"))).toEqual({ ok: true, personId: id, via: "link" });
      expect(await people.resolve(identity(AD, "ad-1"))).toEqual({ ok: true, personId: id, via: "link" });
    });

    it("links an account by the link rules, saves the link and audits it; the next sign-in finds the link", async () => {
      const env = await seeded();
      const people = env.people();
      const ad4 = await env.personOf(AD, "ad-4");
      // A DingTalk account the last read did not list (joined since), with AD's employee number.
      const outcome = await people.resolve(identity(DING, "ding-4", { employeeNo: "E004" }));
      expect(outcome).toEqual({ ok: true, personId: ad4, via: "rule" });
      expect(
        (await env.store.findPersonByAccount(DING, "ding-4"))?.accounts.map((a) => [a.sourceId, a.rule]),
      ).toEqual([
        [AD, "created"],
        [DING, "employee-no"],
      ]);
      const entries = await env.store.readAudit(0, 1_000_000, 1_000_000);
      const linked = entries.filter(
        (e) => e.action === "identity.account-linked" && e.details.via === "sign-in",
      );
      expect(linked).toEqual([
        expect.objectContaining({
          subject: ad4,
          details: {
            account: `${DING}:ding-4`,
            rule: "employee-no",
            value: "E004",
            matched: `${AD}:ad-4`,
            via: "sign-in",
          },
        }),
      ]);
      expect(await people.resolve(identity(DING, "ding-4", { employeeNo: "E004" }))).toEqual({
        ok: true,
        personId: ad4,
        via: "link",
      });
    });

    it("links a corporate OIDC account on a verified work email, never on another organisation's", async () => {
      const env = await seeded();
      const people = env.people();
      expect(await people.resolve(identity(OIDC, "oidc-1", { email: "Zhang.Wei@corp.example.com" }))).toEqual(
        {
          ok: true,
          personId: await env.personOf(AD, "ad-1"),
          via: "rule",
        },
      );
      const foreign = await people.resolve(identity(OIDC, "oidc-x", { email: "chen.jie@other.example.com" }));
      expect(foreign).toMatchObject({ ok: false, code: "NOT_PROVISIONED" });
      expect(await env.store.findPersonByAccount(OIDC, "oidc-x")).toBeNull();
    });

    it("refuses an account nobody matches without just-in-time creation, and saves nothing", async () => {
      const env = await seeded();
      const before = await env.store.listPeople();
      expect(await env.people().resolve(identity(DING, "ding-9", { employeeNo: "E999" }))).toEqual({
        ok: false,
        code: "NOT_PROVISIONED",
        reason: expect.stringMatching(/just-in-time creation is off/),
      });
      expect(await env.store.listPeople()).toEqual(before);
    });

    it("creates and audits a new person just in time when enabled, and gives them claims", async () => {
      const env = await seeded();
      const people = env.people({ justInTime: true });
      const outcome = await people.resolve(identity(DING, "ding-9", { employeeNo: "E999", name: "新人" }));
      expect(outcome).toEqual({ ok: true, personId: "p_signin_1", via: "just-in-time" });
      expect(await env.store.getPerson("p_signin_1")).toEqual({
        id: "p_signin_1",
        accounts: [{ sourceId: DING, subject: "ding-9", rule: "created", linkedAt: NOW.toISOString() }],
      });
      const actions = (await env.store.readAudit(0, 1_000_000, 1_000_000))
        .filter((e) => e.subject === "p_signin_1")
        .map((e) => e.action);
      expect(actions).toEqual(["identity.person-created", "identity.account-linked"]);
      // Not in the last read, but linked after it: a new hire, not a departed person.
      expect(await people.claims("p_signin_1", "hesi-main")).toEqual({ departments: [], roles: [] });
    });

    it("refuses a person disabled now in another linked source, whichever source they sign in with", async () => {
      const env = await seeded();
      const people = env.people();
      const id = await env.personOf(DING, "ding-2");
      // The kept AD read says active; AD says disabled now.
      expect(await people.resolve(identity(DING, "ding-2"))).toEqual({
        ok: false,
        code: "ACCOUNT_DISABLED",
        reason: expect.stringMatching(/ad-hq says now that ad-hq:ad-2 is disabled/),
        personId: id,
      });
      expect(await people.resolve(identity(AD, "ad-2"))).toMatchObject({
        ok: false,
        code: "ACCOUNT_DISABLED",
      });
      // Deleted from AD since the last read: departed.
      expect(await people.resolve(identity(DING, "ding-5"))).toMatchObject({
        ok: false,
        code: "ACCOUNT_LEFT",
      });
    });

    it("falls back to the kept snapshot when a source cannot be asked, and says so", async () => {
      const env = await seeded();
      const people = env.people();
      env.down.add(AD);
      // Kept AD read: ad-3 disabled.
      expect(await people.resolve(identity(DING, "ding-3"))).toEqual({
        ok: false,
        code: "ACCOUNT_DISABLED",
        reason: expect.stringMatching(
          /ad-hq could not be asked now; its snapshot of 2026-03-01T02:00:00.000Z says ad-hq:ad-3 is disabled/,
        ),
        personId: await env.personOf(DING, "ding-3"),
      });
      // Kept AD read: ad-2 active — let in while AD is down (the last word we have).
      expect(await people.resolve(identity(DING, "ding-2"))).toMatchObject({ ok: true, via: "link" });
    });

    it("refuses an account an admin marked as nobody, and follows an admin's link", async () => {
      const env = await seeded();
      const people = env.people();
      const at = NOW.toISOString();
      const target = await env.personOf(DING, "ding-1");
      await env.store.addLinkDecision(
        { kind: "ignore", account: { sourceId: OIDC, subject: "shared" }, by: "alice", at },
        () => [],
      );
      await env.store.addLinkDecision(
        { kind: "link", account: { sourceId: OIDC, subject: "oidc-zw" }, personId: target, by: "alice", at },
        () => [],
      );
      expect(
        await people.resolve(identity(OIDC, "shared", { email: "zhang.wei@corp.example.com" })),
      ).toMatchObject({
        ok: false,
        code: "IGNORED",
      });
      expect(await people.resolve(identity(OIDC, "oidc-zw"))).toEqual({
        ok: true,
        personId: target,
        via: "link",
      });
    });

    it("refuses a stored link an admin has unlinked but the sync has not yet removed", async () => {
      const env = await seeded();
      const id = await env.personOf(DING, "ding-1");
      const account = { sourceId: DING, subject: "ding-1" };
      await env.store.addLinkDecision(
        { kind: "unlink", account, personId: id, by: "alice", at: NOW.toISOString() },
        () => [],
      );
      expect(await env.people().resolve(identity(DING, "ding-1", { employeeNo: "E001" }))).toMatchObject({
        ok: false,
        code: "IN_REVIEW",
        reason: expect.stringMatching(/unlinked dingtalk-hq:ding-1/),
      });
    });

    it("refuses a person the identity review queue holds", async () => {
      const env = await seeded();
      const id = await env.personOf(DING, "ding-1");
      await env.store.setReviewQueue([
        {
          id: "rv_1",
          accounts: [{ sourceId: "wecom-hq", subject: "zhangwei" }],
          candidates: [id, "p_other"],
          reasons: [
            { code: "several-candidates", message: "rule same-userid matches wecom-hq:zhangwei to 2 people" },
          ],
          evidence: [],
        },
      ]);
      expect(await env.people().resolve(identity(AD, "ad-1"))).toEqual({
        ok: false,
        code: "IN_REVIEW",
        reason: expect.stringMatching(/waits in identity review: rule same-userid/),
        personId: id,
      });
    });

    it("links two sign-ins of one new account at once to one new person", async () => {
      const env = await seeded();
      const people = env.people({ justInTime: true });
      const other = env.people({ justInTime: true });
      const outcomes = await Promise.all([
        people.resolve(identity(DING, "ding-9", { employeeNo: "E999" })),
        other.resolve(identity(DING, "ding-9", { employeeNo: "E999" })),
        people.resolve(identity(DING, "ding-9", { employeeNo: "E999" })),
      ]);
      const ids = new Set(outcomes.map((o) => (o.ok ? o.personId : o.code)));
      expect(ids.size).toBe(1);
      expect(outcomes.map((o) => o.ok && o.via).sort()).toEqual(["just-in-time", "link", "link"]);
      const holders = (await env.store.listPeople()).filter((p) =>
        p.accounts.some((a) => a.subject === "ding-9"),
      );
      expect(holders).toHaveLength(1);
    });

    it("notices a newer kept snapshot and a policy file added while running", async () => {
      const env = await seeded();
      const people = createPersonDirectory({
        config: config(),
        store: env.store,
        audit: env.audit,
        recheckMs: 0,
      });
      const id = await env.personOf(DING, "ding-1");
      expect((await people.claims(id, "hesi-main"))?.roles).toContain(HESI_ROLES.accountant);
      // The next sync's read: 张伟 was disabled in DingTalk.
      const next = keptDingTalk();
      const disabled = {
        ...next,
        startedAt: "2026-03-01T09:00:00.000Z",
        finishedAt: "2026-03-01T09:00:00.000Z",
        people: next.people.map((p) => (p.subject === "ding-1" ? { ...p, status: "disabled" as const } : p)),
      };
      await env.store.putLatestSnapshot(DING, JSON.stringify(disabled), disabled.finishedAt);
      expect(await people.claims(id, "hesi-main")).toBeNull();
      // A policy file added while running is read without a restart.
      const file = join(dir, "policies", "scratch.yaml");
      writeFileSync(file, hesiPolicy().replace("target: hesi-main", "target: scratch"));
      onTestFinished(() => rmSync(file, { force: true }));
      const two = await people.claims(await env.personOf(DING, "ding-2"), "scratch");
      expect(two?.roles).toContain(HESI_ROLES.approver);
    });

    it("keeps a person's claims for at most recheckMs; a newly kept snapshot disabling them ends them at the next check", async () => {
      const env = await seeded();
      const people = createPersonDirectory({
        config: config(),
        store: env.store,
        audit: env.audit,
        recheckMs: 1_000,
      });
      const one = await env.personOf(DING, "ding-1");
      const two = await env.personOf(DING, "ding-2");
      expect((await people.claims(one, "hesi-main"))?.roles).toContain(HESI_ROLES.accountant);
      expect((await people.claims(two, "hesi-main"))?.roles).toContain(HESI_ROLES.approver);
      // The person's record loses its accounts: the kept claims still count, until recheckMs has passed.
      await env.store.savePeople([{ id: one, accounts: [] }]);
      expect((await people.claims(one, "hesi-main"))?.roles).toContain(HESI_ROLES.accountant);
      // The next sync's read: 李娜 was disabled in DingTalk.
      const next = keptDingTalk();
      const disabled = {
        ...next,
        startedAt: "2026-03-01T09:00:00.000Z",
        finishedAt: "2026-03-01T09:00:00.000Z",
        people: next.people.map((p) => (p.subject === "ding-2" ? { ...p, status: "disabled" as const } : p)),
      };
      await env.store.putLatestSnapshot(DING, JSON.stringify(disabled), disabled.finishedAt);
      await sleep(1_100);
      expect((await people.claims(one, "hesi-main"))?.roles ?? []).not.toContain(HESI_ROLES.accountant);
      expect(await people.claims(two, "hesi-main")).toBeNull();
    });

    it("gives claims with the roles the 合思 policy grants, and null for a disabled or unknown person", async () => {
      const env = await seeded();
      const people = env.people();
      expect(await people.claims(await env.personOf(DING, "ding-1"), "hesi-main")).toEqual({
        name: "张伟",
        employee_no: "E001",
        email: "zhang.wei@corp.example.com",
        departments: ["财务部"],
        roles: [HESI_ROLES.submitter, HESI_ROLES.accountant],
      });
      expect(await people.claims(await env.personOf(DING, "ding-2"), "hesi-main")).toMatchObject({
        roles: [HESI_ROLES.submitter, HESI_ROLES.approver],
      });
      expect(await people.claims(await env.personOf(DING, "ding-2"), undefined)).toMatchObject({ roles: [] });
      expect(await people.claims(await env.personOf(DING, "ding-3"), "hesi-main")).toBeNull();
      expect(await people.claims("p_nobody", "hesi-main")).toBeNull();
    });

    it("computes claims from a cache: 10,000 calls on a 10,000-person snapshot", async () => {
      const many = Array.from({ length: 10_000 }, (_, i) =>
        sourcePerson(`bulk-${i}`, {
          name: `员工${i}`,
          employeeNo: `B${i}`,
          departments: [{ departmentId: "2", main: true, leader: false }],
        }),
      );
      const env = await seeded(keptDingTalk(many));
      const people = env.people();
      const ids = (await env.store.listPeople()).map((p) => p.id);
      expect(ids.length).toBeGreaterThanOrEqual(10_000);
      await people.claims(ids[0]!, "hesi-main"); // builds the cache
      const started = performance.now();
      let withRoles = 0;
      for (let i = 0; i < 10_000; i++) {
        const claims = await people.claims(ids[i % ids.length]!, "hesi-main");
        if (claims !== null && claims.roles.length > 0) withRoles++;
      }
      const ms = performance.now() - started;
      console.log(
        `claims (${flavour.name}): 10,000 calls on 10,000 people in ${Math.round(ms)} ms (${Math.round(10_000_000 / ms)}/s)`,
      );
      expect(withRoles).toBeGreaterThan(9_000);
    }, 120_000);
  });
}

describePeople(sqlite);
describePeople(postgres);
