import { afterEach, describe, expect, it } from "vitest";
import { openTarget } from "../../src/targets/registry.js";
import { openScimTarget, scimConfigSchema } from "../../src/targets/scim/index.js";
import {
  TargetReadError,
  type ChangeResult,
  type TargetConnector,
  type UserFields,
} from "../../src/targets/target.js";
import { startScimServer, type ScimServer, type ScimServerKnobs } from "../helpers/scim-server.js";

const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const running: ScimServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(knobs: Partial<ScimServerKnobs> = {}): Promise<ScimServer> {
  const server = await startScimServer(knobs);
  running.push(server);
  return server;
}

/** A connector whose waits are recorded and shortened so the tests stay fast. */
function connect(
  server: ScimServer,
  extra: Record<string, unknown> = {},
): { target: TargetConnector; waits: number[] } {
  const waits: number[] = [];
  const config = scimConfigSchema.parse({
    baseUrl: server.baseUrl,
    token: server.token,
    requestsPerSecond: 100,
    timeoutMs: 2000,
    ...extra,
  });
  const target = openScimTarget("scim-test", config, {
    now: Date.now,
    sleep: (ms) => {
      waits.push(ms);
      return new Promise((resolve) => setTimeout(resolve, Math.min(ms, 2)));
    },
  });
  return { target, waits };
}

function applied(result: ChangeResult | undefined): string {
  if (result?.status !== "applied") throw new Error(`expected applied, got ${JSON.stringify(result)}`);
  return result.targetId!;
}

const person = (n: number, extra: Partial<UserFields> = {}): UserFields => ({
  name: `Person ${n}`,
  email: `person${n}@example.com`,
  mobile: `+86 138 0000 ${String(n).padStart(4, "0")}`,
  employeeNo: `E${n}`,
  departmentIds: [],
  ...extra,
});

const writes = (server: ScimServer) => server.requests.filter((r) => r.method !== "GET");

describe("scim target: config", () => {
  it("fills defaults: userName from the email, disable rather than delete, pages of 100", () => {
    const config = scimConfigSchema.parse({ baseUrl: "https://idp.example.com/scim/v2", token: "t" });
    expect(config).toMatchObject({
      userNameFrom: "email",
      deprovision: "disable",
      pageSize: 100,
      requestsPerSecond: 10,
    });
    expect(() => scimConfigSchema.parse({ baseUrl: "https://idp.example.com/scim/v2" })).toThrow(/token/);
    expect(() =>
      scimConfigSchema.parse({ baseUrl: "https://x/scim", token: "t", deprovision: "purge" }),
    ).toThrow(/deprovision/);
  });

  it("opens through the target registry by type", async () => {
    const server = await start();
    const config = scimConfigSchema.parse({ baseUrl: server.baseUrl, token: server.token });
    const target = await openTarget({ id: "scim-reg", type: "scim", config });
    expect(target.id).toBe("scim-reg");
    expect(await target.readState()).toEqual({ users: {}, departments: {}, roles: {} });
  });
});

describe("scim target: reading", () => {
  it("reads an empty service provider as no users, no groups and no departments", async () => {
    const server = await start();
    const { target } = connect(server);
    expect(await target.readState()).toEqual({ users: {}, departments: {}, roles: {} });
    expect(target.capabilities()).toEqual({
      users: true,
      departments: false,
      scopedRoles: false,
      reenable: true,
    });
  });

  it("reads 250 users across three pages of 100 starting at index 1", async () => {
    const server = await start();
    for (let i = 0; i < 250; i++)
      server.seedUser({ userName: `u${i}@example.com`, externalId: `p${i}`, active: true });
    const { target } = connect(server, { pageSize: 100 });
    const state = await target.readState();
    expect(Object.keys(state.users)).toHaveLength(250);
    expect(new Set(Object.values(state.users).map((u) => u.externalId)).size).toBe(250);
    const pages = server.requests
      .filter((r) => r.method === "GET" && r.path === "/Users")
      .map((r) => r.query);
    expect(pages).toEqual(["startIndex=1&count=100", "startIndex=101&count=100", "startIndex=201&count=100"]);
  });

  it("refuses a read whose pages do not add up, as from a server that ignores startIndex", async () => {
    const server = await start({ ignoreStartIndex: true });
    for (let i = 0; i < 30; i++) server.seedUser({ userName: `u${i}@example.com` });
    const { target } = connect(server, { pageSize: 10 });
    const error = await target.readState().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TargetReadError);
    expect((error as TargetReadError).failure).toMatchObject({ class: "retryable", code: "INCOMPLETE_READ" });
  });

  it("maps groups to global roles with their member ids", async () => {
    const server = await start();
    const a = server.seedUser({ userName: "a@example.com" });
    const g = server.seedGroup({ displayName: "Approvers", members: [{ value: a }] });
    const { target } = connect(server);
    const state = await target.readState();
    expect(state.roles[g]).toEqual({
      id: g,
      name: "Approvers",
      scoped: false,
      rows: [{ scope: { kind: "global" }, memberIds: [a] }],
    });
  });

  it("fails the read as auth when the token is refused (401)", async () => {
    const server = await start();
    const { target } = connect({ ...server, token: "wrong-token" });
    const error = await target.readState().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TargetReadError);
    expect((error as TargetReadError).failure).toMatchObject({
      class: "auth",
      code: "AUTH_FAILED",
      http: 401,
    });
  });
});

describe("scim target: users", () => {
  it("creates a user with externalId, userName from the email and the enterprise employee number", async () => {
    const server = await start();
    const { target } = connect(server);
    const id = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    const stored = server.users.get(id)!;
    expect(stored).toMatchObject({
      externalId: "p1",
      userName: "person1@example.com",
      displayName: "Person 1",
      active: true,
      emails: [{ value: "person1@example.com", primary: true }],
      phoneNumbers: [{ value: "+86 138 0000 0001", type: "mobile" }],
      [ENTERPRISE]: { employeeNumber: "E1" },
    });
    const state = await target.readState();
    expect(state.users[id]).toEqual({
      id,
      externalId: "p1",
      name: "Person 1",
      email: "person1@example.com",
      mobile: "+86 138 0000 0001",
      employeeNo: "E1",
      departmentIds: [],
      primaryDepartmentId: "",
      active: true,
    });
  });

  it("finds its own user by externalId on a repeated create instead of making a second one", async () => {
    const server = await start();
    const { target } = connect(server);
    const first = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    const again = await target.apply({
      kind: "create-user",
      externalId: "p1",
      user: person(1, { email: "new@example.com" }),
    });
    expect(again).toEqual({ status: "applied", targetId: first, adopted: true });
    expect(server.users.size).toBe(1);
    expect(server.users.get(first)!.userName).toBe("new@example.com");
  });

  it("adopts an account provisioned before us by its userName and writes our externalId into it", async () => {
    const server = await start();
    const existing = server.seedUser({ userName: "person1@example.com", active: true });
    const { target } = connect(server);
    const result = await target.apply({ kind: "create-user", externalId: "p1", user: person(1) });
    expect(result).toEqual({ status: "applied", targetId: existing, adopted: true });
    expect(server.users.size).toBe(1);
    expect(server.users.get(existing)).toMatchObject({ externalId: "p1", displayName: "Person 1" });
  });

  it("adopts a userName that differs only in case although the server's eq filter is case-sensitive", async () => {
    const server = await start();
    const existing = server.seedUser({ userName: "Person1@Example.com", active: true });
    const { target } = connect(server);
    const result = await target.apply({ kind: "create-user", externalId: "p1", user: person(1) });
    expect(result).toEqual({ status: "applied", targetId: existing, adopted: true });
    expect(server.users.size).toBe(1);
  });

  it("refuses to take over a userName that carries another externalId", async () => {
    const server = await start();
    const other = server.seedUser({
      userName: "person1@example.com",
      externalId: "someone-else",
      active: true,
    });
    const { target } = connect(server);
    const result = await target.apply({ kind: "create-user", externalId: "p1", user: person(1) });
    expect(result).toMatchObject({
      status: "failed",
      failure: { class: "conflict", code: "USERNAME_TAKEN", targetId: other },
    });
    expect(server.users.get(other)!.externalId).toBe("someone-else");
  });

  it("does not revive a disabled match on create; that is an explicit enable", async () => {
    const server = await start();
    const disabled = server.seedUser({ userName: "person1@example.com", externalId: "p1", active: false });
    const { target } = connect(server);
    const result = await target.apply({ kind: "create-user", externalId: "p1", user: person(1) });
    expect(result).toMatchObject({
      status: "failed",
      failure: { class: "conflict", code: "DISABLED_MATCH", targetId: disabled },
    });
    expect(server.users.get(disabled)!.active).toBe(false);
  });

  it("takes userName from the employee number when configured", async () => {
    const server = await start();
    const { target } = connect(server, { userNameFrom: "employeeNo" });
    const id = applied(await target.apply({ kind: "create-user", externalId: "p7", user: person(7) }));
    expect(server.users.get(id)!.userName).toBe("E7");
  });

  it("updates name, email and mobile with one RFC-form PATCH replace", async () => {
    const server = await start();
    const { target } = connect(server);
    const id = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    server.requests.length = 0;
    const result = await target.apply({
      kind: "update-user",
      targetId: id,
      user: person(1, { name: "Renamed", email: "Renamed@Example.com", mobile: "+86 139 1111 2222" }),
    });
    expect(result).toEqual({ status: "applied", targetId: id });
    expect(writes(server)).toHaveLength(1);
    expect(writes(server)[0]).toMatchObject({
      method: "PATCH",
      body: {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [
          { op: "replace", value: { displayName: "Renamed", userName: "renamed@example.com" } },
          {
            op: "replace",
            path: "emails",
            value: [{ value: "renamed@example.com", type: "work", primary: true }],
          },
          { op: "replace", path: "phoneNumbers", value: [{ value: "+86 139 1111 2222", type: "mobile" }] },
        ],
      },
    });
    const user = (await target.readState()).users[id]!;
    expect(user).toMatchObject({
      name: "Renamed",
      email: "renamed@example.com",
      mobile: "+86 139 1111 2222",
    });
  });

  it("disables with active=false (a boolean, lowercase op) and enables again", async () => {
    const server = await start();
    const { target } = connect(server);
    const id = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    expect(await target.apply({ kind: "disable-user", targetId: id })).toEqual({
      status: "applied",
      targetId: id,
    });
    expect(server.users.get(id)!.active).toBe(false);
    expect(writes(server).at(-1)!.body).toMatchObject({
      Operations: [{ op: "replace", value: { active: false } }],
    });
    expect((await target.readState()).users[id]!.active).toBe(false);
    expect(await target.apply({ kind: "enable-user", targetId: id })).toEqual({
      status: "applied",
      targetId: id,
    });
    expect(server.users.get(id)!.active).toBe(true);
  });

  it("deletes instead of disabling when deprovision is delete, and a repeated delete is a no-op", async () => {
    const server = await start();
    const { target } = connect(server, { deprovision: "delete" });
    const id = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    expect(await target.apply({ kind: "disable-user", targetId: id })).toEqual({
      status: "applied",
      targetId: id,
    });
    expect(server.users.has(id)).toBe(false);
    expect(writes(server).at(-1)).toMatchObject({ method: "DELETE", status: 204 });
    expect(await target.apply({ kind: "disable-user", targetId: id })).toEqual({
      status: "noop",
      targetId: id,
    });
  });

  it("falls back to GET-modify-PUT with If-Match when the server does no PATCH, and rereads after a 412", async () => {
    const server = await start({ patch: false, etag: true });
    const { target } = connect(server);
    const id = applied(await target.apply({ kind: "create-user", externalId: "p1", user: person(1) }));
    let bumped = false;
    server.knobs.onRequest = (request) => {
      // Someone else writes between our GET and our first PUT.
      if (request.method === "PUT" && !bumped) {
        bumped = true;
        server.users.get(id)!.meta.version = 'W/"someone-else"';
      }
    };
    server.requests.length = 0;
    expect(
      await target.apply({ kind: "update-user", targetId: id, user: person(1, { name: "Renamed" }) }),
    ).toEqual({
      status: "applied",
      targetId: id,
    });
    const toUser = server.requests.filter((r) => r.path.startsWith("/Users/"));
    expect(toUser.map((r) => `${r.method} ${r.status}`)).toEqual([
      "GET 200",
      "PUT 412",
      "GET 200",
      "PUT 200",
    ]);
    const puts = toUser.filter((r) => r.method === "PUT");
    expect(puts[0]!.ifMatch).toMatch(/^W\/"\d+"$/);
    expect(puts[1]!.ifMatch).toBe('W/"someone-else"');
    expect(puts[1]!.body).not.toHaveProperty("meta");
    expect(server.users.get(id)).toMatchObject({
      displayName: "Renamed",
      externalId: "p1",
      active: true,
      [ENTERPRISE]: { employeeNumber: "E1" },
    });
  });

  it("refuses department changes as unsupported without calling the server", async () => {
    const server = await start();
    const { target } = connect(server);
    const before = server.requests.length;
    const result = await target.apply({
      kind: "create-department",
      externalId: "d1",
      department: { parentId: null, name: "Finance" },
    });
    expect(result).toMatchObject({ status: "failed", failure: { class: "bad-data", code: "UNSUPPORTED" } });
    expect(server.requests.length).toBe(before);
  });
});

describe("scim target: groups for roles", () => {
  it("adopts an existing group of the same displayName and creates a missing one", async () => {
    const server = await start();
    const existing = server.seedGroup({ displayName: "Approvers" });
    const { target } = connect(server);
    expect(await target.apply({ kind: "create-role", name: "Approvers", scoped: false })).toEqual({
      status: "applied",
      targetId: existing,
      adopted: true,
    });
    const created = applied(await target.apply({ kind: "create-role", name: "Cashiers", scoped: false }));
    expect(server.groups.get(created)!.displayName).toBe("Cashiers");
    expect(server.groups.size).toBe(2);
    const scoped = await target.apply({ kind: "create-role", name: "Dept heads", scoped: true });
    expect(scoped).toMatchObject({ status: "failed", failure: { code: "UNSUPPORTED" } });
  });

  it("diffs members into PATCH add and remove, and does nothing when they already match", async () => {
    const server = await start();
    const [a, b, c] = ["a", "b", "c"].map((n) => server.seedUser({ userName: `${n}@example.com` }));
    const group = server.seedGroup({ displayName: "Approvers", members: [{ value: a }, { value: b }] });
    const { target } = connect(server);
    server.requests.length = 0;
    const rows = [{ scope: { kind: "global" as const }, memberIds: [b!, c!] }];
    expect(await target.apply({ kind: "set-role-members", roleId: group, rows })).toEqual({
      status: "applied",
      targetId: group,
    });
    expect(writes(server).map((w) => w.body)).toEqual([
      {
        schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        Operations: [
          { op: "add", path: "members", value: [{ value: c }] },
          { op: "remove", path: `members[value eq "${a}"]` },
        ],
      },
    ]);
    const members = (server.groups.get(group)!.members as { value: string }[]).map((m) => m.value).sort();
    expect(members).toEqual([b, c].sort());
    expect(await target.apply({ kind: "set-role-members", roleId: group, rows })).toEqual({
      status: "noop",
      targetId: group,
    });
  });

  it("splits a large membership change into PATCH requests of membersPerPatch", async () => {
    const server = await start();
    const ids = Array.from({ length: 5 }, (_, i) => server.seedUser({ userName: `m${i}@example.com` }));
    const group = server.seedGroup({ displayName: "Big" });
    const { target } = connect(server, { membersPerPatch: 2 });
    server.requests.length = 0;
    const result = await target.apply({
      kind: "set-role-members",
      roleId: group,
      rows: [{ scope: { kind: "global" }, memberIds: ids }],
    });
    expect(result.status).toBe("applied");
    expect(writes(server)).toHaveLength(3);
    expect((server.groups.get(group)!.members as unknown[]).length).toBe(5);
  });

  it("reports a member the server does not know as bad data with the server's detail (400)", async () => {
    const server = await start();
    const group = server.seedGroup({ displayName: "Approvers" });
    const { target } = connect(server);
    const result = await target.apply({
      kind: "set-role-members",
      roleId: group,
      rows: [{ scope: { kind: "global" }, memberIds: ["no-such-user"] }],
    });
    expect(result).toMatchObject({
      status: "failed",
      failure: { class: "bad-data", code: "INVALID_VALUE", http: 400 },
    });
    expect(result.status === "failed" && result.failure.message).toContain(
      "member no-such-user does not exist",
    );
  });

  it("classifies a refused token on a change as auth", async () => {
    const server = await start();
    const { target } = connect({ ...server, token: "wrong-token" });
    const result = await target.apply({ kind: "create-role", name: "Approvers", scoped: false });
    expect(result).toMatchObject({ status: "failed", failure: { class: "auth", http: 401 } });
  });
});

describe("scim target: faults", () => {
  it("converges under injected 429s (honouring Retry-After) and 500s after the change, with no duplicates", async () => {
    const server = await start({ throttleEvery: 4, retryAfterSeconds: 3, failEvery: 7, failMode: "after" });
    const { target, waits } = connect(server);
    const creates = Array.from({ length: 20 }, (_, i) => ({
      kind: "create-user" as const,
      externalId: `p${i}`,
      user: person(i),
    }));
    const results = await target.applyAll(creates);
    expect(results.filter((r) => r.status !== "applied")).toEqual([]);
    const ids = results.map(applied);
    const group = applied(await target.apply({ kind: "create-role", name: "Approvers", scoped: false }));
    const members = await target.apply({
      kind: "set-role-members",
      roleId: group,
      rows: [{ scope: { kind: "global" }, memberIds: ids.slice(0, 10) }],
    });
    expect(members.status).toBe("applied");
    for (const id of ids.slice(10))
      expect((await target.apply({ kind: "disable-user", targetId: id })).status).toBe("applied");

    server.knobs.throttleEvery = 0;
    server.knobs.failEvery = 0;
    expect(server.users.size).toBe(20);
    expect(new Set([...server.users.values()].map((u) => u.externalId)).size).toBe(20);
    expect(server.groups.size).toBe(1);
    const state = await target.readState();
    expect([...state.roles[group]!.rows[0]!.memberIds].sort()).toEqual(ids.slice(0, 10).sort());
    expect(Object.values(state.users).filter((u) => !u.active)).toHaveLength(10);
    expect(server.requests.some((r) => r.status === 429)).toBe(true);
    // The lost-answer case was exercised: a create applied, then answered 500.
    expect(server.requests.some((r) => r.method === "POST" && r.status === 500)).toBe(true);
    expect(server.requests.some((r) => r.method === "PATCH" && r.status === 500)).toBe(true);
    // Every 429 was waited out for at least its Retry-After (our own backoff stays far below 3 s here).
    const throttled = server.requests.filter((r) => r.status === 429).length;
    expect(waits.filter((ms) => ms >= 3000)).toHaveLength(throttled);
  });
});
