/**
 * The `dingtalk` reader against the DingTalk simulator on 127.0.0.1, for every item of the reference's
 * checklist that applies to directory reads. The simulator's clock is frozen; the reader's `sleep`
 * advances it and resolves at once, so rate limits and backoff run fast and deterministically.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { SimClock } from "../../src/simulators/common/clock.js";
import type { SimOrg, SimPerson } from "../../src/simulators/common/org.js";
import {
  createDingTalkSimulator,
  startDingTalkSimulator,
  type DingTalkSimulatorOptions,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { dingtalkConfigSchema } from "../../src/sources/dingtalk/config.js";
import { openDingTalkDirectory } from "../../src/sources/dingtalk/reader.js";
import { openDirectory } from "../../src/sources/registry.js";
import { incompleteReasons, proveComplete, type DirectorySnapshot } from "../../src/sources/snapshot.js";
import type { ReadProgress, SourceContext } from "../../src/sources/source.js";

const SOURCE = "dingtalk-hq";
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

interface Harness {
  readonly sim: RunningDingTalkSimulator;
  readonly context: SourceContext;
  /** Every wait the reader asked for, in ms. */
  readonly sleeps: number[];
  read(config?: Record<string, unknown>, onProgress?: (p: ReadProgress) => void): Promise<DirectorySnapshot>;
}

async function harness(options: DingTalkSimulatorOptions = {}): Promise<Harness> {
  const clock = new SimClock(() => Date.UTC(2026, 0, 5, 9, 0, 0));
  const sim = await startDingTalkSimulator({ people: 200, seed: 11, clock, ...options });
  closers.push(sim.close);
  const sleeps: number[] = [];
  const context: SourceContext = {
    sourceId: SOURCE,
    now: () => new Date(clock.now()),
    sleep: (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
      return Promise.resolve();
    },
  };
  return {
    sim,
    context,
    sleeps,
    read: (config = {}, onProgress) =>
      openDingTalkDirectory(context, dingtalkConfigSchema.parse({ ...sim.sourceConfig(), ...config })).read({
        mode: "full",
        ...(onProgress ? { onProgress } : {}),
      }),
  };
}

const current = (org: SimOrg): SimPerson[] =>
  org.people.filter((p) => p.status === "active" || p.status === "not-activated");

/** An org with one department of `size` direct members under the root, so user/list needs several pages. */
function bigDepartmentOrg(size: number): SimOrg {
  const person = (i: number, dept: number): SimPerson => ({
    userid: `user${i}`,
    unionid: `union${i}`,
    name: `员工${i}`,
    pinyin: "Yuan Gong",
    mobile: `138${String(i).padStart(8, "0")}`,
    email: `user${i}@corp.example.cn`,
    jobNumber: `E${i}`,
    title: "会计",
    departments: [dept],
    leaderOf: i < 2 ? [dept] : [],
    status: "active",
    hiredAt: Date.UTC(2020, 0, 1),
    order: i,
  });
  return {
    corpName: "大部门公司",
    domain: "corp.example.cn",
    departments: [
      { id: 1, parentId: 0, name: "大部门公司", nameEn: "Big Dept Co", order: 0, leaders: ["user0"] },
      { id: 2, parentId: 1, name: "财务部", nameEn: "Finance", order: 10, leaders: ["user1"] },
    ],
    people: [person(0, 1), ...Array.from({ length: size }, (_, i) => person(i + 1, 2))],
    roles: [],
  };
}

function userListCursors(sim: RunningDingTalkSimulator, dept: number): [unknown, number | string][] {
  return sim
    .journal!.filter((e) => e.path === "/topapi/v2/user/list" && e.body.dept_id === dept)
    .map((e) => [e.body.cursor, e.answer]);
}

describe("dingtalk reader: a full read", () => {
  it("reads every current person once with departments, leaders and roles, and calls the read complete", async () => {
    const h = await harness({ people: 400, seed: 3 });
    const snapshot = await h.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(proveComplete(snapshot)).not.toBeNull();
    const org = h.sim.org;
    expect(snapshot.people.map((p) => p.subject).sort()).toEqual(
      current(org)
        .map((p) => p.userid)
        .sort(),
    );
    const partTimer = current(org).find((p) => p.departments.length > 1)!;
    const read = snapshot.people.find((p) => p.subject === partTimer.userid)!;
    expect(read.departments.map((d) => [d.departmentId, d.main])).toEqual(
      partTimer.departments.map((id, i) => [String(id), i === 0]),
    );
    expect(read.altIds).toEqual({ unionid: partTimer.unionid });
    expect(read).toMatchObject({ name: partTimer.name, email: partTimer.email, mobile: partTimer.mobile });

    expect(snapshot.departments).toHaveLength(org.departments.length);
    for (const dept of org.departments) {
      const got = snapshot.departments.find((d) => d.id === String(dept.id))!;
      expect(got).toMatchObject({
        parentId: dept.parentId === 0 ? null : String(dept.parentId),
        name: dept.name,
        order: dept.order,
      });
      expect([...got.leaders].sort()).toEqual([...dept.leaders].sort());
    }
    const leader = snapshot.people.find((p) => p.subject === org.departments[1]!.leaders[0])!;
    expect(leader.departments.find((d) => d.departmentId === String(org.departments[1]!.id))?.leader).toBe(
      true,
    );

    // Role members as DingTalk lists them: current members of the org only.
    const visible = new Set(current(org).map((p) => p.userid));
    const holders = (members: readonly string[]) => members.filter((id) => visible.has(id));
    for (const role of org.roles) {
      const group = snapshot.groups.find((g) => g.id === String(role.id))!;
      expect(group).toMatchObject({ kind: "role", name: role.name, path: role.group.name });
      expect([...group.members].sort()).toEqual(holders(role.members).sort());
    }
    const roleGroup = snapshot.groups.find((g) => g.id === "group-1001")!;
    const union = new Set(holders(org.roles.filter((r) => r.group.id === 1001).flatMap((r) => r.members)));
    expect(roleGroup.kind).toBe("role-group");
    expect([...roleGroup.members].sort()).toEqual([...union].sort());
  });

  it("keeps not-activated people active with activated=false; people who left or are disabled are absent", async () => {
    const h = await harness({ people: 400, seed: 3 });
    const snapshot = await h.read();
    const byId = new Map(snapshot.people.map((p) => [p.subject, p]));
    const org = h.sim.org.people;
    const notActivated = org.filter((p) => p.status === "not-activated");
    expect(notActivated.length).toBeGreaterThan(0);
    for (const p of notActivated) {
      expect(byId.get(p.userid)).toMatchObject({ status: "active", attributes: { activated: "false" } });
    }
    for (const p of org.filter((p) => p.status === "left" || p.status === "disabled")) {
      expect(byId.has(p.userid)).toBe(false);
    }
    expect(byId.get(org.find((p) => p.status === "active")!.userid)?.attributes.activated).toBe("true");
  });

  it("pages a department of 250 members at 100 per page and reports progress", async () => {
    const h = await harness({ org: bigDepartmentOrg(250), journal: true });
    const progress: ReadProgress[] = [];
    const snapshot = await h.read({}, (p) => progress.push(p));
    expect(snapshot.people).toHaveLength(251);
    expect(userListCursors(h.sim, 2)).toEqual([
      [0, 0],
      [100, 0],
      [200, 0],
    ]);
    expect(
      h.sim.journal!.filter((e) => e.path === "/topapi/v2/user/list").every((e) => e.body.size === 100),
    ).toBe(true);
    expect(progress.filter((p) => p.phase === "people").at(-1)?.done).toBe(251);
    expect(progress.some((p) => p.phase === "departments")).toBe(true);
  });

  it("pages role members beyond 100 with role/simplelist offsets", async () => {
    const h = await harness({ people: 3000, seed: 2, journal: true });
    const snapshot = await h.read();
    expect(snapshot.completeness.complete).toBe(true);
    const big = h.sim.org.roles.find((r) => r.members.length > 100)!;
    const offsets = h.sim
      .journal!.filter((e) => e.path === "/topapi/role/simplelist" && e.body.role_id === big.id)
      .map((e) => [e.body.offset, e.body.size]);
    expect(offsets).toEqual([
      [0, 100],
      [100, 100],
    ]);
    // DingTalk lists current members only (disabled people are absent from the org).
    const visible = new Set(current(h.sim.org).map((p) => p.userid));
    const expected = big.members.filter((id) => visible.has(id));
    const group = snapshot.groups.find((g) => g.id === String(big.id))!;
    expect(group.members).toHaveLength(expected.length);
    expect(new Set(group.members)).toEqual(new Set(expected));
  });

  it("reads managers with fetchUserDetails, and marks managers unavailable without it", async () => {
    const h = await harness();
    const without = await h.read();
    expect(without.unavailableFields.map((f) => f.field)).toContain("managers");
    expect(without.people.every((p) => p.managers.length === 0)).toBe(true);

    const detailed = await h.read({ fetchUserDetails: true });
    expect(detailed.completeness.complete).toBe(true);
    expect(detailed.unavailableFields.map((f) => f.field)).not.toContain("managers");
    const visible = new Set(current(h.sim.org).map((p) => p.userid));
    for (const person of current(h.sim.org)) {
      const expected = person.manager !== undefined && visible.has(person.manager) ? [person.manager] : [];
      expect(detailed.people.find((p) => p.subject === person.userid)?.managers).toEqual(expected);
    }
  });

  it("ends incomplete with ABORTED when the caller aborts, and calls nothing more", async () => {
    const h = await harness({ people: 400 });
    const controller = new AbortController();
    const reader = openDingTalkDirectory(h.context, dingtalkConfigSchema.parse(h.sim.sourceConfig()));
    let callsAtAbort = 0;
    const snapshot = await reader.read({
      mode: "full",
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "departments" && !controller.signal.aborted) {
          controller.abort();
          callsAtAbort = [...h.sim.controls.calls.values()].reduce((a, b) => a + b, 0);
        }
      },
    });
    expect(incompleteReasons(snapshot).map((r) => r.code)).toEqual(["ABORTED"]);
    const calls = [...h.sim.controls.calls.values()].reduce((a, b) => a + b, 0);
    // Only requests already on the wire when the signal fired may still arrive.
    expect(calls - callsAtAbort).toBeLessThanOrEqual(4 * 6);
    expect(snapshot.people.length).toBeLessThan(current(h.sim.org).length);
  });

  it("opens through the source registry with the schema's defaults", async () => {
    const h = await harness();
    const reader = await openDirectory(
      { id: SOURCE, type: "dingtalk", config: dingtalkConfigSchema.parse(h.sim.sourceConfig()) },
      h.context,
    );
    const snapshot = await reader.read({ mode: "full" });
    expect(snapshot.sourceType).toBe("dingtalk");
    expect(snapshot.people).toHaveLength(current(h.sim.org).length);
    await reader.close();
  });
});

describe("dingtalk reader: tokens", () => {
  it.each([
    ["88-wrapped 40014, token from v1.0/oauth2/accessToken", { legacyErrors: "wrapped" }, "api", 40014],
    [
      "direct 42001, token from gettoken",
      { legacyErrors: "direct", expiredTokenErrcode: 42001 },
      "oapi",
      42001,
    ],
  ] as const)(
    "refreshes an expired token once between two pages and repeats the same cursor (%s)",
    async (_name, simOptions, tokenApi, errcode) => {
      const h = await harness({ org: bigDepartmentOrg(350), journal: true, ...simOptions });
      let expired = false;
      const snapshot = await h.read({ tokenApi }, (p) => {
        // Right after the first page of the big department.
        if (p.phase === "people" && p.done === 101 && !expired) {
          expired = true;
          h.sim.controls.tokenStores[0]!.expireAll();
        }
      });
      expect(expired).toBe(true);
      expect(snapshot.completeness).toEqual({ complete: true });
      expect(userListCursors(h.sim, 2)).toEqual([
        [0, 0],
        [100, errcode],
        [100, 0],
        [200, 0],
        [300, 0],
      ]);
      const tokenPath = tokenApi === "api" ? "/v1.0/oauth2/accessToken" : "/gettoken";
      expect(h.sim.controls.calls.get(tokenPath)).toBe(2);
      const subjects = snapshot.people.map((p) => p.subject);
      expect(new Set(subjects).size).toBe(351);
      expect(subjects).toHaveLength(351);
    },
  );

  it.each(["api", "oapi"] as const)(
    "reports a wrong app secret as AUTH_FAILED naming the source, in read and test (token via %s)",
    async (tokenApi) => {
      const h = await harness();
      const config = { tokenApi, appSecret: "not-the-secret" };
      const snapshot = await h.read(config);
      expect(snapshot.people).toHaveLength(0);
      const reasons = incompleteReasons(snapshot);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toMatchObject({ code: "AUTH_FAILED" });
      expect(reasons[0]!.message).toMatch(/^dingtalk-hq: DingTalk refused the app credentials .*appSecret/);
      // Only the token endpoint was asked, once.
      expect([...h.sim.controls.calls.keys()]).toEqual([
        tokenApi === "api" ? "/v1.0/oauth2/accessToken" : "/gettoken",
      ]);
      const report = await openDingTalkDirectory(
        h.context,
        dingtalkConfigSchema.parse({ ...h.sim.sourceConfig(), ...config }),
      ).test();
      expect(report.ok).toBe(false);
      expect(report.problems.map((p) => p.code)).toEqual(["AUTH_FAILED"]);
    },
  );
});

describe("dingtalk reader: rate limits and bans", () => {
  it("stays under the documented 20 calls per second per API without drawing 90018", async () => {
    const h = await harness({ people: 600, seed: 5 });
    const snapshot = await h.read({ requestsPerSecond: 20 });
    expect(snapshot.completeness.complete).toBe(true);
    expect(h.sim.controls.calls.get("/topapi/v2/user/list")).toBeGreaterThan(20);
    expect([...h.sim.throttled.values()]).toEqual([]);
  });

  it("backs off at least 1 s on 90018 and resumes from the same cursor", async () => {
    const h = await harness({ org: bigDepartmentOrg(250), journal: true, faults: "rate-limit-after=4*2" });
    const snapshot = await h.read({ concurrency: 1, readRoles: false });
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people).toHaveLength(251);
    const throttled = h.sim.journal!.filter((e) => e.answer === 90018);
    expect(throttled).toHaveLength(2);
    // Each throttled call is repeated with the same body (same department, same cursor).
    for (const entry of throttled) {
      const again = h.sim.journal!.filter(
        (e) => e.path === entry.path && JSON.stringify(e.body) === JSON.stringify(entry.body),
      );
      expect(again.map((e) => e.answer)).toContain(0);
    }
    expect(h.sleeps.filter((ms) => ms >= 1000).length).toBeGreaterThanOrEqual(2);
  });

  it("waits and completes when configured above the simulator's QPS limit", async () => {
    const h = await harness({ people: 600, seed: 5, qps: 10 });
    const snapshot = await h.read({ requestsPerSecond: 40, concurrency: 8 });
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(h.sim.throttled.get("/topapi/v2/user/list") ?? 0).toBeGreaterThan(0);
    expect(snapshot.people).toHaveLength(current(h.sim.org).length);
  });

  it("gives up as RATE_LIMITED when throttling does not end", async () => {
    const h = await harness({ faults: "rate-limit-after=0*always" });
    const snapshot = await h.read({ readRoles: false });
    const reasons = incompleteReasons(snapshot);
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.every((r) => r.code === "RATE_LIMITED")).toBe(true);
    expect(reasons[0]!.message).toMatch(/^dingtalk-hq: still rate-limited .*errcode 90018/);
  });

  it.each(["json", "html"] as const)(
    "ends the read incomplete with BANNED when the IP is banned (%s ban page) and stops calling",
    async (banReply) => {
      const h = await harness({ people: 400, banReply, faults: "ban-after=10" });
      const snapshot = await h.read();
      expect(snapshot.completeness.complete).toBe(false);
      const reasons = incompleteReasons(snapshot);
      expect(reasons.map((r) => r.code)).toEqual(["BANNED"]);
      expect(reasons[0]!.message).toMatch(
        /^dingtalk-hq: DingTalk has banned this server's IP address for about 5 minutes/,
      );
      const calls = [...h.sim.controls.calls.values()].reduce((a, b) => a + b, 0);
      // 10 served, then only the calls already in flight (4 per API at most) meet the ban.
      expect(calls).toBeLessThan(10 + 1 + 4 * 6);
      expect(proveComplete(snapshot)).toBeNull();
    },
  );

  it("stays under the per-IP limit when callsPer20sPerIp is below it", async () => {
    const h = await harness({ people: 600, seed: 5, ipLimit: { calls: 60 } });
    const snapshot = await h.read({ callsPer20sPerIp: 50 });
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(h.sleeps.some((ms) => ms > 5000)).toBe(true);
  });
});

describe("dingtalk reader: server errors", () => {
  it("retries HTTP 502 and system busy (-1) and completes when the server recovers within 3 retries", async () => {
    const h = await harness({
      faults: "5xx@/topapi/v2/user/list*3,busy@/topapi/v2/department/get*3",
      legacyErrors: "direct",
    });
    const snapshot = await h.read({ concurrency: 1 });
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people).toHaveLength(current(h.sim.org).length);
  });

  it("gives up on a page after 3 retries of HTTP 502 with SERVER_ERROR naming the page, reading the rest", async () => {
    const h = await harness({ faults: "5xx@/topapi/v2/user/list*4" });
    const snapshot = await h.read({ concurrency: 1 });
    const reasons = incompleteReasons(snapshot);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({
      code: "SERVER_ERROR",
      where: "POST /topapi/v2/user/list dept 1 cursor 0",
    });
    expect(reasons[0]!.message).toMatch(/^dingtalk-hq: DingTalk answered HTTP 502\b.*after 3 retries/);
    // The root's direct member is missing; everyone else was read.
    const rootMembers = current(h.sim.org).filter((p) => p.departments.includes(1));
    expect(snapshot.people).toHaveLength(current(h.sim.org).length - rootMembers.length);
    expect(h.sim.controls.calls.get("/topapi/v2/user/list")).toBe(h.sim.org.departments.length + 3);
  });

  it("stops calling after 5 failed pages when an endpoint fails everywhere, saying the rest was not read", async () => {
    const h = await harness({ people: 2000, faults: "5xx@/topapi/v2/user/list*always" });
    const snapshot = await h.read({ concurrency: 2 });
    const reasons = incompleteReasons(snapshot);
    expect(reasons.slice(0, 5).every((r) => r.code === "SERVER_ERROR")).toBe(true);
    expect(reasons.filter((r) => r.code === "GAVE_UP")).toHaveLength(1);
    expect(reasons.find((r) => r.code === "GAVE_UP")!.message).toBe(
      "dingtalk-hq: stopped reading after 5 failed requests; the rest of the directory was not read (fix the causes above and read again)",
    );
    // Each failed page costs 1 + 3 attempts; pages already in flight (2 at a time) may still fail.
    const attempts = h.sim.controls.calls.get("/topapi/v2/user/list") ?? 0;
    expect(attempts).toBeLessThanOrEqual((5 + 2) * 4);
    expect(h.sim.org.departments.length).toBe(80);
    expect(proveComplete(snapshot)).toBeNull();
  });

  it("gives up after 3 retries of system busy (-1) as SERVER_ERROR", async () => {
    const h = await harness({ faults: "busy@/topapi/v2/department/get*4" });
    const snapshot = await h.read({ concurrency: 1 });
    const reasons = incompleteReasons(snapshot);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]!.code).toBe("SERVER_ERROR");
    expect(reasons[0]!.message).toContain("errcode -1");
    expect(snapshot.departments.find((d) => d.id === "1")).toBeUndefined();
  });

  it("reports a missing contact permission as PERMISSION_DENIED with the permission point and the fix, once", async () => {
    const h = await harness({ permissions: { qyapi_get_department_member: false } });
    const snapshot = await h.read({ readRoles: false });
    const reasons = incompleteReasons(snapshot);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]!.code).toBe("PERMISSION_DENIED");
    expect(reasons[0]!.message).toMatch(
      /^dingtalk-hq: the app lacks the contact permission qyapi_get_department_member \(errcode 60011 .*\) — grant 通讯录部门成员读权限/,
    );
    expect(snapshot.people).toHaveLength(0);
    // Departments are still read: that permission point is granted.
    expect(snapshot.departments).toHaveLength(h.sim.org.departments.length);
  });

  it("reports departments outside the app's contact scope (50004) and reads the ones inside", async () => {
    // Scope: the finance department's subtree (id 2) only; everything else answers 50004.
    const h = await harness({ contactScope: [2] });
    const snapshot = await h.read({ readRoles: false, concurrency: 1 });
    const byId = new Map(h.sim.org.departments.map((d) => [d.id, d]));
    const underFinance = (id: number): boolean => {
      for (let d = byId.get(id); d !== undefined; d = byId.get(d.parentId)) if (d.id === 2) return true;
      return false;
    };
    const finance = new Set(h.sim.org.departments.filter((d) => underFinance(d.id)).map((d) => d.id));
    const reasons = incompleteReasons(snapshot);
    // Every department outside the scope is named, and reading goes on (these do not count as giving up).
    expect(reasons.map((r) => r.code)).toEqual(
      Array<string>(h.sim.org.departments.length - finance.size).fill("PERMISSION_DENIED"),
    );
    expect(reasons[0]!.message).toMatch(/^dingtalk-hq: the department is outside the app's contact scope/);
    expect(reasons[0]!.where).toBe("POST /topapi/v2/user/list dept 1 cursor 0");
    const inScope = current(h.sim.org).filter((p) => p.departments.some((d) => finance.has(d)));
    expect(inScope.length).toBeGreaterThan(0);
    for (const person of inScope) expect(snapshot.people.map((p) => p.subject)).toContain(person.userid);
    expect(proveComplete(snapshot)).toBeNull();
  });

  it("reports a malformed page as MALFORMED_RESPONSE naming the endpoint and field, with no partial people", async () => {
    const clock = new SimClock(() => Date.UTC(2026, 0, 5));
    const inner = createDingTalkSimulator({ people: 200, seed: 11, clock });
    const broken = inner.org.departments[3]!.id;
    const app = express();
    app.post("/topapi/v2/user/list", express.json(), (req, res, next) => {
      if ((req.body as { dept_id?: number }).dept_id !== broken) return next();
      res.json({
        errcode: 0,
        errmsg: "ok",
        result: {
          has_more: false,
          list: [{ userid: "ok1", name: "好", dept_id_list: [broken] }, { name: "无名" }],
        },
      });
    });
    app.use(inner.app);
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const context: SourceContext = {
      sourceId: SOURCE,
      now: () => new Date(clock.now()),
      sleep: (ms) => Promise.resolve(clock.advance(ms)),
    };
    const snapshot = await openDingTalkDirectory(
      context,
      dingtalkConfigSchema.parse(inner.sourceConfig(url)),
    ).read({
      mode: "full",
    });
    const reasons = incompleteReasons(snapshot);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({
      code: "MALFORMED_RESPONSE",
      where: `POST /topapi/v2/user/list dept ${broken} cursor 0`,
    });
    expect(reasons[0]!.message).toContain("result.list[1].userid");
    expect(snapshot.people.find((p) => p.subject === "ok1")).toBeUndefined();
  });
});

describe("dingtalk reader: restricted fields and source test", () => {
  it("marks mobile and email unavailable without their permissions and leaves the fields absent", async () => {
    const h = await harness({ permissions: { mobile: false, email: false } });
    const snapshot = await h.read();
    expect(snapshot.completeness.complete).toBe(true);
    expect(snapshot.unavailableFields.map((f) => f.field).sort()).toEqual(["email", "managers", "mobile"]);
    expect(snapshot.unavailableFields.find((f) => f.field === "mobile")!.reason).toContain(
      "企业员工手机号信息",
    );
    for (const person of snapshot.people) {
      expect(person).not.toHaveProperty("mobile");
      expect(person).not.toHaveProperty("email");
      expect(person.name).toBeTruthy();
    }
  });

  it("test() authenticates, reads the root, one page of people and the roles", async () => {
    const h = await harness();
    const report = await openDingTalkDirectory(
      h.context,
      dingtalkConfigSchema.parse(h.sim.sourceConfig()),
    ).test();
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.found.join("\n")).toMatch(/authenticated as app ding/);
    expect(report.found.join("\n")).toContain(`root department ${h.sim.org.corpName} (id 1)`);
    expect(report.found.join("\n")).toMatch(/2 role groups with 6 roles/);
    expect(report.unavailableFields.map((f) => f.field)).toEqual(["managers"]);
  });

  it("test() reports missing permissions and fields DingTalk will not send", async () => {
    const h = await harness({ permissions: { qyapi_get_department_list: false, mobile: false } });
    const report = await openDingTalkDirectory(
      h.context,
      dingtalkConfigSchema.parse(h.sim.sourceConfig()),
    ).test();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toContain("PERMISSION_DENIED");
    expect(report.problems[0]!.message).toContain("qyapi_get_department_list");
    expect(report.unavailableFields.map((f) => f.field)).toContain("mobile");
  });
});
