/**
 * Conformance of the oidc-provider adapter on the Store: every adapter method on SQLite and on a real
 * PostgreSQL server, a real oidc-provider Provider using it, and two instances sharing one database.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import Provider, { type AdapterPayload } from "oidc-provider";
import { createOidcAdapter, startOidcArtifactSweep, StoreOidcAdapter } from "../../src/broker/adapter.js";
import { openStore, type Store } from "../../src/store/index.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

const { sqlite, postgres } = storeFlavours();
/** A pinned clock: 2026-03-01T08:00:00Z. */
const T0 = Date.parse("2026-03-01T08:00:00.000Z");

function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => (at += ms) };
}

function code(grantId: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
  return {
    kind: "AuthorizationCode",
    jti: "code-1",
    grantId,
    clientId: "portal",
    accountId: "p_1",
    scope: "openid profile",
    redirectUri: "https://portal.example.test/cb",
    codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    codeChallengeMethod: "S256",
    nonce: "n-0S6_WzA2Mj",
    claims: { id_token: { name: null } },
    ...extra,
  };
}

/** `consumed` of a provider model instance (the typings leave it out; oidc-provider sets it from the adapter). */
function consumedOf(model: object | undefined): unknown {
  return (model as { consumed?: unknown } | undefined)?.consumed;
}

function describeAdapterConformance(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`oidc-provider adapter conformance (${flavour.name})`, () => {
    async function open(url: string): Promise<Store> {
      const store = await openStore({ url, poolSize: 4 });
      onTestFinished(() => store.close());
      return store;
    }
    async function openFresh(): Promise<{ url: string; store: Store }> {
      const url = await flavour.freshUrl();
      return { url, store: await open(url) };
    }

    it("finds an upserted payload exactly as given, and replaces it on a second upsert", async () => {
      const { store } = await openFresh();
      const adapter = new StoreOidcAdapter(store, "AuthorizationCode", { now: clock().now });
      expect(await adapter.find("code-1")).toBeUndefined();
      await adapter.upsert("code-1", code("g-1"), 60);
      expect(await adapter.find("code-1")).toStrictEqual(code("g-1"));
      await adapter.upsert("code-1", code("g-1", { scope: "openid 名字" }), 60);
      expect(await adapter.find("code-1")).toStrictEqual(code("g-1", { scope: "openid 名字" }));
    });

    it("keeps models apart: one id in two models is two artefacts", async () => {
      const { store } = await openFresh();
      const codes = new StoreOidcAdapter(store, "AuthorizationCode");
      const tokens = new StoreOidcAdapter(store, "AccessToken");
      await codes.upsert("same", code("g-1"), 60);
      expect(await tokens.find("same")).toBeUndefined();
      await tokens.upsert("same", { kind: "AccessToken", grantId: "g-1" }, 60);
      await codes.destroy("same");
      expect(await codes.find("same")).toBeUndefined();
      expect(await tokens.find("same")).toStrictEqual({ kind: "AccessToken", grantId: "g-1" });
    });

    it("finds nothing once expiresIn seconds have passed, and keeps artefacts without expiry", async () => {
      const { store } = await openFresh();
      const time = clock();
      const codes = new StoreOidcAdapter(store, "AuthorizationCode", { now: time.now });
      const grants = new StoreOidcAdapter(store, "Grant", { now: time.now });
      await codes.upsert("code-1", code("g-1"), 60);
      await grants.upsert("g-1", { kind: "Grant", jti: "g-1", accountId: "p_1" });
      time.advance(59_999);
      expect(await codes.find("code-1")).toBeDefined();
      time.advance(1);
      expect(await codes.find("code-1")).toBeUndefined();
      time.advance(365 * 86_400_000);
      expect(await grants.find("g-1")).toStrictEqual({ kind: "Grant", jti: "g-1", accountId: "p_1" });
    });

    it("marks a consumed artefact with `consumed` in epoch seconds, and a re-upsert keeps the payload's own", async () => {
      const { store } = await openFresh();
      const time = clock(T0 + 1_500);
      const codes = new StoreOidcAdapter(store, "AuthorizationCode", { now: time.now });
      await codes.upsert("code-1", code("g-1"), 60);
      expect((await codes.find("code-1"))?.consumed).toBeUndefined();
      await codes.consume("code-1");
      const consumed = await codes.find("code-1");
      expect(consumed).toStrictEqual({ ...code("g-1"), consumed: Math.floor((T0 + 1_500) / 1000) });
      // A second consume (a redemption that lost a race) is a reuse: invalid_grant, and the grant revoked.
      time.advance(10_000);
      await expect(codes.consume("code-1")).rejects.toMatchObject({ error: "invalid_grant" });
      expect(await codes.find("code-1")).toBeUndefined();
      // oidc-provider saves what it found: the consumed mark travels in the payload.
      await codes.upsert("code-1", consumed as AdapterPayload, 60);
      expect((await codes.find("code-1"))?.consumed).toBe(Math.floor((T0 + 1_500) / 1000));
    });

    it("finds a session by uid and a device code by user code, never past expiry or in another model", async () => {
      const { store } = await openFresh();
      const time = clock();
      const sessions = new StoreOidcAdapter(store, "Session", { now: time.now });
      const devices = new StoreOidcAdapter(store, "DeviceCode", { now: time.now });
      const session = { kind: "Session", jti: "s-1", uid: "uid-1", accountId: "p_1", loginTs: 1 };
      const device = {
        kind: "DeviceCode",
        jti: "d-1",
        userCode: "BCDF-GHJK",
        clientId: "tv",
        grantId: "g-2",
      };
      await sessions.upsert("s-1", session, 600);
      await devices.upsert("d-1", device, 300);
      expect(await sessions.findByUid("uid-1")).toStrictEqual(session);
      expect(await sessions.findByUid("uid-2")).toBeUndefined();
      expect(await devices.findByUserCode("BCDF-GHJK")).toStrictEqual(device);
      expect(await sessions.findByUserCode("BCDF-GHJK")).toBeUndefined();
      expect(await devices.findByUid("uid-1")).toBeUndefined();
      time.advance(300_000);
      expect(await devices.findByUserCode("BCDF-GHJK")).toBeUndefined();
      expect(await sessions.findByUid("uid-1")).toStrictEqual(session);
      // A session saved again under a new uid is no longer found by the old one.
      await sessions.upsert("s-1", { ...session, uid: "uid-9" }, 600);
      expect(await sessions.findByUid("uid-1")).toBeUndefined();
      expect((await sessions.findByUid("uid-9"))?.jti).toBe("s-1");
    });

    it("destroys one artefact and leaves the others", async () => {
      const { store } = await openFresh();
      const codes = new StoreOidcAdapter(store, "AuthorizationCode");
      await codes.upsert("code-1", code("g-1"), 60);
      await codes.upsert("code-2", code("g-1", { jti: "code-2" }), 60);
      await codes.destroy("code-1");
      await codes.destroy("unknown");
      expect(await codes.find("code-1")).toBeUndefined();
      expect((await codes.find("code-2"))?.jti).toBe("code-2");
    });

    it("revokes a grant: its codes, access and refresh tokens of every model go, other grants' stay", async () => {
      const { store } = await openFresh();
      const adapt = createOidcAdapter(store);
      const codes = adapt("AuthorizationCode");
      const access = adapt("AccessToken");
      const refresh = adapt("RefreshToken");
      const grants = adapt("Grant");
      await codes.upsert("c-1", code("g-1"), 60);
      await access.upsert("at-1", { kind: "AccessToken", grantId: "g-1" }, 3600);
      await refresh.upsert("rt-1", { kind: "RefreshToken", grantId: "g-1" }, 86_400);
      await access.upsert("at-2", { kind: "AccessToken", grantId: "g-2" }, 3600);
      await grants.upsert("g-1", { kind: "Grant", jti: "g-1" }, 86_400);
      await access.revokeByGrantId("g-1");
      expect(await codes.find("c-1")).toBeUndefined();
      expect(await access.find("at-1")).toBeUndefined();
      expect(await refresh.find("rt-1")).toBeUndefined();
      expect(await access.find("at-2")).toStrictEqual({ kind: "AccessToken", grantId: "g-2" });
      // The Grant itself is the provider's to destroy (it does so when revoking); its payload has no grantId.
      expect(await grants.find("g-1")).toStrictEqual({ kind: "Grant", jti: "g-1" });
    });

    it("sweeps expired rows from the table and returns their count", async () => {
      const { url, store } = await openFresh();
      const time = clock();
      const codes = new StoreOidcAdapter(store, "AuthorizationCode", { now: time.now });
      await codes.upsert("short", code("g-1", { jti: "short" }), 10);
      await codes.upsert("long", code("g-1", { jti: "long" }), 600);
      await codes.upsert("forever", code("g-1", { jti: "forever" }));
      time.advance(10_000);
      expect(await store.deleteExpiredOidcArtifacts(time.now())).toBe(1);
      expect(await store.deleteExpiredOidcArtifacts(time.now())).toBe(0);
      const raw = flavour.openRaw(url);
      onTestFinished(() => raw.close());
      const rows = await raw.query<{ id: string }>("SELECT id FROM oidc_artifacts ORDER BY id");
      expect(rows.map((r) => r.id)).toEqual(["forever", "long"]);
    });

    it("runs the sweep at start and on its interval until stopped", async () => {
      const { store } = await openFresh();
      const time = clock();
      const codes = new StoreOidcAdapter(store, "AuthorizationCode", { now: time.now });
      await codes.upsert("a", code("g-1", { jti: "a" }), 1);
      await codes.upsert("b", code("g-1", { jti: "b" }), 2);
      time.advance(1_000);
      const swept: number[] = [];
      const counting: Store = Object.create(store) as Store;
      counting.deleteExpiredOidcArtifacts = async (now) => {
        const n = await store.deleteExpiredOidcArtifacts(now);
        swept.push(n);
        return n;
      };
      const errors: unknown[] = [];
      const stop = startOidcArtifactSweep(counting, {
        intervalMs: 20,
        now: time.now,
        onError: (err) => errors.push(err),
      });
      await expect.poll(() => swept[0]).toBe(1);
      time.advance(1_000);
      await expect.poll(() => swept.includes(1) && swept.lastIndexOf(1) > 0).toBe(true);
      stop();
      const after = swept.length;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(swept.length).toBeLessThanOrEqual(after + 1);
      expect(errors).toEqual([]);
    });

    it("serves a real oidc-provider Provider: dynamic clients, grants, codes and access tokens", async () => {
      const { store } = await openFresh();
      const provider = new Provider("http://127.0.0.1:0", { adapter: createOidcAdapter(store) });
      await new StoreOidcAdapter(store, "Client").upsert("portal", {
        client_id: "portal",
        client_secret: "not-a-real-secret-0123456789abcdef",
        redirect_uris: ["https://portal.example.test/cb"],
      });
      const client = await provider.Client.find("portal");
      if (client === undefined) throw new Error("the provider did not find the client in the store");
      expect(client.redirectUris).toEqual(["https://portal.example.test/cb"]);
      expect(await provider.Client.find("nobody")).toBeUndefined();

      const grant = new provider.Grant({ accountId: "p_1", clientId: "portal" });
      grant.addOIDCScope("openid profile");
      const grantId = await grant.save();
      expect((await provider.Grant.find(grantId))?.getOIDCScope()).toBe("openid profile");

      const authCode = new provider.AuthorizationCode({
        accountId: "p_1",
        client,
        grantId,
        gty: "authorization_code",
        redirectUri: "https://portal.example.test/cb",
        scope: "openid profile",
        codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        codeChallengeMethod: "S256",
      });
      const codeValue = await authCode.save();
      const found = await provider.AuthorizationCode.find(codeValue);
      expect(found?.accountId).toBe("p_1");
      expect(consumedOf(found)).toBeUndefined();
      await found?.consume();
      expect(consumedOf(await provider.AuthorizationCode.find(codeValue))).toBeTruthy();

      const token = new provider.AccessToken({
        accountId: "p_1",
        client,
        grantId,
        gty: "authorization_code",
        scope: "openid",
      });
      const tokenValue = await token.save();
      expect((await provider.AccessToken.find(tokenValue))?.grantId).toBe(grantId);
      // A value that was tampered with is not found even though the id part matches a row.
      expect(await provider.AccessToken.find(`${tokenValue}x`)).toBeUndefined();

      await provider.AccessToken.revokeByGrantId(grantId);
      expect(await provider.AccessToken.find(tokenValue)).toBeUndefined();
      expect(await provider.AuthorizationCode.find(codeValue)).toBeUndefined();

      const other = new provider.AccessToken({
        accountId: "p_1",
        client,
        grantId: "g-x",
        gty: "authorization_code",
        scope: "openid",
      });
      const otherValue = await other.save();
      await (await provider.AccessToken.find(otherValue))?.destroy();
      expect(await provider.AccessToken.find(otherValue)).toBeUndefined();
    });

    it("shares artefacts between two instances on one database, and they survive a restart", async () => {
      // Both are closed by the test itself (the restart), not after it.
      const url = await flavour.freshUrl();
      const first = await openStore({ url, poolSize: 4 });
      const second = await openStore({ url, poolSize: 4 });
      const a = createOidcAdapter(first)("AccessToken");
      const b = createOidcAdapter(second)("AccessToken");
      await a.upsert("at-1", { kind: "AccessToken", grantId: "g-1", accountId: "p_1" }, 3600);
      expect(await b.find("at-1")).toStrictEqual({ kind: "AccessToken", grantId: "g-1", accountId: "p_1" });
      await b.consume("at-1");
      expect((await a.find("at-1"))?.consumed).toBeTypeOf("number");
      await b.upsert("at-2", { kind: "AccessToken", grantId: "g-1" }, 3600);
      await a.revokeByGrantId("g-1");
      expect(await b.find("at-2")).toBeUndefined();

      await b.upsert("at-3", { kind: "AccessToken", grantId: "g-3" }, 3600);
      await first.close();
      await second.close();
      const restarted = await open(url);
      expect(await createOidcAdapter(restarted)("AccessToken").find("at-3")).toStrictEqual({
        kind: "AccessToken",
        grantId: "g-3",
      });
    });
  });
}

describeAdapterConformance(sqlite);
describeAdapterConformance(postgres);
