/**
 * The facts policy evaluation reads, indexed once per sync from the snapshots (pure): per source its
 * department tree and each person's groups; per Person the linked accounts with their SourcePerson.
 */
import type { Person } from "../identity/person.js";
import type { DirectorySnapshot, SourceDepartment, SourceGroup, SourcePerson } from "../sources/snapshot.js";

/** One source's directory, indexed for evaluation. */
export interface DirectoryIndex {
  /** Source id from the config. */
  readonly sourceId: string;
  /** Whether the snapshot was a complete full read. */
  readonly complete: boolean;
  /** Departments by id. */
  readonly departments: ReadonlyMap<string, SourceDepartment>;
  /** People by subject. */
  readonly people: ReadonlyMap<string, SourcePerson>;
  /** Every group of the source, in snapshot order. */
  readonly groups: readonly SourceGroup[];
  /** Groups a subject belongs to (transitively), by subject. */
  readonly groupsOf: ReadonlyMap<string, ReadonlySet<SourceGroup>>;
  /** Groups by normalised DN/path (see {@link normaliseDn}), by id and by name. */
  readonly groupsByPath: ReadonlyMap<string, readonly SourceGroup[]>;
  readonly groupsById: ReadonlyMap<string, readonly SourceGroup[]>;
  readonly groupsByName: ReadonlyMap<string, readonly SourceGroup[]>;
  /** Department ids by their path of names, with and without the root's name (`财务部/华东区`). */
  readonly departmentsByPath: ReadonlyMap<string, readonly string[]>;
  /** Each department's names below the root (`财务部/华东区`), or the root's own name, by id. */
  readonly departmentLabels: ReadonlyMap<string, string>;
  /** Department ids a subject leads (membership leader flag or the department's leader list), sorted. */
  readonly ledBy: ReadonlyMap<string, readonly string[]>;
}

/** The indexed directories of every source, by source id. */
export type DirectoryFacts = ReadonlyMap<string, DirectoryIndex>;

/** One linked account with what its source says about it. */
export interface AccountFacts {
  /** Source id. */
  readonly sourceId: string;
  /** The person as that source sees them. */
  readonly person: SourcePerson;
  /** That source's directory. */
  readonly directory: DirectoryIndex;
  /** The groups the account belongs to (transitively), looked up once for every rule. */
  readonly groups: ReadonlySet<SourceGroup>;
  /** Department ids the account leads, sorted (see {@link DirectoryIndex.ledBy}). */
  readonly led: readonly string[];
}

/** Everything evaluation knows about one Person. */
export interface PersonFacts {
  /** Person id (ours). */
  readonly personId: string;
  /** Linked accounts found in the snapshots, ordered by source id. */
  readonly accounts: readonly AccountFacts[];
  /** Linked accounts whose source or subject is not in the snapshots. */
  readonly missing: readonly { readonly sourceId: string; readonly subject: string }[];
}

/** Indexes the snapshots of every source (one per source id; a later one with the same id wins). */
export function buildDirectoryFacts(snapshots: readonly DirectorySnapshot[]): DirectoryFacts {
  const out = new Map<string, DirectoryIndex>();
  for (const snapshot of snapshots) {
    const groupsOf = new Map<string, Set<SourceGroup>>();
    const groupsByPath = new Map<string, SourceGroup[]>();
    const groupsById = new Map<string, SourceGroup[]>();
    const groupsByName = new Map<string, SourceGroup[]>();
    for (const group of snapshot.groups) {
      for (const subject of group.members) addTo(groupsOf, subject, group);
      if (group.path !== undefined) push(groupsByPath, normaliseDn(group.path), group);
      push(groupsById, group.id, group);
      push(groupsByName, group.name, group);
    }
    const departments = new Map(snapshot.departments.map((d) => [d.id, d]));
    const ledBy = new Map<string, Set<string>>();
    for (const d of snapshot.departments) for (const subject of d.leaders) addTo(ledBy, subject, d.id);
    for (const p of snapshot.people) {
      for (const m of p.departments) if (m.leader) addTo(ledBy, p.subject, m.departmentId);
    }
    const index: DirectoryIndex = {
      sourceId: snapshot.sourceId,
      complete: snapshot.mode === "full" && snapshot.completeness.complete,
      departments,
      people: new Map(snapshot.people.map((p) => [p.subject, p])),
      groups: snapshot.groups,
      groupsOf,
      groupsByPath,
      groupsById,
      groupsByName,
      departmentsByPath: new Map(),
      departmentLabels: new Map(),
      ledBy: new Map([...ledBy].map(([subject, ids]) => [subject, [...ids].sort(compareStrings)])),
    };
    const byPath = index.departmentsByPath as Map<string, string[]>;
    const labels = index.departmentLabels as Map<string, string>;
    for (const d of snapshot.departments) {
      const path = departmentPath(index, d.id);
      push(byPath, path.join("/"), d.id);
      if (path.length > 1) push(byPath, path.slice(1).join("/"), d.id);
      labels.set(d.id, path.length === 1 ? path[0]! : path.slice(1).join("/"));
    }
    out.set(snapshot.sourceId, index);
  }
  return out;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

/** A DN compared the way directories do: case-insensitive, no spaces around the RDN separators. */
export function normaliseDn(dn: string): string {
  return dn
    .split(/(?<!\\),/)
    .map((rdn) => rdn.trim().toLowerCase())
    .join(",");
}

const NO_GROUPS: ReadonlySet<SourceGroup> = new Set();
const NOTHING_LED: readonly string[] = Object.freeze([]);

/** Gathers the facts of one Person from the indexed directories. */
export function buildPersonFacts(person: Person, directories: DirectoryFacts): PersonFacts {
  const accounts: AccountFacts[] = [];
  const missing: { sourceId: string; subject: string }[] = [];
  for (const account of person.accounts) {
    const directory = directories.get(account.sourceId);
    const found = directory?.people.get(account.subject);
    if (directory && found)
      accounts.push({
        sourceId: account.sourceId,
        person: found,
        directory,
        groups: directory.groupsOf.get(found.subject) ?? NO_GROUPS,
        led: directory.ledBy.get(found.subject) ?? NOTHING_LED,
      });
    else missing.push({ sourceId: account.sourceId, subject: account.subject });
  }
  if (!sortedBySource(accounts)) accounts.sort((a, b) => compareStrings(a.sourceId, b.sourceId));
  if (!sortedBySource(missing)) missing.sort((a, b) => compareStrings(a.sourceId, b.sourceId));
  return { personId: person.id, accounts, missing };
}

/** Whether a list is already in (stable) source-id order, so sorting it would change nothing. */
function sortedBySource(list: readonly { readonly sourceId: string }[]): boolean {
  for (let i = 1; i < list.length; i++)
    if (compareStrings(list[i - 1]!.sourceId, list[i]!.sourceId) > 0) return false;
  return true;
}

/** The department's names from the top, root first (`示例科技有限公司/财务部/华东区`). */
export function departmentPath(directory: DirectoryIndex, id: string): readonly string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (let d = directory.departments.get(id); d !== undefined && !seen.has(d.id);) {
    seen.add(d.id);
    names.unshift(d.name);
    d = d.parentId === null ? undefined : directory.departments.get(d.parentId);
  }
  return names;
}

/** True when `id` is `ancestor` or lies below it. */
export function isDepartmentWithin(directory: DirectoryIndex, id: string, ancestor: string): boolean {
  const seen = new Set<string>();
  for (let d: string | null = id; d !== null && !seen.has(d);) {
    if (d === ancestor) return true;
    seen.add(d);
    d = directory.departments.get(d)?.parentId ?? null;
  }
  return false;
}

/** Code-point order, independent of the machine's locale, so output is the same everywhere. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const withinMemo = new WeakMap<DirectoryIndex, Map<string, ReadonlySet<string>>>();

/**
 * The ids `id` for which {@link isDepartmentWithin}(directory, id, ancestor) holds: the ancestor and every
 * department below it. Computed once per directory and ancestor (the snapshot index is immutable).
 */
export function departmentsWithin(directory: DirectoryIndex, ancestor: string): ReadonlySet<string> {
  let byAncestor = withinMemo.get(directory);
  if (byAncestor === undefined) withinMemo.set(directory, (byAncestor = new Map()));
  let set = byAncestor.get(ancestor);
  if (set === undefined) {
    const ids = new Set<string>([ancestor]);
    for (const id of directory.departments.keys())
      if (isDepartmentWithin(directory, id, ancestor)) ids.add(id);
    byAncestor.set(ancestor, (set = ids));
  }
  return set;
}
