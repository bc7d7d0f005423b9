/**
 * An incremental read lists only what changed; the planner needs everyone. This lays the changes over the
 * last full snapshot (pure). The result stays `incremental`: a change list cannot show who was deleted,
 * so it never proves anything complete and never removes — deletions wait for the next full read.
 */
import type { DirectorySnapshot } from "../sources/snapshot.js";

/** `base` (a full read) with `delta` (an incremental read of the same source) laid over it. */
export function mergeIncremental(base: DirectorySnapshot, delta: DirectorySnapshot): DirectorySnapshot {
  if (base.sourceId !== delta.sourceId)
    throw new TypeError(`cannot merge ${delta.sourceId} into a snapshot of ${base.sourceId}`);
  const over = <T, K>(old: readonly T[], changed: readonly T[], key: (item: T) => K): T[] => {
    const map = new Map(old.map((item) => [key(item), item]));
    for (const item of changed) map.set(key(item), item);
    return [...map.values()];
  };
  return {
    ...delta,
    mode: "incremental",
    startedAt: delta.startedAt,
    people: over(base.people, delta.people, (p) => p.subject),
    departments: over(base.departments, delta.departments, (d) => d.id),
    groups: over(base.groups, delta.groups, (g) => g.id),
    unavailableFields: delta.unavailableFields,
    warnings: [
      ...delta.warnings,
      `${delta.sourceId}: changes since ${base.finishedAt} laid over the full read of then; deletions show at the next full read`,
    ],
  };
}
