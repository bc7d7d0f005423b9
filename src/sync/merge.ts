/**
 * An incremental read lists only what changed; the planner needs everyone. This lays the changes over the
 * last full snapshot (pure). The result stays `incremental`: a change list cannot show who was deleted,
 * so it never proves anything complete and never removes — deletions wait for the next full read.
 */
import type { LinkChange } from "../identity/link.js";
import type { Person } from "../identity/person.js";
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

/** One source's incremental read and the full read it was laid over. */
export interface SourceChanges {
  /** The kept full read. */
  readonly base: DirectorySnapshot;
  /** The incremental read (what changed since). */
  readonly delta: DirectorySnapshot;
}

/**
 * The people an incremental run must re-plan: those the changes list, those who joined or left a changed
 * group, who became or stopped being a changed department's leader, and everyone whose links changed.
 * Everyone else is as the last plan left them, so a scoped plan diffs only these.
 */
export function affectedPeople(
  changes: readonly SourceChanges[],
  people: readonly Person[],
  linkChanges: readonly LinkChange[],
): Set<string> {
  const subjects = new Map<string, Set<string>>(); // source → subjects
  const add = (sourceId: string, subject: string) => {
    let set = subjects.get(sourceId);
    if (set === undefined) subjects.set(sourceId, (set = new Set()));
    set.add(subject);
  };
  /** Adds whoever is in one list and not the other (a whole group of 100,000 is not "changed"). */
  const addDifference = (sourceId: string, before: readonly string[], after: readonly string[]) => {
    const was = new Set(before);
    const is = new Set(after);
    for (const s of is) if (!was.has(s)) add(sourceId, s);
    for (const s of was) if (!is.has(s)) add(sourceId, s);
  };
  for (const { base, delta } of changes) {
    const source = delta.sourceId;
    for (const p of delta.people) add(source, p.subject);
    const groups = new Map(base.groups.map((g) => [g.id, g]));
    for (const g of delta.groups) addDifference(source, groups.get(g.id)?.members ?? [], g.members);
    const departments = new Map(base.departments.map((d) => [d.id, d]));
    for (const d of delta.departments) addDifference(source, departments.get(d.id)?.leaders ?? [], d.leaders);
  }
  const affected = new Set(linkChanges.map((c) => c.personId));
  for (const person of people)
    if (person.accounts.some((a) => subjects.get(a.sourceId)?.has(a.subject) === true))
      affected.add(person.id);
  return affected;
}
