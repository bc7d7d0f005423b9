/** The simulators' clock: real time plus an offset that tests and admin hooks can move forward. */
export class SimClock {
  private offsetMs = 0;

  constructor(private readonly base: () => number = Date.now) {}

  /** Milliseconds since the epoch, simulated. */
  now(): number {
    return this.base() + this.offsetMs;
  }

  /** Moves simulated time forward (tokens expire, rate windows roll, bans end). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new TypeError(`can only advance by a non-negative time, got ${ms}`);
    this.offsetMs += ms;
  }
}
