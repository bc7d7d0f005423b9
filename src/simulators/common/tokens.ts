import { randomBytes } from "node:crypto";
import type { SimClock } from "./clock.js";

/** Why a presented token is not accepted. */
export type TokenProblem = "invalid" | "expired";

/**
 * Access tokens as DingTalk and WeCom issue them: one token per credential, the same token returned while
 * it is valid (DingTalk also extends its life on each re-fetch), a fixed lifetime (7200 s), and an admin
 * hook to revoke tokens at once (to test expiry in the middle of a paged read).
 */
export class TokenStore {
  private readonly byOwner = new Map<string, { token: string; expiresAt: number }>();
  private readonly byToken = new Map<string, { owner: string; expiresAt: number }>();
  private readonly expired = new Set<string>();

  constructor(
    private readonly clock: SimClock,
    private readonly options: {
      readonly ttlSeconds: number;
      readonly extendOnRefetch: boolean;
      readonly bytes?: number;
    },
  ) {}

  /** The owner's token: the current one while valid (extended if the vendor does that), else a new one. */
  issue(owner: string): { token: string; expiresIn: number } {
    const now = this.clock.now();
    const ttlMs = this.options.ttlSeconds * 1000;
    const current = this.byOwner.get(owner);
    if (current !== undefined && current.expiresAt > now) {
      if (this.options.extendOnRefetch) this.setExpiry(owner, current.token, now + ttlMs);
      const expiresAt = this.byOwner.get(owner)!.expiresAt;
      return { token: current.token, expiresIn: Math.round((expiresAt - now) / 1000) };
    }
    if (current !== undefined) this.forget(current.token);
    const token = randomBytes(this.options.bytes ?? 24).toString("hex");
    this.setExpiry(owner, token, now + ttlMs);
    return { token, expiresIn: this.options.ttlSeconds };
  }

  /** The owner of a valid token, or why it is not valid. */
  check(token: string | undefined): { owner: string } | { problem: TokenProblem } {
    if (token === undefined || token === "") return { problem: "invalid" };
    if (this.expired.has(token)) return { problem: "expired" };
    const entry = this.byToken.get(token);
    if (entry === undefined) return { problem: "invalid" };
    if (entry.expiresAt <= this.clock.now()) {
      this.forget(token);
      this.expired.add(token);
      return { problem: "expired" };
    }
    return { owner: entry.owner };
  }

  /** Expires every token now (the next call with one gets the vendor's expired-token error). */
  expireAll(): void {
    for (const token of [...this.byToken.keys()]) {
      this.forget(token);
      this.expired.add(token);
    }
  }

  private setExpiry(owner: string, token: string, expiresAt: number): void {
    this.byOwner.set(owner, { token, expiresAt });
    this.byToken.set(token, { owner, expiresAt });
  }

  private forget(token: string): void {
    const entry = this.byToken.get(token);
    this.byToken.delete(token);
    if (entry !== undefined && this.byOwner.get(entry.owner)?.token === token)
      this.byOwner.delete(entry.owner);
  }
}
