/**
 * Fault injection for the simulators, from a spec string (`--faults`) or the admin hook:
 *
 *   expire-token-after=K     after K API calls (token calls not counted), every token expires once
 *   revoke-secret-after=K    after K API calls (token calls not counted), the app secret is reset in the
 *                            console: every issued token is invalid and the secret is refused from then on
 *   rate-limit-after=N[*M]   after N API calls, the next M calls (default 1) are rate-limited
 *   ban-after=N              after N API calls, the caller's IP is banned (5 minutes)
 *   busy@PATH[*M]            the next M calls to PATH (default 1) answer "system busy"
 *   5xx@PATH[*M]             the next M calls to PATH (default 1) answer HTTP 502; M may be "always"
 *   latency=MS               every API call waits MS milliseconds first
 *
 * Rules are separated by commas: `expire-token-after=3,5xx@/topapi/v2/user/list*2`.
 */

/** What the simulator must do with one call. */
export type FaultAction =
  | { readonly kind: "expire-tokens" }
  | { readonly kind: "rate-limit" }
  | { readonly kind: "ban" }
  | { readonly kind: "busy" }
  | { readonly kind: "http-5xx" };

export type FaultRule =
  | { readonly kind: "expire-token-after"; readonly after: number }
  | { readonly kind: "revoke-secret-after"; readonly after: number }
  | { readonly kind: "rate-limit-after"; readonly after: number; readonly count: number }
  | { readonly kind: "ban-after"; readonly after: number }
  | { readonly kind: "busy" | "http-5xx"; readonly path: string; readonly count: number }
  | { readonly kind: "latency"; readonly ms: number };

const ALWAYS = Number.POSITIVE_INFINITY;

/** Parses a fault spec; throws a TypeError naming the bad rule. */
export function parseFaults(spec: string): FaultRule[] {
  const rules: FaultRule[] = [];
  for (const raw of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const bad = (why: string): never => {
      throw new TypeError(`fault "${raw}": ${why} (see --help for the fault syntax)`);
    };
    const int = (text: string | undefined, what: string): number => {
      if (text === "always") return ALWAYS;
      const n = Number(text);
      return Number.isInteger(n) && n >= 0 ? n : bad(`${what} must be a whole number ≥ 0`);
    };
    const [head, countText] = raw.split("*") as [string, string | undefined];
    const count = countText === undefined ? 1 : int(countText, "count");
    const at = head.indexOf("@");
    if (at >= 0) {
      const name = head.slice(0, at);
      const path = head.slice(at + 1);
      if (!path.startsWith("/")) bad("the path must start with /");
      if (name === "busy") rules.push({ kind: "busy", path, count });
      else if (name === "5xx") rules.push({ kind: "http-5xx", path, count });
      else bad(`unknown fault "${name}" (known: busy@PATH, 5xx@PATH)`);
      continue;
    }
    const [name, value] = head.split("=") as [string, string | undefined];
    if (value === undefined) bad("expected name=value or name@PATH");
    switch (name) {
      case "expire-token-after":
        rules.push({ kind: "expire-token-after", after: int(value, "K") });
        break;
      case "revoke-secret-after":
        rules.push({ kind: "revoke-secret-after", after: int(value, "K") });
        break;
      case "rate-limit-after":
        rules.push({ kind: "rate-limit-after", after: int(value, "N"), count });
        break;
      case "ban-after":
        rules.push({ kind: "ban-after", after: int(value, "N") });
        break;
      case "latency":
        rules.push({ kind: "latency", ms: int(value, "MS") });
        break;
      default:
        bad(`unknown fault "${name}"`);
    }
  }
  return rules;
}

/** The active faults of one simulator and the call counter they key on. */
export class Faults {
  private rules: { rule: FaultRule; left: number }[] = [];
  private calls = 0;
  private revoked = false;

  /** Replaces the active rules; counting starts again from zero and a revoked secret is accepted again. */
  set(rules: readonly FaultRule[]): void {
    this.rules = rules.map((rule) => ({ rule, left: "count" in rule ? rule.count : 1 }));
    this.calls = 0;
    this.revoked = false;
  }

  /** Adds rules to the active ones (counting continues). */
  add(rules: readonly FaultRule[]): void {
    this.rules.push(...rules.map((rule) => ({ rule, left: "count" in rule ? rule.count : 1 })));
  }

  /** Delay to apply before each API call. */
  get latencyMs(): number {
    return this.rules.reduce((ms, { rule }) => (rule.kind === "latency" ? Math.max(ms, rule.ms) : ms), 0);
  }

  /**
   * True once a revoke-secret-after rule fired. The simulators then refuse every token they issued and
   * the secret itself, as the vendor does after an admin resets the secret in the console.
   */
  get secretRevoked(): boolean {
    return this.revoked;
  }

  /** Counts one API call to `path` and returns the fault to apply, if any (first matching rule wins). */
  next(path: string): FaultAction | null {
    this.calls++;
    for (const entry of this.rules) {
      const { rule } = entry;
      if (entry.left <= 0) continue;
      switch (rule.kind) {
        case "revoke-secret-after":
          // A lasting state rather than an action for this call: the call goes on and meets the token check.
          if (this.calls > rule.after) {
            entry.left--;
            this.revoked = true;
          }
          break;
        case "expire-token-after":
          if (this.calls > rule.after) {
            entry.left--;
            return { kind: "expire-tokens" };
          }
          break;
        case "rate-limit-after":
          if (this.calls > rule.after) {
            entry.left--;
            return { kind: "rate-limit" };
          }
          break;
        case "ban-after":
          if (this.calls > rule.after) {
            entry.left--;
            return { kind: "ban" };
          }
          break;
        case "busy":
        case "http-5xx":
          if (path === rule.path) {
            entry.left--;
            return { kind: rule.kind === "busy" ? "busy" : "http-5xx" };
          }
          break;
        case "latency":
          break;
      }
    }
    return null;
  }
}
