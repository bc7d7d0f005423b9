import { randomBytes } from "node:crypto";
import type { SimClock } from "../common/clock.js";

/** An access token and its refresh token as Hesi hands them out. */
export interface HesiTokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Epoch ms. */
  readonly expireTime: number;
}

/** Why a presented token is not accepted. */
export type HesiTokenProblem = "invalid" | "expired" | "too-fresh";

const DAY_MS = 86_400_000;

/**
 * Hesi's open-API tokens (reference §1.2): getAccessToken issues a fresh pair valid 2 h; refreshToken,
 * only before expiry, rotates both and gives 32 days (or `expireDate` days), capped by the licence end.
 * Optionally a token is refused for a moment right after issue (changelog 1.17.0's 403).
 */
export class HesiTokens {
  private readonly byAccess = new Map<
    string,
    { refreshToken: string; expireTime: number; issuedAt: number }
  >();
  private readonly expiredSet = new Set<string>();

  constructor(
    private readonly clock: SimClock,
    private readonly options: {
      readonly ttlMs: number;
      readonly refreshedTtlMs: number;
      readonly licenceEndsAt?: number;
      readonly freshTokenDelayMs: number;
    },
  ) {}

  /** A new pair (earlier tokens stay valid until they expire). */
  issue(): HesiTokenPair {
    return this.mint(this.options.ttlMs);
  }

  /** Rotates a pair that has not expired; null when the access token is unknown or expired or the refresh token does not belong to it. */
  refresh(accessToken: string, refreshToken: string, days?: number): HesiTokenPair | null {
    const entry = this.byAccess.get(accessToken);
    if (entry === undefined || entry.refreshToken !== refreshToken) return null;
    if (entry.expireTime <= this.clock.now()) return null;
    this.byAccess.delete(accessToken);
    this.expiredSet.add(accessToken);
    return this.mint(days === undefined ? this.options.refreshedTtlMs : days * DAY_MS);
  }

  /** Accepts a valid token, or says why not. */
  check(token: string | undefined): true | HesiTokenProblem {
    if (token === undefined || token === "") return "invalid";
    if (this.expiredSet.has(token)) return "expired";
    const entry = this.byAccess.get(token);
    if (entry === undefined) return "invalid";
    const now = this.clock.now();
    if (entry.expireTime <= now) {
      this.byAccess.delete(token);
      this.expiredSet.add(token);
      return "expired";
    }
    if (now - entry.issuedAt < this.options.freshTokenDelayMs) return "too-fresh";
    return true;
  }

  /** Expires every token now. */
  expireAll(): void {
    for (const token of this.byAccess.keys()) this.expiredSet.add(token);
    this.byAccess.clear();
  }

  private mint(ttlMs: number): HesiTokenPair {
    const now = this.clock.now();
    let expireTime = now + ttlMs;
    if (this.options.licenceEndsAt !== undefined)
      expireTime = Math.min(expireTime, this.options.licenceEndsAt);
    const accessToken = `ID_${randomBytes(9).toString("base64url")}`;
    const refreshToken = `ID_${randomBytes(9).toString("base64url")}`;
    this.byAccess.set(accessToken, { refreshToken, expireTime, issuedAt: now });
    return { accessToken, refreshToken, expireTime };
  }
}
