/**
 * Counts calls per key in fixed windows, as the vendors' limits are stated: DingTalk 20 calls per second
 * per app and API, 10,000 calls per 20 s per IP; WeCom 10,000 per minute per corp and API.
 */
export class RateWindows {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly now: () => number) {}

  /** Counts a call; true when it goes over `limit` within the current window of `windowMs`. */
  exceeded(key: string, limit: number, windowMs: number): boolean {
    const now = this.now();
    const start = now - (now % windowMs);
    const window = this.windows.get(key);
    if (window === undefined || window.start !== start) {
      this.windows.set(key, { start, count: 1 });
      return limit < 1;
    }
    window.count++;
    return window.count > limit;
  }
}

/** Temporary bans by key (DingTalk: an IP over its limit is banned for 5 minutes). */
export class Bans {
  private readonly until = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  ban(key: string, forMs: number): void {
    this.until.set(key, this.now() + forMs);
  }

  /** Milliseconds left of a ban, 0 when not banned. */
  remaining(key: string): number {
    const end = this.until.get(key);
    if (end === undefined) return 0;
    const left = end - this.now();
    if (left <= 0) this.until.delete(key);
    return Math.max(0, left);
  }
}
