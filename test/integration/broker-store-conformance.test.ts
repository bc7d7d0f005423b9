/**
 * Conformance of the Store's sign-in flow records and one-time marks on SQLite and a real PostgreSQL:
 * a flow is taken once (also by racing takers and by a second instance), expires, and `claimOnce` is
 * true exactly once while its mark lasts; an OIDC artefact is consumed by exactly one of racing
 * consumers, so one authorization code redeemed twice at once gives tokens once.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import type Provider from "oidc-provider";
import type { PersonDirectory } from "../../src/broker/contracts.js";
import { createProvider } from "../../src/broker/provider.js";
import { configSchema } from "../../src/config/schema.js";
import { openStore, type Store } from "../../src/store/index.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

/** RFC 7636 appendix B: a verifier and its S256 challenge. */
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT = "https://portal.example.test/cb";

/** A provider on `store` served on 127.0.0.1, with one public client `portal` and everyone active. */
async function serveProvider(store: Store): Promise<{ provider: Provider; tokenUrl: string }> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signIn = configSchema.shape.signIn.parse({
    clients: [{ clientId: "portal", redirectUris: [REDIRECT] }],
  });
  const people: PersonDirectory = {
    resolve: () => Promise.reject(new Error("not used")),
    claims: () => Promise.resolve({ departments: [], roles: [] }),
  };
  const provider = createProvider({
    publicUrl: "http://127.0.0.1",
    signIn,
    store,
    people,
    signingKeys: [{ ...(await exportJWK(privateKey)), alg: "RS256", kid: "k1" }],
    cookieSecrets: [randomBytes(32).toString("hex")],
    trustProxy: false,
    logger: pino({ level: "silent" }),
  });
  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { provider, tokenUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token` };
}

/** A fresh authorization code of `portal` for person p_1, as the provider issues one after sign-in. */
async function issueCode(provider: Provider): Promise<string> {
  const client = await provider.Client.find("portal");
  if (client === undefined) throw new Error("the provider has no client portal");
  const grant = new provider.Grant({ accountId: "p_1", clientId: "portal" });
  grant.addOIDCScope("openid");
  const grantId = await grant.save();
  return new provider.AuthorizationCode({
    accountId: "p_1",
    client,
    grantId,
    gty: "authorization_code",
    redirectUri: REDIRECT,
    scope: "openid",
    codeChallenge: CHALLENGE,
    codeChallengeMethod: "S256",
  }).save();
}

function redeem(tokenUrl: string, body: Record<string, string>): Promise<Response> {
  return fetch(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: "portal", ...body }),
  });
}

const { sqlite, postgres } = storeFlavours();
const T0 = Date.parse("2026-03-01T08:00:00.000Z");

function describeSignInStore(flavour: Flavour): void {
  describe.skipIf(!flavour.available)(`sign-in flow store (${flavour.name})`, () => {
    async function open(url: string): Promise<Store> {
      const store = await openStore({ url, poolSize: 4 });
      onTestFinished(() => store.close());
      return store;
    }

    it("hands a flow record back once and finds nothing on the second take", async () => {
      const store = await open(await flavour.freshUrl());
      await store.putSignInFlow("a".repeat(64), '{"uid":"i-1"}', T0 + 600_000);
      expect(await store.takeSignInFlow("a".repeat(64), T0)).toBe('{"uid":"i-1"}');
      expect(await store.takeSignInFlow("a".repeat(64), T0)).toBeNull();
      expect(await store.takeSignInFlow("b".repeat(64), T0)).toBeNull();
    });

    it("finds no flow record once it expired", async () => {
      const store = await open(await flavour.freshUrl());
      await store.putSignInFlow("s-1", "{}", T0 + 1000);
      expect(await store.takeSignInFlow("s-1", T0 + 1000)).toBeNull();
    });

    it("gives a flow record to exactly one of many concurrent takers on two instances", async () => {
      const url = await flavour.freshUrl();
      const [one, two] = [await open(url), await open(url)];
      await one.putSignInFlow("race", '{"n":1}', T0 + 600_000);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).takeSignInFlow("race", T0)),
      );
      expect(results.filter((r) => r !== null)).toStrictEqual(['{"n":1}']);
    });

    it("claims a key once until its mark expires, across instances", async () => {
      const url = await flavour.freshUrl();
      const [one, two] = [await open(url), await open(url)];
      expect(await one.claimOnce("saml:id-1", T0 + 60_000, T0)).toBe(true);
      expect(await two.claimOnce("saml:id-1", T0 + 60_000, T0 + 1)).toBe(false);
      expect(await one.claimOnce("saml:id-2", T0 + 60_000, T0)).toBe(true);
      expect(await two.claimOnce("saml:id-1", T0 + 120_000, T0 + 60_000)).toBe(true);
      expect(await one.claimOnce("saml:id-1", T0 + 120_000, T0 + 60_001)).toBe(false);
    });

    it("lets exactly one of concurrent claims of one key win", async () => {
      const url = await flavour.freshUrl();
      const [one, two] = [await open(url), await open(url)];
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? one : two).claimOnce("k", T0 + 60_000, T0)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it("sweeps expired flow records with the provider's artefacts", async () => {
      const store = await open(await flavour.freshUrl());
      await store.putSignInFlow("old", "{}", T0);
      await store.putSignInFlow("new", "{}", T0 + 600_000);
      expect(await store.deleteExpiredOidcArtifacts(T0 + 1)).toBe(1);
      expect(await store.takeSignInFlow("new", T0 + 1)).toBe("{}");
    });

    it("consumes an artefact for exactly one of many concurrent consumers on two instances", async () => {
      const url = await flavour.freshUrl();
      const [one, two] = [await open(url), await open(url)];
      await one.upsertOidcArtifact("AuthorizationCode", "c-1", "{}", T0 + 60_000, {});
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? one : two).consumeOidcArtifact("AuthorizationCode", "c-1", T0 + i),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await one.consumeOidcArtifact("AuthorizationCode", "c-1", T0)).toBe(false);
      expect(await one.consumeOidcArtifact("AuthorizationCode", "unknown", T0)).toBe(false);
    });

    it("gives tokens for one of two simultaneous redemptions of one code, every time, and revokes on the loss", async () => {
      const store = await open(await flavour.freshUrl());
      const { provider, tokenUrl } = await serveProvider(store);
      for (let round = 0; round < 20; round++) {
        const code = await issueCode(provider);
        const body = {
          grant_type: "authorization_code",
          code,
          redirect_uri: REDIRECT,
          code_verifier: VERIFIER,
        };
        const responses = await Promise.all([redeem(tokenUrl, body), redeem(tokenUrl, body)]);
        const answers = await Promise.all(
          responses.map(async (r) => ({
            status: r.status,
            body: (await r.json()) as Record<string, unknown>,
          })),
        );
        const won = answers.filter((a) => a.status === 200);
        expect(won, `round ${round}: ${JSON.stringify(answers)}`).toHaveLength(1);
        expect(won[0]!.body.access_token).toEqual(expect.any(String));
        const lost = answers.find((a) => a.status !== 200)!;
        expect(lost.status).toBe(400);
        expect(lost.body.error).toBe("invalid_grant");
        // The loser revoked the grant as a reuse would: the code is gone, not only marked used.
        expect(await provider.AuthorizationCode.find(code)).toBeUndefined();
        // The code is used up for good: a third try fails too.
        const third = await redeem(tokenUrl, body);
        expect(third.status).toBe(400);
      }
    }, 60_000);

    it("rotates one refresh token for one of two simultaneous refreshes, every time", async () => {
      const store = await open(await flavour.freshUrl());
      const { provider, tokenUrl } = await serveProvider(store);
      for (let round = 0; round < 20; round++) {
        const code = await issueCode(provider);
        const first = await redeem(tokenUrl, {
          grant_type: "authorization_code",
          code,
          redirect_uri: REDIRECT,
          code_verifier: VERIFIER,
        });
        const refreshToken = ((await first.json()) as { refresh_token?: string }).refresh_token;
        expect(refreshToken).toEqual(expect.any(String));
        const body = { grant_type: "refresh_token", refresh_token: refreshToken! };
        const responses = await Promise.all([redeem(tokenUrl, body), redeem(tokenUrl, body)]);
        const statuses = responses.map((r) => r.status).sort();
        expect(statuses, `round ${round}`).toEqual([200, 400]);
        const lost = responses.find((r) => r.status === 400)!;
        expect(((await lost.json()) as { error?: string }).error).toBe("invalid_grant");
      }
    }, 60_000);
  });
}

describeSignInStore(sqlite);
describeSignInStore(postgres);
