import { afterEach, describe, expect, it } from "vitest";
import { startWeComSimulator, type WeComSimulatorOptions } from "../../src/simulators/wecom/index.js";

type Running = Awaited<ReturnType<typeof startWeComSimulator>>;
type Reply = Record<string, unknown> & { errcode: number; errmsg: string };

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(options: WeComSimulatorOptions = {}): Promise<Running> {
  const sim = await startWeComSimulator({ people: 200, seed: 7, ...options });
  running.push(sim);
  return sim;
}

async function get(sim: Running, path: string, query: Record<string, string | number> = {}): Promise<Reply> {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const response = await fetch(`${sim.url}${path}?${params.toString()}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Reply;
}

async function post(sim: Running, path: string, token: string, body: unknown): Promise<Reply> {
  const response = await fetch(`${sim.url}${path}?access_token=${token}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await response.json()) as Reply;
}

async function token(sim: Running, secret = sim.credentials.contactSecret): Promise<string> {
  const reply = await get(sim, "/cgi-bin/gettoken", { corpid: sim.credentials.corpId, corpsecret: secret });
  expect(reply.errcode).toBe(0);
  return reply.access_token as string;
}

const appSecret = (sim: Running, i = 0): string => sim.credentials.apps[i]!.secret;

describe("WeCom simulator: gettoken and the envelope", () => {
  it("returns the same token for a secret while it is valid, with expires_in 7200, and a new one after expiry", async () => {
    const sim = await start();
    const first = await get(sim, "/cgi-bin/gettoken", {
      corpid: sim.credentials.corpId,
      corpsecret: sim.credentials.contactSecret,
    });
    expect(first).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    sim.controls.clock.advance(3_600_000);
    expect(await token(sim)).toBe(first.access_token);
    sim.controls.clock.advance(3_600_001);
    expect(await token(sim)).not.toBe(first.access_token);
  });

  it("issues one token per secret: the app's and the 通讯录同步 helper's differ", async () => {
    const sim = await start();
    expect(await token(sim, appSecret(sim))).not.toBe(await token(sim));
  });

  it("answers a wrong corpid with 40013 and a wrong secret with 40001, in WeCom's errmsg format", async () => {
    const sim = await start();
    const badCorp = await get(sim, "/cgi-bin/gettoken", {
      corpid: "wwnope",
      corpsecret: sim.credentials.contactSecret,
    });
    expect(badCorp.errcode).toBe(40013);
    const badSecret = await get(sim, "/cgi-bin/gettoken", {
      corpid: sim.credentials.corpId,
      corpsecret: "wrong",
    });
    expect(badSecret.errcode).toBe(40001);
    expect(badSecret.errmsg).toMatch(
      /^invalid credential, hint: \[\d+_\d+_[0-9a-f]+\], from ip: 127\.0\.0\.1, more info at https:\/\/open\.work\.weixin\.qq\.com\/devtool\/query\?e=40001$/,
    );
  });

  it("answers an expired token with 42001 by default and 40014 when chosen, and an unknown token with 40014", async () => {
    for (const [choice, expected] of [
      [undefined, 42001],
      [40014, 40014],
    ] as const) {
      const sim = await start(choice === undefined ? {} : { expiredTokenErrcode: choice });
      const t = await token(sim);
      sim.controls.clock.advance(7_200_000);
      expect((await get(sim, "/cgi-bin/department/list", { access_token: t })).errcode).toBe(expected);
    }
    const sim = await start();
    expect((await get(sim, "/cgi-bin/department/list", { access_token: "forged" })).errcode).toBe(40014);
    expect((await get(sim, "/cgi-bin/department/list")).errcode).toBe(41001);
  });
});

describe("WeCom simulator: contact APIs", () => {
  it("lists the whole tree from department/list without id and a recursive subtree with id", async () => {
    const sim = await start();
    const t = await token(sim);
    const all = (await get(sim, "/cgi-bin/department/list", { access_token: t })).department as {
      id: number;
      parentid: number;
      department_leader: string[];
    }[];
    expect(all).toHaveLength(sim.org.departments.length);
    expect(all[0]).toMatchObject({ id: 1, parentid: 0 });
    const top = sim.org.departments.find(
      (d) => d.parentId === 1 && sim.org.departments.some((c) => c.parentId === d.id),
    )!;
    const sub = (await get(sim, "/cgi-bin/department/list", { access_token: t, id: top.id })).department as {
      id: number;
    }[];
    const grandchildren = sim.org.departments.filter((d) =>
      sim.org.departments.some((c) => c.id === d.parentId && c.parentId === top.id),
    );
    expect(sub.map((d) => d.id)).toContain(top.id);
    for (const g of grandchildren) expect(sub.map((d) => d.id)).toContain(g.id);
    const simple = (await get(sim, "/cgi-bin/department/simplelist", { access_token: t }))
      .department_id as object[];
    expect(simple[0]).toEqual({ id: 1, parentid: 0, order: 0 });
    expect(simple).toHaveLength(all.length);
    const one = await get(sim, "/cgi-bin/department/get", { access_token: t, id: top.id });
    expect(one.department).toMatchObject({
      id: top.id,
      name: top.name,
      parentid: 1,
      department_leader: top.leaders,
    });
    expect((await get(sim, "/cgi-bin/department/get", { access_token: t, id: 999_999 })).errcode).toBe(60003);
  });

  it("returns only direct members from user/list and user/simplelist, with status 5 for people who left", async () => {
    const sim = await start();
    const t = await token(sim);
    const reply = await get(sim, "/cgi-bin/user/list", { access_token: t, department_id: 1 });
    const direct = sim.org.people.filter((p) => p.departments.includes(1)).map((p) => p.userid);
    expect((reply.userlist as { userid: string }[]).map((u) => u.userid)).toEqual(direct);
    const simple = await get(sim, "/cgi-bin/user/simplelist", { access_token: t, department_id: 1 });
    expect(Object.keys((simple.userlist as object[])[0]!).sort()).toEqual([
      "department",
      "name",
      "open_userid",
      "userid",
    ]);
    const left = sim.org.people.find((p) => p.status === "left")!;
    const user = await get(sim, "/cgi-bin/user/get", { access_token: t, userid: left.userid });
    expect(user).toMatchObject({
      errcode: 0,
      userid: left.userid,
      status: 5,
      main_department: left.departments[0],
    });
    expect((await get(sim, "/cgi-bin/user/get", { access_token: t, userid: "nobody" })).errcode).toBe(60111);
  });

  it("serves user/list_id only to the 通讯录同步 secret (48002 for an app secret)", async () => {
    const sim = await start();
    expect(
      (await post(sim, "/cgi-bin/user/list_id", await token(sim, appSecret(sim)), { limit: 10 })).errcode,
    ).toBe(48002);
    expect((await post(sim, "/cgi-bin/user/list_id", await token(sim), { limit: 10 })).errcode).toBe(0);
  });

  it("pages user/list_id with a string cursor, one row per user and department, ending without next_cursor", async () => {
    const sim = await start();
    const t = await token(sim);
    const rows: { userid: string; department: number }[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const reply = await post(
        sim,
        "/cgi-bin/user/list_id",
        t,
        cursor === undefined ? { limit: 37 } : { cursor, limit: 37 },
      );
      expect(reply.errcode).toBe(0);
      rows.push(...(reply.dept_user as typeof rows));
      cursor = reply.next_cursor as string | undefined;
      if (cursor !== undefined) expect(typeof cursor).toBe("string");
      pages++;
    } while (cursor !== undefined && cursor !== "");
    const expected = sim.org.people.flatMap((p) =>
      p.departments.map((department) => ({ userid: p.userid, department })),
    );
    expect(rows).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 37));
  });

  it("keeps a user/list_id cursor valid across a token refresh and rejects a forged cursor with 50100", async () => {
    const sim = await start();
    const first = await post(sim, "/cgi-bin/user/list_id", await token(sim), { limit: 50 });
    sim.controls.clock.advance(7_200_000);
    const again = await post(sim, "/cgi-bin/user/list_id", await token(sim), {
      cursor: first.next_cursor,
      limit: 50,
    });
    expect(again.errcode).toBe(0);
    const reference = await post(sim, "/cgi-bin/user/list_id", await token(sim), { limit: 51 });
    expect((again.dept_user as object[])[0]).toEqual((reference.dept_user as object[])[50]);
    expect(
      (await post(sim, "/cgi-bin/user/list_id", await token(sim), { cursor: "bm90LWEtY3Vyc29y", limit: 50 }))
        .errcode,
    ).toBe(50100);
  });

  it("rejects user/list_id limits outside 1..10000", async () => {
    const sim = await start();
    const t = await token(sim);
    for (const limit of [0, 10_001, 2.5])
      expect((await post(sim, "/cgi-bin/user/list_id", t, { limit })).errcode).toBe(40058);
    expect((await post(sim, "/cgi-bin/user/list_id", t, { limit: 10_000 })).errcode).toBe(0);
  });

  it("lists tags and answers tag/get with userlist and partylist", async () => {
    const sim = await start();
    const t = await token(sim);
    const tags = (await get(sim, "/cgi-bin/tag/list", { access_token: t })).taglist as {
      tagid: number;
      tagname: string;
    }[];
    expect(tags).toEqual(sim.org.roles.map((r) => ({ tagid: r.id, tagname: r.name })));
    const tagged = sim.org.roles.find((r) => r.departments.length > 0)!;
    const reply = await get(sim, "/cgi-bin/tag/get", { access_token: t, tagid: tagged.id });
    expect(reply).toMatchObject({ errcode: 0, tagname: tagged.name, partylist: tagged.departments });
    expect((reply.userlist as { userid: string }[]).map((u) => u.userid)).toEqual(tagged.members);
    expect((await get(sim, "/cgi-bin/tag/get", { access_token: t, tagid: 1 })).errcode).toBe(40068);
  });
});

describe("WeCom simulator: apps, visible ranges and the 2022 rules", () => {
  it("limits an app to its visible range: other departments and their people get 60011", async () => {
    const sim = await start();
    const inside = sim.org.departments.find((d) => d.parentId === 1)!;
    const outside = sim.org.departments.find((d) => d.parentId === 1 && d.id !== inside.id)!;
    const limited = await start({ seed: 7, apps: [{ agentId: 1000005, visibleDepartments: [inside.id] }] });
    const t = await token(limited, appSecret(limited));
    const visible = (await get(limited, "/cgi-bin/department/list", { access_token: t })).department as {
      id: number;
    }[];
    expect(visible[0]!.id).toBe(inside.id);
    expect(visible.map((d) => d.id)).not.toContain(outside.id);
    expect(
      (await get(limited, "/cgi-bin/user/list", { access_token: t, department_id: outside.id })).errcode,
    ).toBe(60011);
    const stranger = limited.org.people.find((p) => p.departments.every((d) => d === outside.id))!;
    expect(
      (await get(limited, "/cgi-bin/user/get", { access_token: t, userid: stranger.userid })).errcode,
    ).toBe(60011);
  });

  it("leaves avatar, gender, mobile, email, biz_mail, qr_code and address out for apps created after 2022", async () => {
    const sim = await start({ apps: [{ agentId: 1000002, createdAfter2022: true }] });
    const person = sim.org.people[1]!;
    const fromApp = await get(sim, "/cgi-bin/user/get", {
      access_token: await token(sim, appSecret(sim)),
      userid: person.userid,
    });
    for (const field of [
      "avatar",
      "thumb_avatar",
      "gender",
      "mobile",
      "email",
      "biz_mail",
      "qr_code",
      "address",
    ]) {
      expect(fromApp).not.toHaveProperty(field);
    }
    expect(fromApp).toMatchObject({ userid: person.userid, name: person.name, status: 1 });
    const fromContact = await get(sim, "/cgi-bin/user/get", {
      access_token: await token(sim),
      userid: person.userid,
    });
    expect(fromContact).toMatchObject({ mobile: person.mobile, email: person.email });
  });

  it("refuses callers outside an app's 企业可信IP with 60020", async () => {
    const sim = await start({ apps: [{ agentId: 1000002, trustedIps: ["10.0.0.8"] }] });
    const reply = await get(sim, "/cgi-bin/gettoken", {
      corpid: sim.credentials.corpId,
      corpsecret: appSecret(sim),
    });
    expect(reply.errcode).toBe(60020);
    const allowed = await start({ apps: [{ agentId: 1000002, trustedIps: ["127.0.0.1"] }] });
    expect(
      (
        await get(allowed, "/cgi-bin/department/list", {
          access_token: await token(allowed, appSecret(allowed)),
        })
      ).errcode,
    ).toBe(0);
  });

  it("refuses the 通讯录同步 secret outside its 企业可信IP with 60020", async () => {
    const sim = await start({ contactSyncTrustedIps: ["10.0.0.9"] });
    const reply = await get(sim, "/cgi-bin/gettoken", {
      corpid: sim.credentials.corpId,
      corpsecret: sim.credentials.contactSecret,
    });
    expect(reply.errcode).toBe(60020);
    expect(reply.errmsg).toContain("from ip: 127.0.0.1");
  });

  it("refuses user/get, user/list, department/list and department/get to a 通讯录同步 IP added after 2022-08-15, but not user/list_id or simplelist", async () => {
    const sim = await start({ contactSyncIpAddedAfter20220815: true });
    const t = await token(sim);
    expect((await get(sim, "/cgi-bin/department/list", { access_token: t })).errcode).toBe(60020);
    expect((await get(sim, "/cgi-bin/department/get", { access_token: t, id: 1 })).errcode).toBe(60020);
    expect((await get(sim, "/cgi-bin/user/list", { access_token: t, department_id: 1 })).errcode).toBe(60020);
    expect(
      (await get(sim, "/cgi-bin/user/get", { access_token: t, userid: sim.org.people[0]!.userid })).errcode,
    ).toBe(60020);
    expect((await get(sim, "/cgi-bin/department/simplelist", { access_token: t })).errcode).toBe(0);
    expect((await post(sim, "/cgi-bin/user/list_id", t, { limit: 10 })).errcode).toBe(0);
  });
});

describe("WeCom simulator: limits and faults", () => {
  it("answers 45009 past the per-minute limit of an API and blocks that API for 60 s", async () => {
    const sim = await start({ rateLimitPerMinute: 3 });
    const t = await token(sim);
    sim.controls.clock.advance(60_000 - (sim.controls.clock.now() % 60_000));
    for (let i = 0; i < 3; i++)
      expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(0);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(45009);
    expect((await get(sim, "/cgi-bin/department/list", { access_token: t })).errcode).toBe(0);
    sim.controls.clock.advance(30_000);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(45009);
    sim.controls.clock.advance(30_001);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(0);
  });

  it("answers 45033 to calls beyond the concurrency limit", async () => {
    const sim = await start({ maxConcurrent: 1, faults: "latency=50" });
    const t = await token(sim);
    const replies = await Promise.all(
      [1, 2, 3].map(() => get(sim, "/cgi-bin/tag/list", { access_token: t })),
    );
    expect(replies.map((r) => r.errcode).sort()).toEqual([0, 45033, 45033]);
  });

  it("maps faults to WeCom errors: busy → -1, 5xx → HTTP 502, rate limit → 45009, ban → 45009 for an hour", async () => {
    const sim = await start({ faults: "busy@/cgi-bin/tag/list,5xx@/cgi-bin/tag/list,rate-limit-after=2" });
    const t = await token(sim);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(-1);
    const bad = await fetch(`${sim.url}/cgi-bin/tag/list?access_token=${t}`);
    expect(bad.status).toBe(502);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(45009);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(0);

    const banned = await start({ faults: "ban-after=1" });
    const bt = await token(banned);
    expect((await get(banned, "/cgi-bin/tag/list", { access_token: bt })).errcode).toBe(0);
    expect((await get(banned, "/cgi-bin/tag/list", { access_token: bt })).errcode).toBe(45009);
    banned.controls.clock.advance(59 * 60_000);
    expect((await get(banned, "/cgi-bin/tag/list", { access_token: bt })).errcode).toBe(45009);
    banned.controls.clock.advance(60_001);
    expect((await get(banned, "/cgi-bin/tag/list", { access_token: bt })).errcode).toBe(0);
  });

  it("expires every token after K calls with expire-token-after=K", async () => {
    const sim = await start({ faults: "expire-token-after=1" });
    const t = await token(sim);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(0);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(42001);
    const fresh = await token(sim);
    expect(fresh).not.toBe(t);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: fresh })).errcode).toBe(0);
  });

  it("after revoke-secret-after=K refuses every old token with 40014 and every secret with 40001", async () => {
    const sim = await start({ faults: "revoke-secret-after=1" });
    const t = await token(sim);
    const appToken = await token(sim, appSecret(sim));
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(0);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: t })).errcode).toBe(40014);
    expect((await get(sim, "/cgi-bin/tag/list", { access_token: appToken })).errcode).toBe(40014);
    for (const secret of [sim.credentials.contactSecret, appSecret(sim)]) {
      const reply = await get(sim, "/cgi-bin/gettoken", {
        corpid: sim.credentials.corpId,
        corpsecret: secret,
      });
      expect(reply.errcode).toBe(40001);
      expect(reply.errmsg).toMatch(/^invalid credential, hint: /);
      expect(reply).not.toHaveProperty("access_token");
    }
  });

  it("serves 100,000 people: user/list of a department answers from the department index", async () => {
    const sim = await start({ people: 100_000 });
    const t = await token(sim);
    const dept = sim.org.departments[sim.org.departments.length - 1]!;
    const reply = await get(sim, "/cgi-bin/user/list", { access_token: t, department_id: dept.id });
    expect((reply.userlist as object[]).length).toBe(
      sim.org.people.filter((p) => p.departments.includes(dept.id)).length,
    );
    expect(sim.org.people).toHaveLength(100_000);
  });
});

describe("WeCom simulator: sign-in endpoints", () => {
  const CALLBACK = "http://127.0.0.1:8443/cb";

  function loginUrl(sim: Running, path: string, extra: Record<string, string> = {}): string {
    const query = new URLSearchParams({
      login_type: "CorpApp",
      appid: sim.credentials.corpId,
      agentid: String(sim.credentials.apps[0]!.agentId),
      redirect_uri: CALLBACK,
      state: "s1",
      ...extra,
    });
    return `${sim.url}${path}?${query.toString()}`;
  }

  /** The code the picker's entry for `userid` brings back (via the `sim_who` choice). */
  async function codeFor(
    sim: Running,
    userid: string,
    url = loginUrl(sim, "/wwlogin/sso/login"),
  ): Promise<string> {
    const response = await fetch(`${url}&sim_who=${encodeURIComponent(userid)}`, { redirect: "manual" });
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get("location")!);
    expect(location.searchParams.get("state")).toBe("s1");
    return location.searchParams.get("code")!;
  }

  const active = (sim: Running) => sim.org.people.find((p) => p.status === "active")!;

  it("shows a picker with the corp's users, a non-member, a linked-corp user and a cancel", async () => {
    const sim = await start();
    const page = await (await fetch(loginUrl(sim, "/wwlogin/sso/login"))).text();
    for (const p of sim.org.people) expect(page).toContain(`data-userid="${p.userid}"`);
    expect(page).toMatch(/data-kind="non-member" data-openid="oSIM[0-9a-f]+"/);
    expect(page).toContain('data-kind="linked-corp" data-userid="wwlinkedcorp0000001/lisi"');
    const cancel = /<a data-cancel href="([^"]+)"/.exec(page)![1]!.replaceAll("&amp;", "&");
    const back = await fetch(new URL(cancel, sim.url), { redirect: "manual" });
    expect(back.headers.get("location")).toBe(`${CALLBACK}?state=s1`);
  });

  it("exchanges a code once at auth/getuserinfo and answers 40029 the second time", async () => {
    const sim = await start();
    const code = await codeFor(sim, active(sim).userid);
    expect(code.length).toBeLessThanOrEqual(512);
    const appToken = await token(sim, appSecret(sim));
    expect(await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: appToken, code })).toEqual({
      errcode: 0,
      errmsg: "ok",
      userid: active(sim).userid,
    });
    expect((await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: appToken, code })).errcode).toBe(
      40029,
    );
  });

  it("answers 40029 to a code older than 5 minutes and to another app's code, 48002 to the 通讯录同步 secret", async () => {
    const sim = await start({ apps: [{ agentId: 1000002 }, { agentId: 1000003 }] });
    const expired = await codeFor(sim, active(sim).userid);
    sim.controls.clock.advance(5 * 60_000 + 1);
    const first = await token(sim, appSecret(sim, 0));
    expect(
      (await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: first, code: expired })).errcode,
    ).toBe(40029);
    const code = await codeFor(sim, active(sim).userid);
    const second = await token(sim, appSecret(sim, 1));
    expect((await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: second, code })).errcode).toBe(40029);
    expect(
      (await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: await token(sim), code })).errcode,
    ).toBe(48002);
    expect((await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: first, code })).errcode).toBe(0);
  });

  it("gives an openid for a WeChat user, CorpId/userid for a linked corp, and capitalised keys on the legacy endpoint", async () => {
    const sim = await start();
    const appToken = await token(sim, appSecret(sim));
    const wechat = await codeFor(sim, "openid:oSIMabc");
    expect(await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: appToken, code: wechat })).toEqual({
      errcode: 0,
      errmsg: "ok",
      openid: "oSIMabc",
    });
    const linked = await codeFor(sim, "wwother/zhangsan");
    expect(
      (await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: appToken, code: linked })).userid,
    ).toBe("wwother/zhangsan");
    const legacy = await get(sim, "/cgi-bin/user/getuserinfo", {
      access_token: appToken,
      code: await codeFor(sim, active(sim).userid),
    });
    expect(legacy).toMatchObject({ errcode: 0, UserId: active(sim).userid, DeviceId: expect.any(String) });
    expect(legacy.userid).toBeUndefined();
  });

  it("serves the old qrConnect login the same way", async () => {
    const sim = await start();
    const url = loginUrl(sim, "/wwopen/sso/qrConnect", { login_type: "" });
    const code = await codeFor(sim, active(sim).userid, url);
    const reply = await get(sim, "/cgi-bin/auth/getuserinfo", {
      access_token: await token(sim, appSecret(sim)),
      code,
    });
    expect(reply.userid).toBe(active(sim).userid);
  });

  it("refuses a redirect whose host:port is not a trusted domain (50001), a wrong appid (40013) and agentid (40056)", async () => {
    const sim = await start({ apps: [{ agentId: 1000002, trustedDomains: ["127.0.0.1:8443"] }] });
    const page = async (url: string) => {
      const response = await fetch(url, { redirect: "manual" });
      expect(response.status).toBe(200);
      return response.text();
    };
    expect(
      await page(loginUrl(sim, "/wwlogin/sso/login", { redirect_uri: "http://127.0.0.1:9443/cb" })),
    ).toMatch(/redirect_uri参数错误.*错误码：50001/s);
    expect(
      await page(loginUrl(sim, "/wwlogin/sso/login", { redirect_uri: "http://evil.example/cb" })),
    ).toContain('data-errcode="50001"');
    expect(await page(loginUrl(sim, "/wwlogin/sso/login", { appid: "wwnope" }))).toContain(
      'data-errcode="40013"',
    );
    expect(await page(loginUrl(sim, "/wwlogin/sso/login", { agentid: "42" }))).toContain(
      'data-errcode="40056"',
    );
    // Scheme and path do not matter, only host and port.
    expect(
      await codeFor(
        sim,
        active(sim).userid,
        loginUrl(sim, "/wwlogin/sso/login", { redirect_uri: "https://127.0.0.1:8443/other" }),
      ),
    ).toBeTruthy();
  });

  it("in the app: redirects silently for the user of the wecom_sim_user cookie, shows an error page without it", async () => {
    const sim = await start();
    const url = `${sim.url}/connect/oauth2/authorize?${new URLSearchParams({
      appid: sim.credentials.corpId,
      redirect_uri: CALLBACK,
      response_type: "code",
      scope: "snsapi_base",
      state: "s1",
      agentid: String(sim.credentials.apps[0]!.agentId),
    }).toString()}`;
    const outside = await fetch(url, { redirect: "manual" });
    expect(outside.status).toBe(200);
    expect(await outside.text()).toContain("请在企业微信客户端打开链接");

    const signIn = await fetch(`${sim.url}/sim/sign-in-as?userid=${active(sim).userid}`);
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    const inside = await fetch(url, { redirect: "manual", headers: { cookie } });
    expect(inside.status).toBe(302);
    const code = new URL(inside.headers.get("location")!).searchParams.get("code")!;
    const reply = await get(sim, "/cgi-bin/auth/getuserinfo", {
      access_token: await token(sim, appSecret(sim)),
      code,
    });
    expect(reply).toEqual({ errcode: 0, errmsg: "ok", userid: active(sim).userid });
  });

  it("with snsapi_privateinfo hands out a user_ticket whose getuserdetail carries mobile and email, even to a post-2022 app", async () => {
    const sim = await start({ apps: [{ agentId: 1000002, createdAfter2022: true }] });
    const person = active(sim);
    const url = `${sim.url}/connect/oauth2/authorize?${new URLSearchParams({
      appid: sim.credentials.corpId,
      redirect_uri: CALLBACK,
      response_type: "code",
      scope: "snsapi_privateinfo",
      state: "s1",
      agentid: "1000002",
    }).toString()}`;
    const response = await fetch(url, {
      redirect: "manual",
      headers: { cookie: `wecom_sim_user=${person.userid}` },
    });
    const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
    const appToken = await token(sim, appSecret(sim));
    const info = await get(sim, "/cgi-bin/auth/getuserinfo", { access_token: appToken, code });
    expect(info).toMatchObject({ userid: person.userid, user_ticket: expect.any(String), expires_in: 1800 });
    const detail = await post(sim, "/cgi-bin/auth/getuserdetail", appToken, {
      user_ticket: info.user_ticket,
    });
    expect(detail).toMatchObject({
      errcode: 0,
      userid: person.userid,
      mobile: person.mobile,
      email: person.email,
    });
    sim.controls.clock.advance(1_800_001);
    expect(
      (await post(sim, "/cgi-bin/auth/getuserdetail", appToken, { user_ticket: info.user_ticket })).errcode,
    ).toBe(40029);
  });
});
