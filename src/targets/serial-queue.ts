/**
 * Runs tasks one at a time per key, in call order; different keys run freely. Targets use it for
 * read-modify-write updates of one record (a Hesi role's rows, a SCIM group's members), so two writes of
 * the same record do not undo each other.
 */
export class SerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every earlier task of `key` has settled. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task);
    const settled = next.catch(() => undefined);
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
    return next;
  }
}
