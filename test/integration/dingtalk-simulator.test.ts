/**
 * The DingTalk simulator against the reference (dingtalk-wecom.md part A): envelopes, token lifetime,
 * paging limits and cursor semantics, permissions, rate limits, the per-IP ban and injected faults.
 */
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { SimClock } from "../../src/simulators/common/clock.js";
import { listenLocal } from "../../src/simulators/common/control.js";
import { parseFaults } from "../../src/simulators/common/faults.js";
import { generateOrg } from "../../src/simulators/common/org.js";
import {
  startDingTalkSimulator,
  type DingTalkSimulatorOptions,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { apiEndpoint } from "../../src/simulators/dingtalk/gate.js";
import { createState } from "../../src/simulators/dingtalk/state.js";

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

/** A simulator on a frozen clock (all calls fall into one rate window unless the test moves time). */
async function start(
  options: DingTalkSimulatorOptions = {},
): Promise<RunningDingTalkSimulator & { clock: SimClock }> {
  const clock = new SimClock(() => Date.UTC(2026, 0, 5, 9, 0, 0));
  const sim = await startDingTalkSimulator({ people: 200, seed: 7, clock, ...options });
  running.push(sim);
  return Object.assign(sim, { clock });
}

async function getToken(sim: RunningDingTalkSimulator): Promise<string> {
  const { appKey, appSecret } = sim.credentials;
  const res = await fetch(`${sim.url}/gettoken?appkey=${appKey}&appsecret=${encodeURIComponent(appSecret)}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function topapi(
  sim: RunningDingTalkSimulator,
  path: string,
  body: Record<string, unknown>,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${sim.url}${path}?access_token=${token ?? (await getToken(sim))}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : { text },
  };
}

describe("DingTalk simulator: app tokens", () => {
  it("hands out the same 7200 s token on gettoken and v1.0/oauth2/accessToken, extending it on re-fetch", async () => {
    const sim = await start();
    const { appKey, appSecret } = sim.credentials;
    const first = (await (
      await fetch(`${sim.url}/gettoken?appkey=${appKey}&appsecret=${appSecret}`)
    ).json()) as {
      access_token: string;
    };
    expect(first).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    sim.clock.advance(3600_000);
    const res = await fetch(`${sim.url}/v1.0/oauth2/accessToken`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ appKey, appSecret }),
    });
    expect(res.status).toBe(200);
    const second = (await res.json()) as Record<string, unknown>;
    expect(second).toEqual({ accessToken: first.access_token, expireIn: 7200 });
    // Extended at the re-fetch: still valid 7,000 s later, i.e. beyond the first 7200 s.
    sim.clock.advance(7000_000);
    const list = await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 }, first.access_token);
    expect(list.json.errcode).toBe(0);
  });

  it("refuses a wrong secret: gettoken with an errcode, the new API with HTTP 400 invalidClientIdOrSecret", async () => {
    const sim = await start();
    const reply = await fetch(`${sim.url}/gettoken?appkey=${sim.credentials.appKey}&appsecret=wrong`);
    const legacy = (await reply.json()) as Record<string, unknown>;
    expect(legacy.errcode).not.toBe(0);
    expect(legacy).not.toHaveProperty("access_token");
    const res = await fetch(`${sim.url}/v1.0/oauth2/accessToken`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ appKey: sim.credentials.appKey, appSecret: "wrong" }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "invalidClientIdOrSecret",
      requestid: expect.any(String),
    });
  });

  it("rejects a form body on the new API (JSON only)", async () => {
    const sim = await start();
    const res = await fetch(`${sim.url}/v1.0/oauth2/accessToken`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `appKey=${sim.credentials.appKey}&appSecret=${sim.credentials.appSecret}`,
    });
    expect(res.status).toBe(400);
  });

  it("answers an expired token with 88 + sub_code 40014 by default, and with direct 42001 when configured", async () => {
    const wrapped = await start();
    const token = await getToken(wrapped);
    wrapped.clock.advance(7201_000);
    const a = await topapi(wrapped, "/topapi/v2/department/listsubid", { dept_id: 1 }, token);
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ errcode: 88, sub_code: "40014", sub_msg: expect.any(String) });
    expect(a.json.errmsg).toContain("subcode=40014");

    const direct = await start({ legacyErrors: "direct", expiredTokenErrcode: 42001 });
    const token2 = await getToken(direct);
    await fetch(`${direct.url}/__simulator/expire-tokens`, { method: "POST" });
    const b = await topapi(direct, "/topapi/v2/department/listsubid", { dept_id: 1 }, token2);
    expect(b.json).toMatchObject({ errcode: 42001 });
    expect(b.json).not.toHaveProperty("sub_code");
    // After expiry gettoken hands out a new token.
    expect(await getToken(direct)).not.toBe(token2);
  });

  it("serves the unified v1.0/oauth2/{corpId}/token with client_credentials only", async () => {
    const sim = await start();
    const call = (corpId: string, body: Record<string, unknown>) =>
      fetch(`${sim.url}/v1.0/oauth2/${corpId}/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const { appKey, appSecret, corpId } = sim.credentials;
    const ok = await call(corpId, {
      client_id: appKey,
      client_secret: appSecret,
      grant_type: "client_credentials",
    });
    expect(await ok.json()).toMatchObject({ access_token: expect.any(String), expires_in: 7200 });
    const grant = await call(corpId, { client_id: appKey, client_secret: appSecret, grant_type: "password" });
    expect([grant.status, ((await grant.json()) as { code: string }).code]).toEqual([
      400,
      "unsupported.grant.type",
    ]);
  });
});

describe("DingTalk simulator: directory", () => {
  it("pages user/list by offset cursor: next_cursor while has_more, every direct member once", async () => {
    const sim = await start();
    const token = await getToken(sim);
    const dept = sim.org.departments.find((d) => d.id !== 1)!;
    const ids = (await topapi(sim, "/topapi/user/listid", { dept_id: dept.id }, token)).json.result as {
      userid_list: string[];
    };
    const seen: string[] = [];
    let cursor = 0;
    for (;;) {
      const page = (await topapi(sim, "/topapi/v2/user/list", { dept_id: dept.id, cursor, size: 3 }, token))
        .json.result as { has_more: boolean; next_cursor?: number; list: { userid: string }[] };
      seen.push(...page.list.map((u) => u.userid));
      if (!page.has_more) {
        expect(page).not.toHaveProperty("next_cursor");
        break;
      }
      expect(page.next_cursor).toBe(cursor + 3);
      cursor = page.next_cursor!;
    }
    expect(seen.length).toBeGreaterThan(3);
    expect(seen).toEqual(ids.userid_list);
  });

  it("rejects user/list sizes outside 1..100", async () => {
    const sim = await start();
    const token = await getToken(sim);
    for (const size of [0, 101]) {
      const page = await topapi(sim, "/topapi/v2/user/list", { dept_id: 1, cursor: 0, size }, token);
      expect(page.json).toMatchObject({ errcode: 88, sub_code: "40035" });
    }
    const ok = await topapi(sim, "/topapi/v2/user/list", { dept_id: 1, cursor: 0, size: 100 }, token);
    expect(ok.json.errcode).toBe(0);
  });

  it("lists only current members: left and disabled people are absent, not-activated ones have active false", async () => {
    const org = generateOrg({ people: 400, seed: 3 });
    // One call per department within the frozen second: lift the QPS limit for this walk.
    const sim = await start({ org, qps: 10_000 });
    const token = await getToken(sim);
    const listed = new Map<string, Record<string, unknown>>();
    for (const dept of org.departments) {
      const page = (
        await topapi(sim, "/topapi/v2/user/list", { dept_id: dept.id, cursor: 0, size: 100 }, token)
      ).json.result as { list: Record<string, unknown>[] };
      for (const user of page.list) listed.set(user.userid as string, user);
    }
    const byStatus = (status: string) => org.people.filter((p) => p.status === status);
    expect(byStatus("left").length).toBeGreaterThan(0);
    expect(byStatus("disabled").length).toBeGreaterThan(0);
    expect(byStatus("not-activated").length).toBeGreaterThan(0);
    for (const p of [...byStatus("left"), ...byStatus("disabled")]) expect(listed.has(p.userid)).toBe(false);
    for (const p of byStatus("not-activated")) expect(listed.get(p.userid)?.active).toBe(false);
    for (const p of byStatus("active")) expect(listed.get(p.userid)?.active).toBe(true);
  });

  it("sets user/list's leader flag for the queried department only, and lists part-timers in each department", async () => {
    const org = generateOrg({ people: 400, seed: 3 });
    const sim = await start({ org });
    const token = await getToken(sim);
    const partTimer = org.people.find((p) => p.status === "active" && p.departments.length > 1)!;
    const leader = org.people.find((p) => p.leaderOf.length > 0 && p.departments.length === 1)!;
    for (const deptId of partTimer.departments) {
      const page = (
        await topapi(sim, "/topapi/v2/user/list", { dept_id: deptId, cursor: 0, size: 100 }, token)
      ).json.result as { list: { userid: string; dept_id_list: number[] }[] };
      expect(page.list.find((u) => u.userid === partTimer.userid)?.dept_id_list).toEqual(
        partTimer.departments,
      );
    }
    const own = (
      await topapi(sim, "/topapi/v2/user/list", { dept_id: leader.leaderOf[0], cursor: 0, size: 100 }, token)
    ).json.result as { list: { userid: string; leader: boolean }[] };
    expect(own.list.find((u) => u.userid === leader.userid)?.leader).toBe(true);
    expect(own.list.filter((u) => u.leader).map((u) => u.userid)).toEqual([leader.userid]);
  });

  it("adds manager_userid, leader_in_dept, role_list and dept_order_list in user/get", async () => {
    const org = generateOrg({ people: 200, seed: 7 });
    const sim = await start({ org });
    const person = org.people.find(
      (p) => p.status === "active" && p.manager !== undefined && p.leaderOf.length > 0,
    )!;
    const detail = (await topapi(sim, "/topapi/v2/user/get", { userid: person.userid })).json
      .result as Record<string, unknown>;
    expect(detail.manager_userid).toBe(person.manager);
    expect(detail.leader_in_dept).toContainEqual({ dept_id: person.leaderOf[0], leader: true });
    expect(detail.dept_order_list).toEqual(
      person.departments.map((dept_id) => ({ dept_id, order: person.order })),
    );
    const roles = org.roles.filter((r) => r.members.includes(person.userid));
    expect(detail.role_list).toEqual(
      roles.map((r) => ({ id: r.id, name: r.name, group_name: r.group.name })),
    );
    const gone = org.people.find((p) => p.status === "left")!;
    expect((await topapi(sim, "/topapi/v2/user/get", { userid: gone.userid })).json).toMatchObject({
      errcode: 88,
      sub_code: "60121",
    });
  });

  it("serves the department tree: listsubid children, listsub one level, department/get with managers", async () => {
    const sim = await start();
    const token = await getToken(sim);
    const children = sim.org.departments.filter((d) => d.parentId === 1).map((d) => d.id);
    const ids = (await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 }, token)).json.result;
    expect(ids).toEqual({ dept_id_list: children });
    const sub = (await topapi(sim, "/topapi/v2/department/listsub", { dept_id: 1 }, token)).json.result as {
      dept_id: number;
      parent_id: number;
    }[];
    expect(sub.map((d) => [d.dept_id, d.parent_id])).toEqual(children.map((id) => [id, 1]));
    const dept = sim.org.departments.find((d) => d.id === children[0])!;
    const got = (await topapi(sim, "/topapi/v2/department/get", { dept_id: dept.id }, token)).json.result;
    expect(got).toMatchObject({
      dept_id: dept.id,
      name: dept.name,
      parent_id: 1,
      order: dept.order,
      dept_manager_userid_list: dept.leaders,
    });
    const missing = await topapi(sim, "/topapi/v2/department/get", { dept_id: 999_999 }, token);
    expect(missing.json).toMatchObject({ errcode: 88, sub_code: "60003" });
  });

  it("maps a unionid to the userid and answers 60121 for someone not in the org", async () => {
    const sim = await start({ legacyErrors: "direct" });
    const token = await getToken(sim);
    const person = sim.org.people.find((p) => p.status === "active")!;
    const found = await topapi(sim, "/topapi/user/getbyunionid", { unionid: person.unionid }, token);
    expect(found.json.result).toEqual({ contact_type: 0, userid: person.userid });
    const unknown = await topapi(sim, "/topapi/user/getbyunionid", { unionid: "nobody" }, token);
    expect(unknown.json).toMatchObject({ errcode: 60121 });
  });

  it("omits mobile and email (not blank) without the mobile and email permissions", async () => {
    const sim = await start({ permissions: { mobile: false, email: false } });
    const page = (await topapi(sim, "/topapi/v2/user/list", { dept_id: 2, cursor: 0, size: 100 })).json
      .result as {
      list: Record<string, unknown>[];
    };
    expect(page.list.length).toBeGreaterThan(0);
    for (const user of page.list) {
      for (const field of ["mobile", "state_code", "email", "org_email"])
        expect(user).not.toHaveProperty(field);
      expect(user.name).toEqual(expect.any(String));
    }
  });

  it("answers a missing contact permission with 88 + sub_code 60011 naming the permission point", async () => {
    const sim = await start({ permissions: { qyapi_get_department_member: false } });
    const page = await topapi(sim, "/topapi/v2/user/list", { dept_id: 1, cursor: 0, size: 10 });
    expect(page.json).toMatchObject({ errcode: 88, sub_code: "60011" });
    expect(page.json.sub_msg).toContain("qyapi_get_department_member");
    // Other permission points still work.
    expect((await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 })).json.errcode).toBe(0);
  });
});

describe("DingTalk simulator: roles", () => {
  it("pages role/list by offset with hasMore and rejects sizes above 200", async () => {
    const sim = await start();
    const token = await getToken(sim);
    const first = (await topapi(sim, "/topapi/role/list", { offset: 0, size: 1 }, token)).json.result as {
      hasMore: boolean;
      list: { groupId: number; name: string; roles: { id: number; name: string }[] }[];
    };
    expect(first.hasMore).toBe(true);
    expect(first.list).toHaveLength(1);
    const second = (await topapi(sim, "/topapi/role/list", { offset: 1, size: 1 }, token)).json.result as {
      hasMore: boolean;
    };
    expect(second.hasMore).toBe(false);
    expect((await topapi(sim, "/topapi/role/list", { offset: 0, size: 200 }, token)).json.errcode).toBe(0);
    expect((await topapi(sim, "/topapi/role/list", { offset: 0, size: 201 }, token)).json).toMatchObject({
      sub_code: "40069",
    });
  });

  it("pages role/simplelist up to 100 and answers getrole and getrolegroup at the top level", async () => {
    const sim = await start();
    const token = await getToken(sim);
    const role = sim.org.roles.find((r) => r.members.length > 2)!;
    const page = (
      await topapi(sim, "/topapi/role/simplelist", { role_id: role.id, offset: 0, size: 2 }, token)
    ).json.result as { hasMore: boolean; list: { userid: string }[] };
    expect(page.hasMore).toBe(true);
    expect(page.list.map((m) => m.userid)).toEqual(role.members.slice(0, 2));
    expect(
      (await topapi(sim, "/topapi/role/simplelist", { role_id: role.id, offset: 0, size: 101 }, token)).json,
    ).toMatchObject({ sub_code: "40069" });
    const got = (await topapi(sim, "/topapi/role/getrole", { roleId: role.id }, token)).json;
    expect(got).not.toHaveProperty("result");
    expect(got.role).toEqual({ name: role.name, groupId: role.group.id });
    const group = (await topapi(sim, "/topapi/role/getrolegroup", { group_id: role.group.id }, token)).json;
    expect(group.role_group).toMatchObject({ group_name: role.group.name });
  });
});

describe("DingTalk simulator: limits and faults", () => {
  it("answers the 21st call to one API within a second with 90018, and serves again in the next second", async () => {
    const sim = await start();
    const token = await getToken(sim);
    const answers: unknown[] = [];
    for (let i = 0; i < 21; i++) {
      answers.push(
        (await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 }, token)).json.errcode,
      );
    }
    expect(answers.slice(0, 20).every((a) => a === 0)).toBe(true);
    expect(answers[20]).toBe(88);
    // Another API has its own budget.
    expect((await topapi(sim, "/topapi/v2/department/get", { dept_id: 1 }, token)).json.errcode).toBe(0);
    sim.clock.advance(1000);
    expect((await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 }, token)).json.errcode).toBe(
      0,
    );
  });

  it("bans an IP over its call limit for 5 minutes with the no-errcode JSON, then serves again", async () => {
    const sim = await start({ ipLimit: { calls: 5 } });
    const token = await getToken(sim);
    const answers = [];
    for (let i = 0; i < 6; i++)
      answers.push((await topapi(sim, "/topapi/v2/department/get", { dept_id: 1 }, token)).json);
    expect(answers[3]!.errcode).toBe(0);
    expect(answers[4]).toMatchObject({ status: 1111, wait: 5, punish: "deny" });
    expect(answers[4]).not.toHaveProperty("errcode");
    expect(answers[5]).toMatchObject({ status: 1111 });
    sim.clock.advance(299_000);
    expect((await topapi(sim, "/topapi/v2/department/get", { dept_id: 1 }, token)).json).toMatchObject({
      status: 1111,
    });
    sim.clock.advance(2_000);
    expect((await topapi(sim, "/topapi/v2/department/get", { dept_id: 1 }, token)).json.errcode).toBe(0);
  });

  it("can answer the ban with an HTML page instead", async () => {
    const sim = await start({ banReply: "html", faults: "ban-after=0" });
    const token = await getToken(sim);
    const res = await fetch(`${sim.url}/topapi/v2/department/get?access_token=${token}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/);
  });

  it("maps faults to DingTalk answers: busy → -1, 5xx → HTTP 502, rate-limit → 90018, expire-token → 40014", async () => {
    const sim = await start({
      legacyErrors: "direct",
      faults: "busy@/topapi/v2/department/get,5xx@/topapi/v2/department/listsubid,rate-limit-after=2",
    });
    const token = await getToken(sim);
    expect((await topapi(sim, "/topapi/v2/department/get", { dept_id: 1 }, token)).json).toMatchObject({
      errcode: -1,
    });
    const gateway = await topapi(sim, "/topapi/v2/department/listsubid", { dept_id: 1 }, token);
    expect(gateway.status).toBe(502);
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, token)).json).toMatchObject({
      errcode: 90018,
    });
    await fetch(`${sim.url}/__simulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ spec: "expire-token-after=1" }),
    });
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, token)).json.errcode).toBe(0);
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, token)).json).toMatchObject({
      errcode: 40014,
    });
  });

  it("after revoke-secret-after=K refuses the old token with 40014 and the secret with 40001 / HTTP 400, until the faults are replaced", async () => {
    const sim = await start({ legacyErrors: "direct", faults: "revoke-secret-after=1" });
    const { appKey, appSecret, corpId } = sim.credentials;
    const token = await getToken(sim);
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, token)).json.errcode).toBe(0);
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, token)).json).toMatchObject({
      errcode: 40014,
    });
    const legacy = (await (
      await fetch(`${sim.url}/gettoken?appkey=${appKey}&appsecret=${encodeURIComponent(appSecret)}`)
    ).json()) as Record<string, unknown>;
    expect(legacy).toMatchObject({ errcode: 40001 });
    expect(legacy).not.toHaveProperty("access_token");
    const json = (path: string, body: unknown) =>
      fetch(`${sim.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const api = await json("/v1.0/oauth2/accessToken", { appKey, appSecret });
    expect([api.status, ((await api.json()) as { code: string }).code]).toEqual([
      400,
      "invalidClientIdOrSecret",
    ]);
    const unified = await json(`/v1.0/oauth2/${corpId}/token`, {
      client_id: appKey,
      client_secret: appSecret,
      grant_type: "client_credentials",
    });
    expect([unified.status, ((await unified.json()) as { code: string }).code]).toEqual([
      400,
      "invalid.client",
    ]);
    await json("/__simulator/faults", { spec: "" });
    const fresh = await getToken(sim);
    expect((await topapi(sim, "/topapi/user/listid", { dept_id: 1 }, fresh)).json.errcode).toBe(0);
  });

  it("answers a new-API call with a token issued before a revoke-secret fault with HTTP 400 InvalidAuthentication", async () => {
    const state = createState({ people: 20, clock: new SimClock(() => Date.UTC(2026, 0, 5)) });
    state.controls.faults.set(parseFaults("revoke-secret-after=1"));
    const app = express();
    app.get(
      "/v1.0/contact/probe",
      apiEndpoint(state, (_req, res) => void res.json({ ok: true })),
    );
    const server = await listenLocal(app);
    running.push(server);
    const token = state.appTokens.issue(state.credentials.appKey).token;
    const call = () =>
      fetch(`${server.url}/v1.0/contact/probe`, { headers: { "x-acs-dingtalk-access-token": token } });
    expect((await call()).status).toBe(200);
    const revoked = await call();
    expect([revoked.status, ((await revoked.json()) as { code: string }).code]).toEqual([
      400,
      "InvalidAuthentication",
    ]);
  });

  it("answers new-API calls with HTTP 400 InvalidAuthentication, 403 QpsLimitForAppkeyAndApi and 404 InvalidAction.NotFound", async () => {
    const clock = new SimClock(() => Date.UTC(2026, 0, 5));
    const state = createState({ people: 20, clock, qps: 2 });
    const app = express();
    app.get(
      "/v1.0/contact/probe",
      apiEndpoint(state, (_req, res) => void res.json({ ok: true })),
    );
    const server = await listenLocal(app);
    running.push(server);
    const token = state.appTokens.issue(state.credentials.appKey).token;
    const call = (t?: string) =>
      fetch(`${server.url}/v1.0/contact/probe`, { headers: t ? { "x-acs-dingtalk-access-token": t } : {} });
    const bad = await call("nope");
    expect([bad.status, ((await bad.json()) as { code: string }).code]).toEqual([
      400,
      "InvalidAuthentication",
    ]);
    expect((await call(token)).status).toBe(200);
    expect((await call(token)).status).toBe(200);
    const limited = await call(token);
    expect([limited.status, ((await limited.json()) as { code: string }).code]).toEqual([
      403,
      "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    ]);
    const sim = await start();
    const missing = await fetch(`${sim.url}/v1.0/contact/nothing-here`);
    expect([missing.status, ((await missing.json()) as { code: string }).code]).toEqual([
      404,
      "InvalidAction.NotFound",
    ]);
  });
});

describe("DingTalk simulator: sign-in endpoints", () => {
  const CALLBACK = "http://127.0.0.1:9/cb";
  const authorize = (sim: RunningDingTalkSimulator, extra: Record<string, string> = {}): string =>
    `${sim.url}/oauth2/auth?${new URLSearchParams({
      redirect_uri: CALLBACK,
      response_type: "code",
      client_id: sim.credentials.appKey,
      scope: "openid corpid",
      prompt: "consent",
      state: "s",
      ...extra,
    })}`;
  const authCodeFor = async (sim: RunningDingTalkSimulator, userid: string): Promise<string> => {
    const approve = authorize(sim).replace("/oauth2/auth?", "/oauth2/auth/approve?") + `&userid=${userid}`;
    const res = await fetch(approve, { redirect: "manual" });
    return new URL(res.headers.get("location")!).searchParams.get("authCode")!;
  };
  const exchange = (sim: RunningDingTalkSimulator, body: Record<string, unknown>) =>
    fetch(`${sim.url}/v1.0/oauth2/userAccessToken`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        clientId: sim.credentials.appKey,
        clientSecret: sim.credentials.appSecret,
        ...body,
      }),
    });

  it("refuses an unregistered redirect_uri or unknown client_id at the authorize page", async () => {
    const sim = await start({ redirectUrls: [CALLBACK] });
    expect((await fetch(authorize(sim, { redirect_uri: `${CALLBACK}/x` }))).status).toBe(400);
    expect((await fetch(authorize(sim, { client_id: "dingother" }))).status).toBe(400);
    const page = await (await fetch(authorize(sim))).text();
    expect(page).toMatch(/data-userid="[^"]+"/);
  });

  it("exchanges an authCode once; a reused or expired code and a wrong secret answer HTTP 400", async () => {
    const sim = await start({ redirectUrls: [CALLBACK] });
    const who = [...sim.org.people].find((p) => p.status === "active")!;
    const code = await authCodeFor(sim, who.userid);
    const first = await exchange(sim, { code, grantType: "authorization_code" });
    const tokens = (await first.json()) as Record<string, unknown>;
    expect(tokens).toMatchObject({ expireIn: 7200, corpId: sim.credentials.corpId });
    const again = await exchange(sim, { code, grantType: "authorization_code" });
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ code: "invalidCode" });
    const late = await authCodeFor(sim, who.userid);
    sim.clock.advance(5 * 60_000 + 1);
    expect((await exchange(sim, { code: late, grantType: "authorization_code" })).status).toBe(400);
    const wrong = await exchange(sim, { clientSecret: "nope", code: "x", grantType: "authorization_code" });
    expect(await wrong.json()).toMatchObject({ code: "invalidClientIdOrSecret" });
    const refreshed = await exchange(sim, { refreshToken: tokens.refreshToken, grantType: "refresh_token" });
    expect(refreshed.status).toBe(200);
  });

  it("serves contact/users/me for a user token and InvalidAuthentication without one", async () => {
    const sim = await start({ redirectUrls: [CALLBACK] });
    const who = [...sim.org.people].find((p) => p.status === "active")!;
    const code = await authCodeFor(sim, who.userid);
    const { accessToken } = (await (
      await exchange(sim, { code, grantType: "authorization_code" })
    ).json()) as {
      accessToken: string;
    };
    const me = await fetch(`${sim.url}/v1.0/contact/users/me`, {
      headers: { "x-acs-dingtalk-access-token": accessToken },
    });
    expect(await me.json()).toMatchObject({ unionId: who.unionid });
    const bad = await fetch(`${sim.url}/v1.0/contact/users/me`, {
      headers: { "x-acs-dingtalk-access-token": "x" },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "InvalidAuthentication" });
  });

  it("answers getuserinfo once per 免登 code, then 40078", async () => {
    const sim = await start({ legacyErrors: "direct" });
    const who = [...sim.org.people].find((p) => p.status === "active")!;
    const res = await fetch(`${sim.url}/jsapi/request-auth-code?corpId=${sim.credentials.corpId}`, {
      headers: { cookie: `dingtalk_sim_user=${who.userid}`, origin: "http://127.0.0.1:9" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:9");
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    const { code } = (await res.json()) as { code: string };
    const token = await getToken(sim);
    const first = await topapi(sim, "/topapi/v2/user/getuserinfo", { code }, token);
    expect(first.json).toMatchObject({ errcode: 0, result: { userid: who.userid } });
    const second = await topapi(sim, "/topapi/v2/user/getuserinfo", { code }, token);
    expect(second.json).toMatchObject({ errcode: 40078 });
  });

  it("answers getbyunionid 60121 for people of the second organisation", async () => {
    const sim = await start({ legacyErrors: "direct" });
    const stranger = sim.foreignOrg.org.people[0]!;
    const reply = await topapi(sim, "/topapi/user/getbyunionid", { unionid: stranger.unionid });
    expect(reply.json).toMatchObject({ errcode: 60121 });
  });
});
