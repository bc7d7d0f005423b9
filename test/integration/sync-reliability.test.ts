/**
 * The permission sync when things go wrong: a target failing one call in five, a process killed in the
 * middle of an apply, a source whose read breaks off halfway (DingTalk bans us; DingTalk's app secret is
 * reset; an LDAP server of the test's own stops), a policy change that would strip a role from 40% of
 * people, and an old partial plan. The end state is checked against what the generated company and the
 * policy mean, read from the 合思 simulator itself; the audit log is checked for exactly one entry per
 * effective change.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseFaults } from "../../src/simulators/common/faults.js";
import { incompleteReasons } from "../../src/sources/snapshot.js";
import type { AuditRecord } from "../../src/store/store.js";
import type { Plan, PlanChange } from "../../src/sync/plan.js";
import { generateOrg, type SimPerson } from "../../src/simulators/common/org.js";
import { startDingTalkSimulator } from "../../src/simulators/dingtalk/index.js";
import { HESI_ROLES, hesiPolicy } from "../fixtures/sync/policies.js";
import { addEntries, startSlapd } from "../peers/openldap.js";
import { cliCommand, runCli } from "../helpers/cli.js";
import {
  counts,
  departmentPaths,
  expectedGrants,
  hesiHoldings,
  jwksFile,
  listedPeople,
  startSyncEnv,
  type SyncEnv,
} from "../helpers/sync-env.js";

const envs: SyncEnv[] = [];
afterAll(() => Promise.all(envs.map((env) => env.close())));

async function env(options: Parameters<typeof startSyncEnv>[0]): Promise<SyncEnv> {
  const started = await startSyncEnv(options);
  envs.push(started);
  return started;
}

/** No sensitive role: a plan without removals is low risk, and `run` applies it (sync.autoApprove). */
const AUTO = {
  policies: { "hesi-main.yaml": hesiPolicy({ sensitiveCashier: false }) },
  sync: { autoApprove: true },
};

/**
 * The audit entries of the changes that took effect, checked against what 合思 holds: every department
 * and staff member was created exactly once (subject: the DingTalk department's link key, the person id
 * 合思 holds as userId), every role row member granted exactly once, and nothing else was created or granted.
 */
function expectOneEntryPerChange(entries: readonly AuditRecord[], env: SyncEnv, grants: readonly string[]) {
  const { staff } = hesiHoldings(env.hesi!, env.org);
  const personOf = new Map([...staff].map(([userid, s]) => [userid, s.userId]));
  const created = counts(entries.filter((e) => e.action === "target.user.created").map((e) => e.subject));
  expect(created).toEqual(new Map([...staff.values()].map((s) => [s.userId, 1])));
  const departments = counts(
    entries.filter((e) => e.action === "target.department.created").map((e) => e.subject),
  );
  expect(departments).toEqual(
    new Map(env.org.departments.filter((d) => d.parentId !== 0).map((d) => [`dingtalk-hq:${d.id}`, 1])),
  );
  // Grants name their scope by its path; the company itself (the root) by its name.
  const label = (role: string, path: string) =>
    path !== "" ? path : role === HESI_ROLES.approver ? env.org.corpName : "";
  const granted = counts(
    entries
      .filter((e) => e.action === "role.granted")
      .map((e) => `${e.subject}|${String(e.details.targetRole)}|${String(e.details.scope)}`),
  );
  expect(granted).toEqual(
    new Map(
      grants.map((g) => {
        const [userid, role, path] = g.split("|") as [string, string, string];
        return [`${personOf.get(userid)}|${role}|${label(role, path)}`, 1];
      }),
    ),
  );
}

describe("sync reliability against the 合思 simulator", () => {
  // Every 429 waits its Retry-After (1 s) and every 5xx or drop backs off: this one takes ~25 s.
  it(
    "converges to exactly the desired state with 20% of target calls failing, each change audited once",
    { timeout: 90_000 },
    async () => {
      const e = await env({
        ...AUTO,
        people: 120,
        target: { kind: "hesi", simulator: { failures: { rate: 0.2, seed: 7 } } },
        sync: { autoApprove: true, maxFailedChanges: 1000 },
      });
      const hesi = e.hesi!;
      const statuses: string[] = [];
      let rounds = 0;
      for (; rounds < 8; rounds++) {
        const outcome = await e.sync.run("cli", { fresh: "all", incremental: false }).then(
          ([o]) => o!,
          (error: Error) => error,
        );
        if (outcome instanceof Error) {
          statuses.push(`error: ${outcome.message}`);
          continue;
        }
        statuses.push(outcome.run.status);
        if (outcome.plan.status === "empty") break;
      }
      expect(rounds, statuses.join("\n")).toBeLessThan(8);
      // The failures did happen: throttling, gateway errors and dropped connections.
      expect(hesi.statuses.get(429) ?? 0).toBeGreaterThan(0);
      expect(hesi.statuses.get(502) ?? 0).toBeGreaterThan(0);
      expect(hesi.statuses.get(0) ?? 0).toBeGreaterThan(0);

      hesi.setRandomFailures(null);
      const expected = expectedGrants(e.org, HESI_ROLES);
      const all = [...expected.values()].flatMap((s) => [...s]).sort();
      const held = hesiHoldings(hesi, e.org);
      expect(hesi.staff().length).toBe(expected.size); // no duplicates
      expect([...held.staff.keys()].sort()).toEqual([...expected.keys()].sort());
      expect([...held.staff.values()].every((s) => s.active)).toBe(true);
      expect(held.grants).toEqual(all);
      expectOneEntryPerChange(await e.auditEntries(), e, all);
    },
  );

  it("finishes an apply killed by SIGKILL: nothing duplicated, nothing lost in the audit log", async () => {
    const e = await env({ people: 150, seed: 5, target: { kind: "hesi" }, policies: AUTO.policies });
    const hesi = e.hesi!;
    const planned = await e.sync.plan(e.targetId);
    await e.sync.approve(planned.id, "alice");
    const total = JSON.parse(planned.content).changes.length as number;

    // Slow 合思 down so the kill lands while users are being created, in a child process of our own.
    hesi.controls.faults.set(parseFaults("latency=15"));
    const child = spawn(
      "/bin/sh",
      ["-c", `exec ${cliCommand()} sync apply ${planned.id} -c ${JSON.stringify(e.configFile)}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("close", (_c, s) => resolve(s)));
    const deadline = Date.now() + 60_000;
    while (hesi.staff().length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    const recorded = await e.store.listPlanItems(planned.id);
    expect(hesi.staff().length).toBeGreaterThanOrEqual(30);
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.length).toBeLessThan(total);
    expect((await e.sync.getPlan(planned.id)).status).toBe("applying");

    // The dead process's lease is taken over at once (same host, process gone), not after its TTL.
    hesi.controls.faults.set([]);
    const resumed = await e.cli("sync", "apply", planned.id);
    expect(resumed.stderr).toBe(
      `took over the sync lease of process ${child.pid}, which is gone (killed?); its work resumes from what it recorded\n`,
    );
    const summary = new RegExp(
      `^plan ${planned.id}: applied — (\\d+) applied, (\\d+) found done, ${recorded.length} done earlier, 0 failed, 0 not attempted$`,
      "m",
    ).exec(resumed.stdout);
    expect(summary, resumed.stdout).not.toBeNull();
    // Staff created before the kill but not yet recorded are found done, not created again.
    expect(Number(summary![2])).toBeGreaterThan(0);
    expect(Number(summary![1]) + Number(summary![2]) + recorded.length).toBe(total);
    expect(resumed.code).toBe(0);
    // The CLI's apply is on the run history like any other.
    const [applyRun] = await e.store.listSyncRuns({ limit: 1 });
    expect(applyRun).toMatchObject({ trigger: "cli", status: "applied", planId: planned.id });
    const again = await e.cli("sync", "run");
    expect(again.stdout).toContain("hesi-main: nothing-to-do");
    expect(again.code).toBe(0);

    const expected = expectedGrants(e.org, HESI_ROLES);
    const all = [...expected.values()].flatMap((s) => [...s]).sort();
    const held = hesiHoldings(hesi, e.org);
    expect(hesi.staff().length).toBe(expected.size);
    expect([...held.staff.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(held.grants).toEqual(all);
    const entries = await e.auditEntries();
    expectOneEntryPerChange(entries, e, all);
    // Every change of the plan has exactly one outcome entry, whichever process recorded it.
    const keys = counts(
      entries.filter((x) => x.details.plan === planned.id).map((x) => String(x.details.key)),
    );
    expect(keys.size).toBe(total);
    expect([...keys.values()].every((n) => n === 1)).toBe(true);

    const exportFile = join(e.dir, "audit.jsonl");
    const exported = await e.cli("audit", "export", "-o", exportFile);
    expect(exported.code).toBe(0);
    const verified = await runCli(["audit", "verify", exportFile, "--jwks", jwksFile(e)]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(
      new RegExp(`^verified ${entries.length} entries and \\d+ checkpoints up to seq ${entries.length},`),
    );
  });

  it("plans no removal from a read that broke off, while grants still proceed", async () => {
    const e = await env({ ...AUTO, people: 150, seed: 11, target: { kind: "hesi" } });
    const hesi = e.hesi!;
    const [first] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(first!.run.status).toBe("applied");
    const before = hesi.staff().length;

    // A new role for 研发中心, then DingTalk bans us partway through reading the people.
    e.writePolicy(
      "hesi-main.yaml",
      hesiPolicy({
        sensitiveCashier: false,
        roles: "  traveller: { targetRole: 差旅申请人 }\n",
        rules: `  - id: rnd-travels\n    when: { department: { source: dingtalk-hq, path: 研发中心 } }\n    grant: traveller\n`,
      }),
    );
    e.dingtalk.controls.faults.set(parseFaults("ban-after=70"));
    const record = await e.sync.plan(e.targetId);
    const plan: Plan = await e.planOf(record.id);
    const source = plan.sources.find((s) => s.id === "dingtalk-hq")!;
    expect(source.complete).toBe(false);
    expect(source.people).toBeLessThan(listedPeople(e.org).size);

    const removals = new Set(["revoke", "disable-user", "disable-department"]);
    expect(plan.changes.filter((c) => removals.has(c.kind))).toEqual([]);
    expect(plan.blocked.length).toBeGreaterThan(0);
    expect(plan.blocked.every((b) => removals.has(b.change.kind) && b.sources.join() === "dingtalk-hq")).toBe(
      true,
    );
    expect(plan.blocked.some((b) => b.change.kind === "disable-user")).toBe(true);
    const travel = plan.changes.filter((c) => c.kind === "grant" && c.targetRole === "差旅申请人");
    expect(travel.length).toBeGreaterThan(0);

    const { report } = await e.sync.apply(record.id);
    expect(report.failed).toEqual([]);
    expect(hesi.staff().filter((s) => s.active).length).toBe(before);
    expect(hesi.roles().find((r) => r.name === "差旅申请人")!.rows[0]!.staffs.length).toBe(travel.length);

    // Once DingTalk answers again, a complete read plans the rest of 研发中心's grants and still removes nothing.
    e.dingtalk.controls.faults.set([]);
    e.dingtalk.controls.clock.advance(6 * 60_000);
    const complete = await e.planOf((await e.sync.plan(e.targetId)).id);
    expect(complete.sources.every((s) => s.complete)).toBe(true);
    expect(complete.changes.filter((c) => removals.has(c.kind))).toEqual([]);
    expect(complete.blocked).toEqual([]);
    const paths = departmentPaths(e.org);
    const travellers = [...listedPeople(e.org).values()].filter((p) =>
      p.departments.some((d) => paths.get(d)!.split("/")[0] === "研发中心"),
    );
    const rest = complete.changes.filter((c) => c.kind === "grant" && c.targetRole === "差旅申请人");
    expect(travel.length + rest.length).toBe(travellers.length);
  });

  it("plans no removal from a read cut off by a revoked app secret: DingTalk incomplete with AUTH_FAILED", async () => {
    const e = await env({ ...AUTO, people: 150, seed: 11, target: { kind: "hesi" } });
    const [first] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(first!.run.status).toBe("applied");

    // Five people leave the company, so a complete read would disable them. The simulator has no hook to
    // change its org, so it restarts on the same port with the same app and the changed org.
    const leavers = [...listedPeople(e.org).values()].filter((p) => p.status === "active").slice(-5);
    const leaving = new Set(leavers.map((p) => p.userid));
    const org = {
      ...e.org,
      people: e.org.people.map((p) => (leaving.has(p.userid) ? { ...p, status: "left" as const } : p)),
    };
    const original = e.dingtalk;
    await original.close();
    const dingtalk = await startDingTalkSimulator({
      org,
      qps: 500,
      port: original.port,
      credentials: original.credentials,
    });
    // The env closes the simulator it started: point that at the replacement.
    (original as { close: () => Promise<void> }).close = () => dingtalk.close();
    // Plans name people by our Person id, which 合思 holds as the staff member's userId.
    const { staff } = hesiHoldings(e.hesi!, e.org);
    const leaverIds = leavers.map((p) => staff.get(p.userid)!.userId).sort();
    const disables = (changes: readonly PlanChange[]) =>
      changes
        .filter((c) => c.kind === "disable-user")
        .map((c) => ("person" in c ? c.person : ""))
        .sort();

    // Then the admin resets the app secret in the DingTalk console partway through reading the people.
    const revokeMidway = () => dingtalk.controls.faults.set(parseFaults("revoke-secret-after=70"));
    revokeMidway();
    const [snapshot] = await e.sync.gatherSnapshots({ fresh: "all", incremental: false });
    expect(snapshot!.people.length).toBeGreaterThan(0);
    expect(snapshot!.people.length).toBeLessThan(listedPeople(org).size);
    expect(snapshot!.completeness.complete).toBe(false);
    expect(incompleteReasons(snapshot!).map((r) => r.code)).toEqual(["AUTH_FAILED"]);

    // The plan reads again; the fault is set afresh (counting from zero, the secret accepted until then).
    revokeMidway();
    const plan = await e.planOf((await e.sync.plan(e.targetId)).id);
    const source = plan.sources.find((s) => s.id === "dingtalk-hq")!;
    expect(source.complete).toBe(false);
    expect(source.people).toBeGreaterThan(0);
    expect(source.people).toBeLessThan(listedPeople(org).size);
    expect(source.reasons).toEqual([
      expect.stringMatching(/^dingtalk-hq: DingTalk refused the app credentials .*appSecret/),
    ]);
    const removals = new Set(["revoke", "disable-user", "disable-department"]);
    expect(plan.changes.filter((c) => removals.has(c.kind))).toEqual([]);
    expect(plan.blocked.every((b) => removals.has(b.change.kind) && b.sources.join() === "dingtalk-hq")).toBe(
      true,
    );
    expect(disables(plan.blocked.map((b) => b.change))).toEqual(expect.arrayContaining(leaverIds));

    // With the secret working again, a complete read disables exactly the leavers.
    dingtalk.controls.faults.set([]);
    const complete = await e.planOf((await e.sync.plan(e.targetId)).id);
    expect(complete.sources.every((s) => s.complete)).toBe(true);
    expect(complete.blocked).toEqual([]);
    expect(disables(complete.changes)).toEqual(leaverIds);
  });

  it("holds a policy change that revokes a role from 40% of people for approval; sync run applies nothing", async () => {
    const e = await env({ ...AUTO, people: 150, seed: 13, target: { kind: "hesi" } });
    const hesi = e.hesi!;
    const [first] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(first!.run.status).toBe("applied");

    // Submitters outside the first top-level departments that hold about 40% of them lose the role.
    const paths = departmentPaths(e.org);
    const top = (p: SimPerson) => paths.get(p.departments[0]!)!.split("/")[0]!;
    const submitters = [...listedPeople(e.org).values()].filter((p) => p.status === "active");
    const tops = [...new Set(submitters.map(top))].filter((t) => t !== "");
    const dropped: string[] = [];
    for (const t of tops) {
      if (submitters.filter((p) => dropped.includes(top(p))).length >= submitters.length * 0.4) break;
      dropped.push(t);
    }
    const keeps = (p: SimPerson) =>
      !p.departments.some((d) => dropped.includes(paths.get(d)!.split("/")[0]!));
    const losing = submitters.filter((p) => !keeps(p)).length;
    expect(losing / submitters.length).toBeGreaterThan(0.35);
    expect(losing / submitters.length).toBeLessThan(0.6);

    e.writePolicy(
      "hesi-main.yaml",
      hesiPolicy({
        sensitiveCashier: false,
        submitterWhen: dropped
          .map((t) => `        - not: { department: { source: dingtalk-hq, path: ${t} } }\n`)
          .join(""),
      }),
    );
    const rolesBefore = structuredClone(hesi.roles());
    const staffBefore = structuredClone(hesi.staff());
    const run = await e.cli("sync", "run");
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/^hesi-main: needs-approval$/m);
    expect(run.stdout).toMatch(/needs approval: .*THRESHOLD_REVOCATIONS/);
    expect(hesi.roles()).toEqual(rolesBefore);
    expect(hesi.staff()).toEqual(staffBefore);

    const { runs, waiting } = await e.sync.status();
    expect(runs[0]!.status).toBe("needs-approval");
    const plan = await e.planOf(waiting[0]!.id);
    // Those left with no role at all are disabled too, which is over its own threshold.
    const remaining = expectedGrants(e.org, HESI_ROLES, keeps);
    const disabled = [...expectedGrants(e.org, HESI_ROLES).keys()].filter((u) => !remaining.has(u));
    expect(disabled.length).toBeGreaterThan(0);
    expect(plan.risk.map((r) => r.code).sort()).toEqual(["THRESHOLD_DISABLES", "THRESHOLD_REVOCATIONS"]);
    expect(plan.changes.filter((c) => c.kind === "disable-user")).toHaveLength(disabled.length);
    const revokes = plan.changes.filter((c) => c.kind === "revoke");
    expect(revokes.length).toBe(losing);
    expect(revokes.every((c) => c.kind === "revoke" && c.targetRole === "报销提交人")).toBe(true);
    expect(
      (await e.auditEntries()).filter((x) => x.action === "plan.refused" && x.subject === plan.id),
    ).toHaveLength(1);
  });
  // Regression: a newer plan superseded only pending and approved plans, so an older partial plan could
  // still be applied after it and undo what the newer plans decided (role rows carry no precondition).
  it("a newer plan supersedes an older partial plan, which can then no longer be applied", async () => {
    const e = await env({ ...AUTO, people: 100, seed: 17, target: { kind: "hesi" } });
    const hesi = e.hesi!;
    const [first] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(first!.run.status).toBe("applied");
    const cashier = hesi.roles().find((r) => r.name === HESI_ROLES.cashier)!;
    const cashiers = structuredClone(cashier.rows);
    expect(cashiers[0]!.staffs.length).toBeGreaterThan(0);

    // Someone drops the cashier rule; 合思 refuses every write of the 出纳 rows: the plan ends partial.
    const original = hesiPolicy({ sensitiveCashier: false });
    e.writePolicy("hesi-main.yaml", original.replace(/ {2}- id: cashiers\n.*\n.*grant: cashier\n/, ""));
    hesi.controls.faults.set(parseFaults(`5xx@/api/openapi/v1.1/roledefs/$${cashier.id}/staffs*always`));
    const [dropped] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(dropped!.run.status).toBe("partial");
    expect(dropped!.report!.failed.map((f) => f.key.split(":")[0])).toEqual(
      cashiers[0]!.staffs.map(() => "revoke"),
    );

    // The rule is back and 合思 works again: nothing to change, and the partial plan is history.
    hesi.controls.faults.set([]);
    e.writePolicy("hesi-main.yaml", original);
    const [restored] = await e.sync.run("cli", { fresh: "all", incremental: false });
    expect(restored!.run.status).toBe("nothing-to-do");
    expect((await e.sync.getPlan(dropped!.plan.id)).status).toBe("superseded");
    const error = await e.sync.apply(dropped!.plan.id).then(
      () => null,
      (x: unknown) => x as { code?: string },
    );
    expect(error?.code).toBe("PLAN_STATE");
    expect(hesi.roles().find((r) => r.name === HESI_ROLES.cashier)!.rows).toEqual(cashiers);
    expect((await e.sync.status()).waiting).toEqual([]);
  });
  it(
    "plans no removal that depends on an LDAP server that stopped, while grants still proceed",
    { timeout: 60_000 },
    async () => {
      // An LDAP directory of our own beside DingTalk: everyone by employee number, three cashiers by group.
      const slapd = await startSlapd();
      let stopped = false;
      try {
        const org = generateOrg({ people: 120, seed: 19 });
        const listed = [...listedPeople(org).values()];
        const dingtalkCashiers = new Set(org.roles.find((r) => r.name === HESI_ROLES.cashier)!.members);
        const ldapCashiers = listed
          .filter((p) => p.status === "active" && !dingtalkCashiers.has(p.userid))
          .slice(0, 3);
        const people = `ou=people,${slapd.baseDn}`;
        const groups = `ou=groups,${slapd.baseDn}`;
        await addEntries(
          slapd,
          [
            {
              dn: slapd.baseDn,
              attributes: { objectClass: ["dcObject", "organization"], o: "Demo", dc: "example" },
            },
            { dn: people, attributes: { objectClass: "organizationalUnit", ou: "people" } },
            { dn: groups, attributes: { objectClass: "organizationalUnit", ou: "groups" } },
          ],
          1,
        );
        await addEntries(
          slapd,
          listed.map((p) => ({
            dn: `uid=${p.userid},${people}`,
            attributes: {
              objectClass: "inetOrgPerson",
              uid: p.userid,
              cn: p.pinyin,
              sn: p.pinyin.split(" ")[0]!,
              employeeNumber: p.jobNumber,
            },
          })),
        );
        await addEntries(slapd, [
          {
            dn: `cn=cashiers,${groups}`,
            attributes: {
              objectClass: "groupOfNames",
              cn: "cashiers",
              member: ldapCashiers.map((p) => `uid=${p.userid},${people}`),
            },
          },
        ]);
        const ldapRule = `  - id: ldap-cashiers\n    when: { group: { source: ldap-hq, name: cashiers } }\n    grant: cashier\n`;
        const e = await env({
          ...AUTO,
          people: 120,
          seed: 19,
          target: { kind: "hesi" },
          policies: { "hesi-main.yaml": hesiPolicy({ sensitiveCashier: false, rules: ldapRule }) },
          sources: [
            {
              id: "ldap-hq",
              type: "ldap",
              config: {
                url: slapd.url,
                flavor: "openldap",
                insecure: true,
                bindDn: slapd.adminDn,
                bindPassword: slapd.adminPassword,
                users: { baseDns: [people] },
                groups: { baseDns: [groups] },
              },
            },
          ],
          identityRules: [
            {
              id: "employee-no",
              match: [
                { source: "dingtalk-hq", attribute: "employeeNo" },
                { source: "ldap-hq", attribute: "employeeNo" },
              ],
            },
          ],
        });
        const hesi = e.hesi!;
        const [first] = await e.sync.run("cli", { fresh: "all", incremental: false });
        expect(first!.run.status).toBe("applied");
        const cashierGrants = (ids: readonly SimPerson[]) =>
          ids.map((p) => `${p.userid}|${HESI_ROLES.cashier}|`);
        expect(hesiHoldings(hesi, e.org).grants).toEqual(expect.arrayContaining(cashierGrants(ldapCashiers)));
        const cashierRows = structuredClone(hesi.roles().find((r) => r.name === HESI_ROLES.cashier)!.rows);

        // The LDAP server stops; meanwhile 研发中心 is to get a new role from DingTalk.
        await slapd.stop();
        stopped = true;
        e.writePolicy(
          "hesi-main.yaml",
          hesiPolicy({
            sensitiveCashier: false,
            roles: "  traveller: { targetRole: 差旅申请人 }\n",
            rules: `${ldapRule}  - id: rnd-travels\n    when: { department: { source: dingtalk-hq, path: 研发中心 } }\n    grant: traveller\n`,
          }),
        );
        const record = await e.sync.plan(e.targetId);
        const plan = await e.planOf(record.id);
        expect(plan.sources.map((s) => [s.id, s.complete])).toEqual([
          ["dingtalk-hq", true],
          ["ldap-hq", false],
        ]);
        const removals = new Set(["revoke", "disable-user", "disable-department"]);
        expect(plan.changes.filter((c) => removals.has(c.kind))).toEqual([]);
        expect(
          plan.blocked
            .map((b) => `${b.change.kind}|${"name" in b.change ? b.change.name : ""}|${b.sources.join()}`)
            .sort(),
        ).toEqual(ldapCashiers.map((p) => `revoke|${p.name}|ldap-hq`).sort());
        const paths = departmentPaths(e.org);
        const travellers = listed.filter((p) =>
          p.departments.some((d) => paths.get(d)!.split("/")[0] === "研发中心"),
        );
        expect(plan.changes.filter((c) => c.kind === "grant" && c.targetRole === "差旅申请人")).toHaveLength(
          travellers.length,
        );

        const { report } = await e.sync.apply(record.id);
        expect(report.failed).toEqual([]);
        expect(hesi.roles().find((r) => r.name === HESI_ROLES.cashier)!.rows).toEqual(cashierRows);
        expect(hesi.roles().find((r) => r.name === "差旅申请人")!.rows[0]!.staffs).toHaveLength(
          travellers.length,
        );
      } finally {
        if (!stopped) await slapd.stop();
      }
    },
  );
});
