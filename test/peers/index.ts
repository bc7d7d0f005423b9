/** What integration tests use to reach the real peers started by global-setup.ts. */
import { inject } from "vitest";
import { peerMissing } from "./availability.js";
import type { SlapdInfo } from "./global-setup.js";
import type { SambaInfo } from "./samba.js";

export { createDatabase } from "./postgres.js";
export { peerMissing } from "./availability.js";
export type { SlapdInfo } from "./global-setup.js";
export type { SambaInfo } from "./samba.js";

/**
 * The URL of the run's PostgreSQL server, or null when there is none — then the caller skips its
 * PostgreSQL tests (`describe.skipIf(url === null)`). Under CI=true a missing server throws instead.
 */
export function postgresUrlOrSkip(): string | null {
  const url = inject("postgresUrl") as string | null | undefined;
  if (typeof url === "string") return url;
  peerMissing(
    "PostgreSQL",
    url === undefined
      ? "the vitest global setup test/peers/global-setup.ts did not run (run the tests with the repo's vitest.config.ts)"
      : "the global setup could not start it (see the warning at the start of the run)",
  );
  return null;
}

/** Connection facts of the run's Samba AD DC, or null (then skip) when there is none; throws under CI=true. */
export function sambaOrSkip(): SambaInfo | null {
  const info = inject("samba") as SambaInfo | null | undefined;
  if (info !== undefined && info !== null) return info;
  peerMissing(
    "Samba AD DC",
    info === undefined
      ? "the vitest global setup test/peers/global-setup.ts did not run (run the tests with the repo's vitest.config.ts)"
      : "the global setup could not start it (see the warning at the start of the run)",
  );
  return null;
}

/** Connection facts of the run's slapd, or null (then skip) when there is none; throws under CI=true. */
export function slapdOrSkip(): SlapdInfo | null {
  const info = inject("slapd") as SlapdInfo | null | undefined;
  if (info !== undefined && info !== null) return info;
  peerMissing(
    "OpenLDAP slapd",
    info === undefined
      ? "the vitest global setup test/peers/global-setup.ts did not run (run the tests with the repo's vitest.config.ts)"
      : "the global setup could not start it (see the warning at the start of the run)",
  );
  return null;
}
