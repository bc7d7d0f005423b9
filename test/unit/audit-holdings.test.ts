import { describe, expect, it } from "vitest";
import { HoldingsReplay, replayHoldings } from "../../src/audit/holdings.js";
import type { JsonObject } from "../../src/domain/json.js";
import type { AuditRecord } from "../../src/store/store.js";

let seq = 0;
const HOUR = 3_600_000;
const T0 = Date.parse("2026-11-01T08:00:00.000Z");

/** An audit record as apply.ts writes it; hashes do not matter to the replay. */
function entry(
  action: string,
  subject: string,
  details: JsonObject = {},
  options: { target?: string; hours?: number } = {},
): AuditRecord {
  seq += 1;
  return {
    seq,
    time: new Date(T0 + (options.hours ?? seq) * HOUR).toISOString(),
    actor: "system",
    action,
    subject,
    target: options.target ?? "hesi-main",
    details,
    prevHash: "",
    hash: "",
  };
}

const grant = (person: string, role: string, extra: JsonObject = {}, options = {}): AuditRecord =>
  entry(
    "role.granted",
    person,
    { plan: "plan_1", role, targetRole: `${role}-in-hesi`, scope: "", name: `名字-${person}`, ...extra },
    options,
  );
const revoke = (person: string, role: string, extra: JsonObject = {}, options = {}): AuditRecord =>
  entry("role.revoked", person, { plan: "plan_2", role, scope: "", ...extra }, options);

const who = (entries: AuditRecord[], options = {}): string[] =>
  replayHoldings(entries, options).map(
    (h) => `${h.target}/${h.role}/${h.personId}${h.scope ? `[${h.scope}]` : ""}`,
  );

describe("replaying role holdings from the audit log", () => {
  it("makes a holder of a grant, with its name, target role, time, seq and sensitivity", () => {
    const g = grant("p1", "cashier", { sensitive: true });
    expect(replayHoldings([g])).toEqual([
      {
        personId: "p1",
        name: "名字-p1",
        target: "hesi-main",
        role: "cashier",
        targetRole: "cashier-in-hesi",
        since: g.time,
        grantSeq: g.seq,
        sensitive: true,
      },
    ]);
  });

  it("ends a holding at its revoke and starts it again at a re-grant, dated by the re-grant", () => {
    const first = grant("p1", "cashier");
    const gone = revoke("p1", "cashier");
    expect(who([first, gone])).toEqual([]);
    const again = grant("p1", "cashier");
    const [holder] = replayHoldings([first, gone, again]);
    expect(holder).toMatchObject({ grantSeq: again.seq, since: again.time });
  });

  it("gives the same holders whatever order the entries come in (newest-first pages)", () => {
    const entries = [
      grant("p1", "cashier"),
      grant("p2", "cashier"),
      revoke("p1", "cashier"),
      grant("p3", "approver"),
    ];
    expect(who([...entries].reverse())).toEqual(who(entries));
    expect(who(entries)).toEqual(["hesi-main/approver/p3", "hesi-main/cashier/p2"]);
  });

  it("answers for a past time: entries after it do not count", () => {
    const g = grant("p1", "cashier", {}, { hours: 1 });
    const r = revoke("p1", "cashier", {}, { hours: 5 });
    expect(who([g, r], { at: new Date(T0 + 3 * HOUR).toISOString() })).toEqual(["hesi-main/cashier/p1"]);
    expect(who([g, r], { at: new Date(T0 + 5 * HOUR).toISOString() })).toEqual([]);
    expect(who([g, r], { at: new Date(T0 + 0.5 * HOUR).toISOString() })).toEqual([]);
  });

  it("keeps scopes apart: revoking one department's scope leaves the other", () => {
    const entries = [
      grant("p1", "approver", { scope: "财务部" }),
      grant("p1", "approver", { scope: "华东销售一部" }),
      revoke("p1", "approver", { scope: "财务部" }),
    ];
    expect(who(entries)).toEqual(["hesi-main/approver/p1[华东销售一部]"]);
  });

  it("keeps targets apart and narrows to one target or one role when asked", () => {
    const entries = [
      grant("p1", "cashier", {}, { target: "hesi-main" }),
      grant("p1", "cashier", {}, { target: "scim-hr" }),
      revoke("p1", "cashier", {}, { target: "scim-hr" }),
      grant("p2", "approver", {}, { target: "scim-hr" }),
    ];
    expect(who(entries)).toEqual(["hesi-main/cashier/p1", "scim-hr/approver/p2"]);
    expect(who(entries, { target: "scim-hr" })).toEqual(["scim-hr/approver/p2"]);
    expect(who(entries, { role: "cashier" })).toEqual(["hesi-main/cashier/p1"]);
  });

  it("suspends what a disabled account holds until it is enabled again", () => {
    const g = grant("p1", "cashier");
    const off = entry("target.user.disabled", "p1", { reason: "left" });
    expect(who([g, off])).toEqual([]);
    const on = entry("target.user.enabled", "p1", { reason: "back" });
    expect(who([g, off, on])).toEqual(["hesi-main/cashier/p1"]);
    // A disable in another target does not touch this one.
    expect(who([g, entry("target.user.disabled", "p1", {}, { target: "scim-hr" })])).toEqual([
      "hesi-main/cashier/p1",
    ]);
  });

  it("ignores entries that do not change holdings (failures, sign-ins, grants without a role)", () => {
    const replay = new HoldingsReplay();
    replay.add(entry("sync.change.failed", "p1", { role: "cashier", kind: "grant" }));
    replay.add(entry("login.succeeded", "p1"));
    replay.add(entry("role.granted", "p1", { plan: "plan_1" }));
    expect(replay.holders()).toEqual([]);
  });
});
