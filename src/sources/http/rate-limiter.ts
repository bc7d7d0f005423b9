/**
 * Keeps calls under a vendor's documented rate: at most `limit` calls in any window of `windowMs`.
 * DingTalk allows 20 calls per second per app and API; WeCom 10,000 per minute per API. Going just under
 * the limit reads as fast as the vendor allows without drawing throttling errors.
 */
export class RateLimiter {
  private readonly stamps: number[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    if (!(limit >= 1)) throw new TypeError(`rate limit must be at least 1, got ${limit}`);
  }

  /** Resolves when one more call fits in the window (callers are served in order). */
  take(): Promise<void> {
    const turn = this.chain.then(() => this.wait());
    this.chain = turn.catch(() => undefined);
    return turn;
  }

  private async wait(): Promise<void> {
    for (;;) {
      const now = this.now();
      while (this.stamps.length > 0 && this.stamps[0]! <= now - this.windowMs) this.stamps.shift();
      if (this.stamps.length < this.limit) {
        this.stamps.push(now);
        return;
      }
      await this.sleep(this.stamps[0]! + this.windowMs - now + 1);
    }
  }
}
