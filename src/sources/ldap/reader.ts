import { SnapshotBuilder, SourceReadError, isSourceReadError } from "../builder.js";
import type {
  DepartmentMembership,
  DirectorySnapshot,
  IncompleteReason,
  ReadCursor,
  SourceGroup,
} from "../snapshot.js";
import type { DirectoryReader, ReadOptions, SourceContext, SourceTestReport } from "../source.js";
import type { LdapConfig } from "./config.js";
import { LdapConnection, type SearchSpec } from "./connection.js";
import { and, escapeFilterValue } from "./filter.js";
import {
  dnOfNameAndOptionalUid,
  first,
  has,
  isWithin,
  normalizeDn,
  parentDn,
  rangedValues,
  strings,
  type LdapEntry,
} from "./entry.js";
import {
  OU_FILTER,
  mapPersonEntry,
  resolveLdapConfig,
  type MappedPerson,
  type ResolvedLdapConfig,
} from "./person.js";
import { referenceDn, referenceHidesEntries } from "./references.js";
import type { HighWater, LdapVendor } from "./vendor.js";

export const LDAP_SOURCE_TYPE = "ldap";

// Problems after which nothing else can be read on this connection.
const FATAL: ReadonlySet<IncompleteReason["code"]> = new Set([
  "AUTH_FAILED",
  "UNREACHABLE",
  "TLS_FAILED",
  "ABORTED",
]);

type Resolved = ResolvedLdapConfig;
type RawPerson = MappedPerson;

/** Opens a reader of an AD or OpenLDAP directory. Nothing connects until `test()` or `read()`. */
export function openLdapDirectory(context: SourceContext, config: LdapConfig): DirectoryReader {
  const resolved = resolveLdapConfig(config);
  return {
    test: () => testSource(context, config, resolved),
    read: (options) => readSource(context, config, resolved, options ?? { mode: "full" }),
    close: () => Promise.resolve(),
  };
}

function prefix(context: SourceContext, config: LdapConfig, reason: IncompleteReason): IncompleteReason {
  const head = `source ${context.sourceId}`;
  return reason.message.startsWith(head)
    ? reason
    : { ...reason, message: `${head} (${config.url}): ${reason.message}` };
}

async function connect(
  context: SourceContext,
  config: LdapConfig,
  resolved: Resolved,
): Promise<LdapConnection | IncompleteReason> {
  try {
    return await LdapConnection.open(context.sourceId, config, resolved.vendor.bufferAttributes);
  } catch (error) {
    if (isSourceReadError(error)) return prefix(context, config, error.reason);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// read

async function readSource(
  context: SourceContext,
  config: LdapConfig,
  resolved: Resolved,
  options: ReadOptions,
): Promise<DirectorySnapshot> {
  const cursor = options.mode === "incremental" ? options.cursor : undefined;
  if (cursor !== undefined && cursor.type !== LDAP_SOURCE_TYPE) {
    throw new TypeError(`cursor of type ${cursor.type} given to the ldap source ${context.sourceId}`);
  }
  const connection = await connect(context, config, resolved);
  if (!(connection instanceof LdapConnection)) {
    const builder = new SnapshotBuilder(context, LDAP_SOURCE_TYPE, options.mode);
    builder.fail(connection);
    return builder.finish();
  }
  try {
    const run = new ReadRun(context, config, resolved, connection, options);
    return await run.read(cursor);
  } finally {
    await connection.close();
  }
}

interface RawGroup {
  readonly id: string;
  readonly name: string;
  readonly dn: string;
  /** The normalised DN. */
  readonly key: string;
  /** Normalised DNs of direct members (people and groups). */
  readonly memberDns: readonly string[];
  /** AD: the RID people name in primaryGroupID to have this as their primary group. */
  readonly primaryGroupId: number | null;
  /** AD: DNs of the groups this group is a direct member of. */
  readonly memberOf: readonly string[];
}

interface Ou {
  readonly id: string;
  readonly name: string;
  readonly dn: string;
  readonly managerDns: readonly string[];
}

/** One read: the connection, the builder and what has been learnt about DNs so far. */
class ReadRun {
  private builder!: SnapshotBuilder;
  private readonly vendor: LdapVendor;
  /** The time statuses are judged at (the start of the read). */
  private readonly now: Date;
  /** Subject by normalised DN; null for a DN known not to be a person of this source. */
  private readonly peopleByDn = new Map<string, string | null>();
  /** OUs read by this read (all of them, or the changed ones). */
  private readonly changedOus: Ou[] = [];
  /** The user base DNs, normalised. */
  private readonly userBases: readonly string[];
  private readonly ousByDn = new Map<string, Ou | null>();
  private readonly groupsByDn = new Map<string, RawGroup | null>();
  private greatestChange: string | undefined;
  private incremental = false;
  /**
   * Group member DNs that are neither people of this source nor groups: entries outside the user base DNs
   * or filter, or DNs that name no entry. Warned about once per read.
   */
  private readonly strangers = new Map<string, "outside" | "dangling">();
  /** Search references already warned about (each once per read). */
  private readonly referencesSeen = new Set<string>();
  /** Configured base DNs the server said do not exist (normalised). */
  private readonly missingBases = new Set<string>();
  /** Set once the people's status attributes were found unreadable. */
  private statusUnreadable = false;
  /** Set after a problem that ends the read (auth, network, TLS, abort). */
  private stopped = false;

  constructor(
    private readonly context: SourceContext,
    private readonly config: LdapConfig,
    private readonly resolved: Resolved,
    private readonly connection: LdapConnection,
    private readonly options: ReadOptions,
  ) {
    this.vendor = resolved.vendor;
    this.now = context.now();
    this.userBases = config.users.baseDns.map(normalizeDn);
  }

  async read(cursor: ReadCursor | undefined): Promise<DirectorySnapshot> {
    let mark: HighWater | null = null;
    let markProblem: IncompleteReason | null = null;
    try {
      mark = await this.vendor.highWater(this.connection, this.config.users.baseDns);
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      markProblem = prefix(this.context, this.config, error.reason);
    }

    let resetWhy: string | null = null;
    if (cursor !== undefined) {
      resetWhy =
        markProblem !== null
          ? `the server's change high-water mark could not be read (${markProblem.message})`
          : cursor.state.scope !== this.resolved.scope
            ? "the cursor was taken with other base DNs, filters or server"
            : this.vendor.cannotContinue(cursor.state, mark);
    }
    this.incremental = cursor !== undefined && resetWhy === null;
    this.builder = new SnapshotBuilder(
      this.context,
      LDAP_SOURCE_TYPE,
      this.incremental ? "incremental" : "full",
    );
    if (resetWhy !== null) {
      this.builder.warn(
        `source ${this.context.sourceId}: incremental read turned into a full read because ${resetWhy}; changes since the cursor cannot be found otherwise`,
      );
    } else if (markProblem !== null) {
      // The full read itself is unaffected; only the next incremental read has nothing to start from.
      this.builder.warn(`${markProblem.message}; this read gives no cursor for incremental reads`);
    }
    const since = this.incremental ? cursor!.state : null;

    await this.run(since);

    const finalMark =
      markProblem !== null ? null : (mark ?? this.vendor.fallbackHighWater(this.greatestChange));
    const next: ReadCursor | undefined =
      finalMark === null
        ? undefined
        : { type: LDAP_SOURCE_TYPE, state: { ...finalMark, scope: this.resolved.scope } };
    return this.builder.finish(next);
  }

  private async run(since: HighWater | null): Promise<void> {
    const changed = since === null ? "" : this.vendor.changedSince(since);
    const people: RawPerson[] = [];
    const groups: RawGroup[] = [];
    // One paged search at a time: OpenLDAP drops a paged search's cookie when another paged search starts
    // on the same connection ("paged results cookie is invalid or old", RFC 2696 §3 lets it).
    if (this.config.departments.from === "ou") await this.readOus(changed);
    if (this.fatal()) return;
    await this.collectPeople(changed, people);
    if (this.fatal()) return;
    if (this.config.groups.baseDns.length > 0) await this.collectGroups(changed, groups);
    if (this.fatal()) return;
    await this.addPeople(people);
    if (this.fatal() || this.config.groups.baseDns.length === 0) return;
    await this.resolveGroups(groups);
  }

  private fatal(): boolean {
    return this.stopped;
  }

  /** Runs a step; a source problem is recorded (with the source named) and false returned. */
  private async step(run: () => Promise<void>): Promise<boolean> {
    try {
      await run();
      return true;
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      const { reason } = error;
      if (reason.code === "NOT_FOUND" && reason.where !== undefined && this.isConfiguredBase(reason.where)) {
        // A missing base DN is reported once; later searches under it are skipped.
        const key = normalizeDn(reason.where);
        if (this.missingBases.has(key)) return false;
        this.missingBases.add(key);
      }
      this.builder.fail(prefix(this.context, this.config, reason));
      if (FATAL.has(reason.code)) this.stopped = true;
      return false;
    }
  }

  private isConfiguredBase(dn: string): boolean {
    const key = normalizeDn(dn);
    return [...this.config.users.baseDns, ...this.config.groups.baseDns].some(
      (base) => normalizeDn(base) === key,
    );
  }

  private checkAborted(): void {
    if (this.options.signal?.aborted === true) {
      throw new SourceReadError({ code: "ABORTED", message: "the read was aborted" });
    }
  }

  /** The pages of a paged search; references are noted, never followed. */
  private async *pages(spec: SearchSpec): AsyncGenerator<readonly LdapEntry[]> {
    if (this.missingBases.has(normalizeDn(spec.base))) return;
    for await (const page of this.connection.pages(spec, this.config.pageSize)) {
      this.checkAborted();
      const fresh = page.references.filter((reference) => !this.referencesSeen.has(reference));
      for (const reference of fresh) this.referencesSeen.add(reference);
      const bases = [...this.config.users.baseDns, ...this.config.groups.baseDns];
      const hiding = fresh.filter((reference) => referenceHidesEntries(reference, spec.base, bases));
      const ignored = fresh.filter((reference) => !hiding.includes(reference));
      if (ignored.length > 0) {
        this.builder.warn(
          `source ${this.context.sourceId}: ${spec.what} under ${spec.base}: ignored ${ignored.length} search reference(s) (referrals are never followed): ${ignored.join(", ")}`,
        );
      }
      for (const reference of hiding) {
        // UNREACHABLE: the entries exist, on the server the reference names, which this reader does not
        // contact (referrals are never followed). Not PERMISSION_DENIED or NOT_FOUND (the account may read
        // them, and they exist), nor LIMIT_EXCEEDED or SERVER_ERROR (this server answered fully and well).
        // Recorded here rather than thrown: the rest of the search is still read.
        this.builder.fail({
          code: "UNREACHABLE",
          message: `source ${this.context.sourceId} (${this.config.url}): ${spec.what} under ${spec.base}: the server referred part of a configured base DN to ${reference}; referrals are never followed, so the people or groups there were not read (point a source at that server, or exclude that subtree from the base DNs)`,
          where: referenceDn(reference) || spec.base,
        });
      }
      for (const entry of page.entries) {
        for (const name of this.vendor.changeAttributes) {
          const value = first(entry, name);
          if (value !== undefined && (this.greatestChange === undefined || value > this.greatestChange)) {
            this.greatestChange = value;
          }
        }
      }
      yield page.entries;
    }
  }

  private subjectOrFail(entry: LdapEntry, what: string): string | null {
    const subject = this.vendor.subjectOf(entry);
    if (subject === null) {
      this.builder.fail({
        code: "MALFORMED_RESPONSE",
        message: `source ${this.context.sourceId} (${this.config.url}): ${what} ${entry.dn} has no valid ${this.vendor.subjectAttribute}, so it cannot be identified and was left out (does the service account may read ${this.vendor.subjectAttribute}?)`,
        where: entry.dn,
      });
    }
    return subject;
  }

  // --- departments (OUs) -------------------------------------------------------------------------

  private ouAttributes(): string[] {
    return [this.vendor.subjectAttribute, "ou", "name", "managedBy", ...this.vendor.changeAttributes];
  }

  private toOu(entry: LdapEntry): Ou | null {
    const id = this.subjectOrFail(entry, "organizational unit");
    if (id === null) return null;
    return {
      id,
      name: first(entry, "ou") ?? first(entry, "name") ?? entry.dn,
      dn: entry.dn,
      managerDns: strings(entry, "managedBy"),
    };
  }

  private async readOus(changed: string): Promise<void> {
    const found = this.changedOus;
    for (const base of this.config.users.baseDns) {
      await this.step(async () => {
        for await (const page of this.pages({
          base,
          filter: and(OU_FILTER, changed),
          attributes: this.ouAttributes(),
          what: "reading organizational units",
        }))
          for (const entry of page) {
            const ou = this.toOu(entry);
            if (ou === null) continue;
            this.ousByDn.set(normalizeDn(entry.dn), ou);
            found.push(ou);
          }
      });
      if (this.fatal()) return;
    }
  }

  /** Adds the OUs read (after the people, who may lead them). */
  private async addDepartments(): Promise<void> {
    const ous = this.changedOus;
    if (this.incremental) {
      await this.prefetchOus(ous.map((ou) => parentDn(ou.dn)));
      await this.prefetchPeople(ous.flatMap((ou) => ou.managerDns));
    }
    for (const ou of ous) {
      this.builder.addDepartment({
        id: ou.id,
        parentId: this.enclosingOu(parentDn(ou.dn))?.id ?? null,
        name: ou.name,
        order: 0,
        leaders: this.subjectsOf(ou.managerDns, `manager of ${ou.dn}`),
      });
    }
  }

  /** The DN and its ancestors that lie within the user base DNs, nearest first. */
  private *withinUserBases(dn: string | null): Generator<[string, string]> {
    for (let at = dn; at !== null; at = parentDn(at)) {
      const key = normalizeDn(at);
      if (!this.userBases.some((base) => isWithin(key, base))) return;
      yield [at, key];
    }
  }

  /** The nearest known OU at or above `dn` within the user base DNs. */
  private enclosingOu(dn: string | null): Ou | null {
    for (const [, key] of this.withinUserBases(dn)) {
      const ou = this.ousByDn.get(key);
      if (ou !== undefined && ou !== null) return ou;
    }
    return null;
  }

  /** Incremental reads: looks up the OUs above `dns` that this read has not seen. */
  private async prefetchOus(dns: ReadonlyArray<string | null>): Promise<void> {
    for (const dn of dns) {
      for (const [at, key] of this.withinUserBases(dn)) {
        if (this.ousByDn.has(key)) continue;
        const entry = await this.connection.entry(
          at,
          this.ouAttributes(),
          "reading an organizational unit",
          OU_FILTER,
        );
        this.ousByDn.set(key, entry === null ? null : this.toOu(entry));
      }
    }
  }

  // --- people ------------------------------------------------------------------------------------

  private toRawPerson(entry: LdapEntry): RawPerson | null {
    const subject = this.subjectOrFail(entry, "person");
    if (subject === null) return null;
    return mapPersonEntry(entry, subject, this.config, this.resolved, this.now);
  }

  private async collectPeople(changed: string, raw: RawPerson[]): Promise<void> {
    for (const base of this.config.users.baseDns) {
      await this.step(async () => {
        for await (const page of this.pages({
          base,
          filter: and(this.resolved.userFilter, changed),
          attributes: this.resolved.personAttributes,
          what: "reading people",
        })) {
          this.checkStatus(page, base);
          for (const entry of page) {
            const person = this.toRawPerson(entry);
            if (person === null) continue;
            this.peopleByDn.set(normalizeDn(entry.dn), person.person.subject);
            raw.push(person);
            if (raw.length % 1000 === 0) this.options.onProgress?.({ phase: "people", done: raw.length });
          }
        }
      });
      if (this.fatal()) return;
    }
    this.options.onProgress?.({ phase: "people", done: raw.length });
  }

  /**
   * Statuses decide revocations: people whose lock or expiry cannot be seen would read as active, so a read
   * whose status attributes are unreadable is incomplete (once per read, on the first such page).
   */
  private checkStatus(page: readonly LdapEntry[], base: string): void {
    if (this.statusUnreadable) return;
    const why = this.vendor.unreadableStatus(page);
    if (why === null) return;
    this.statusUnreadable = true;
    this.builder.markUnavailable("status", why);
    this.builder.fail({
      code: "PERMISSION_DENIED",
      message: `source ${this.context.sourceId} (${this.config.url}): reading people under ${base}: ${why}`,
      where: base,
    });
  }

  private async addPeople(raw: readonly RawPerson[]): Promise<void> {
    await this.step(async () => {
      if (this.incremental) {
        if (this.config.departments.from === "ou") await this.prefetchOus(raw.map((p) => parentDn(p.dn)));
        await this.prefetchPeople(raw.flatMap((p) => p.managerDns));
      }
      for (const person of raw) {
        person.person.departments = this.departmentsOf(person);
        person.person.managers =
          person.managerDns.length === 0 ? [] : this.subjectsOf(person.managerDns, `manager of ${person.dn}`);
        this.builder.addPerson(person.person);
      }
    });
    if (this.config.departments.from === "ou") await this.step(() => this.addDepartments());
  }

  private departmentsOf(person: RawPerson): DepartmentMembership[] {
    if (this.config.departments.from === "attribute") {
      const value = person.departmentValue;
      if (value === undefined) return [];
      this.builder.addDepartment({ id: value, parentId: null, name: value, order: 0, leaders: [] });
      return [{ departmentId: value, main: true, leader: false }];
    }
    if (this.config.departments.from !== "ou") return [];
    const ou = this.enclosingOu(parentDn(person.dn));
    if (ou === null) return [];
    const leader = ou.managerDns.some((dn) => normalizeDn(dn) === normalizeDn(person.dn));
    return [{ departmentId: ou.id, main: true, leader }];
  }

  /** Person subjects for DNs (managers, managedBy); DNs that are not people of this source are noted. */
  private subjectsOf(dns: readonly string[], what: string): string[] {
    const subjects: string[] = [];
    for (const dn of dns) {
      const subject = this.peopleByDn.get(normalizeDn(dn));
      if (subject !== undefined && subject !== null) subjects.push(subject);
      else
        this.builder.warn(
          `source ${this.context.sourceId}: ${what} is ${dn}, which is not a person read from this source; left out`,
        );
    }
    return subjects;
  }

  /** Incremental reads: looks up the people (within the user base DNs and filter) this read has not seen. */
  private async prefetchPeople(dns: readonly string[]): Promise<void> {
    if (!this.incremental) return;
    for (const dn of dns) {
      const key = normalizeDn(dn);
      if (this.peopleByDn.has(key)) continue;
      const inScope = this.userBases.some((base) => isWithin(key, base));
      const entry = inScope
        ? await this.connection.entry(
            dn,
            [this.vendor.subjectAttribute],
            "reading a person",
            this.resolved.userFilter,
          )
        : null;
      this.peopleByDn.set(key, entry === null ? null : this.vendor.subjectOf(entry));
    }
  }

  // --- groups ------------------------------------------------------------------------------------

  private groupAttributes(): string[] {
    return [
      this.vendor.subjectAttribute,
      "cn",
      ...this.vendor.memberRequest(this.config.rangeSize),
      ...this.vendor.groupAttributes,
      ...this.vendor.changeAttributes,
    ];
  }

  private async collectGroups(changed: string, groups: RawGroup[]): Promise<void> {
    for (const base of this.config.groups.baseDns) {
      await this.step(async () => {
        for await (const page of this.pages({
          base,
          filter: and(this.resolved.groupFilter, changed),
          attributes: this.groupAttributes(),
          what: "reading groups",
        }))
          for (const entry of page) {
            const group = await this.toRawGroup(entry);
            if (group !== null) groups.push(group);
          }
      });
      if (this.fatal()) return;
    }
  }

  private async resolveGroups(groups: RawGroup[]): Promise<void> {
    // A change inside a nested group changes the members of every group that contains it.
    if (this.incremental) await this.step(() => this.addContainingGroups(groups));
    let done = 0;
    for (const group of groups) {
      await this.step(async () => {
        this.checkAborted();
        this.builder.addGroup(await this.resolveMembers(group));
      });
      if (this.fatal()) return;
      if (++done % 100 === 0) this.options.onProgress?.({ phase: "groups", done, total: groups.length });
    }
    this.warnAboutStrangers();
  }

  private async toRawGroup(entry: LdapEntry): Promise<RawGroup | null> {
    const id = this.subjectOrFail(entry, "group");
    if (id === null) return null;
    const group: RawGroup = {
      id,
      name: first(entry, "cn") ?? entry.dn,
      dn: entry.dn,
      key: normalizeDn(entry.dn),
      memberDns: [
        ...(await this.directMembers(entry)),
        // groupOfUniqueNames: members as NameAndOptionalUID, `DN#'0101'B` (RFC 4517 §3.3.21).
        ...strings(entry, "uniqueMember").map(dnOfNameAndOptionalUid),
      ].map(normalizeDn),
      primaryGroupId: this.vendor.primaryGroupIdOf(entry),
      memberOf: strings(entry, "memberOf"),
    };
    this.groupsByDn.set(group.key, group);
    return group;
  }

  /**
   * All values of `member`, fetching further ranges ([MS-ADTS] 3.1.1.3.1.3.3, `member;range=100-199`) for
   * as long as the server answers with a range that does not end in `*`.
   */
  private async directMembers(entry: LdapEntry): Promise<string[]> {
    let ranged = rangedValues(entry, "member");
    if (ranged === null) return strings(entry, "member");
    const values = [...ranged.values];
    while (ranged.high !== null) {
      this.checkAborted();
      const low = ranged.high + 1;
      const request = `member;range=${low}-${low + this.config.rangeSize - 1}`;
      const next = await this.connection.entry(
        entry.dn,
        [request],
        `reading members of ${entry.dn} (${request})`,
      );
      ranged = next === null ? null : rangedValues(next, "member");
      if (ranged === null) {
        throw new SourceReadError({
          code: "MALFORMED_RESPONSE",
          message: `asked for ${request} of ${entry.dn} and got no ranged values back, so its member list may be cut short`,
          where: entry.dn,
        });
      }
      if (ranged.low !== low) {
        throw new SourceReadError({
          code: "MALFORMED_RESPONSE",
          message: `asked for ${request} of ${entry.dn} and got range ${ranged.low}-${ranged.high ?? "*"}`,
          where: entry.dn,
        });
      }
      values.push(...ranged.values);
    }
    return values;
  }

  /** Adds the groups that contain any of `groups` (at any depth) to `groups`. */
  private async addContainingGroups(groups: RawGroup[]): Promise<void> {
    const seen = new Set(groups.map((g) => normalizeDn(g.dn)));
    const queue = [...groups];
    while (queue.length > 0) {
      const group = queue.shift()!;
      const { filter, transitive } = this.vendor.containingGroupsFilter(escapeFilterValue(group.dn));
      for (const base of this.config.groups.baseDns) {
        for await (const page of this.pages({
          base,
          filter: and(this.resolved.groupFilter, filter),
          attributes: this.groupAttributes(),
          what: `finding groups that contain ${group.dn}`,
        }))
          for (const entry of page) {
            const key = normalizeDn(entry.dn);
            if (seen.has(key)) continue;
            seen.add(key);
            const parent = await this.toRawGroup(entry);
            if (parent === null) continue;
            groups.push(parent);
            if (!transitive) queue.push(parent);
          }
      }
    }
  }

  private async resolveMembers(group: RawGroup): Promise<SourceGroup> {
    const inChain = this.vendor.inChainMembersFilter(escapeFilterValue(group.dn), group.primaryGroupId);
    const members = new Set<string>();
    const inChainByDn = new Map<string, string>(); // normalised DN -> subject
    const byPrimaryGroup: string[] = [];
    if (inChain !== null) {
      // The server evaluates nesting (AD's in-chain rule): one search per group, no cycles to worry about.
      for (const base of this.config.users.baseDns) {
        for await (const page of this.pages({
          base,
          filter: and(this.resolved.userFilter, inChain),
          attributes: [this.vendor.subjectAttribute, "primaryGroupID"],
          what: `reading the members of ${group.dn} (in-chain)`,
        }))
          for (const entry of page) {
            const subject = this.subjectOrFail(entry, "person");
            if (subject === null) continue;
            members.add(subject);
            inChainByDn.set(normalizeDn(entry.dn), subject);
            if (
              group.primaryGroupId !== null &&
              first(entry, "primaryGroupID") === String(group.primaryGroupId)
            ) {
              byPrimaryGroup.push(subject);
            }
          }
      }
      if (byPrimaryGroup.length > 0 && group.memberOf.length > 0) {
        // The in-chain rule of the containing groups does not follow primaryGroupID either.
        this.builder.warn(
          `source ${this.context.sourceId}: ${group.dn} is the primary group of ${byPrimaryGroup.length} person(s), who are members of it but are not counted in the groups that contain it (${group.memberOf.join("; ")}): AD does not nest primary-group membership`,
        );
      }
    } else {
      await this.discoverGraph(group);
      this.walkMembers(group, members, new Set());
    }
    const directMembers: string[] = [...byPrimaryGroup];
    for (const dn of group.memberDns) {
      const subject = inChain !== null ? inChainByDn.get(dn) : this.peopleByDn.get(dn);
      if (subject !== undefined && subject !== null) directMembers.push(subject);
    }
    return {
      id: group.id,
      name: group.name,
      path: group.dn,
      kind: this.vendor.groupKind,
      members: [...members].sort(),
      directMembers: [...new Set(directMembers)].sort(),
    };
  }

  /** Walks `member` down through nested groups; `visited` stops cycles (a ∋ b ∋ a). */
  private walkMembers(group: RawGroup, members: Set<string>, visited: Set<string>): void {
    visited.add(group.key);
    for (const dn of group.memberDns) {
      const subject = this.peopleByDn.get(dn);
      if (subject !== undefined && subject !== null) {
        members.add(subject);
        continue;
      }
      if (visited.has(dn)) continue;
      const nested = this.groupsByDn.get(dn);
      if (nested !== undefined && nested !== null) this.walkMembers(nested, members, visited);
    }
  }

  /**
   * Looks up every member DN below `group` that this read has not placed: in incremental reads the people
   * (within the user base DNs and filter) and groups it did not read; in every read the nested groups
   * outside the group base DNs or filter, whose members still count. A DN that is no group is left out
   * and noted (a person outside the user base DNs or filter, or no entry at all).
   */
  private async discoverGraph(group: RawGroup): Promise<void> {
    const queue = [group];
    const seen = new Set<string>([group.key]);
    while (queue.length > 0) {
      const next = queue.shift()!;
      await this.prefetchPeople(next.memberDns);
      for (const dn of next.memberDns) {
        if (this.peopleByDn.get(dn) != null || seen.has(dn)) continue;
        seen.add(dn);
        const nested = await this.nestedGroup(dn);
        if (nested !== null) queue.push(nested);
      }
    }
  }

  /** The group at `dn` (read, or looked up now), or null when `dn` is not a group. */
  private async nestedGroup(dn: string): Promise<RawGroup | null> {
    const known = this.groupsByDn.get(dn);
    if (known !== undefined) return known;
    // A base-scope read; a server error here fails the group being resolved (its members are unknown).
    // A nested group is a group by the flavor's definition too: its members count whatever groups.filter
    // picks for the snapshot.
    const entry = await this.connection.entry(
      dn,
      this.groupAttributes(),
      "reading a nested group",
      this.resolved.groupFilter === this.vendor.defaultGroupFilter
        ? this.vendor.defaultGroupFilter
        : `(|${this.resolved.groupFilter}${this.vendor.defaultGroupFilter})`,
    );
    const nested = entry === null ? null : await this.toRawGroup(entry);
    this.groupsByDn.set(dn, nested);
    if (nested === null && !this.strangers.has(dn)) {
      const exists = (await this.connection.entry(dn, ["objectClass"], "reading a group member")) !== null;
      this.strangers.set(dn, exists ? "outside" : "dangling");
    }
    return nested;
  }

  /** One warning per kind of group member that was left out (see {@link strangers}). */
  private warnAboutStrangers(): void {
    const dns = (kind: "outside" | "dangling") =>
      [...this.strangers].filter(([, k]) => k === kind).map(([dn]) => dn);
    const list = (found: string[]) =>
      found.slice(0, 10).join("; ") + (found.length > 10 ? `; … (${found.length - 10} more)` : "");
    const outside = dns("outside");
    if (outside.length > 0) {
      this.builder.warn(
        `source ${this.context.sourceId}: ${outside.length} group member(s) are neither people read from this source (outside users.baseDns or users.filter) nor groups, and were left out of their groups: ${list(outside)}`,
      );
    }
    const dangling = dns("dangling");
    if (dangling.length > 0) {
      this.builder.warn(
        `source ${this.context.sourceId}: ${dangling.length} group member DN(s) name no entry the service account can see (dangling references) and were ignored: ${list(dangling)}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// test

async function testSource(
  context: SourceContext,
  config: LdapConfig,
  resolved: Resolved,
): Promise<SourceTestReport> {
  const connection = await connect(context, config, resolved);
  if (!(connection instanceof LdapConnection)) {
    return { ok: false, found: [], problems: [connection], unavailableFields: [] };
  }
  const vendor = resolved.vendor;
  const found: string[] = [`connected to ${config.url} and bound as ${config.bindDn}`];
  const problems: IncompleteReason[] = [];
  const unavailableFields: { field: string; reason: string }[] = [];
  let ok = true;
  const attempt = async (run: () => Promise<void>): Promise<void> => {
    try {
      await run();
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      ok = false;
      problems.push(prefix(context, config, error.reason));
    }
  };
  try {
    await attempt(async () => {
      const root = await connection.rootDse([
        "supportedControl",
        "vendorName",
        "dnsHostName",
        "highestCommittedUSN",
      ]);
      const server = first(root, "dnsHostName") ?? first(root, "vendorName");
      if (server !== undefined) found.push(`server: ${server}`);
      if (!strings(root, "supportedControl").includes("1.2.840.113556.1.4.319")) {
        problems.push({
          code: "SERVER_ERROR",
          message: `source ${context.sourceId}: the server does not advertise paged results (1.2.840.113556.1.4.319); large directories may be cut off at its size limit`,
        });
      }
    });
    await attempt(async () => {
      const mark = await vendor.highWater(connection, config.users.baseDns);
      found.push(
        mark === null
          ? "incremental reads: from entryCSN of the entries read"
          : `incremental reads: change mark ${JSON.stringify(mark)}`,
      );
    });
    for (const base of config.users.baseDns) {
      await attempt(async () => {
        const page = await firstPage(
          connection,
          {
            base,
            filter: resolved.userFilter,
            attributes: resolved.personAttributes,
            what: "reading people",
          },
          config.pageSize,
        );
        found.push(`people under ${base}: ${page.length} on the first page`);
        if (page.length === 0) return;
        const fields: Array<[string, string]> = [
          ["subject", vendor.subjectAttribute],
          ...(["name", "email", "mobile", "employeeNo", "title", "manager"] as const).map(
            (f): [string, string] => [f, resolved.attributes[f]],
          ),
        ];
        const counts = fields.map(
          ([field, attribute]) => [field, attribute, page.filter((e) => has(e, attribute)).length] as const,
        );
        found.push(`  of these with ${counts.map(([f, a, n]) => `${f} (${a}): ${n}`).join(", ")}`);
        for (const [field, attribute, n] of counts) {
          if (n === 0)
            unavailableFields.push({
              field,
              reason: `no entry on the first page has ${attribute} (not set, or the service account may not read it)`,
            });
        }
        if (counts[0]![2] < page.length) {
          ok = false;
          problems.push({
            code: "PERMISSION_DENIED",
            message: `source ${context.sourceId}: ${page.length - counts[0]![2]} people under ${base} came without ${vendor.subjectAttribute}; the service account must be allowed to read it`,
            where: base,
          });
        }
        if (vendor.flavor === "ad" && !page.some((e) => has(e, "msDS-User-Account-Control-Computed"))) {
          problems.push({
            code: "PERMISSION_DENIED",
            message: `source ${context.sourceId}: msDS-User-Account-Control-Computed is not readable, so locked-out people and expired passwords cannot be seen (they would read as active)`,
            where: base,
          });
        }
      });
    }
    for (const base of config.groups.baseDns) {
      await attempt(async () => {
        const page = await firstPage(
          connection,
          {
            base,
            filter: resolved.groupFilter,
            attributes: [vendor.subjectAttribute, "cn"],
            what: "reading groups",
          },
          config.pageSize,
        );
        found.push(`groups under ${base}: ${page.length} on the first page`);
      });
    }
  } finally {
    await connection.close();
  }
  return { ok, found, problems, unavailableFields };
}

async function firstPage(
  connection: LdapConnection,
  spec: SearchSpec,
  pageSize: number,
): Promise<LdapEntry[]> {
  const pages = connection.pages(spec, pageSize);
  const page = await pages.next();
  await pages.return(undefined);
  return page.done === true ? [] : page.value.entries;
}
