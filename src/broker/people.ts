/**
 * People as sign-in sees them ({@link PersonDirectory}) over the Store: a sign-in identity becomes a
 * Person through an admin's decision, a persisted link, or the sync's link rules (the new link saved and
 * audited), or a just-in-time new person; then the person's linked accounts are asked now whether they are
 * still active. Claims come from the kept snapshots through a cache, since they are computed at every
 * token. The decisions themselves are the pure functions of src/identity/resolve.ts.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pLimit from "p-limit";
import type { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import type { Person } from "../identity/person.js";
import {
  claimsOf,
  decisionFor,
  judgeAccountStates,
  linkSignInAccount,
  unlinkedFrom,
  type AccountState,
} from "../identity/resolve.js";
import { buildDirectoryFacts, buildPersonFacts, type DirectoryFacts } from "../policy/facts.js";
import { loadPolicies } from "../policy/load.js";
import type { Policy } from "../policy/schema.js";
import type { LiveStatus, SignInIdentity } from "../sources/sign-in.js";
import { proveComplete, type DirectorySnapshot } from "../sources/snapshot.js";
import type { Store } from "../store/store.js";
import { DIRECTORY_TYPES, linkAudit } from "../sync/service.js";
import type {
  ActiveOutcome,
  PersonClaims,
  PersonDirectory,
  PersonWithFacts,
  ResolveFailureCode,
  ResolveOutcome,
} from "./contracts.js";

/** Options of {@link createPersonDirectory}. */
export interface PersonDirectoryOptions {
  /** The configuration (identity rules, signIn.justInTime, sync.orgChartSource, policiesDir). */
  readonly config: Config;
  /** Where people, decisions, the review queue and kept snapshots live. */
  readonly store: Store;
  /** Where new links are recorded. */
  readonly audit: Pick<AuditLog, "record">;
  /**
   * The state of an account in its directory source now (the broker wires it to the connectors'
   * `accountStatus`). Without it, accounts are judged by their kept snapshots only.
   */
  readonly liveStatus?: (sourceId: string, subject: string) => Promise<LiveStatus>;
  /** Clock for new links; tests pin it. */
  readonly now?: () => Date;
  /** A new person id (default `p_` + 20 hex digits, as the sync makes them). */
  readonly newId?: () => string;
  /** The claims cache looks for newer snapshots and policy files at most this often (ms; default 5000). */
  readonly recheckMs?: number;
  /** At most this many sources are asked at once for one sign-in (default 4). */
  readonly concurrency?: number;
}

/** The people side of sign-in over the Store. */
export function createPersonDirectory(options: PersonDirectoryOptions): PersonDirectory {
  return new StorePersonDirectory(options);
}

/** The kept snapshots, indexed once per set of snapshots. */
interface Kept {
  /** `sourceId=takenAt` of each, joined: equal keys mean the same snapshots. */
  readonly key: string;
  readonly snapshots: readonly DirectorySnapshot[];
  readonly directories: DirectoryFacts;
  /** When each snapshot's read started, by source id. */
  readonly readStarted: ReadonlyMap<string, string>;
  /** When each was taken, by source id (for reasons). */
  readonly takenAt: ReadonlyMap<string, string>;
}

/** A person found for an account nobody had, or why none. */
type Linked =
  | { readonly ok: true; readonly person: Person; readonly via: "link" | "rule" | "just-in-time" }
  | Extract<ResolveOutcome, { ok: false }>;

/** Claims computed lately for one person and target, with what they were computed from. */
interface RecentClaims {
  readonly claims: PersonClaims;
  readonly kept: Kept;
  readonly policy: Policy | undefined;
  /** performance.now() when computed. */
  readonly at: number;
}

/** At most this many persons' recent claims are kept (a few MB). */
const RECENT_CLAIMS_LIMIT = 20_000;

/** Sign-in links made by rules or just in time are serialised across instances with this store lease. */
const LINK_LEASE = "sign-in-link";
const LINK_LEASE_TTL_MS = 30_000;
/** How long a sign-in waits for another instance's link to finish before giving up. */
const LINK_LEASE_WAIT_MS = 5_000;

/** {@link PersonDirectory} over the Store. */
export class StorePersonDirectory implements PersonDirectory {
  private readonly now: () => Date;
  private readonly newId: () => string;
  private readonly recheckMs: number;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly holder = `${hostname()}/${process.pid}/${randomBytes(6).toString("hex")}`;
  private kept: { value: Kept; checkedAt: number } | null = null;
  private loading: Promise<Kept> | null = null;
  private policies: { value: readonly Policy[]; signature: string; checkedAt: number } | null = null;
  /** Claims computed lately, by person and target (see {@link StorePersonDirectory.claims}). */
  private recentClaims = new Map<string, RecentClaims>();
  /** Links in progress in this process, so two sign-ins of one new account make one link. */
  private linking: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: PersonDirectoryOptions) {
    this.now = options.now ?? (() => new Date());
    this.newId = options.newId ?? (() => `p_${randomBytes(10).toString("hex")}`);
    this.recheckMs = options.recheckMs ?? 5_000;
    this.limit = pLimit(options.concurrency ?? 4);
  }

  private get config(): Config {
    return this.options.config;
  }

  private get store(): Store {
    return this.options.store;
  }

  // ------------------------------------------------------------------------------------------ resolve

  async resolve(identity: SignInIdentity): Promise<ResolveOutcome> {
    const account = { sourceId: identity.sourceId, subject: identity.subject };
    const who = `${account.sourceId}:${account.subject}`;
    const decisions = await this.store.listLinkDecisions();
    const decision = decisionFor(decisions, account);
    if (decision?.kind === "ignore")
      return {
        ok: false,
        code: "IGNORED",
        reason: `${decision.by} marked ${who} as nobody idbridge manages`,
      };

    let person: Person | null;
    let via: "link" | "rule" | "just-in-time" = "link";
    if (decision?.kind === "link") {
      person = await this.store.getPerson(decision.personId);
      if (person === null)
        return {
          ok: false,
          code: "IN_REVIEW",
          reason: `${decision.by} linked ${who} to person "${decision.personId}", who does not exist`,
        };
      // A decision newer than the last sync: the person holds the account from now on.
      if (!person.accounts.some((a) => a.sourceId === account.sourceId && a.subject === account.subject))
        person = {
          id: person.id,
          accounts: [
            ...person.accounts.filter((a) => a.sourceId !== account.sourceId),
            { ...account, rule: "manual", linkedAt: this.now().toISOString() },
          ],
        };
    } else {
      person = await this.store.findPersonByAccount(account.sourceId, account.subject);
      // The sync has not applied an admin's unlink yet: the stored link is void, and relinking the
      // account elsewhere here would leave it on two people until then.
      if (person !== null && unlinkedFrom(decisions, account).has(person.id))
        return {
          ok: false,
          code: "IN_REVIEW",
          reason: `an admin unlinked ${who} from person "${person.id}"; the next sync links it anew`,
        };
      if (person === null) {
        const linked = await this.linkByRules(identity);
        if (!linked.ok) return linked;
        person = linked.person;
        via = linked.via;
      }
    }

    const found = person;
    const review = (await this.store.getReviewQueue()).find(
      (item) =>
        item.candidates.includes(found.id) ||
        item.accounts.some((a) => a.sourceId === account.sourceId && a.subject === account.subject),
    );
    if (review !== undefined)
      return {
        ok: false,
        code: "IN_REVIEW",
        reason: `person "${person.id}" waits in identity review: ${review.reasons.map((r) => r.message).join("; ")}`,
        personId: person.id,
      };

    const verdict = judgeAccountStates(await this.accountStates(person));
    if (!verdict.ok) return { ok: false, code: verdict.code, reason: verdict.reason, personId: person.id };
    return { ok: true, personId: person.id, via };
  }

  /**
   * Whether the person is still active now: the admins' decisions about their accounts (ignored,
   * unlinked, linked elsewhere), the review queue, then every linked directory account asked now.
   */
  async activeNow(personId: string, options: { readonly strict: boolean }): Promise<ActiveOutcome> {
    const person = await this.store.getPerson(personId);
    if (person === null)
      return { ok: false, code: "ACCOUNT_LEFT", reason: `person "${personId}" no longer exists` };
    const decisions = await this.store.listLinkDecisions();
    for (const account of person.accounts) {
      const who = `${account.sourceId}:${account.subject}`;
      const decision = decisionFor(decisions, account);
      if (decision?.kind === "ignore")
        return {
          ok: false,
          code: "IGNORED",
          reason: `${decision.by} marked ${who} as nobody idbridge manages`,
        };
      if (decision?.kind === "link" && decision.personId !== person.id)
        return {
          ok: false,
          code: "IN_REVIEW",
          reason: `${decision.by} linked ${who} to person "${decision.personId}"`,
        };
      if (unlinkedFrom(decisions, account).has(person.id))
        return {
          ok: false,
          code: "IN_REVIEW",
          reason: `an admin unlinked ${who} from person "${person.id}"`,
        };
    }
    const review = (await this.store.getReviewQueue()).find((item) => item.candidates.includes(person.id));
    if (review !== undefined)
      return {
        ok: false,
        code: "IN_REVIEW",
        reason: `person "${person.id}" waits in identity review: ${review.reasons.map((r) => r.message).join("; ")}`,
      };
    const states = await this.accountStates(person);
    const verdict = judgeAccountStates(states);
    // A refusal a source gave now, or its snapshot gave, stands whatever the other sources could say.
    if (!verdict.ok) return { ok: false, code: verdict.code, reason: verdict.reason };
    const unasked = states.filter((s) => s.live === "unavailable");
    if (options.strict && unasked.length > 0)
      return {
        ok: false,
        code: "SOURCE_UNAVAILABLE",
        reason: `${unasked.map((s) => `${s.account.sourceId} (for ${s.account.subject})`).join(", ")} could not be asked now`,
      };
    return { ok: true };
  }

  /**
   * The link rules (or just-in-time creation) for an account nobody has: one link at a time in this
   * process and across instances (a store lease), re-checking under it that no one linked it meanwhile.
   */
  private linkByRules(identity: SignInIdentity): Promise<Linked> {
    const run = this.linking.then(() => this.withLinkLease(() => this.linkNow(identity)));
    this.linking = run.catch(() => undefined);
    return run;
  }

  private async linkNow(identity: SignInIdentity): Promise<Linked> {
    const already = await this.store.findPersonByAccount(identity.sourceId, identity.subject);
    // Linked meanwhile (by another sign-in of the same account, or the sync).
    if (already !== null) return { ok: true, person: already, via: "link" };
    const kept = await this.keptSnapshots();
    const result = linkSignInAccount({
      identity,
      snapshots: kept.snapshots,
      config: this.config.identity,
      existing: await this.store.listPeople(),
      decisions: await this.store.listLinkDecisions(),
      now: this.now(),
      newId: this.newId,
      justInTime: this.config.signIn.justInTime,
    });
    if (result.kind === "review") return { ok: false, code: "IN_REVIEW", reason: result.reason };
    if (result.kind === "none") return { ok: false, code: "NOT_PROVISIONED", reason: result.reason };
    await this.store.savePeople([result.person]);
    for (const change of result.changes) {
      const event = linkAudit(change);
      await this.options.audit.record({ ...event, details: { ...event.details, via: "sign-in" } });
    }
    return { ok: true, person: result.person, via: result.kind === "linked" ? "rule" : "just-in-time" };
  }

  private async withLinkLease<T>(work: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + LINK_LEASE_WAIT_MS;
    while (!(await this.store.acquireLease(LINK_LEASE, this.holder, LINK_LEASE_TTL_MS))) {
      if (performance.now() > deadline)
        throw new AppError(
          "SYNC_BUSY",
          `another idbridge instance has been linking a sign-in account for over ${LINK_LEASE_WAIT_MS / 1000} s (lease ${LINK_LEASE}); try again`,
        );
      await sleep(50);
    }
    try {
      return await work();
    } finally {
      await this.store.releaseLease(LINK_LEASE, this.holder).catch(() => undefined);
    }
  }

  /**
   * Each account of the person in a directory source: its state now (asked in parallel, bounded, each
   * call cut off after `signIn.upstreamTimeoutSeconds` as `unavailable`) and in the kept snapshot.
   */
  private async accountStates(person: Person): Promise<AccountState[]> {
    const directorySources = new Set(
      this.config.sources.filter((s) => DIRECTORY_TYPES.has(s.type)).map((s) => s.id),
    );
    const kept = await this.keptSnapshots();
    const timeoutMs = this.config.signIn.upstreamTimeoutSeconds * 1000;
    const ask = this.options.liveStatus;
    return Promise.all(
      person.accounts
        .filter((a) => directorySources.has(a.sourceId))
        .map(async (a): Promise<AccountState> => {
          const listed = kept.directories.get(a.sourceId)?.people.get(a.subject);
          const started = kept.readStarted.get(a.sourceId);
          // Absent from a read that started after the link: removed. Linked after it: just new.
          const inKept =
            listed?.status ??
            (started !== undefined && a.linkedAt <= started ? ("absent" as const) : undefined);
          const takenAt = kept.takenAt.get(a.sourceId);
          const live =
            ask === undefined
              ? undefined
              : await this.limit(() => bounded(ask(a.sourceId, a.subject), timeoutMs));
          return {
            account: { sourceId: a.sourceId, subject: a.subject },
            ...(live !== undefined ? { live } : {}),
            ...(inKept !== undefined ? { kept: inKept } : {}),
            ...(takenAt !== undefined ? { keptAt: takenAt } : {}),
          };
        }),
    );
  }

  // ------------------------------------------------------------------------------------------ claims

  /**
   * A person's claims for a target. They are computed at every token and userinfo call, so a person's
   * claims are kept for up to `recheckMs` while the kept snapshots and the policy stay the same objects:
   * a person disabled in a newly kept snapshot still stops getting them within `recheckMs` of the snapshot
   * being stored (that is when a newer one is looked for), and a change to the person's record (an unlink,
   * removal) counts within `recheckMs`. No claims (unknown, disabled) are never kept, so they are asked anew.
   */
  async claims(personId: string, targetId: string | undefined): Promise<PersonClaims | null> {
    const kept = await this.keptSnapshots();
    const policy = targetId === undefined ? undefined : this.policyFor(targetId);
    const key = `${personId}\u0000${targetId ?? ""}`;
    const at = performance.now();
    const recent = this.recentClaims.get(key);
    if (
      recent !== undefined &&
      recent.kept === kept &&
      recent.policy === policy &&
      at - recent.at < this.recheckMs
    )
      return recent.claims;
    const person = await this.store.getPerson(personId);
    if (person === null) return null;
    const claims = this.claimsFor(person, kept, policy);
    if (claims !== null && this.recheckMs > 0) {
      // Bounded: past the limit, start over rather than track ages (entries are cheap to recompute).
      if (this.recentClaims.size >= RECENT_CLAIMS_LIMIT) this.recentClaims = new Map();
      this.recentClaims.set(key, { claims, kept, policy, at });
    }
    return claims;
  }

  /** The person and their facts from the kept snapshots (the same cache the claims use). */
  async facts(personId: string): Promise<PersonWithFacts | null> {
    const kept = await this.keptSnapshots();
    const person = await this.store.getPerson(personId);
    if (person === null) return null;
    const name = this.claimsFor(person, kept, undefined)?.name;
    return {
      person,
      facts: buildPersonFacts(person, kept.directories),
      ...(name !== undefined ? { name } : {}),
    };
  }

  private claimsFor(person: Person, kept: Kept, policy: Policy | undefined): PersonClaims | null {
    const orgChartSource = this.config.sync.orgChartSource ?? this.config.identity.primarySource;
    const primarySource = this.config.identity.primarySource;
    return claimsOf({
      person,
      directories: kept.directories,
      readStarted: kept.readStarted,
      ...(orgChartSource !== undefined ? { orgChartSource } : {}),
      ...(primarySource !== undefined ? { primarySource } : {}),
      ...(policy !== undefined ? { policy } : {}),
    });
  }

  /** The policy of a target, as the sync finds it (exactly one); POLICY_INVALID otherwise. */
  private policyFor(targetId: string): Policy {
    const dir = this.config.policiesDir;
    const at = performance.now();
    if (this.policies === null || at - this.policies.checkedAt >= this.recheckMs) {
      const signature = policyFilesSignature(dir);
      if (this.policies === null || signature !== this.policies.signature)
        this.policies = { value: loadPolicies(dir), signature, checkedAt: at };
      else this.policies.checkedAt = at;
    }
    const found = this.policies.value.filter((p) => p.target === targetId);
    if (found.length !== 1)
      throw new AppError(
        "POLICY_INVALID",
        found.length === 0
          ? `no policy in ${dir} is for target ${targetId}; add one with target: ${targetId}`
          : `${found.length} policies in ${dir} are for target ${targetId}; keep one`,
      );
    return found[0]!;
  }

  /**
   * The kept snapshots of the configured directory sources, indexed; the store is asked whether newer
   * ones were kept at most every `recheckMs`, and they are loaded and indexed again only when so.
   */
  private async keptSnapshots(): Promise<Kept> {
    const at = performance.now();
    if (this.kept !== null && at - this.kept.checkedAt < this.recheckMs) return this.kept.value;
    this.loading ??= this.refreshKept().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async refreshKept(): Promise<Kept> {
    const checkedAt = performance.now();
    const directorySources = new Set(
      this.config.sources.filter((s) => DIRECTORY_TYPES.has(s.type)).map((s) => s.id),
    );
    const times = (await this.store.listLatestSnapshotTimes()).filter((t) =>
      directorySources.has(t.sourceId),
    );
    const key = times.map((t) => `${t.sourceId}=${t.takenAt}`).join("\u0000");
    if (this.kept !== null && this.kept.value.key === key) {
      this.kept = { value: this.kept.value, checkedAt };
      return this.kept.value;
    }
    const snapshots: DirectorySnapshot[] = [];
    const takenAt = new Map<string, string>();
    for (const t of times) {
      const stored = await this.store.getLatestSnapshot(t.sourceId);
      if (stored === null) continue;
      const snapshot = JSON.parse(stored.json) as DirectorySnapshot;
      // Only complete full reads are kept (by the sync): trusted to be what they were, as the sync does.
      snapshots.push(proveComplete(snapshot) ?? snapshot);
      takenAt.set(t.sourceId, stored.takenAt);
    }
    const value: Kept = {
      // The key of what was actually loaded (a snapshot replaced meanwhile is caught at the next check).
      key,
      snapshots,
      directories: buildDirectoryFacts(snapshots),
      readStarted: new Map(snapshots.map((s) => [s.sourceId, s.startedAt])),
      takenAt,
    };
    this.kept = { value, checkedAt };
    return value;
  }
}

/** Options of {@link LiveChecks}. */
export interface LiveChecksOptions {
  /** A yes is trusted for this long per person (seconds); 0 asks every time. */
  readonly cacheSeconds: number;
  /** Monotonic clock (ms); tests pin it. Default performance.now. */
  readonly now?: () => number;
}

/** At most this many persons' recent yes answers are kept. */
const ACTIVE_CACHE_LIMIT = 50_000;

/**
 * Whether a signed-in person is still active now, for everything that uses a session after sign-in:
 * silent sign-ins and token refreshes (strict: a source that cannot be asked refuses, and the person signs
 * in interactively, which asks again) and launch (lenient: judged by the kept snapshot then, as at sign-in).
 * The claims of the last reads first, then the directory's own check ({@link PersonDirectory.activeNow}),
 * or, for a directory without one, one of the person's accounts resolved again. Only a yes is cached, per
 * person and strictness, for `cacheSeconds`; a refusal or an error is asked again next time.
 */
export class LiveChecks {
  private readonly now: () => number;
  private recent = new Map<string, number>();

  /** Checks over `people` (and the store, to find an account to resolve for directories without activeNow). */
  constructor(
    private readonly people: PersonDirectory,
    private readonly store: Pick<Store, "getPerson">,
    private readonly options: LiveChecksOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Whether `personId` may use their session now; lenient checks never answer SOURCE_UNAVAILABLE. */
  check(personId: string, options: { readonly strict: false }): Promise<LenientOutcome>;
  check(personId: string, options: { readonly strict: boolean }): Promise<ActiveOutcome>;
  async check(personId: string, options: { readonly strict: boolean }): Promise<ActiveOutcome> {
    const key = `${options.strict ? "s" : "l"}\u0000${personId}`;
    const at = this.now();
    const until = this.recent.get(key);
    if (until !== undefined && at < until) return { ok: true };
    const outcome = await this.ask(personId, options.strict);
    if (outcome.ok && this.options.cacheSeconds > 0) {
      if (this.recent.size >= ACTIVE_CACHE_LIMIT) this.recent = new Map();
      this.recent.set(key, at + this.options.cacheSeconds * 1000);
    } else this.recent.delete(key);
    return outcome;
  }

  /** Forgets a person's cached yes (after a refusal elsewhere, or in tests). */
  forget(personId: string): void {
    this.recent.delete(`s\u0000${personId}`);
    this.recent.delete(`l\u0000${personId}`);
  }

  private async ask(personId: string, strict: boolean): Promise<ActiveOutcome> {
    const { people } = this;
    if ((await people.claims(personId, undefined)) === null)
      return { ok: false, code: "ACCOUNT_DISABLED", reason: "the person is not active as of the last reads" };
    if (people.activeNow !== undefined) return people.activeNow(personId, { strict });
    const account = (await this.store.getPerson(personId))?.accounts[0];
    // A person the store does not hold (a directory given by a test or an embedder) has only claims.
    if (account === undefined) return { ok: true };
    // The account is linked to this person, so resolve takes the persisted link and then asks every linked
    // source for the account's state now; the person fields are read only by link rules, never on that path.
    const resolved = await people.resolve({
      sourceId: account.sourceId,
      subject: account.subject,
      person: { subject: account.subject, departments: [], managers: [], status: "active", attributes: {} },
    });
    if (!resolved.ok) return { ok: false, code: resolved.code, reason: resolved.reason };
    if (resolved.personId !== personId)
      return {
        ok: false,
        code: "IN_REVIEW",
        reason: `account ${account.sourceId}:${account.subject} now belongs to person "${resolved.personId}"`,
      };
    return { ok: true };
  }
}

/** A lenient check's outcome: never SOURCE_UNAVAILABLE. */
export type LenientOutcome =
  { readonly ok: true } | { readonly ok: false; readonly code: ResolveFailureCode; readonly reason: string };

/** `promise`, or `unavailable` when it fails or takes longer than `ms`. */
async function bounded(promise: Promise<LiveStatus>, ms: number): Promise<LiveStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<LiveStatus>((resolve) => {
    timer = setTimeout(() => resolve("unavailable"), ms);
  });
  try {
    return await Promise.race([promise.catch((): LiveStatus => "unavailable"), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Names and modification times of the policy files, so an edit is noticed without parsing them. */
function policyFilesSignature(dir: string): string {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith(".yaml") || n.endsWith(".yml"))
      .sort()
      .map((n) => `${n}@${statSync(join(dir, n)).mtimeMs}`)
      .join("\u0000");
  } catch {
    // Unreadable: loadPolicies reports it.
    return "";
  }
}
