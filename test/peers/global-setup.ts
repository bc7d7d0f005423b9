/**
 * Vitest global setup: the real peers for the whole run, started side by side and shared by every test
 * file through `inject(...)`:
 * - one PostgreSQL server (`postgresUrl`); each file creates its own databases on it (see createDatabase);
 * - one Samba AD DC (`samba`), seeded once (test/fixtures/ldap/ad-directory.ts); its ports are fixed;
 * - one OpenLDAP slapd (`slapd`), seeded once (test/fixtures/ldap/openldap-directory.ts).
 */
import { Attribute, Change, Client } from "ldapts";
import type { TestProject } from "vitest/node";
import { OL_CYCLE_CLOSER, OL_ENTRIES } from "../fixtures/ldap/openldap-directory.js";
import { peerMissing } from "./availability.js";
import { addEntries, startSlapd, type SlapdPeer } from "./openldap.js";
import { startPostgres, type PostgresPeer } from "./postgres.js";
import { startSamba, type SambaInfo, type SambaPeer } from "./samba.js";

/** How tests reach the run's slapd. */
export interface SlapdInfo {
  readonly url: string;
  readonly baseDn: string;
  readonly adminDn: string;
  readonly adminPassword: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the run's PostgreSQL server (its `postgres` database), or null when none could be started. */
    postgresUrl: string | null;
    /** The run's Samba AD DC, or null when none could be started. */
    samba: SambaInfo | null;
    /** The run's slapd, or null when none could be started. */
    slapd: SlapdInfo | null;
  }
}

/** Starts one peer, timing it; a failure becomes a loud skip (or, under CI=true, fails the run). */
async function timed<T>(name: string, start: () => Promise<T>): Promise<T | null> {
  const started = Date.now();
  try {
    const peer = await start();
    process.stderr.write(`[peers] ${name} ready in ${Date.now() - started} ms\n`);
    return peer;
  } catch (err) {
    // Throws under CI=true, which fails the run before any test starts.
    peerMissing(name, err instanceof Error ? err.message : String(err));
    return null;
  }
}

async function startSeededSlapd(): Promise<SlapdPeer> {
  const peer = await startSlapd();
  try {
    // One at a time: parents before children, groups before the groups that contain them.
    await addEntries(peer, OL_ENTRIES, 1);
    const client = new Client({ url: peer.url });
    try {
      await client.bind(peer.adminDn, peer.adminPassword);
      await client.modify(
        OL_CYCLE_CLOSER.dn,
        new Change({
          operation: "add",
          modification: new Attribute({ type: "member", values: [OL_CYCLE_CLOSER.member] }),
        }),
      );
    } finally {
      await client.unbind().catch(() => undefined);
    }
    return peer;
  } catch (err) {
    await peer.stop();
    throw err;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // allSettled: a peer that throws under CI=true must not leave the others running.
  const [pg, ad, ol] = await Promise.allSettled([
    timed("PostgreSQL", () => startPostgres()),
    timed("Samba AD DC", () => startSamba()),
    timed("OpenLDAP slapd", () => startSeededSlapd()),
  ]);
  const postgres: PostgresPeer | null = pg.status === "fulfilled" ? pg.value : null;
  const samba: SambaPeer | null = ad.status === "fulfilled" ? ad.value : null;
  const slapd: SlapdPeer | null = ol.status === "fulfilled" ? ol.value : null;
  const stopAll = async () => {
    await Promise.all([postgres?.stop(), samba?.stop(), slapd?.stop()]);
  };
  const failed = [pg, ad, ol].find((r) => r.status === "rejected");
  if (failed !== undefined) {
    await stopAll();
    throw failed.reason;
  }
  project.provide("postgresUrl", postgres?.url ?? null);
  project.provide(
    "samba",
    samba === null
      ? null
      : {
          url: samba.url,
          plainUrl: samba.plainUrl,
          caFile: samba.caFile,
          otherCaFile: samba.otherCaFile,
          bindDn: samba.bindDn,
          bindPassword: samba.bindPassword,
          baseDn: samba.baseDn,
        },
  );
  project.provide(
    "slapd",
    slapd === null
      ? null
      : { url: slapd.url, baseDn: slapd.baseDn, adminDn: slapd.adminDn, adminPassword: slapd.adminPassword },
  );
  return stopAll;
}
