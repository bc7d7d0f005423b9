import { createHash } from "node:crypto";
import { isProvenComplete, type DirectorySnapshot } from "../sources/snapshot.js";
import { compareKindOf, type IdentityConfig } from "./config.js";
import { matchKeys } from "./normalise.js";
import type { LinkedAccount, Person } from "./person.js";

/**
 * Linking source accounts to people: a pure function of the snapshots, the link rules, the people as
 * they were, the admins' decisions and the time.
 *
 * - Existing links are kept: the subject is the key, so renames, OU moves and changed emails change
 *   nothing. Accounts absent from a snapshot (complete or not) keep their link; removal is the planner's.
 * - Unlinked accounts are grouped with everything their rules connect them to (transitively: WeCom userid
 *   = AD sAMAccountName and AD employeeID = DingTalk job_number make one group of three). A group that
 *   reaches exactly one existing person joins it; one that reaches none founds a new person; anything
 *   else — several candidates, rules that disagree, a candidate that already has an account of that
 *   source, two accounts of one source — goes to the review queue and links nothing.
 * - Admins' decisions (link, unlink, ignore) win over rules and are recorded with rule `manual`.
 */

/** A source account: (source, subject). */
export interface AccountRef {
  /** Source id from the config. */
  readonly sourceId: string;
  /** The account's stable subject in that source. */
  readonly subject: string;
}

/** Who decided and when, common to every manual decision. */
interface DecisionBase {
  /** The account decided about. */
  readonly account: AccountRef;
  /** Who decided (the admin's name as given to the CLI or console). */
  readonly by: string;
  /** When (ISO 8601). */
  readonly at: string;
  /** Why, in the admin's words. */
  readonly comment?: string;
}

/**
 * An admin's decision about one account. Decisions are sticky: they apply on every run until a later
 * decision about the same account replaces them, so pass all of them, oldest first.
 */
export type LinkDecision =
  | (DecisionBase & {
      /** The account belongs to `personId`, whatever the rules say. */
      readonly kind: "link";
      /** The person it belongs to. */
      readonly personId: string;
    })
  | (DecisionBase & {
      /** The account does not belong to `personId`; rules may link it elsewhere or make it a new person. */
      readonly kind: "unlink";
      /** The person it does not belong to. */
      readonly personId: string;
    })
  | (DecisionBase & {
      /** The account is nobody we manage (a test or shared account): never linked, never reviewed. */
      readonly kind: "ignore";
    });

/** Why an account was or would be linked: a rule found equal values on two accounts. */
export interface MatchEvidence {
  /** Rule id. */
  readonly rule: string;
  /** The account being linked. */
  readonly account: AccountRef;
  /** The account it matched. */
  readonly matched: AccountRef;
  /** The normalised value both have. */
  readonly value: string;
}

/** Stable codes for why accounts wait for review. */
export type ReviewReasonCode =
  /** One rule points to several people. */
  | "several-candidates"
  /** Different rules point to different people. */
  | "rules-disagree"
  /** The one candidate already has another account of the same source. */
  | "source-taken"
  /** Two accounts of one source would become one person. */
  | "same-source-twice"
  /** The rules point to a person an admin unlinked one of the accounts from. */
  | "unlinked-by-admin"
  /** An admin linked the account to a person that does not exist. */
  | "unknown-person"
  /** A later admin decision linked another account of the same source to the same person. */
  | "manual-conflict";

/** One reason of a review item. */
export interface ReviewReason {
  /** Stable code. */
  readonly code: ReviewReasonCode;
  /** A sentence for the admin. */
  readonly message: string;
}

/** Accounts that were not linked because the rules gave no single answer; an admin resolves them. */
export interface ReviewItem {
  /** Derived from the accounts, so the same case keeps its id from run to run. */
  readonly id: string;
  /** The accounts left unlinked (held). */
  readonly accounts: readonly AccountRef[];
  /**
   * Existing people the accounts might belong to, or (a failed admin decision) still belong to; all held:
   * left unchanged downstream until resolved.
   */
  readonly candidates: readonly string[];
  /** Why, every reason that applies. */
  readonly reasons: readonly ReviewReason[];
  /** The matches the rules found. */
  readonly evidence: readonly MatchEvidence[];
}

/** An account that would found a new person but whose match may be in a source that was not read fully. */
export interface PendingAccount {
  /** The account. */
  readonly account: AccountRef;
  /** Why it waits, naming the source. */
  readonly reason: string;
}

/** What linking changed, one entry per effect (for the audit log). */
export type LinkChange =
  | {
      /** A new person was created. */
      readonly kind: "person-created";
      /** Their new id. */
      readonly personId: string;
      /** The account that founded them. */
      readonly account: AccountRef;
    }
  | {
      /** An account was linked to a person. */
      readonly kind: "account-linked";
      /** The person. */
      readonly personId: string;
      /** The account. */
      readonly account: AccountRef;
      /** Rule id, `created` for the founding account of a new person, or `manual`. */
      readonly rule: string;
      /** The match that made the link (rule links). */
      readonly evidence?: MatchEvidence;
      /** The admin (manual links). */
      readonly decidedBy?: string;
    }
  | {
      /** An account was unlinked from a person by an admin's decision. */
      readonly kind: "account-unlinked";
      /** The person it was linked to. */
      readonly personId: string;
      /** The account. */
      readonly account: AccountRef;
      /** unlinked: an unlink; ignored: an ignore; moved: linked to another person; displaced: another account of the same source was linked to the person. */
      readonly reason: "unlinked" | "ignored" | "moved" | "displaced";
      /** The admin. */
      readonly decidedBy: string;
    };

/** Input of {@link linkPeople}. */
export interface LinkInput {
  /** The latest snapshot of each source (one per source id); an old source's last snapshot may be included. */
  readonly snapshots: readonly DirectorySnapshot[];
  /** The `identity:` config section. */
  readonly config: IdentityConfig;
  /** The people as stored. */
  readonly existing: readonly Person[];
  /** Admins' decisions, oldest first. */
  readonly decisions?: readonly LinkDecision[];
  /** The time recorded on new links. */
  readonly now: Date;
  /** A new opaque person id (e.g. `p_` + random); must not repeat. */
  readonly newId: () => string;
}

/** Result of {@link linkPeople}. */
export interface LinkResult {
  /** Every person (existing and new), sorted by id; accounts sorted by source and subject. */
  readonly people: readonly Person[];
  /** Cases for an admin. */
  readonly reviewQueue: readonly ReviewItem[];
  /** What changed, in a stable order. */
  readonly changes: readonly LinkChange[];
  /** What downstream must leave unchanged until resolved. */
  readonly held: {
    /** People a review item concerns. */
    readonly personIds: readonly string[];
    /**
     * Accounts in review or pending. None was linked by this run; one whose admin decision could not be
     * applied keeps the link it had, and that person is held too.
     */
    readonly accounts: readonly AccountRef[];
  };
  /** Accounts waiting for a complete read of another source before they may found a new person. */
  readonly pending: readonly PendingAccount[];
}

type LinkedChange = Extract<LinkChange, { kind: "account-linked" }>;

const accountKey = (a: AccountRef): string => `${a.sourceId}\u0000${a.subject}`;
const refOf = (key: string): AccountRef => {
  const i = key.indexOf("\u0000");
  return { sourceId: key.slice(0, i), subject: key.slice(i + 1) };
};
/**
 * refOf with a cache, for one run (the same account is looked at many times). `cache` is seeded with the
 * free accounts of the snapshots, so their refs, and the links made of them, hold the snapshots' own
 * subject strings: later look-ups by subject (policy facts) then compare the same string, not a copy.
 */
const cachedRefs = (cache: Map<string, AccountRef>): ((key: string) => AccountRef) => {
  return (key) => {
    let ref = cache.get(key);
    if (ref === undefined) cache.set(key, (ref = refOf(key)));
    return ref;
  };
};
const byAccount = (a: AccountRef, b: AccountRef): number =>
  compareStrings(a.sourceId, b.sourceId) || compareStrings(a.subject, b.subject);
const isSorted = (accounts: readonly AccountRef[]): boolean =>
  accounts.every((a, i) => i === 0 || byAccount(accounts[i - 1]!, a) < 0);
const NOTHING_FORBIDDEN: ReadonlyMap<string, string> = new Map();
const show = (a: AccountRef): string => `${a.sourceId}:${a.subject}`;
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Up to this many accounts, membership is checked by a linear search rather than a Set. */
const SMALL = 8;

/** At most this many matches per account and rule are kept as evidence (a junk value can match hundreds). */
const EVIDENCE_PER_RULE = 5;

const someIds = (ids: ReadonlySet<string>): string => {
  const sorted = [...ids].sort(compareStrings);
  const head = sorted.slice(0, EVIDENCE_PER_RULE).join(", ");
  return sorted.length > EVIDENCE_PER_RULE ? `${head} and ${sorted.length - EVIDENCE_PER_RULE} more` : head;
};

interface Decided {
  pin?: { personId: string; order: number; by: string } | { ignored: true; by: string };
  forbidden: Map<string, string>;
}

interface Group {
  readonly rule: string;
  readonly ruleIndex: number;
  readonly value: string;
  /** Account keys, sorted. */
  readonly members: readonly string[];
}

/**
 * Links the accounts of the snapshots to people. Pure: the same input gives the same output, whatever
 * the order of snapshots, people and their accounts.
 *
 * @throws TypeError when the input breaks an invariant: two snapshots of one source, a person id twice,
 *   an account on two people or two accounts of one source on one person, or `newId` repeating an id.
 */
export function linkPeople(input: LinkInput): LinkResult {
  const { config } = input;
  const now = input.now.toISOString();
  const primary = config.primarySource;
  const rank = new Map(config.rules.map((rule, index) => [rule.id, index]));
  const refs = new Map<string, AccountRef>();
  const refOf = cachedRefs(refs);

  // Snapshots and the accounts they list.
  const snapshots = new Map<string, DirectorySnapshot>();
  /** Account keys of each snapshot's people, in the snapshot's order. */
  const keysOf = new Map<string, string[]>();
  const listed = new Set<string>();
  for (const snapshot of input.snapshots) {
    if (snapshots.has(snapshot.sourceId))
      throw new TypeError(`two snapshots of source "${snapshot.sourceId}"`);
    snapshots.set(snapshot.sourceId, snapshot);
    const keys = snapshot.people.map((person) =>
      accountKey({ sourceId: snapshot.sourceId, subject: person.subject }),
    );
    keysOf.set(snapshot.sourceId, keys);
    for (const key of keys) listed.add(key);
  }

  // People as stored, and account → person. A person's accounts are copied only when they change, so a
  // run that changes little allocates little and hands back the same Person objects.
  const stored = new Map<string, Person>();
  const owner = new Map<string, string>();
  for (const person of input.existing) {
    if (stored.has(person.id)) throw new TypeError(`person "${person.id}" appears twice`);
    person.accounts.forEach((account, i) => {
      const key = accountKey(account);
      const other = owner.get(key);
      if (other !== undefined)
        throw new TypeError(`account ${show(account)} is linked to both "${other}" and "${person.id}"`);
      if (person.accounts.findIndex((a) => a.sourceId === account.sourceId) !== i)
        throw new TypeError(`person "${person.id}" has two accounts of source "${account.sourceId}"`);
      owner.set(key, person.id);
    });
    stored.set(person.id, person);
  }
  const changed = new Map<string, Map<string, LinkedAccount>>();
  const exists = (personId: string) => changed.has(personId) || stored.has(personId);
  const accountIn = (personId: string, sourceId: string): LinkedAccount | undefined => {
    const accounts = changed.get(personId);
    if (accounts !== undefined) return accounts.get(sourceId);
    return stored.get(personId)?.accounts.find((a) => a.sourceId === sourceId);
  };
  const edit = (personId: string): Map<string, LinkedAccount> => {
    let accounts = changed.get(personId);
    if (accounts === undefined) {
      accounts = new Map((stored.get(personId)?.accounts ?? []).map((a) => [a.sourceId, a]));
      changed.set(personId, accounts);
    }
    return accounts;
  };

  const changes: LinkChange[] = [];
  const reviews: ReviewItem[] = [];
  const heldPeople = new Set<string>();
  const heldAccounts = new Set<string>();
  /** Accounts rules must not touch: decided by an admin, or held by a failed decision. */
  const settled = new Set<string>();

  const unlink = (key: string, reason: "unlinked" | "ignored" | "moved" | "displaced", by: string) => {
    const personId = owner.get(key)!;
    const account = refOf(key);
    edit(personId).delete(account.sourceId);
    owner.delete(key);
    changes.push({ kind: "account-unlinked", personId, account, reason, decidedBy: by });
  };
  const link = (
    key: string,
    personId: string,
    rule: string,
    extra: { evidence?: MatchEvidence; by?: string },
  ) => {
    const account = refOf(key);
    edit(personId).set(account.sourceId, {
      sourceId: account.sourceId,
      subject: account.subject,
      rule,
      linkedAt: now,
    });
    owner.set(key, personId);
    const change: { -readonly [K in keyof LinkedChange]: LinkedChange[K] } = {
      kind: "account-linked",
      personId,
      account,
      rule,
    };
    if (extra.evidence !== undefined) change.evidence = extra.evidence;
    if (extra.by !== undefined) change.decidedBy = extra.by;
    changes.push(change);
  };
  const review = (item: Omit<ReviewItem, "id">) => {
    const accounts = [...item.accounts].sort((a, b) => compareStrings(accountKey(a), accountKey(b)));
    const id = `rv_${createHash("sha256")
      .update(accounts.map(accountKey).join("\u0001"))
      .digest("hex")
      .slice(0, 16)}`;
    const candidates = [...new Set(item.candidates)].sort(compareStrings);
    const evidence = [...item.evidence].sort((a, b) =>
      compareStrings(
        `${accountKey(a.account)}\u0001${a.rule}\u0001${accountKey(a.matched)}`,
        `${accountKey(b.account)}\u0001${b.rule}\u0001${accountKey(b.matched)}`,
      ),
    );
    reviews.push({ ...item, id, accounts, candidates, evidence });
    for (const a of accounts) heldAccounts.add(accountKey(a));
    for (const p of candidates) heldPeople.add(p);
  };

  // Admins' decisions: the last link or ignore per account pins it; unlinks forbid a person.
  const decided = new Map<string, Decided>();
  (input.decisions ?? []).forEach((decision, order) => {
    const key = accountKey(decision.account);
    const state = decided.get(key) ?? { forbidden: new Map<string, string>() };
    decided.set(key, state);
    if (decision.kind === "link") {
      state.pin = { personId: decision.personId, order, by: decision.by };
      state.forbidden.delete(decision.personId);
    } else if (decision.kind === "unlink") {
      state.forbidden.set(decision.personId, decision.by);
      if (state.pin !== undefined && "personId" in state.pin && state.pin.personId === decision.personId)
        delete state.pin;
    } else {
      state.pin = { ignored: true, by: decision.by };
    }
  });
  const decidedKeys = [...decided.keys()].sort(compareStrings);
  for (const key of decidedKeys) {
    const state = decided.get(key)!;
    const current = owner.get(key);
    if (state.pin !== undefined && "ignored" in state.pin) {
      settled.add(key);
      if (current !== undefined) unlink(key, "ignored", state.pin.by);
    } else if (current !== undefined && state.forbidden.has(current)) {
      unlink(key, "unlinked", state.forbidden.get(current)!);
    }
  }
  const pins = decidedKeys
    .flatMap((key) => {
      const pin = decided.get(key)!.pin;
      return pin !== undefined && "personId" in pin ? [{ key, ...pin }] : [];
    })
    .sort((a, b) => a.order - b.order);
  // Of several pins of one source's accounts to one person, the latest wins; the others are reviewed
  // without being linked first, so a second run changes nothing.
  const latestPin = new Map<string, string>();
  for (const pin of pins) latestPin.set(`${pin.personId}\u0000${refOf(pin.key).sourceId}`, pin.key);
  for (const pin of pins) {
    settled.add(pin.key);
    const account = refOf(pin.key);
    const current = owner.get(pin.key);
    if (!exists(pin.personId)) {
      review({
        accounts: [account],
        candidates: current === undefined ? [] : [current],
        reasons: [
          {
            code: "unknown-person",
            message: `${pin.by} linked ${show(account)} to person "${pin.personId}", who does not exist`,
          },
        ],
        evidence: [],
      });
      continue;
    }
    const winner = latestPin.get(`${pin.personId}\u0000${account.sourceId}`)!;
    if (winner !== pin.key) {
      if (current === pin.personId) unlink(pin.key, "displaced", decided.get(winner)!.pin!.by);
      const kept = owner.get(pin.key);
      review({
        accounts: [account],
        candidates: kept === undefined ? [pin.personId] : [pin.personId, kept],
        reasons: [
          {
            code: "manual-conflict",
            message: `${show(account)} was linked to "${pin.personId}" by ${pin.by}, but a later decision linked ${show(refOf(winner))} of ${account.sourceId} to that person`,
          },
        ],
        evidence: [],
      });
      continue;
    }
    if (current === pin.personId) continue;
    const taken = accountIn(pin.personId, account.sourceId);
    if (taken !== undefined) unlink(accountKey(taken), "displaced", pin.by);
    if (current !== undefined) unlink(pin.key, "moved", pin.by);
    link(pin.key, pin.personId, "manual", { by: pin.by });
  }

  // Unlinked accounts: listed, linked to nobody, not decided by an admin.
  // (A first sync links nothing yet: every listed account is free, and `listed` already is their set.)
  const nothingTaken = owner.size === 0 && settled.size === 0;
  const free = nothingTaken ? [...listed] : [...listed].filter((key) => !owner.has(key) && !settled.has(key));
  const freeSet = nothingTaken ? listed : new Set(free);
  const isFree = (key: string) => freeSet.has(key);
  // Free accounts are the ones that get linked: their refs keep the snapshots' own subject strings.
  if (free.length > 0)
    for (const snapshot of snapshots.values())
      keysOf.get(snapshot.sourceId)!.forEach((key, i) => {
        if ((nothingTaken || isFree(key)) && !refs.has(key))
          refs.set(key, { sourceId: snapshot.sourceId, subject: snapshot.people[i]!.subject });
      });

  // Rule keys: for each rule and normalised value, the accounts (of at least two sources) that have it.
  // Only values an unlinked account has matter (linked accounts keep their person), so those are
  // collected first and linked accounts join them; with nothing unlinked there is nothing to match.
  const groups: Group[] = [];
  const groupsOf = new Map<string, number[]>();
  config.rules.forEach((rule, ruleIndex) => {
    if (free.length === 0) return;
    const kind = compareKindOf(rule);
    const byValue = new Map<string, { members: string[]; source: string; shared: boolean }>();
    for (const pass of ["unlinked", "linked"] as const)
      for (const term of rule.match) {
        if (pass === "linked" && owner.size === 0) continue;
        const snapshot = snapshots.get(term.source);
        if (snapshot === undefined) continue;
        const keys = keysOf.get(term.source)!;
        snapshot.people.forEach((person, i) => {
          const key = keys[i]!;
          if (pass === "unlinked" ? !isFree(key) : !owner.has(key)) return;
          for (const value of matchKeys(person, term, kind)) {
            const entry = byValue.get(value);
            if (entry === undefined) {
              if (pass === "unlinked")
                byValue.set(value, { members: [key], source: term.source, shared: false });
            } else {
              entry.members.push(key);
              if (entry.source !== term.source) entry.shared = true;
            }
          }
        });
      }
    // Group order follows the snapshots; everything that depends on it breaks ties by rule and value.
    for (const [value, entry] of byValue) {
      if (!entry.shared) continue;
      const index = groups.length;
      // Default sort: UTF-16 code units, the order of compareStrings.
      groups.push({ rule: rule.id, ruleIndex, value, members: entry.members.sort() });
      for (const member of entry.members) {
        const list = groupsOf.get(member);
        if (list === undefined) groupsOf.set(member, [index]);
        else if (list[list.length - 1] !== index) list.push(index);
      }
    }
  });

  // Unlinked accounts, grouped by what their rules connect them to (union-find over their positions in
  // a stable order: the primary source first, so its account founds a new person; then by account).
  // (The default sort compares UTF-16 code units, as compareStrings does, without a call per comparison.)
  const firsts: string[] = [];
  const rest: string[] = [];
  // A key starts with its source id and a NUL, which no source id contains.
  const primaryPrefix = primary === undefined ? undefined : `${primary}\u0000`;
  for (const key of free)
    (primaryPrefix !== undefined && key.startsWith(primaryPrefix) ? firsts : rest).push(key);
  const ordered = firsts.sort().concat(rest.sort());
  const position = new Map<string, number>();
  ordered.forEach((key, i) => position.set(key, i));
  const parent = new Int32Array(ordered.length);
  for (let i = 0; i < parent.length; i++) parent[i] = i;
  const find = (i: number): number => {
    let root = i;
    while (parent[root] !== root) root = parent[root]!;
    while (parent[i] !== root) {
      const next = parent[i]!;
      parent[i] = root;
      i = next;
    }
    return root;
  };
  for (const group of groups) {
    let first: number | undefined;
    for (const member of group.members) {
      const at = position.get(member);
      if (at === undefined) continue;
      if (first === undefined) first = find(at);
      else {
        // The smaller position stays the root, so a component's root is its first member.
        const root = find(at);
        if (root < first) {
          parent[first] = root;
          first = root;
        } else if (root > first) parent[root] = first;
      }
    }
  }
  // Walking in order, each component appears at its first member and collects the rest in order.
  const components = new Map<number, string[]>();
  ordered.forEach((key, i) => {
    const root = find(i);
    const list = components.get(root);
    if (list === undefined) components.set(root, [key]);
    else list.push(key);
  });
  const sortedComponents = [...components.values()];

  // Sources that were not read fully hide linked accounts a new account might belong to.
  const hidden = new Map<string, number>();
  const conclusive = new Map<string, boolean>();
  for (const key of free.length === 0 ? [] : owner.keys()) {
    const { sourceId } = refOf(key);
    let complete = conclusive.get(sourceId);
    if (complete === undefined) {
      const snapshot = snapshots.get(sourceId);
      complete = snapshot !== undefined && isProvenComplete(snapshot);
      conclusive.set(sourceId, complete);
    }
    if (!complete && !listed.has(key)) hidden.set(sourceId, (hidden.get(sourceId) ?? 0) + 1);
  }
  const partners = new Map<string, Set<string>>();
  for (const rule of config.rules)
    for (const term of rule.match) {
      const set = partners.get(term.source) ?? new Set<string>();
      for (const other of rule.match) if (other.source !== term.source) set.add(other.source);
      partners.set(term.source, set);
    }

  // Linked accounts in each rule group (computed once per group: a common value can be shared by many).
  type LinkedMember = { key: string; sourceId: string; personId: string };
  const NOBODY_LINKED: LinkedMember[] = [];
  const linkedCache = new Map<number, LinkedMember[]>();
  const linkedIn = (index: number) => {
    let list = linkedCache.get(index);
    if (list === undefined) {
      list = NOBODY_LINKED;
      for (const key of groups[index]!.members) {
        const personId = owner.get(key);
        if (personId === undefined) continue;
        if (list === NOBODY_LINKED) list = [];
        list.push({ key, sourceId: refOf(key).sourceId, personId });
      }
      linkedCache.set(index, list);
    }
    return list;
  };

  interface Plan {
    members: string[];
    personId?: string;
    evidence: MatchEvidence[];
  }
  /**
   * A component no rule ties to a linked account, one account per source, no admin decision: it founds a
   * new person with nothing to review. (Its evidence would only feed reviews and links to existing people,
   * so it is not gathered.) Most of a first sync is like this.
   */
  const foundsPlainly = (members: readonly string[]): boolean => {
    for (let i = 0; i < members.length; i++) {
      const member = members[i]!;
      if (decided.has(member)) return false;
      // (With nobody linked yet, no rule group holds a linked account.)
      if (owner.size > 0)
        for (const index of groupsOf.get(member) ?? []) if (linkedIn(index).length > 0) return false;
      const { sourceId } = refOf(member);
      for (let j = 0; j < i; j++) if (refOf(members[j]!).sourceId === sourceId) return false;
    }
    return true;
  };
  const plans: Plan[] = [];
  for (const members of sortedComponents) {
    if (members.length <= SMALL && foundsPlainly(members)) {
      plans.push({ members, evidence: [] });
      continue;
    }
    const reasons: ReviewReason[] = [];
    const evidence: MatchEvidence[] = [];
    const candidates = new Set<string>();
    const forbiddenBy = new Map<string, string>();
    if (members.length === 1 && !groupsOf.has(members[0]!)) {
      plans.push({ members, evidence: [] });
      continue;
    }
    const inComponent = new Set(members);
    for (const member of members) {
      const account = refOf(member);
      const forbidden = decided.get(member)?.forbidden ?? NOTHING_FORBIDDEN;
      for (const [p] of forbidden) forbiddenBy.set(p, member);
      const byRule = new Map<string, Set<string>>();
      for (const index of groupsOf.get(member) ?? []) {
        const group = groups[index]!;
        // Only rules that find someone matter below (several candidates), so the set is made on demand.
        let found = byRule.get(group.rule);
        for (const fixed of linkedIn(index)) {
          if (fixed.sourceId === account.sourceId || forbidden.has(fixed.personId)) continue;
          if (found === undefined) byRule.set(group.rule, (found = new Set<string>()));
          if (found.has(fixed.personId)) continue;
          found.add(fixed.personId);
          candidates.add(fixed.personId);
          if (found.size <= EVIDENCE_PER_RULE)
            evidence.push({ rule: group.rule, account, matched: refOf(fixed.key), value: group.value });
        }
        // One match inside the component per rule value, so a review shows what holds the accounts together.
        const peer = group.members.find(
          (m) => m !== member && inComponent.has(m) && refOf(m).sourceId !== account.sourceId,
        );
        if (peer !== undefined)
          evidence.push({ rule: group.rule, account, matched: refOf(peer), value: group.value });
      }
      for (const [rule, found] of byRule)
        if (found.size > 1)
          reasons.push({
            code: "several-candidates",
            message: `rule ${rule} matches ${show(account)} to ${found.size} people: ${someIds(found)}`,
          });
    }
    if (candidates.size > 1 && !reasons.some((r) => r.code === "several-candidates"))
      reasons.push({
        code: "rules-disagree",
        message: `the rules link ${members.map((m) => show(refOf(m))).join(", ")} to different people: ${someIds(candidates)}`,
      });
    for (const p of candidates)
      if (forbiddenBy.has(p))
        reasons.push({
          code: "unlinked-by-admin",
          message: `the rules point to "${p}", whom an admin unlinked ${show(refOf(forbiddenBy.get(p)!))} from`,
        });
    const bySource = new Map<string, string[]>();
    for (const member of members) {
      const { sourceId } = refOf(member);
      const same = bySource.get(sourceId);
      if (same === undefined) bySource.set(sourceId, [member]);
      else same.push(member);
    }
    for (const [sourceId, same] of bySource)
      if (same.length > 1)
        reasons.push({
          code: "same-source-twice",
          message: `${same.length} accounts of ${sourceId} (${same.map((m) => refOf(m).subject).join(", ")}) match the same person`,
        });
    if (candidates.size === 1) {
      const personId = [...candidates][0]!;
      for (const [sourceId, same] of bySource) {
        const taken = accountIn(personId, sourceId);
        if (taken !== undefined)
          reasons.push({
            code: "source-taken",
            message: `the rules link ${show(refOf(same[0]!))} to "${personId}", who already has ${show(taken)}`,
          });
      }
    }
    if (reasons.length > 0) {
      review({ accounts: members.map(refOf), candidates: [...candidates], reasons, evidence });
      continue;
    }
    plans.push({
      members,
      ...(candidates.size === 1 ? { personId: [...candidates][0]! } : {}),
      evidence,
    });
  }

  // Separate groups that would give one person two accounts of one source.
  const claims = new Map<string, Plan[]>();
  for (const plan of plans)
    if (plan.personId !== undefined) claims.set(plan.personId, [...(claims.get(plan.personId) ?? []), plan]);
  const rejected = new Set<Plan>();
  for (const [personId, claiming] of claims) {
    if (claiming.length < 2) continue;
    const sources = new Map<string, Plan[]>();
    for (const plan of claiming)
      for (const member of plan.members) {
        const { sourceId } = refOf(member);
        sources.set(sourceId, [...(sources.get(sourceId) ?? []), plan]);
      }
    for (const [sourceId, clashing] of sources) {
      if (clashing.length < 2) continue;
      const accounts = clashing.flatMap((p) => p.members.filter((m) => refOf(m).sourceId === sourceId));
      for (const plan of clashing) {
        if (rejected.has(plan)) continue;
        rejected.add(plan);
        review({
          accounts: plan.members.map(refOf),
          candidates: [personId],
          reasons: [
            {
              code: "same-source-twice",
              message: `${accounts.length} accounts of ${sourceId} (${accounts.map((m) => refOf(m).subject).join(", ")}) match "${personId}"`,
            },
          ],
          evidence: plan.evidence,
        });
      }
    }
  }

  // Apply: join the one candidate, or found a new person (unless a partially read source may hide theirs).
  const pending: PendingAccount[] = [];
  for (const plan of plans) {
    if (rejected.has(plan)) continue;
    let personId = plan.personId;
    let founder: string | undefined;
    if (personId === undefined) {
      const blocking =
        hidden.size === 0
          ? undefined
          : plan.members
              .flatMap((m) => [...(partners.get(refOf(m).sourceId) ?? [])])
              .filter((s) => (hidden.get(s) ?? 0) > 0)
              .sort(compareStrings)[0];
      if (blocking !== undefined) {
        for (const member of plan.members) {
          pending.push({
            account: refOf(member),
            reason: `${blocking} was not read completely and ${hidden.get(blocking)} of its linked accounts were not listed; one of them may be this person's`,
          });
          heldAccounts.add(member);
        }
        continue;
      }
      personId = input.newId();
      if (exists(personId)) throw new TypeError(`newId() returned "${personId}", which is already in use`);
      changed.set(personId, new Map());
      founder = plan.members[0]!;
      changes.push({ kind: "person-created", personId, account: refOf(founder) });
    }
    for (const [member, how] of spanningOrder(
      plan,
      founder,
      groups,
      groupsOf,
      owner,
      personId,
      rank,
      refOf,
    )) {
      if (how === undefined) link(member, personId, "created", {});
      else link(member, personId, how.rule, { evidence: how });
    }
  }

  return {
    // Default sort: UTF-16 code units, the order of compareStrings.
    people: [...new Set([...stored.keys(), ...changed.keys()])].sort().map((id) => {
      const accounts = changed.get(id);
      const person = stored.get(id);
      if (accounts === undefined && person !== undefined && isSorted(person.accounts)) return person;
      return { id, accounts: [...(accounts?.values() ?? person!.accounts)].sort(byAccount) };
    }),
    reviewQueue: reviews.sort((a, b) => compareStrings(a.id, b.id)),
    changes,
    held: {
      personIds: [...heldPeople].sort(compareStrings),
      accounts: [...heldAccounts].sort(compareStrings).map(refOf),
    },
    pending,
  };
}

/**
 * The members of a group in the order they are reached from the person (or the founder), each with the
 * match that reached it, so every link records the rule that actually connected it.
 */
function spanningOrder(
  plan: { members: string[]; evidence: MatchEvidence[] },
  founder: string | undefined,
  groups: readonly Group[],
  groupsOf: ReadonlyMap<string, number[]>,
  owner: ReadonlyMap<string, string>,
  personId: string,
  rank: ReadonlyMap<string, number>,
  refOf: (key: string) => AccountRef,
): [string, MatchEvidence | undefined][] {
  if (founder !== undefined && plan.members.length === 1) return [[founder, undefined]];
  // A person has a handful of accounts: a linear search beats building a set for each.
  const inPlan = plan.members.length > SMALL ? new Set(plan.members) : undefined;
  const reached = new Map<string, MatchEvidence | undefined>();
  const byRuleAndValue = (a: number, b: number) =>
    groups[a]!.ruleIndex - groups[b]!.ruleIndex || compareStrings(groups[a]!.value, groups[b]!.value);
  let frontier: string[] = [];
  if (founder !== undefined) {
    reached.set(founder, undefined);
    frontier = [founder];
  } else {
    // Members matching the person directly, by the first rule in config order.
    for (const member of plan.members) {
      const direct = plan.evidence
        .filter((e) => accountKey(e.account) === member && owner.get(accountKey(e.matched)) === personId)
        .sort((a, b) => (rank.get(a.rule) ?? 0) - (rank.get(b.rule) ?? 0))[0];
      if (direct !== undefined) {
        reached.set(member, direct);
        frontier.push(member);
      }
    }
  }
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const from of frontier) {
      const fromRef = refOf(from);
      const own = groupsOf.get(from) ?? [];
      // Groups are numbered rule by rule, so an account's list is usually in order already.
      const indexes = own.every((index, i) => i === 0 || byRuleAndValue(own[i - 1]!, index) <= 0)
        ? own
        : [...own].sort(byRuleAndValue);
      for (const index of indexes) {
        const group = groups[index]!;
        for (const to of group.members) {
          if (to === from || reached.has(to)) continue;
          if (!(inPlan === undefined ? plan.members.includes(to) : inPlan.has(to))) continue;
          const toRef = refOf(to);
          if (toRef.sourceId === fromRef.sourceId) continue;
          reached.set(to, { rule: group.rule, account: toRef, matched: fromRef, value: group.value });
          next.push(to);
        }
      }
    }
    frontier = next;
  }
  return [...reached.entries()];
}
