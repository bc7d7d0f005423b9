import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { jcs } from "../../src/audit/jcs.js";

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
}

const PIECES = [
  "a",
  "Z",
  "财务部",
  "审批",
  "🧾",
  "é",
  "\u0000",
  "\u001f",
  "\u007f",
  '"',
  "\\",
  "\n",
  "\u2028",
  "</script>",
  "=1+1",
  " ",
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  1e21,
  1e-7,
  123456789.125,
  2 ** 53 - 1,
  -(2 ** 31),
  0.1 + 0.2,
  5e-324,
  1.7976931348623157e308,
];

function randomValue(next: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const text = (): string => Array.from({ length: Math.floor(next() * 5) }, () => pick(PIECES)).join("");
  const kind = depth > 3 ? Math.floor(next() * 4) : Math.floor(next() * 6);
  if (kind === 0) return text();
  if (kind === 1) return pick(NUMBERS);
  if (kind === 2) return next() < 0.5;
  if (kind === 3) return null;
  if (kind === 4) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  return Object.fromEntries(
    Array.from({ length: Math.floor(next() * 5) }, () => [text(), randomValue(next, depth + 1)]),
  );
}

describe("RFC 8785 canonical JSON", () => {
  it("matches the canonicalize package on 5,000 random JSON values", () => {
    const next = rng(20261127);
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(next, 0);
      expect(jcs(value), JSON.stringify(value)).toBe(canonicalize(value));
    }
  });

  it("sorts member names by UTF-16 code units, not by code points", () => {
    // U+FB01 sorts after U+1F600 (surrogate pair D83D DE00) by code units, before it by code points.
    expect(jcs({ "\ufb01": 1, "\u{1f600}": 2, a: 3 })).toBe('{"a":3,"\u{1f600}":2,"\ufb01":1}');
  });

  it("refuses what JSON cannot carry canonically", () => {
    expect(() => jcs("\ud800")).toThrow(/lone surrogate/);
    expect(() => jcs({ ["\udc00"]: 1 })).toThrow(/lone surrogate/);
    expect(() => jcs(Number.NaN)).toThrow(TypeError);
    expect(() => jcs(Infinity)).toThrow(TypeError);
    expect(() => jcs(10n)).toThrow(TypeError);
  });
});
