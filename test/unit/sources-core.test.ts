import { describe, expect, it } from "vitest";
import { SnapshotBuilder, SourceReadError } from "../../src/sources/builder.js";
import { RateLimiter } from "../../src/sources/http/rate-limiter.js";
import { TokenCache } from "../../src/sources/http/token-cache.js";
import { callVendor, type CallOutcome } from "../../src/sources/http/vendor-call.js";
import {
  isProvenComplete,
  proveComplete,
  type CompleteSnapshot,
  type DirectorySnapshot,
  type SourcePerson,
} from "../../src/sources/snapshot.js";
import { Faults, parseFaults } from "../../src/simulators/common/faults.js";
import { defaultSourceContext } from "../../src/sources/registry.js";
import { generateOrg } from "../../src/simulators/common/org.js";

const T0 = Date.parse("2026-03-01T08:00:00Z");

function person(subject: string, departmentId: string, extra: Partial<SourcePerson> = {}): SourcePerson {
  return {
    subject,
    departments: [{ departmentId, main: true, leader: false }],
    managers: [],
    status: "active",
    attributes: {},
    ...extra,
  };
}

function builder(mode: "full" | "incremental" = "full"): SnapshotBuilder {
  return new SnapshotBuilder({ sourceId: "dingtalk-hq", now: () => new Date(T0) }, "dingtalk", mode);
}

describe("snapshot builder", () => {
  it("keeps a person met in two departments once, with both memberships and leader flags merged", () => {
    const b = builder();
    b.addPerson(person("zhangsan", "2", { managers: ["boss"] }));
    b.addPerson(
      person("zhangsan", "3", {
        departments: [{ departmentId: "3", main: false, leader: true }],
        managers: ["boss", "cfo"],
      }),
    );
    b.addPerson(person("zhangsan", "2", { departments: [{ departmentId: "2", main: false, leader: true }] }));
    const snapshot = b.finish();
    expect(snapshot.people).toHaveLength(1);
    expect(snapshot.people[0]!.departments).toEqual([
      { departmentId: "2", main: true, leader: true },
      { departmentId: "3", main: false, leader: true },
    ]);
    expect(snapshot.people[0]!.managers).toEqual(["boss", "cfo"]);
  });

  it("a recorded failure makes the snapshot incomplete with the reason and drops the cursor", () => {
    const b = builder();
    b.addPerson(person("a", "1"));
    b.fail(
      new SourceReadError({ code: "RATE_LIMITED", message: "dingtalk-hq: throttled", where: "dept 7" })
        .reason,
    );
    const snapshot = b.finish({ type: "dingtalk", state: { at: "x" } });
    expect(snapshot.completeness).toEqual({
      complete: false,
      reasons: [{ code: "RATE_LIMITED", message: "dingtalk-hq: throttled", where: "dept 7" }],
    });
    expect(snapshot.cursor).toBeUndefined();
    expect(proveComplete(snapshot)).toBeNull();
  });

  it("says to give up once five parts failed for the source's own reasons, recording GAVE_UP exactly once", () => {
    const b = builder();
    // Problems of single parts do not count towards giving up.
    for (let i = 1; i <= 6; i++) b.fail({ code: "PERMISSION_DENIED", message: `dept ${i} out of scope` });
    expect(b.giveUpIfFailing()).toBe(false);
    for (let i = 1; i <= 4; i++) {
      b.fail({ code: "SERVER_ERROR", message: `page ${i}` });
      expect(b.giveUpIfFailing()).toBe(false);
    }
    b.fail({ code: "SERVER_ERROR", message: "page 5" });
    expect(b.giveUpIfFailing()).toBe(true);
    expect(b.giveUpIfFailing()).toBe(true);
    const snapshot = b.finish();
    expect(snapshot.completeness.complete ? [] : snapshot.completeness.reasons.map((r) => r.code)).toEqual([
      ...Array<string>(6).fill("PERMISSION_DENIED"),
      ...Array<string>(5).fill("SERVER_ERROR"),
      "GAVE_UP",
    ]);
  });
});

describe("proveComplete", () => {
  it("accepts only complete full reads, and freezes what it proves", () => {
    const b = builder();
    b.addPerson(person("a", "1"));
    const snapshot = b.finish({ type: "dingtalk", state: {} });
    const proven = proveComplete(snapshot);
    expect(proven).not.toBeNull();
    expect(isProvenComplete(proven!)).toBe(true);
    expect(Object.isFrozen(proven!.people[0]!.departments)).toBe(true);
    expect(() => (proven!.people as SourcePerson[]).pop()).toThrow(TypeError);
  });

  it("refuses an incremental read even when it is complete", () => {
    const b = builder("incremental");
    b.addPerson(person("a", "1"));
    expect(proveComplete(b.finish())).toBeNull();
  });

  it("a cast is not a proof: isProvenComplete checks at run time", () => {
    const b = builder();
    const forged = { ...b.finish() } as DirectorySnapshot as CompleteSnapshot;
    expect(isProvenComplete(forged)).toBe(false);
    const incomplete = builder();
    incomplete.fail({ code: "BANNED", message: "banned" });
    expect(isProvenComplete(incomplete.finish() as CompleteSnapshot)).toBe(false);
  });
});

describe("token cache", () => {
  it("reuses the token until the margin before expiry, shares one fetch between callers, and forgets a rejected one", async () => {
    let now = T0;
    let fetches = 0;
    const cache = new TokenCache(
      () => {
        fetches++;
        return Promise.resolve({ value: `t${fetches}`, expiresInSeconds: 7200 });
      },
      () => new Date(now),
      300,
    );
    expect(await Promise.all([cache.get(), cache.get(), cache.get()])).toEqual(["t1", "t1", "t1"]);
    now += 6899_000;
    expect(await cache.get()).toBe("t1");
    now += 2_000;
    expect(await cache.get()).toBe("t2");
    cache.invalidate("t1"); // stale: t2 stays
    expect(await cache.get()).toBe("t2");
    cache.invalidate("t2");
    expect(await cache.get()).toBe("t3");
    expect(fetches).toBe(3);
  });
});

describe("token cache near expiry", () => {
  it("keeps a token the vendor hands back unchanged until it expires, instead of asking on every call", async () => {
    let now = T0;
    const issued: { value: string; expiresInSeconds: number }[] = [];
    // WeCom: the same token with its remaining life while it is valid, a new one afterwards.
    let expiresAt = T0 + 7200_000;
    let current = "t1";
    const cache = new TokenCache(
      () => {
        if (now >= expiresAt) {
          current = `t${issued.length + 1}`;
          expiresAt = now + 7200_000;
        }
        const token = { value: current, expiresInSeconds: Math.round((expiresAt - now) / 1000) };
        issued.push(token);
        return Promise.resolve(token);
      },
      () => new Date(now),
      300,
    );
    expect(await cache.get()).toBe("t1");
    now = T0 + 6950_000; // inside the margin: one refresh, which returns the same token
    expect(await cache.get()).toBe("t1");
    for (let i = 0; i < 50; i++) {
      now += 4_000;
      expect(await cache.get()).toBe("t1");
    }
    expect(issued).toHaveLength(2);
    now = T0 + 7200_000;
    expect(await cache.get()).toBe("t3");
    expect(issued).toHaveLength(3);
  });
});

describe("rate limiter", () => {
  it("lets at most N calls into any window, waiting instead of refusing", async () => {
    let now = T0;
    const waits: number[] = [];
    const limiter = new RateLimiter(
      3,
      1000,
      () => now,
      (ms) => {
        waits.push(ms);
        now += ms;
        return Promise.resolve();
      },
    );
    const stamps: number[] = [];
    for (let i = 0; i < 7; i++) {
      await limiter.take();
      stamps.push(now - T0);
    }
    expect(stamps).toEqual([0, 0, 0, 1001, 1001, 1001, 2002]);
    for (let i = 0; i < stamps.length; i++) {
      expect(stamps.filter((s) => s > stamps[i]! - 1000 && s <= stamps[i]!).length).toBeLessThanOrEqual(3);
    }
  });
});

describe("callVendor", () => {
  function run<T>(outcomes: CallOutcome<T>[], tokens: string[] = ["t1", "t2", "t3", "t4"]) {
    const slept: number[] = [];
    const used: string[] = [];
    let fetches = 0;
    const cache = new TokenCache(
      () => Promise.resolve({ value: tokens[fetches++]!, expiresInSeconds: 7200 }),
      () => new Date(T0),
    );
    const promise = callVendor<T>({
      sourceId: "dingtalk-hq",
      where: "POST /topapi/v2/user/list dept 5 cursor 100",
      tokens: cache,
      sleep: (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
      attempt: (token) => {
        used.push(token);
        const next = outcomes.shift();
        if (next === undefined) throw new Error("more attempts than outcomes");
        return Promise.resolve(next);
      },
    });
    return { promise, slept, used };
  }

  it("repeats the same request with a new token after a rejected one", async () => {
    const { promise, used } = run<string>([
      { kind: "token-rejected", detail: "40014" },
      { kind: "ok", value: "page" },
    ]);
    expect(await promise).toBe("page");
    expect(used).toEqual(["t1", "t2"]);
  });

  it("gives up as AUTH_FAILED when fresh tokens keep being rejected", async () => {
    const { promise, used } = run<string>([
      { kind: "token-rejected", detail: "40014" },
      { kind: "token-rejected", detail: "40014" },
      { kind: "token-rejected", detail: "40014" },
    ]);
    await expect(promise).rejects.toMatchObject({
      reason: { code: "AUTH_FAILED", where: "POST /topapi/v2/user/list dept 5 cursor 100" },
    });
    expect(used).toEqual(["t1", "t2", "t3"]);
  });

  it("backs off on throttling with growing waits of at least what the vendor asks, then resumes", async () => {
    const { promise, slept } = run<string>([
      { kind: "throttled", waitMs: 1000, detail: "90018" },
      { kind: "throttled", waitMs: 1000, detail: "90018" },
      { kind: "throttled", waitMs: 1000, detail: "90018" },
      { kind: "ok", value: "page" },
    ]);
    expect(await promise).toBe("page");
    expect(slept).toEqual([1000, 1000, 2000]);
  });

  it("waits as long as the vendor asks even beyond the backoff cap (WeCom's 60 s minute block)", async () => {
    const { promise, slept } = run<string>([
      { kind: "throttled", waitMs: 60_000, detail: "45009" },
      { kind: "ok", value: "page" },
    ]);
    expect(await promise).toBe("page");
    expect(slept).toEqual([60_000]);
  });

  it("retries transient errors three times, then fails with the given code naming the source and place", async () => {
    const { promise, slept } = run<string>(
      Array.from({ length: 4 }, () => ({
        kind: "transient" as const,
        detail: "cannot reach oapi.dingtalk.com: connection refused",
        code: "UNREACHABLE" as const,
      })),
    );
    await expect(promise).rejects.toMatchObject({
      reason: {
        code: "UNREACHABLE",
        message: expect.stringMatching(/^dingtalk-hq: cannot reach oapi\.dingtalk\.com.*after 3 retries$/),
      },
    });
    expect(slept).toEqual([500, 1000, 2000]);
  });

  it("fails at once, prefixed with the source id, on a failure that repeating cannot fix", async () => {
    const { promise, used } = run<string>([
      { kind: "failed", reason: { code: "PERMISSION_DENIED", message: "no contact permission (60011)" } },
    ]);
    await expect(promise).rejects.toMatchObject({
      reason: { code: "PERMISSION_DENIED", message: "dingtalk-hq: no contact permission (60011)" },
    });
    expect(used).toEqual(["t1"]);
  });
});

describe("default source context", () => {
  it("does not wait at all once the read was aborted", async () => {
    const { sleep } = defaultSourceContext("x");
    const outcome = await Promise.race([
      sleep(60_000, AbortSignal.abort()).then(() => "returned"),
      new Promise((resolve) => setTimeout(() => resolve("still waiting"), 2_000)),
    ]);
    expect(outcome).toBe("returned");
  });
});

describe("simulator faults", () => {
  it("parses every rule kind and names a bad one", () => {
    expect(
      parseFaults(
        "expire-token-after=3, rate-limit-after=10*2,ban-after=5,busy@/a*3,5xx@/b*always,latency=20",
      ),
    ).toEqual([
      { kind: "expire-token-after", after: 3 },
      { kind: "rate-limit-after", after: 10, count: 2 },
      { kind: "ban-after", after: 5 },
      { kind: "busy", path: "/a", count: 3 },
      { kind: "http-5xx", path: "/b", count: Number.POSITIVE_INFINITY },
      { kind: "latency", ms: 20 },
    ]);
    expect(() => parseFaults("explode=1")).toThrow(/fault "explode=1": unknown fault "explode"/);
    expect(() => parseFaults("5xx@nopath")).toThrow(/must start with \//);
    expect(() => parseFaults("ban-after=-1")).toThrow(/whole number/);
  });

  it("fires each rule after its count, for as many calls as asked", () => {
    const faults = new Faults();
    faults.set(parseFaults("expire-token-after=2,5xx@/b*2"));
    const actions = ["/a", "/b", "/a", "/b", "/b", "/a"].map((p) => faults.next(p)?.kind ?? null);
    expect(actions).toEqual([null, "http-5xx", "expire-tokens", "http-5xx", null, null]);
  });
});

describe("demo org", () => {
  it("is the same for the same seed and different for another", () => {
    const a = generateOrg({ people: 300, seed: 7 });
    expect(generateOrg({ people: 300, seed: 7 })).toEqual(a);
    expect(generateOrg({ people: 300, seed: 8 }).people[5]).not.toEqual(a.people[5]);
  });

  it("has unique userids and mobiles, a tree rooted at 1 several levels deep, leaders, part-timers and leavers", () => {
    const org = generateOrg({ people: 2000, seed: 1 });
    expect(new Set(org.people.map((p) => p.userid)).size).toBe(2000);
    expect(new Set(org.people.map((p) => p.mobile)).size).toBe(2000);
    const byId = new Map(org.departments.map((d) => [d.id, d]));
    expect(byId.get(1)?.parentId).toBe(0);
    const depth = (id: number): number => {
      let n = 0;
      for (let d = byId.get(id); d !== undefined && d.parentId !== 0; d = byId.get(d.parentId)) n++;
      return n;
    };
    expect(Math.max(...org.departments.map((d) => depth(d.id)))).toBeGreaterThanOrEqual(3);
    for (const d of org.departments) {
      if (d.id !== 1) expect(byId.has(d.parentId)).toBe(true);
      expect(d.leaders.length).toBeGreaterThan(0);
    }
    expect(org.people.filter((p) => p.departments.length > 1).length).toBeGreaterThan(10);
    expect(org.people.some((p) => p.status === "left")).toBe(true);
    expect(org.people.some((p) => /^[\u4e00-\u9fa5]{2,4}$/.test(p.name))).toBe(true);
    const people = new Set(org.people.map((p) => p.userid));
    for (const p of org.people) if (p.manager !== undefined) expect(people.has(p.manager)).toBe(true);
    for (const role of org.roles) expect(role.members.length).toBeGreaterThan(0);
  });
});
