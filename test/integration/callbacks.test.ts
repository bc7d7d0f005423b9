import express from "express";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { AuditEvent } from "../../src/audit/chain.js";
import { callbackRouter, type ContactChange } from "../../src/http/callbacks.js";
import { dingtalkConfigSchema } from "../../src/sources/dingtalk/config.js";
import {
  createNonce,
  decodeAesKey,
  encryptCallbackMessage,
  signCallback,
} from "../../src/sources/http/callback-crypto.js";
import type { SourceConfigEntry } from "../../src/sources/registry.js";
import { wecomConfigSchema } from "../../src/sources/wecom/config.js";
import { SimClock } from "../../src/simulators/common/clock.js";
import { listenLocal, type RunningSimulator } from "../../src/simulators/common/control.js";
import {
  startDingTalkSimulator,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { startWeComSimulator, type RunningWeComSimulator } from "../../src/simulators/wecom/index.js";

// A pinned clock shared by both simulators and the router.
const T0 = Date.UTC(2026, 0, 15, 2, 0, 0);
const MINUTE = 60_000;

let dingtalk: RunningDingTalkSimulator;
let wecom: RunningWeComSimulator;
let server: RunningSimulator;
const changes: ContactChange[] = [];
const audits: AuditEvent[] = [];
let slowHandler = false;

const dingtalkUrl = (): string => `${server.url}/callbacks/dingtalk-hq`;
const wecomUrl = (): string => `${server.url}/callbacks/wecom-hq`;

beforeAll(async () => {
  dingtalk = await startDingTalkSimulator({ people: 30, seed: 3, clock: new SimClock(() => T0) });
  wecom = await startWeComSimulator({ people: 30, seed: 3, now: () => T0 });
  const sources: SourceConfigEntry[] = [
    {
      id: "dingtalk-hq",
      type: "dingtalk",
      config: dingtalkConfigSchema.parse({ ...dingtalk.sourceConfig(), callback: dingtalk.callback }),
    },
    {
      id: "wecom-hq",
      type: "wecom",
      config: wecomConfigSchema.parse({ ...wecom.sourceConfig(), callback: wecom.callback }),
    },
    // Configured without a callback: no endpoint.
    { id: "dingtalk-plain", type: "dingtalk", config: dingtalkConfigSchema.parse(dingtalk.sourceConfig()) },
  ];
  const app = express();
  app.use(
    "/callbacks",
    callbackRouter({
      sources,
      now: () => new Date(T0),
      audit: (event) => {
        audits.push(event);
        return Promise.resolve();
      },
      onContactChange: async (change) => {
        changes.push(change);
        // A sync that takes long must not hold the vendor's reply.
        if (slowHandler) await new Promise((resolve) => setTimeout(resolve, 3000));
      },
    }),
  );
  server = await listenLocal(app);
});

afterAll(async () => {
  await Promise.all([server?.close(), dingtalk?.close(), wecom?.close()]);
});

beforeEach(() => {
  changes.length = 0;
  audits.length = 0;
  slowHandler = false;
});

/** Waits until the router has told the sync (it does so after replying). */
async function nextChanges(count: number): Promise<ContactChange[]> {
  await vi.waitFor(() => expect(changes).toHaveLength(count), { timeout: 2000, interval: 10 });
  return [...changes];
}

/** Lets the router run anything it scheduled after its reply, so "not called" is really not called. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
}

describe("DingTalk callbacks", () => {
  it("answers user_modify_org with an encrypted success and passes the user ids to the sync", async () => {
    const [first, second] = dingtalk.org.people;
    const userIds = [first!.userid, second!.userid];
    const result = await dingtalk.pushEvent(dingtalkUrl(), { eventType: "user_modify_org", userIds });
    expect(result).toMatchObject({ status: 200, accepted: true });
    expect(await nextChanges(1)).toEqual([
      {
        sourceId: "dingtalk-hq",
        kind: "users",
        userIds,
        departmentIds: [],
        eventType: "user_modify_org",
        receivedAt: new Date(T0),
      },
    ]);
    expect(audits).toEqual([]);
  });

  it("passes department ids of org_dept_create and answers the registration's check_url", async () => {
    const deptId = dingtalk.org.departments[2]!.id;
    expect(
      (await dingtalk.pushEvent(dingtalkUrl(), { eventType: "org_dept_create", deptIds: [deptId] })).accepted,
    ).toBe(true);
    expect((await dingtalk.pushEvent(dingtalkUrl(), { eventType: "check_url" })).accepted).toBe(true);
    const [dept, check] = await nextChanges(2);
    expect(dept).toMatchObject({ kind: "departments", departmentIds: [String(deptId)], userIds: [] });
    expect(check).toMatchObject({ kind: "check", eventType: "check_url" });
  });

  it("answers events it does not act on without telling the sync", async () => {
    expect((await dingtalk.pushEvent(dingtalkUrl(), { eventType: "bpms_task_change" })).accepted).toBe(true);
    await settle();
    expect(changes).toEqual([]);
  });

  it("replies within DingTalk's 1500 ms even when the sync's handler is slow", async () => {
    slowHandler = true;
    const result = await dingtalk.pushEvent(dingtalkUrl(), { eventType: "user_leave_org", userIds: ["u-1"] });
    expect(result.accepted).toBe(true);
    expect(result.elapsedMs).toBeLessThan(1500);
    await nextChanges(1);
  });

  it("refuses a forged signature with 403 and one callback.refused audit entry", async () => {
    const result = await dingtalk.pushEvent(
      dingtalkUrl(),
      { eventType: "user_add_org", userIds: ["intruder"] },
      { signWithToken: "guessed-token" },
    );
    expect(result).toMatchObject({ status: 403, accepted: false });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      actor: "source:dingtalk-hq",
      action: "callback.refused",
      details: { reason: "bad_signature", vendor: "dingtalk" },
    });
    expect(String(audits[0]!.details!.remoteIp)).toMatch(/127\.0\.0\.1/);
    // No body, ids or secrets in the entry.
    const entry = JSON.stringify(audits[0]);
    expect(entry).not.toContain("intruder");
    expect(entry).not.toContain(dingtalk.callback.token);
    expect(entry).not.toContain(dingtalk.callback.aesKey);
    await settle();
    expect(changes).toEqual([]);
  });

  it("refuses a replayed push whose timestamp is more than 5 minutes old, and one from the future", async () => {
    for (const timestampMs of [T0 - 6 * MINUTE, T0 + 6 * MINUTE]) {
      const result = await dingtalk.pushEvent(
        dingtalkUrl(),
        { eventType: "user_modify_org", userIds: ["u-1"] },
        { timestampMs },
      );
      expect(result.status).toBe(403);
    }
    expect(audits.map((a) => a.details?.reason)).toEqual(["stale_timestamp", "stale_timestamp"]);
    // Within the window is fine (the vendors' clocks drift a little).
    const fresh = await dingtalk.pushEvent(
      dingtalkUrl(),
      { eventType: "user_modify_org", userIds: ["u-1"] },
      { timestampMs: T0 - 4 * MINUTE },
    );
    expect(fresh.accepted).toBe(true);
    await nextChanges(1);
  });

  it("refuses a message encrypted for another organisation", async () => {
    const result = await dingtalk.pushEvent(
      dingtalkUrl(),
      { eventType: "user_modify_org", userIds: ["u-1"] },
      { ownerKey: "ding-other-org" },
    );
    expect(result.status).toBe(403);
    expect(audits.map((a) => a.details?.reason)).toEqual(["wrong_owner"]);
    await settle();
    expect(changes).toEqual([]);
  });

  it("answers an identical repeat of a push but tells the sync only once", async () => {
    const { token, aesKey, ownerKey } = dingtalk.callback;
    const timestamp = String(T0);
    const nonce = createNonce();
    const message = JSON.stringify({ EventType: "user_modify_org", UserId: ["u-9"] });
    const encrypt = encryptCallbackMessage(decodeAesKey(aesKey), message, ownerKey);
    const url = `${dingtalkUrl()}?msg_signature=${signCallback(token, timestamp, nonce, encrypt)}&timestamp=${timestamp}&nonce=${nonce}`;
    const send = (): Promise<Response> =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ encrypt }),
      });
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(200);
    await settle();
    expect(changes.map((c) => c.userIds)).toEqual([["u-9"]]);
  });

  it("refuses an undecryptable body that carries a valid signature", async () => {
    const { token } = dingtalk.callback;
    const timestamp = String(T0);
    const nonce = createNonce();
    const encrypt = Buffer.alloc(48, 1).toString("base64");
    const url = `${dingtalkUrl()}?msg_signature=${signCallback(token, timestamp, nonce, encrypt)}&timestamp=${timestamp}&nonce=${nonce}`;
    const response = await fetch(url, { method: "POST", body: JSON.stringify({ encrypt }) });
    expect(response.status).toBe(403);
    expect(await response.text()).toBe("");
    expect(audits.map((a) => a.details?.reason)).toEqual(["undecryptable"]);
  });

  it("answers 404 for an unknown source or one without a callback, and 413 for a body over 64 KB", async () => {
    for (const id of ["nobody", "dingtalk-plain"]) {
      const response = await fetch(`${server.url}/callbacks/${id}`, { method: "POST", body: "{}" });
      expect(response.status).toBe(404);
    }
    const big = await fetch(dingtalkUrl(), {
      method: "POST",
      body: JSON.stringify({ encrypt: "A".repeat(70_000) }),
    });
    expect(big.status).toBe(413);
    expect(audits.map((a) => a.details?.reason)).toEqual(["body_too_large"]);
  });

  it("answers the simulator's control endpoint push the same way", async () => {
    const response = await fetch(`${dingtalk.url}/__simulator/callbacks/push`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: dingtalkUrl(), eventType: "user_add_org", userIds: ["new-hire"] }),
    });
    expect(await response.json()).toMatchObject({ status: 200, accepted: true });
    expect((await nextChanges(1))[0]).toMatchObject({ kind: "users", userIds: ["new-hire"] });
  });
});

describe("WeCom callbacks", () => {
  it("passes WeCom's URL check by echoing the decrypted echostr", async () => {
    const result = await wecom.verifyUrl(wecomUrl());
    expect(result).toMatchObject({ status: 200, accepted: true });
    expect((await nextChanges(1))[0]).toMatchObject({ sourceId: "wecom-hq", kind: "check" });
  });

  it("passes the user ids of update_user, old and new on a rename", async () => {
    const person = wecom.org.people[0]!;
    const result = await wecom.pushEvent(wecomUrl(), {
      changeType: "update_user",
      userId: person.userid,
      newUserId: `${person.userid}-renamed`,
      department: [...person.departments],
    });
    expect(result).toMatchObject({ status: 200, accepted: true });
    expect(await nextChanges(1)).toEqual([
      {
        sourceId: "wecom-hq",
        kind: "users",
        userIds: [person.userid, `${person.userid}-renamed`],
        departmentIds: [],
        eventType: "update_user",
        receivedAt: new Date(T0),
      },
    ]);
  });

  it("passes the department of delete_party and the members of update_tag", async () => {
    expect(
      (await wecom.pushEvent(wecomUrl(), { changeType: "delete_party", partyId: 9, parentId: 1 })).accepted,
    ).toBe(true);
    expect(
      (
        await wecom.pushEvent(wecomUrl(), {
          changeType: "update_tag",
          tag: { tagId: 2, addUsers: ["a"], delUsers: ["b"], addParties: [5] },
        })
      ).accepted,
    ).toBe(true);
    const [party, tag] = await nextChanges(2);
    expect(party).toMatchObject({ kind: "departments", eventType: "delete_party", departmentIds: ["9"] });
    expect(tag).toMatchObject({ kind: "users", userIds: ["a", "b"], departmentIds: ["5"] });
  });

  it("refuses a forged signature on an event and on the URL check, one audit entry each", async () => {
    const event = await wecom.pushEvent(
      wecomUrl(),
      { changeType: "delete_user", userId: "x" },
      { signWithToken: "guessed" },
    );
    const check = await wecom.verifyUrl(wecomUrl(), { signWithToken: "guessed" });
    expect([event.status, check.status]).toEqual([403, 403]);
    expect(audits).toHaveLength(2);
    expect(audits.every((a) => a.actor === "source:wecom-hq" && a.action === "callback.refused")).toBe(true);
    expect(audits.map((a) => a.details?.reason)).toEqual(["bad_signature", "bad_signature"]);
    await settle();
    expect(changes).toEqual([]);
  });

  it("refuses an old timestamp and another corp's receiveid", async () => {
    const stale = await wecom.pushEvent(
      wecomUrl(),
      { changeType: "create_user", userId: "x" },
      { timestampMs: T0 - 10 * MINUTE },
    );
    const foreign = await wecom.pushEvent(
      wecomUrl(),
      { changeType: "create_user", userId: "x" },
      { receiveId: "ww-someone-else" },
    );
    expect([stale.status, foreign.status]).toEqual([403, 403]);
    expect(audits.map((a) => a.details?.reason)).toEqual(["stale_timestamp", "wrong_owner"]);
  });

  it("answers 400 to a body that is not WeCom's XML", async () => {
    const response = await fetch(`${wecomUrl()}?msg_signature=x&timestamp=1&nonce=n`, {
      method: "POST",
      headers: { "content-type": "text/xml" },
      body: '<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
    });
    expect(response.status).toBe(400);
    expect(audits.map((a) => a.details?.reason)).toEqual(["malformed_request"]);
  });

  it("pushes through the simulator's control endpoints too", async () => {
    const verify = await fetch(`${wecom.url}/__simulator/callbacks/verify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: wecomUrl() }),
    });
    expect(await verify.json()).toMatchObject({ accepted: true });
    const push = await fetch(`${wecom.url}/__simulator/callbacks/push`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: wecomUrl(), event: { changeType: "create_party", partyId: 44 } }),
    });
    expect(await push.json()).toMatchObject({ status: 200, accepted: true });
    const [, party] = await nextChanges(2);
    expect(party).toMatchObject({ kind: "departments", departmentIds: ["44"] });
  });
});
