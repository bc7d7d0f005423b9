import { describe, expect, it } from "vitest";
import { FailureDraw, parseHesiFaults } from "../../src/simulators/hesi/failures.js";

describe("Hesi simulator fault spec", () => {
  it("splits the Hesi rules (failure-rate, failure-seed, failure-kinds) from the common ones", () => {
    const { rules, random } = parseHesiFaults(
      "failure-rate=0.2,failure-seed=7,failure-kinds=429+timeout,5xx@/x*2",
    );
    expect(random).toEqual({ rate: 0.2, seed: 7, kinds: ["429", "timeout"] });
    expect(rules).toEqual([{ kind: "http-5xx", path: "/x", count: 2 }]);
  });

  it("refuses a rate outside [0, 1], an unknown kind, and a seed without a rate", () => {
    expect(() => parseHesiFaults("failure-rate=1.5")).toThrow(/0 to 1/);
    expect(() => parseHesiFaults("failure-rate=0.1,failure-kinds=429+boom")).toThrow(/unknown kind "boom"/);
    expect(() => parseHesiFaults("failure-seed=3")).toThrow(/need failure-rate/);
    expect(() => parseHesiFaults("nonsense=1")).toThrow(/unknown fault/);
  });

  it("draws the same failures for the same seed and about rate × calls of them", () => {
    const draw = (seed: number): (string | null)[] => {
      const d = new FailureDraw({ rate: 0.2, seed });
      return Array.from({ length: 2000 }, () => d.next());
    };
    const a = draw(42);
    expect(draw(42)).toEqual(a);
    expect(draw(43)).not.toEqual(a);
    const failed = a.filter((x) => x !== null);
    expect(failed.length).toBeGreaterThan(320);
    expect(failed.length).toBeLessThan(480);
    expect(new Set(failed)).toEqual(new Set(["429", "5xx", "timeout", "timeout-after-apply"]));
  });

  it("never fails at rate 0 and always fails at rate 1", () => {
    const never = new FailureDraw({ rate: 0 });
    const always = new FailureDraw({ rate: 1, kinds: ["5xx"] });
    for (let i = 0; i < 100; i++) {
      expect(never.next()).toBeNull();
      expect(always.next()).toBe("5xx");
    }
  });
});
