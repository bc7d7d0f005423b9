import { parseFaults, type FaultRule } from "../common/faults.js";

/** What a randomly failed call gets. */
export type RandomFailureKind =
  /** HTTP 429 with `Retry-After`; nothing applied. */
  | "429"
  /** HTTP 502 from the gateway; nothing applied. */
  | "5xx"
  /** No answer, then the connection is dropped; nothing applied. */
  | "timeout"
  /** The call is applied, then the connection is dropped before the answer (the client cannot tell). */
  | "timeout-after-apply";

export const RANDOM_FAILURE_KINDS: readonly RandomFailureKind[] = [
  "429",
  "5xx",
  "timeout",
  "timeout-after-apply",
];

/** Random failures for reliability tests: each API call fails with probability `rate`, drawn from `seed`. */
export interface RandomFailures {
  /** Probability in [0, 1] that one API call fails. */
  readonly rate: number;
  /** Seed of the draw (same seed, same sequence of failures). Default 1. */
  readonly seed?: number;
  /** Kinds to pick from, uniformly. Default: all of {@link RANDOM_FAILURE_KINDS}. */
  readonly kinds?: readonly RandomFailureKind[];
}

/**
 * Hesi's fault spec: the common rules (see common/faults.ts) plus
 *
 *   failure-rate=R           every API call fails with probability R (0..1), kinds drawn at random
 *   failure-seed=N           seed of that draw (default 1)
 *   failure-kinds=K+K        kinds among 429, 5xx, timeout, timeout-after-apply (default all)
 *
 * e.g. `failure-rate=0.2,failure-seed=7,expire-token-after=50`.
 */
export function parseHesiFaults(spec: string): { rules: FaultRule[]; random: RandomFailures | undefined } {
  const common: string[] = [];
  let rate: number | undefined;
  let seed: number | undefined;
  let kinds: RandomFailureKind[] | undefined;
  for (const raw of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name, value = ""] = raw.split("=") as [string, string | undefined];
    if (name === "failure-rate") {
      rate = Number(value);
      if (!(rate >= 0 && rate <= 1))
        throw new TypeError(`fault "${raw}": the rate must be a number from 0 to 1`);
    } else if (name === "failure-seed") {
      seed = Number(value);
      if (!Number.isInteger(seed)) throw new TypeError(`fault "${raw}": the seed must be a whole number`);
    } else if (name === "failure-kinds") {
      kinds = value.split("+").map((k) => {
        if (!RANDOM_FAILURE_KINDS.includes(k as RandomFailureKind))
          throw new TypeError(
            `fault "${raw}": unknown kind "${k}" (known: ${RANDOM_FAILURE_KINDS.join(", ")})`,
          );
        return k as RandomFailureKind;
      });
    } else common.push(raw);
  }
  if (rate === undefined && (seed !== undefined || kinds !== undefined))
    throw new TypeError("failure-seed and failure-kinds need failure-rate");
  return {
    rules: parseFaults(common.join(",")),
    random:
      rate === undefined
        ? undefined
        : { rate, ...(seed === undefined ? {} : { seed }), ...(kinds === undefined ? {} : { kinds }) },
  };
}

/** Draws the random failures from a seeded generator (mulberry32), one draw per API call. */
export class FailureDraw {
  private state: number;
  private readonly kinds: readonly RandomFailureKind[];

  constructor(private readonly config: RandomFailures) {
    if (!(config.rate >= 0 && config.rate <= 1))
      throw new TypeError(`failure rate must be in [0, 1], got ${config.rate}`);
    this.kinds = config.kinds && config.kinds.length > 0 ? config.kinds : RANDOM_FAILURE_KINDS;
    this.state = (config.seed ?? 1) >>> 0;
  }

  /** The failure for the next call, or null when it goes through. */
  next(): RandomFailureKind | null {
    const failed = this.random() < this.config.rate;
    const pick = this.random();
    return failed ? this.kinds[Math.floor(pick * this.kinds.length)]! : null;
  }

  private random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
