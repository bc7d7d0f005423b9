/**
 * People as the console shows them: who they are by the kept snapshots (the last complete full read of
 * each directory source, as the sync and sign-in use them), which roles they hold and should hold, and
 * why. The policy evaluation is the sync's own (src/policy/explain.ts over evaluatePolicy); account states
 * are judged by src/identity/resolve.ts as sign-in judges them.
 *
 * "Held now" is what the audit log says idbridge applied: the person's `role.granted` / `role.revoked`
 * entries (a disabled target account suspends its roles), replayed by src/audit/holdings.ts as the
 * auditors' views replay them. It is what idbridge did, not a read of the target (which may have been
 * changed by hand since; the next plan shows that as a change).
 */
import type { Config } from "../config/load.js";
import type { LinkedAccount, Person } from "../identity/person.js";
import type { AccountRef, ReviewItem } from "../identity/link.js";
import { judgeAccountStates, type AccountState } from "../identity/resolve.js";
import { explainPerson, formatLineage } from "../policy/explain.js";
import { buildDirectoryFacts, compareStrings, type DirectoryFacts } from "../policy/facts.js";
import type { Policy } from "../policy/schema.js";
import { proveComplete, type DirectorySnapshot, type SourcePerson } from "../sources/snapshot.js";
import type { AuditRecord, Store } from "../store/store.js";
import { DIRECTORY_TYPES } from "../sync/service.js";
import { HOLDING_ACTIONS, replayHoldings } from "../audit/holdings.js";
import type {
  AccountFacts,
  AccountView,
  PersonRoleView,
  PersonSummary,
  ReviewCandidate,
  RoleHolder,
} from "./contracts.js";

/** The kept snapshots of the directory sources, indexed. */
export interface KeptDirectories {
  /** `sourceId=takenAt` of each: equal keys mean the same snapshots. */
  readonly key: string;
  readonly directories: DirectoryFacts;
  /** When each snapshot's read started, by source id. */
  readonly readStarted: ReadonlyMap<string, string>;
}

/**
 * Loads the kept snapshots once and again only when the store keeps newer ones (one cheap query per
 * call), so a search over 10,000 people does not parse megabytes of JSON each time.
 */
export class KeptDirectoriesCache {
  private kept: KeptDirectories | null = null;

  constructor(
    private readonly store: Pick<Store, "listLatestSnapshotTimes" | "getLatestSnapshot">,
    private readonly config: Pick<Config, "sources">,
  ) {}

  /** The kept snapshots as the store holds them now. */
  async get(): Promise<KeptDirectories> {
    const directorySources = new Set(
      this.config.sources.filter((s) => DIRECTORY_TYPES.has(s.type)).map((s) => s.id),
    );
    const times = (await this.store.listLatestSnapshotTimes()).filter((t) =>
      directorySources.has(t.sourceId),
    );
    const key = times.map((t) => `${t.sourceId}=${t.takenAt}`).join("\u0000");
    if (this.kept !== null && this.kept.key === key) return this.kept;
    const snapshots: DirectorySnapshot[] = [];
    for (const t of times) {
      const stored = await this.store.getLatestSnapshot(t.sourceId);
      if (stored === null) continue;
      const snapshot = JSON.parse(stored.json) as DirectorySnapshot;
      // Only complete full reads are kept (by the sync): trusted to be what they were, as the sync does.
      snapshots.push(proveComplete(snapshot) ?? snapshot);
    }
    this.kept = {
      key,
      directories: buildDirectoryFacts(snapshots),
      readStarted: new Map(snapshots.map((s) => [s.sourceId, s.startedAt])),
    };
    return this.kept;
  }
}

/** The sources whose account gives a person's name and details, first choice first. */
export function profileOrder(config: Pick<Config, "sync" | "identity">): string[] {
  const order = [config.sync.orgChartSource, config.identity.primarySource];
  return [...new Set(order.filter((s): s is string => s !== undefined))];
}

/** A person as a search lists them, and the lower-case text a search matches against. */
export interface IndexedPerson {
  readonly summary: PersonSummary;
  readonly haystack: string;
}

/**
 * A person's summary from the kept snapshots: name, employee number and email from the profile account
 * (the org chart source's, then the primary source's, then any), status as sign-in judges the accounts.
 */
export function summarisePerson(
  person: Person,
  kept: KeptDirectories,
  order: readonly string[],
): IndexedPerson {
  const found = person.accounts
    .map((a) => kept.directories.get(a.sourceId)?.people.get(a.subject))
    .filter((p): p is SourcePerson => p !== undefined);
  const ranked = [
    ...order.flatMap((id) =>
      person.accounts
        .filter((a) => a.sourceId === id)
        .map((a) => kept.directories.get(a.sourceId)?.people.get(a.subject)),
    ),
    ...found,
  ].filter((p): p is SourcePerson => p !== undefined);
  const first = (key: "name" | "username" | "email" | "employeeNo"): string | undefined =>
    ranked.map((p) => p[key]).find((v) => v !== undefined && v !== "");
  const name = first("name") ?? first("username") ?? person.id;
  const employeeNo = first("employeeNo");
  const email = first("email");
  const accounts = person.accounts.map((a) => `${a.sourceId}:${a.subject}`);
  const summary: PersonSummary = {
    id: person.id,
    name,
    ...(employeeNo !== undefined ? { employeeNo } : {}),
    ...(email !== undefined ? { email } : {}),
    status: personStatus(person, kept),
    accounts,
  };
  const haystack = [
    person.id,
    name,
    ...accounts,
    ...found.flatMap((p) => [p.name, p.username, p.email, p.employeeNo]),
  ]
    .filter((v): v is string => v !== undefined && v !== "")
    .join("\u0000")
    .toLowerCase();
  return { summary, haystack };
}

/**
 * Search entries of everyone, each kept while the kept snapshots and the person's accounts stay the same:
 * a search then costs the read of the people and a string compare per person, not a summary each.
 */
export class PeopleIndex {
  private keptKey: string | null = null;
  private entries = new Map<string, { readonly accounts: string; readonly indexed: IndexedPerson }>();

  constructor(private readonly order: readonly string[]) {}

  /** The entries of `people`, in their order. */
  index(people: readonly Person[], kept: KeptDirectories): IndexedPerson[] {
    const previous = this.keptKey === kept.key ? this.entries : new Map<string, never>();
    // Rebuilt each time, so people no longer stored do not linger.
    const entries = new Map<string, { readonly accounts: string; readonly indexed: IndexedPerson }>();
    const out = people.map((person) => {
      const accounts = person.accounts.map((a) => `${a.sourceId}:${a.subject}@${a.linkedAt}`).join("\n");
      const seen = previous.get(person.id);
      const indexed =
        seen !== undefined && seen.accounts === accounts
          ? seen.indexed
          : summarisePerson(person, kept, this.order);
      entries.set(person.id, { accounts, indexed });
      return indexed;
    });
    this.keptKey = kept.key;
    this.entries = entries;
    return out;
  }
}

/**
 * active, disabled or left, as the kept snapshots say (sign-in's verdict without asking the sources now);
 * an account linked after its source's last read is new to it, not gone.
 */
function personStatus(person: Person, kept: KeptDirectories): string {
  const states: AccountState[] = [];
  for (const a of person.accounts) {
    const directory = kept.directories.get(a.sourceId);
    if (directory === undefined) continue;
    const listed = directory.people.get(a.subject)?.status;
    const started = kept.readStarted.get(a.sourceId);
    const state = listed ?? (started !== undefined && a.linkedAt <= started ? "absent" : undefined);
    if (state !== undefined)
      states.push({ account: { sourceId: a.sourceId, subject: a.subject }, kept: state });
  }
  const verdict = judgeAccountStates(states);
  return verdict.ok ? "active" : verdict.code === "ACCOUNT_LEFT" ? "left" : "disabled";
}

type Directory = NonNullable<ReturnType<DirectoryFacts["get"]>>;

/** The account's entry in its source's kept snapshot, with the snapshot; undefined when not listed. */
function listedIn(
  account: AccountRef,
  directories: DirectoryFacts,
): { directory: Directory; found: SourcePerson } | undefined {
  const directory = directories.get(account.sourceId);
  const found = directory?.people.get(account.subject);
  return directory === undefined || found === undefined ? undefined : { directory, found };
}

/** The department labels (paths) of a listed person, main department first. */
function departmentsOf(directory: Directory, found: SourcePerson): string[] {
  return found.departments.map((m) => directory.departmentLabels.get(m.departmentId) ?? m.departmentId);
}

/** One linked account with what its kept snapshot says about it. */
export function accountView(account: LinkedAccount, directories: DirectoryFacts): AccountView {
  const base: AccountView = {
    sourceId: account.sourceId,
    subject: account.subject,
    rule: account.rule,
    linkedAt: account.linkedAt,
  };
  const listed = listedIn(account, directories);
  if (listed === undefined) return base;
  const { directory, found } = listed;
  return {
    ...base,
    ...(found.name !== undefined ? { name: found.name } : {}),
    status: found.status,
    departments: departmentsOf(directory, found),
    groups: [...(directory.groupsOf.get(found.subject) ?? [])].map((g) => g.path ?? g.name),
  };
}

/** What the kept snapshot of its source says about an account, linked or not (a review's accounts). */
export function accountFacts(account: AccountRef, directories: DirectoryFacts): AccountFacts {
  const base = { sourceId: account.sourceId, subject: account.subject };
  const listed = listedIn(account, directories);
  if (listed === undefined) return { ...base, listed: false };
  const { directory, found } = listed;
  const optional = (key: "name" | "username" | "email" | "employeeNo" | "title") =>
    found[key] !== undefined && found[key] !== "" ? { [key]: found[key] } : {};
  return {
    ...base,
    listed: true,
    ...optional("name"),
    ...optional("username"),
    status: found.status,
    departments: departmentsOf(directory, found),
    ...optional("email"),
    ...optional("employeeNo"),
    ...optional("title"),
  };
}

/** A review's candidate: their summary and the departments of all their listed accounts. */
export function reviewCandidate(
  person: Person,
  kept: KeptDirectories,
  order: readonly string[],
): ReviewCandidate {
  const departments = person.accounts.flatMap((a) => {
    const listed = listedIn(a, kept.directories);
    return listed === undefined ? [] : departmentsOf(listed.directory, listed.found);
  });
  return { ...summarisePerson(person, kept, order).summary, departments: [...new Set(departments)] };
}

const heldKey = (target: string, role: string, scope: string): string =>
  `${target}\u0000${role}\u0000${scope}`;

/** A person's holding entries (grants, revokes, account disables and enables) in pages of this many. */
const HOLDING_PAGE = 1_000;

/**
 * What a person holds now in every target, per the audit log: their holding entries, read newest first
 * through the indexed audit search by subject, replayed as the audit views replay them.
 */
export async function heldRoles(store: Pick<Store, "searchAudit">, personId: string): Promise<RoleHolder[]> {
  const entries: AuditRecord[] = [];
  let before: number | null = null;
  for (;;) {
    const page = await store.searchAudit(
      { subject: personId, actions: HOLDING_ACTIONS },
      before,
      HOLDING_PAGE,
    );
    entries.push(...page);
    if (page.length < HOLDING_PAGE) break;
    before = page[page.length - 1]!.seq;
  }
  return replayHoldings(entries);
}

/**
 * A person's roles in one target: desired by its policy (the sync's evaluation, with lineage), held per
 * the audit log, or both; and the `policy explain` text.
 */
export function rolesInTarget(
  policy: Policy,
  person: Person,
  directories: DirectoryFacts,
  held: readonly RoleHolder[],
): { roles: PersonRoleView[]; explain: string } {
  const { evaluation, text } = explainPerson(policy, person, directories);
  const heldHere = new Map(
    held.filter((h) => h.target === policy.target).map((h) => [heldKey(h.target, h.role, h.scope ?? ""), h]),
  );
  const roles: PersonRoleView[] = [];
  const seen = new Set<string>();
  for (const grant of evaluation.grants)
    for (const scope of grant.scope.length > 0 ? grant.scope : [""]) {
      const key = heldKey(policy.target, grant.role, scope);
      seen.add(key);
      roles.push({
        target: policy.target,
        role: grant.role,
        targetRole: grant.targetRole,
        ...(scope !== "" ? { scope } : {}),
        held: heldHere.has(key),
        desired: true,
        sensitive: grant.sensitive,
        why: grant.lineage.map((step) => formatLineage([step])),
      });
    }
  for (const [key, h] of heldHere)
    if (!seen.has(key))
      roles.push({
        target: h.target,
        role: h.role,
        targetRole: h.targetRole,
        ...(h.scope !== undefined ? { scope: h.scope } : {}),
        held: true,
        desired: false,
        sensitive: policy.roles[h.role]?.sensitive ?? h.sensitive,
        why: [],
      });
  roles.sort(
    (a, b) =>
      compareStrings(a.role, b.role) ||
      compareStrings(a.scope ?? "", b.scope ?? "") ||
      Number(b.held) - Number(a.held),
  );
  return { roles, explain: text };
}

/** Open review items that name the person: as a candidate, or one of their accounts. */
export function reviewsOf(person: Person, queue: readonly ReviewItem[]): ReviewItem[] {
  const accounts = new Set(person.accounts.map((a) => `${a.sourceId}\u0000${a.subject}`));
  return queue.filter(
    (item) =>
      item.candidates.includes(person.id) ||
      item.accounts.some((a) => accounts.has(`${a.sourceId}\u0000${a.subject}`)),
  );
}
