import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { planInputs } from "../../bench/plan-inputs.js";
import { linkPeople, type LinkDecision } from "../../src/identity/link.js";
import type { DirectorySnapshot } from "../../src/sources/snapshot.js";

/**
 * Linking is made faster without changing what it returns: the digests below were computed by the
 * implementation before the speed-ups (commit fb734cb) on the same inputs, so any change to people,
 * links, review items, changes, held or pending accounts — or their order — fails here.
 */
function scenario(people: number, seed: number) {
  const inputs = planInputs(people, seed, 10);
  let n = 0;
  const newId = () => `p_${(n++).toString(36)}`;
  const now = new Date("2026-11-27T00:00:00Z");
  const first = linkPeople({
    snapshots: inputs.snapshots,
    config: inputs.identity,
    existing: [],
    now,
    newId,
  });
  // A second run: every 7th AD account replaced by one carrying its neighbour's employee id (conflicts
  // and reviews), 20 extra WeCom accounts sharing userids, a partial WeCom read and admins' decisions.
  const [dt, wc, ad] = inputs.snapshots as [DirectorySnapshot, DirectorySnapshot, DirectorySnapshot];
  const ad2 = {
    ...ad,
    people: ad.people.map((p, i) =>
      i % 7 === 0
        ? {
            ...p,
            subject: `${p.subject}-new`,
            attributes: {
              ...p.attributes,
              employeeID: ad.people[(i + 1) % ad.people.length]!.attributes.employeeID!,
            },
          }
        : p,
    ),
  };
  const wc2 = {
    ...wc,
    people: [...wc.people, ...wc.people.slice(0, 20).map((p) => ({ ...p, subject: `${p.subject}-dup` }))],
    completeness: { complete: false as const, reasons: [{ code: "RATE_LIMITED" as const, message: "x" }] },
  };
  const decisions: LinkDecision[] = first.people
    .slice(0, 5)
    .map((p, i) =>
      i % 2 === 0
        ? { kind: "unlink", account: p.accounts[0]!, personId: p.id, by: "admin", at: "2026-11-27T00:00:00Z" }
        : { kind: "ignore", account: p.accounts[0]!, by: "admin", at: "2026-11-27T00:00:00Z" },
    );
  const second = linkPeople({
    snapshots: [dt, wc2, ad2],
    config: inputs.identity,
    existing: first.people,
    decisions,
    now,
    newId,
  });
  return {
    digest: createHash("sha256").update(JSON.stringify({ first, second })).digest("hex"),
    firstPeople: first.people.length,
    reviews: second.reviewQueue.length,
    changes: second.changes.length,
  };
}

describe("identity linking on a generated company of three sources", () => {
  it("gives exactly the result of the implementation before the speed-ups (2,000 people, seed 1)", () => {
    const result = scenario(2000, 1);
    expect(result.reviews).toBe(301);
    expect(result.changes).toBe(11);
    expect(result.digest).toBe("7836ed4e42b25956cf901fdad7658be877207642789412e7f4cf128a89fa127f");
  });

  it("gives exactly the result of the implementation before the speed-ups (3,000 people, seed 5)", () => {
    const result = scenario(3000, 5);
    expect(result.reviews).toBe(442);
    expect(result.digest).toBe("de6669b7d43e45c076372c42c79869180ce0bb8b0ff0e86a1e487c674d19fde3");
  });
});
