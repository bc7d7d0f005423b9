/**
 * Conformance of the Store's sign-in flow records and one-time marks on SQLite and a real PostgreSQL:
 * a flow is taken once (also by racing takers and by a second instance), expires, and `claimOnce` is
 * true exactly once while its mark lasts.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { storeFlavours, type Flavour } from "../helpers/store-flavours.js";

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
  });
}

describeSignInStore(sqlite);
describeSignInStore(postgres);
