/** A token as a vendor issues it. */
export interface IssuedToken {
  /** The token value (never logged). */
  readonly value: string;
  /** Lifetime in seconds from now (DingTalk and WeCom: 7200). */
  readonly expiresInSeconds: number;
}

/**
 * Caches one app access token and fetches a new one before it expires. DingTalk and WeCom both ask
 * clients not to call gettoken per request (WeCom throttles frequent gettoken with 45009), and both may
 * invalidate a token early, so callers report a rejected token with {@link invalidate}.
 */
export class TokenCache {
  private current: { value: string; refreshAt: number } | null = null;
  private pending: Promise<string> | null = null;

  /**
   * @param fetchToken asks the vendor for a token; throws a SourceReadError when it refuses.
   * @param now the clock.
   * @param marginSeconds refresh this long before the announced expiry.
   */
  constructor(
    private readonly fetchToken: () => Promise<IssuedToken>,
    private readonly now: () => Date,
    private readonly marginSeconds = 300,
  ) {}

  /**
   * A token valid for at least the margin (or, when the vendor keeps handing back the same token, until it
   * expires); concurrent callers share one fetch.
   */
  async get(): Promise<string> {
    if (this.current !== null && this.current.refreshAt > this.now().getTime()) return this.current.value;
    this.pending ??= this.fetchToken()
      .then((token) => {
        const expiresAt = this.now().getTime() + token.expiresInSeconds * 1000;
        // WeCom hands back the same token with only its remaining life until it expires; asking again
        // before then would call gettoken on every request (and WeCom throttles that with 45009).
        const same = this.current?.value === token.value;
        const refreshAt = same ? expiresAt : expiresAt - this.marginSeconds * 1000;
        this.current = { value: token.value, refreshAt };
        return token.value;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  /** Forgets `value` if it is still the cached token (another caller may already have replaced it). */
  invalidate(value: string): void {
    if (this.current?.value === value) this.current = null;
  }
}
