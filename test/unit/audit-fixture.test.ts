import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { JSONWebKeySet } from "jose";
import { verifyText } from "../helpers/audit.js";

const dir = join(import.meta.dirname, "..", "fixtures", "audit");
const text = readFileSync(join(dir, "export.jsonl"), "utf8");
const jwks = JSON.parse(readFileSync(join(dir, "jwks.json"), "utf8")) as JSONWebKeySet;
const lines = text.trimEnd().split("\n");
const join_ = (ls: string[]): string => `${ls.join("\n")}\n`;

/** Every way to change one value of a parsed line: strings, numbers, booleans, nulls, nested objects. */
function edits(value: unknown): unknown[] {
  if (typeof value === "string") return [`${value}x`, value.slice(0, -1), ""];
  if (typeof value === "number") return [value + 1, value - 1];
  if (value === null) return ["x"];
  if (Array.isArray(value)) return [[...value, "x"], value.slice(1)];
  if (typeof value === "object") {
    const o = value as Record<string, unknown>;
    const out: unknown[] = [{ ...o, injected: 1 }];
    for (const [k, v] of Object.entries(o)) for (const e of edits(v)) out.push({ ...o, [k]: e });
    return out;
  }
  return [!value];
}

describe("the committed audit fixture", () => {
  it("verifies as committed", async () => {
    expect(await verifyText(text, jwks)).toMatchObject({ ok: true, entries: 20, checkpoints: 4, toSeq: 20 });
  });

  it("fails after deleting any one line", async () => {
    for (let i = 0; i < lines.length; i++) {
      const ls = lines.filter((_, j) => j !== i);
      expect((await verifyText(join_(ls), jwks)).ok, `deleted line ${i + 1}`).toBe(false);
    }
  });

  it("fails after swapping any two adjacent lines or duplicating any line", async () => {
    for (let i = 0; i + 1 < lines.length; i++) {
      const ls = [...lines];
      [ls[i], ls[i + 1]] = [ls[i + 1]!, ls[i]!];
      expect((await verifyText(join_(ls), jwks)).ok, `swapped lines ${i + 1} and ${i + 2}`).toBe(false);
    }
    for (let i = 0; i < lines.length; i++) {
      const ls = [...lines.slice(0, i + 1), lines[i]!, ...lines.slice(i + 1)];
      expect((await verifyText(join_(ls), jwks)).ok, `duplicated line ${i + 1}`).toBe(false);
    }
  });

  it("fails after any single edit of any field of any line", async () => {
    let tried = 0;
    for (let i = 0; i < lines.length; i++) {
      const parsed = JSON.parse(lines[i]!) as Record<string, unknown>;
      for (const [key, value] of Object.entries(parsed)) {
        for (const edited of edits(value)) {
          const ls = [...lines];
          ls[i] = JSON.stringify({ ...parsed, [key]: edited });
          expect(
            (await verifyText(join_(ls), jwks)).ok,
            `line ${i + 1} field ${key} -> ${JSON.stringify(edited)}`,
          ).toBe(false);
          tried += 1;
        }
      }
      // A byte-level change that keeps the same JSON value (spacing) is caught by the signed head.
      const spaced = [...lines];
      spaced[i] = lines[i]!.replace(/^\{/, "{ ");
      expect((await verifyText(join_(spaced), jwks)).ok, `line ${i + 1} re-spaced`).toBe(false);
    }
    expect(tried).toBeGreaterThan(500);
  });
});
