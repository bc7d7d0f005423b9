/**
 * LiveChecks over the Store-backed person directory: a person's state now at their directory source,
 * strict (a source that cannot be asked refuses) for silent sign-ins and refreshes, lenient (the kept
 * snapshot decides then) for launch; a yes cached per person for `cacheSeconds`, a no or an error never.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { stringify } from "yaml";
import { createPersonDirectory, LiveChecks } from "../../src/broker/people.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import type { LiveStatus } from "../../src/sources/sign-in.js";
import { openStore, type Store } from "../../src/store/index.js";
import { fullSnapshot, sourcePerson } from "../fixtures/identity/people.js";

const DING = "dingtalk-hq";
const READ_AT = "2026-03-01T02:00:00.000Z";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "idbridge-live-"));
  mkdirSync(join(dir, "policies"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(): Config {
  const file = join(dir, "idbridge.yaml");
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
      ],
      identity: { primarySource: DING },
    }),
  );
  return loadConfig({ file, env: {}, cwd: dir });
}

/** A store holding person p_1 (DingTalk ding-1, active in the kept snapshot). */
async function openPeopleStore(keptStatus: "active" | "disabled" = "active"): Promise<Store> {
  const store = await openStore({
    url: `sqlite:${join(dir, `store-${Math.random().toString(36).slice(2)}.db`)}`,
  });
  onTestFinished(() => store.close());
  await store.savePeople([
    {
      id: "p_1",
      accounts: [{ sourceId: DING, subject: "ding-1", rule: "test", linkedAt: "2026-02-01T00:00:00.000Z" }],
    },
  ]);
  const snapshot = fullSnapshot(DING, [sourcePerson("ding-1", { status: keptStatus })], {
    sourceType: "dingtalk",
    startedAt: READ_AT,
    finishedAt: READ_AT,
  });
  await store.putLatestSnapshot(DING, JSON.stringify(snapshot), READ_AT);
  return store;
}

/** DingTalk as the test sets it now, counting how often it is asked. */
function liveDingTalk(initial: LiveStatus | "throws") {
  const source = {
    status: initial,
    asked: 0,
    liveStatus: (sourceId: string, subject: string): Promise<LiveStatus> => {
      source.asked++;
      expect([sourceId, subject]).toEqual([DING, "ding-1"]);
      if (source.status === "throws") return Promise.reject(new Error("connection reset"));
      return Promise.resolve(source.status);
    },
  };
  return source;
}

async function checks(
  store: Store,
  live: ReturnType<typeof liveDingTalk>,
  cacheSeconds: number,
): Promise<{ checks: LiveChecks; clock: { at: number } }> {
  const people = createPersonDirectory({
    config: config(),
    store,
    audit: { record: () => Promise.resolve([]) as never },
    liveStatus: live.liveStatus,
    recheckMs: 0,
  });
  const clock = { at: 1_000 };
  return { checks: new LiveChecks(people, store, { cacheSeconds, now: () => clock.at }), clock };
}

describe("live checks of a signed-in person", () => {
  it("refuses a person their source disabled since the last sync, strict or not, with the source's words", async () => {
    const store = await openPeopleStore();
    const live = liveDingTalk("disabled");
    const { checks: c } = await checks(store, live, 0);
    for (const strict of [true, false]) {
      const outcome = await c.check("p_1", { strict });
      expect(outcome).toMatchObject({ ok: false, code: "ACCOUNT_DISABLED" });
      if (!outcome.ok) expect(outcome.reason).toContain(`${DING} says now`);
    }
  });

  it("refuses a departed person as ACCOUNT_LEFT", async () => {
    const store = await openPeopleStore();
    const { checks: c } = await checks(store, liveDingTalk("not-found"), 0);
    expect(await c.check("p_1", { strict: true })).toMatchObject({ ok: false, code: "ACCOUNT_LEFT" });
  });

  it("fails closed when the source cannot be asked and the check is strict, and falls back to the snapshot when not", async () => {
    const store = await openPeopleStore();
    const { checks: c } = await checks(store, liveDingTalk("throws"), 60);
    const strict = await c.check("p_1", { strict: true });
    expect(strict).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    if (!strict.ok) expect(strict.reason).toContain(`${DING} (for ding-1) could not be asked now`);
    expect(await c.check("p_1", { strict: false })).toEqual({ ok: true });
  });

  it("refuses on the kept snapshot's word when the source cannot be asked and the snapshot says disabled", async () => {
    const store = await openPeopleStore("disabled");
    const { checks: c } = await checks(store, liveDingTalk("unavailable"), 0);
    // The claims of the last reads already end it: disabled in the kept snapshot.
    expect(await c.check("p_1", { strict: false })).toMatchObject({ ok: false, code: "ACCOUNT_DISABLED" });
  });

  it("trusts a yes for cacheSeconds, then asks again; a no is asked every time", async () => {
    const store = await openPeopleStore();
    const live = liveDingTalk("active");
    const { checks: c, clock } = await checks(store, live, 60);
    expect(await c.check("p_1", { strict: true })).toEqual({ ok: true });
    live.status = "disabled";
    clock.at += 59_000;
    expect(await c.check("p_1", { strict: true })).toEqual({ ok: true });
    expect(live.asked).toBe(1);
    clock.at += 1_000;
    expect(await c.check("p_1", { strict: true })).toMatchObject({ ok: false, code: "ACCOUNT_DISABLED" });
    expect(await c.check("p_1", { strict: true })).toMatchObject({ ok: false, code: "ACCOUNT_DISABLED" });
    expect(live.asked).toBe(3);
  });

  it("never caches an unreachable source as active", async () => {
    const store = await openPeopleStore();
    const live = liveDingTalk("throws");
    const { checks: c } = await checks(store, live, 60);
    expect(await c.check("p_1", { strict: true })).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    expect(await c.check("p_1", { strict: true })).toMatchObject({ ok: false, code: "SOURCE_UNAVAILABLE" });
    expect(live.asked).toBe(2);
  });

  it("asks every time with cacheSeconds 0", async () => {
    const store = await openPeopleStore();
    const live = liveDingTalk("active");
    const { checks: c } = await checks(store, live, 0);
    await c.check("p_1", { strict: true });
    await c.check("p_1", { strict: true });
    expect(live.asked).toBe(2);
  });

  it("refuses a person no longer in the store", async () => {
    const store = await openPeopleStore();
    const { checks: c } = await checks(store, liveDingTalk("active"), 0);
    expect(await c.check("p_gone", { strict: true })).toMatchObject({ ok: false });
  });
});
