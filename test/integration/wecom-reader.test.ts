import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { listenLocal } from "../../src/simulators/common/control.js";
import type { SimOrg } from "../../src/simulators/common/org.js";
import {
  createWeComSimulator,
  type WeComSimulatorOptions,
  type WeComSourceConfigChoice,
} from "../../src/simulators/wecom/index.js";
import type { DirectorySnapshot } from "../../src/sources/snapshot.js";
import type { DirectoryReader, ReadProgress, SourceContext } from "../../src/sources/source.js";
import { wecomConfigSchema } from "../../src/sources/wecom/config.js";
import { wecomSource } from "../../src/sources/wecom/index.js";

interface Setup {
  readonly reader: DirectoryReader;
  readonly org: SimOrg;
  readonly calls: Map<string, number>;
  readonly errcodes: ReadonlyMap<number, number>;
  /** Every wait the reader asked for, in ms. */
  readonly slept: number[];
  readonly sim: ReturnType<typeof createWeComSimulator>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/**
 * The reader against a simulator on 127.0.0.1:0; `sleep` moves the simulator's clock and resolves at once
 * (or after `realWait(ms)` real milliseconds, for tests that need calls to overlap).
 */
async function setup(
  options: {
    sim?: WeComSimulatorOptions;
    config?: Record<string, unknown>;
    choice?: WeComSourceConfigChoice;
    intercept?: (app: express.Express) => void;
    realWait?: (ms: number) => number;
    /** Config values that depend on the simulator's generated credentials. */
    configFrom?: (sim: ReturnType<typeof createWeComSimulator>) => Record<string, unknown>;
  } = {},
): Promise<Setup> {
  const sim = createWeComSimulator({ people: 200, seed: 7, ...options.sim });
  const outer = express();
  options.intercept?.(outer);
  outer.use(sim.app);
  const running = await listenLocal(outer);
  closers.push(() => running.close());
  const slept: number[] = [];
  const context: SourceContext = {
    sourceId: "wecom-hq",
    now: () => new Date(sim.controls.clock.now()),
    sleep: async (ms) => {
      slept.push(ms);
      sim.controls.clock.advance(ms);
      const real = options.realWait?.(ms) ?? 0;
      if (real > 0) await new Promise((resolve) => setTimeout(resolve, real));
    },
  };
  const config = wecomConfigSchema.parse({
    ...sim.sourceConfig(running.url, options.choice),
    ...options.config,
    ...options.configFrom?.(sim),
  });
  return {
    reader: wecomSource.openDirectory!(context, config),
    org: sim.org,
    calls: sim.controls.calls,
    errcodes: sim.errcodes,
    slept,
    sim,
  };
}

const reasons = (snapshot: DirectorySnapshot) =>
  snapshot.completeness.complete ? [] : snapshot.completeness.reasons;

function under(org: SimOrg, root: number): Set<number> {
  const out = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const d of org.departments) {
      if (!out.has(d.id) && out.has(d.parentId)) {
        out.add(d.id);
        grew = true;
      }
    }
  }
  return out;
}

describe("wecom reader: a full read", () => {
  it("reads every person once with main and part-time departments, leader flags, managers and statuses", async () => {
    const { reader, org } = await setup();
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people.map((p) => p.subject).sort()).toEqual(org.people.map((p) => p.userid).sort());
    const bySubject = new Map(snapshot.people.map((p) => [p.subject, p]));

    const partTime = org.people.find((p) => p.departments.length > 1)!;
    expect(bySubject.get(partTime.userid)!.departments).toEqual([
      { departmentId: String(partTime.departments[0]), main: true, leader: false },
      { departmentId: String(partTime.departments[1]), main: false, leader: false },
    ]);
    const leader = org.people.find((p) => p.leaderOf.length > 0 && p.manager !== undefined)!;
    expect(bySubject.get(leader.userid)).toMatchObject({
      name: leader.name,
      email: leader.email,
      mobile: leader.mobile,
      employeeNo: leader.jobNumber,
      title: leader.title,
      managers: [leader.manager],
      departments: [{ departmentId: String(leader.leaderOf[0]), main: true, leader: true }],
      status: "active",
    });
    const expected = {
      active: "active",
      disabled: "disabled",
      "not-activated": "active",
      left: "left",
    } as const;
    for (const status of ["disabled", "not-activated", "left"] as const) {
      const simPerson = org.people.find((p) => p.status === status)!;
      expect(bySubject.get(simPerson.userid)!.status).toBe(expected[status]);
    }
    const notActivated = org.people.find((p) => p.status === "not-activated")!;
    expect(bySubject.get(notActivated.userid)!.attributes.activated).toBe("false");
    expect(bySubject.get(leader.userid)!.attributes.activated).toBeUndefined();
  });

  it("reads the department tree with parents, order and leaders from department_leader", async () => {
    const { reader, org } = await setup();
    const snapshot = await reader.read();
    expect(snapshot.departments).toHaveLength(org.departments.length);
    const byId = new Map(snapshot.departments.map((d) => [d.id, d]));
    expect(byId.get("1")).toMatchObject({ parentId: null, name: org.departments[0]!.name });
    for (const d of org.departments.slice(1)) {
      expect(byId.get(String(d.id))).toEqual({
        id: String(d.id),
        parentId: String(d.parentId),
        name: d.name,
        order: d.order,
        leaders: d.leaders,
      });
    }
  });

  it("reads tags as groups whose members include everyone in tagged departments and their sub-departments", async () => {
    const { reader, org } = await setup();
    const snapshot = await reader.read();
    expect(snapshot.groups.map((g) => g.name).sort()).toEqual(org.roles.map((r) => r.name).sort());
    const tagged = org.roles.find((r) => r.departments.length > 0)!;
    const group = snapshot.groups.find((g) => g.id === String(tagged.id))!;
    expect(group.kind).toBe("tag");
    expect(group.directMembers).toEqual([...tagged.members].sort());
    const subtree = under(org, tagged.departments[0]!);
    const inSubtree = org.people
      .filter((p) => p.departments.some((d) => subtree.has(d)))
      .map((p) => p.userid);
    expect(inSubtree.some((u) => !tagged.members.includes(u))).toBe(true);
    expect(group.members).toEqual([...new Set([...tagged.members, ...inSubtree])].sort());
  });

  it("lists the same people with user/list_id + user/get as with the department walk", async () => {
    const walk = await (await setup()).reader.read();
    const listed = await setup({ config: { listing: "list-id", pageSize: 64 } });
    const byIds = await listed.reader.read();
    expect(byIds.completeness).toEqual({ complete: true });
    // english_name comes only with user/list; open_userid depends on the (generated) corpId of each simulator.
    const strip = (s: DirectorySnapshot) =>
      s.people.map(({ attributes: { english_name: _e, open_userid: _o, ...attributes }, ...p }) => ({
        ...p,
        attributes,
      }));
    expect(strip(byIds)).toEqual(strip(walk));
    expect(listed.calls.get("/cgi-bin/user/get")).toBe(listed.org.people.length);
  });

  it("reports progress for departments, people and groups", async () => {
    const { reader, org } = await setup();
    const seen: ReadProgress[] = [];
    await reader.read({ mode: "full", onProgress: (p) => seen.push(p) });
    expect(seen.filter((p) => p.phase === "people").at(-1)).toEqual({
      phase: "people",
      done: org.departments.length,
      total: org.departments.length,
    });
    expect(seen.some((p) => p.phase === "departments")).toBe(true);
    expect(seen.filter((p) => p.phase === "groups").at(-1)?.done).toBe(org.roles.length);
  });

  it("reads only the visible range of an app", async () => {
    const probe = createWeComSimulator({ people: 200, seed: 7 });
    const top = probe.org.departments.find(
      (d) => d.parentId === 1 && probe.org.departments.some((c) => c.parentId === d.id),
    )!;
    const { reader, org } = await setup({
      sim: { apps: [{ agentId: 1000002, visibleDepartments: [top.id] }] },
      choice: { use: "app" },
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    const subtree = under(org, top.id);
    expect(snapshot.departments.map((d) => Number(d.id)).sort((a, b) => a - b)).toEqual(
      [...subtree].sort((a, b) => a - b),
    );
    expect(snapshot.departments.find((d) => d.id === String(top.id))!.parentId).toBeNull();
    expect(snapshot.people.map((p) => p.subject).sort()).toEqual(
      org.people
        .filter((p) => p.departments.some((d) => subtree.has(d)))
        .map((p) => p.userid)
        .sort(),
    );
  });
});

describe("wecom reader: tokens, limits and transient errors", () => {
  for (const expiredTokenErrcode of [42001, 40014] as const) {
    it(`refreshes the token once on ${expiredTokenErrcode} between user/list_id pages and repeats the same cursor`, async () => {
      const { reader, org, calls, errcodes } = await setup({
        sim: { expiredTokenErrcode, faults: "expire-token-after=3" },
        config: { listing: "list-id", pageSize: 50, readTags: false },
      });
      const snapshot = await reader.read();
      expect(snapshot.completeness).toEqual({ complete: true });
      expect(errcodes.get(expiredTokenErrcode)).toBe(1);
      expect(calls.get("/cgi-bin/gettoken")).toBe(2);
      const rows = org.people.reduce((n, p) => n + p.departments.length, 0);
      // department/list, then every page once, plus the one page repeated after the refresh.
      expect(calls.get("/cgi-bin/user/list_id")).toBe(Math.ceil(rows / 50) + 1);
      expect(snapshot.people.map((p) => p.subject).sort()).toEqual(org.people.map((p) => p.userid).sort());
    });
  }

  it("refreshes the token when it expires in the middle of the department walk", async () => {
    const { reader, org, calls, errcodes } = await setup({
      sim: { faults: "expire-token-after=7" },
      config: { concurrency: 1 },
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(errcodes.get(42001)).toBe(1);
    expect(calls.get("/cgi-bin/gettoken")).toBe(2);
    expect(calls.get("/cgi-bin/user/list")).toBe(org.departments.length + 1);
    expect(snapshot.people).toHaveLength(org.people.length);
  });

  it("waits out 45009 from the per-minute limit and resumes where it stopped", async () => {
    const { reader, org, errcodes, slept } = await setup({
      sim: { rateLimitPerMinute: 10 },
      config: { concurrency: 1 },
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(errcodes.get(45009)).toBeGreaterThan(0);
    expect(slept.every((ms) => ms >= 60_000)).toBe(true);
    expect(snapshot.people).toHaveLength(org.people.length);
  });

  it("stays under requestsPerMinute so the corp's per-API limit is never hit", async () => {
    const { reader, errcodes, calls, org } = await setup({
      sim: { rateLimitPerMinute: 10 },
      // One call in flight: the simulated clock jumps a minute while other calls are in flight, so a call
      // taken in one minute could otherwise arrive in the next.
      config: { requestsPerMinute: 10, concurrency: 1 },
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(errcodes.get(45009)).toBeUndefined();
    expect(calls.get("/cgi-bin/user/list")).toBe(org.departments.length);
  });

  it("repeats a call after a single injected 45009", async () => {
    const { reader, errcodes } = await setup({ sim: { faults: "rate-limit-after=4" } });
    const snapshot = await reader.read();
    expect(errcodes.get(45009)).toBe(1);
    expect(snapshot.completeness).toEqual({ complete: true });
  });

  it("ends as incomplete with BANNED when 45009 lasts beyond the minute block", async () => {
    const { reader } = await setup({ sim: { faults: "ban-after=3" }, config: { concurrency: 1 } });
    const snapshot = await reader.read();
    const [reason, ...others] = reasons(snapshot);
    expect(others).toEqual([]);
    expect(reason).toMatchObject({ code: "BANNED" });
    expect(reason!.message).toMatch(/^wecom-hq: .*45009.*hourly limit/);
    expect(snapshot.people.length).toBeLessThan(200);
  });

  it("backs off on 45033 and finishes the read", async () => {
    const { reader, errcodes, org } = await setup({
      sim: { maxConcurrent: 1, faults: "latency=3" },
      config: { concurrency: 4, readTags: false },
      realWait: (ms) => Math.min(200, ms / 50),
    });
    const snapshot = await reader.read();
    expect(errcodes.get(45033)).toBeGreaterThan(0);
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people).toHaveLength(org.people.length);
  });

  for (const [fault, what] of [
    ["5xx", "HTTP 502"],
    ["busy", "busy (errcode -1"],
  ] as const) {
    it(`retries ${fault} three times and succeeds on the fourth attempt`, async () => {
      const { reader, org } = await setup({
        sim: { faults: `${fault}@/cgi-bin/user/list*3` },
        config: { concurrency: 1 },
      });
      const snapshot = await reader.read();
      expect(snapshot.completeness).toEqual({ complete: true });
      expect(snapshot.people).toHaveLength(org.people.length);
    });

    it(`marks the read incomplete when ${fault} persists past three retries, naming the department`, async () => {
      const { reader, org, calls } = await setup({
        sim: { faults: `${fault}@/cgi-bin/user/list*4` },
        config: { concurrency: 1 },
      });
      const snapshot = await reader.read();
      const [reason, ...others] = reasons(snapshot);
      expect(others).toEqual([]);
      expect(reason).toMatchObject({ code: "SERVER_ERROR", where: "GET /cgi-bin/user/list department_id 1" });
      expect(reason!.message).toContain(what);
      expect(reason!.message).toMatch(/^wecom-hq: .*after 3 retries/);
      expect(calls.get("/cgi-bin/user/list")).toBe(org.departments.length + 3);
      const onlyInRoot = org.people.filter((p) => p.departments.every((d) => d === 1));
      expect(snapshot.people).toHaveLength(org.people.length - onlyInRoot.length);
    });
  }

  it("stops calling after 5 failed departments when user/list fails everywhere", async () => {
    const { reader, org, calls } = await setup({
      sim: { faults: "5xx@/cgi-bin/user/list*always" },
      config: { concurrency: 2 },
    });
    const snapshot = await reader.read();
    const codes = reasons(snapshot).map((r) => r.code);
    expect(codes.slice(0, 5)).toEqual(Array(5).fill("SERVER_ERROR"));
    expect(codes.filter((c) => c === "GAVE_UP")).toHaveLength(1);
    // Each failed department costs 1 + 3 attempts; the 2 in flight when it stops may still fail.
    expect(calls.get("/cgi-bin/user/list")).toBeLessThanOrEqual((5 + 2) * 4);
    expect(org.departments.length).toBe(30);
  });
});

describe("wecom reader: credentials, permissions and the 2022 rules", () => {
  it("reports a wrong secret as AUTH_FAILED naming the source, with no people", async () => {
    const { reader } = await setup({ config: { contactSecret: "not-the-secret" } });
    const snapshot = await reader.read();
    expect(reasons(snapshot)).toEqual([
      expect.objectContaining({
        code: "AUTH_FAILED",
        message: expect.stringMatching(/^wecom-hq: WeCom rejected the 通讯录同步 .*40001/),
      }),
    ]);
    expect(snapshot.people).toEqual([]);
    const report = await reader.test();
    expect(report.ok).toBe(false);
    expect(report.problems[0]!.code).toBe("AUTH_FAILED");
  });

  it("reports a wrong corpId as AUTH_FAILED with errcode 40013", async () => {
    const { reader } = await setup({ config: { corpId: "ww0000000000000000" } });
    const [reason] = reasons(await reader.read());
    expect(reason).toMatchObject({ code: "AUTH_FAILED", message: expect.stringContaining("40013") });
  });

  it("says that an app secret was given where user/list_id needs the 通讯录同步 secret (48002)", async () => {
    const { reader } = await setup({
      config: { listing: "list-id" },
      configFrom: (sim) => ({ contactSecret: sim.credentials.apps[0]!.secret }),
    });
    const [reason, ...others] = reasons(await reader.read());
    expect(others).toEqual([]);
    expect(reason).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(reason!.message).toMatch(
      /^wecom-hq: the secret in contactSecret is an app secret, but user\/list_id needs the 通讯录同步 secret \(errcode 48002/,
    );
    const report = await reader.test();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual(["PERMISSION_DENIED"]);
  });

  it("explains 60020 for a caller outside the app's 企业可信IP", async () => {
    const { reader } = await setup({
      sim: { apps: [{ agentId: 1000002, trustedIps: ["10.1.2.3"] }] },
      choice: { use: "app" },
    });
    const [reason] = reasons(await reader.read());
    expect(reason).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(reason!.message).toContain("企业可信IP");
    expect(reason!.message).toContain("127.0.0.1");
  });

  it("explains the 2022-08-15 rule when a new 通讯录同步 IP may not call department/list", async () => {
    const { reader } = await setup({ sim: { contactSyncIpAddedAfter20220815: true } });
    const snapshot = await reader.read();
    const [reason] = reasons(snapshot);
    expect(reason).toMatchObject({ code: "PERMISSION_DENIED", where: "GET /cgi-bin/department/list" });
    expect(reason!.message).toContain("2022-08-15");
    expect(snapshot.people).toEqual([]);
  });

  it("marks mobile and email unavailable for an app created after 2022 and still gives every person a userid and name", async () => {
    const { reader, org } = await setup({
      sim: { apps: [{ agentId: 1000002, createdAfter2022: true }] },
      choice: { use: "app" },
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.unavailableFields.map((f) => f.field).sort()).toEqual(["email", "mobile"]);
    expect(snapshot.unavailableFields[0]!.reason).toContain("2022-06-20");
    expect(snapshot.people).toHaveLength(org.people.length);
    for (const person of snapshot.people) {
      expect(person.subject).toMatch(/^[a-z]+\d*$/);
      expect(person.name).toBeTruthy();
      expect(person).not.toHaveProperty("mobile");
      expect(person).not.toHaveProperty("email");
    }
    const report = await reader.test();
    expect(report.ok).toBe(true);
    expect(report.unavailableFields.map((f) => f.field).sort()).toEqual(["email", "mobile"]);
  });

  it("marks nothing unavailable when the 通讯录同步 secret gets every field", async () => {
    const snapshot = await (await setup()).reader.read();
    expect(snapshot.unavailableFields).toEqual([]);
  });

  it("reports what it found in test(): the secret kind, departments and the first page", async () => {
    const report = await (await setup()).reader.test();
    expect(report.ok).toBe(true);
    expect(report.found[0]).toContain("通讯录同步");
    expect(report.found.some((line) => /\d+ departments visible/.test(line))).toBe(true);
  });
});

describe("wecom reader: malformed replies and interruptions", () => {
  it("makes a page with a user without userid MALFORMED_RESPONSE, naming endpoint and field, and keeps nobody from it", async () => {
    const { reader, org } = await setup({
      intercept: (app) =>
        app.get("/cgi-bin/user/list", (req, res, next) => {
          if (req.query.department_id !== "2") return next();
          res.json({ errcode: 0, errmsg: "ok", userlist: [{ name: "无名", department: [2], status: 1 }] });
        }),
    });
    const snapshot = await reader.read();
    const [reason, ...others] = reasons(snapshot);
    expect(others).toEqual([]);
    expect(reason).toMatchObject({
      code: "MALFORMED_RESPONSE",
      where: "GET /cgi-bin/user/list department_id 2",
    });
    expect(reason!.message).toContain("/cgi-bin/user/list");
    expect(reason!.message).toContain("userlist[0].userid");
    expect(snapshot.people.some((p) => p.name === "无名")).toBe(false);
    expect(snapshot.people.length).toBeLessThan(org.people.length);
  });

  it("treats an unknown member status as MALFORMED_RESPONSE rather than guessing", async () => {
    const { reader } = await setup({
      intercept: (app) =>
        app.get("/cgi-bin/user/list", (req, res, next) => {
          if (req.query.department_id !== "3") return next();
          res.json({
            errcode: 0,
            errmsg: "ok",
            userlist: [{ userid: "odd", name: "奇", department: [3], status: 9 }],
          });
        }),
    });
    const [reason] = reasons(await reader.read());
    expect(reason).toMatchObject({ code: "MALFORMED_RESPONSE" });
    expect(reason!.message).toContain("userlist[0].status");
  });

  it("treats an HTML page with HTTP 200 as MALFORMED_RESPONSE", async () => {
    const { reader } = await setup({
      intercept: (app) =>
        app.get("/cgi-bin/tag/list", (_req, res) => void res.type("html").send("<html>portal</html>")),
    });
    const [reason] = reasons(await reader.read());
    expect(reason).toMatchObject({ code: "MALFORMED_RESPONSE", where: "GET /cgi-bin/tag/list" });
  });

  it("restarts user/list_id once when WeCom rejects its cursor with 50100", async () => {
    let rejected = 0;
    const { reader, org, calls } = await setup({
      config: { listing: "list-id", pageSize: 80, readTags: false },
      intercept: (app) =>
        app.post("/cgi-bin/user/list_id", express.json(), (req, res, next) => {
          const cursor = (req.body as { cursor?: string }).cursor;
          // The simulator's own body parser sees the body already parsed and keeps it.
          if (cursor === undefined || rejected > 0) return next();
          rejected++;
          res.json({ errcode: 50100, errmsg: "invalid cursor" });
        }),
    });
    const snapshot = await reader.read();
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(rejected).toBe(1);
    expect(snapshot.people).toHaveLength(org.people.length);
    expect(calls.get("/cgi-bin/user/list_id")).toBeGreaterThan(1);
  });

  it("gives up with SERVER_ERROR when WeCom rejects the cursor again after the restart", async () => {
    const { reader } = await setup({
      config: { listing: "list-id", pageSize: 80, readTags: false },
      intercept: (app) =>
        app.post("/cgi-bin/user/list_id", express.json(), (req, res, next) => {
          if ((req.body as { cursor?: string }).cursor === undefined) return next();
          res.json({ errcode: 50100, errmsg: "invalid cursor" });
        }),
    });
    const snapshot = await reader.read();
    const [reason, ...others] = reasons(snapshot);
    expect(others).toEqual([]);
    expect(reason).toMatchObject({ code: "SERVER_ERROR", message: expect.stringContaining("50100") });
    expect(snapshot.people).toEqual([]);
  });

  it("ends as ABORTED when the read is aborted", async () => {
    const { reader } = await setup();
    const controller = new AbortController();
    const snapshot = await reader.read({
      mode: "full",
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "people" && p.done === 3) controller.abort();
      },
    });
    expect(reasons(snapshot).map((r) => r.code)).toEqual(["ABORTED"]);
  });
});
