import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import {
  GENESIS_HASH,
  canonicalContent,
  chainEvents,
  checkEvent,
  entryHash,
  linkProblem,
} from "../../src/audit/chain.js";

const TIME = "2026-11-27T08:00:00.000Z";

describe("audit chain", () => {
  it("hashes sha256(prevHash ‖ RFC 8785 canonical JSON of the entry)", () => {
    const [first] = chainEvents(
      { seq: 0, hash: GENESIS_HASH },
      [{ actor: "system", action: "service.started", details: { b: 1, a: "财务部" } }],
      TIME,
    );
    expect(first).toBeDefined();
    const canonical =
      '{"action":"service.started","actor":"system","details":{"a":"财务部","b":1},"seq":1,"subject":null,"target":null,"time":"2026-11-27T08:00:00.000Z"}';
    expect(canonicalContent(first!)).toBe(canonical);
    expect(first!.hash).toBe(
      createHash("sha256")
        .update(GENESIS_HASH + canonical, "utf8")
        .digest("hex"),
    );
    expect(first!.prevHash).toBe(GENESIS_HASH);
  });

  it("links each entry to the one before and numbers them without gaps", () => {
    const records = chainEvents(
      { seq: 41, hash: "a".repeat(64) },
      [
        { actor: "admin", action: "plan.approved", subject: "plan-1" },
        { actor: "system", action: "role.granted", subject: "person-1", target: "hesi-main" },
        { actor: "system", action: "role.revoked", subject: "person-2", target: "hesi-main" },
      ],
      TIME,
    );
    expect(records.map((r) => r.seq)).toEqual([42, 43, 44]);
    expect(records[0]!.prevHash).toBe("a".repeat(64));
    expect(records[1]!.prevHash).toBe(records[0]!.hash);
    expect(records[2]!.prevHash).toBe(records[1]!.hash);
    expect(records.map((r) => linkProblem(r, r.prevHash))).toEqual([null, null, null]);
  });

  it("detects an edited field, an edited hash and a broken link", () => {
    const [a, b] = chainEvents(
      { seq: 0, hash: GENESIS_HASH },
      [
        { actor: "x", action: "a.b", details: { role: "出纳" } },
        { actor: "y", action: "c.d" },
      ],
      TIME,
    );
    expect(linkProblem({ ...b!, actor: "z" }, a!.hash)).toMatch(/edited/);
    expect(linkProblem({ ...b!, details: { extra: true } }, a!.hash)).toMatch(/edited/);
    expect(
      linkProblem(
        { ...a!, hash: entryHash(a!.prevHash, { ...a!, actor: "forged" }), actor: "forged" },
        GENESIS_HASH,
      ),
    ).toBeNull();
    expect(linkProblem(b!, GENESIS_HASH)).toMatch(/prevHash does not match/);
  });

  it("hashes exactly what is stored: undefined members are dropped before hashing", () => {
    const [r] = chainEvents(
      { seq: 0, hash: GENESIS_HASH },
      [{ actor: "x", action: "a.b", details: { keep: 1, drop: undefined } as never }],
      TIME,
    );
    expect(r!.details).toEqual({ keep: 1 });
    expect(linkProblem(JSON.parse(JSON.stringify(r)), GENESIS_HASH)).toBeNull();
  });

  it("rejects events a caller must not record", () => {
    expect(() => checkEvent({ actor: "", action: "a.b" })).toThrow(TypeError);
    expect(() => checkEvent({ actor: "x", action: "Granted" })).toThrow(/dotted lowercase/);
    expect(() => checkEvent({ actor: "x", action: "role.granted", details: [] as never })).toThrow(
      /JSON object/,
    );
    expect(() => checkEvent({ actor: "x", action: "role.granted", details: { ok: true } })).not.toThrow();
    expect(() => checkEvent({ actor: "x", action: "role.granted", details: "s" as never })).toThrow(
      /JSON object/,
    );
  });

  it("writes the same canonical JSON as the canonicalize package for awkward text and numbers", () => {
    const texts = [
      "",
      "部门审批人",
      'quote " and \\ backslash',
      "tab\tnew\nline\u0000\u001f",
      "\u2028\u2029",
      "emoji 🧾",
      "é vs é",
      "<script>",
    ];
    const numbers = [0, -0, 1.5, 1e21, 1e-7, -123456789, 2 ** 53 - 1, 0.1 + 0.2];
    let checked = 0;
    for (const [i, text] of texts.entries()) {
      const entry = {
        seq: i + 1,
        time: "2026-11-27T08:00:00.000Z",
        actor: text,
        action: "role.granted",
        subject: i % 2 ? null : text,
        target: i % 3 ? text : null,
        details: {
          [text]: numbers,
          nested: { z: text, a: [true, null, { y: numbers[i % numbers.length] ?? 0 }] },
        },
      };
      const expected = canonicalize({ ...entry });
      expect(canonicalContent(entry)).toBe(expected);
      checked += 1;
    }
    expect(checked).toBe(texts.length);
  });

  it("refuses text with a lone surrogate, which has no canonical form", () => {
    const entry = {
      seq: 1,
      time: TIME,
      actor: "bad \ud800",
      action: "a.b",
      subject: null,
      target: null,
      details: {},
    };
    expect(() => canonicalContent(entry)).toThrow(/lone surrogate/);
  });
});
