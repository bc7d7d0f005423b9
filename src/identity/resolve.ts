/**
 * The pure parts of resolving a sign-in identity to a Person (src/broker/people.ts does the I/O): an
 * admin's decision about the account, the link rules applied to one new account with the sync's own
 * {@link linkPeople}, the verdict on a person's account states, and a person's claims from the kept
 * snapshots. No store, no clock: everything comes in as input.
 */
import type { SignInIdentity, LiveStatus } from "../sources/sign-in.js";
import type { DirectorySnapshot, PersonStatus, SourcePerson } from "../sources/snapshot.js";
import { evaluatePolicy } from "../policy/evaluate.js";
import { buildPersonFacts, compareStrings, type AccountFacts, type DirectoryFacts } from "../policy/facts.js";
import type { Policy } from "../policy/schema.js";
import type { IdentityConfig } from "./config.js";
import { linkPeople, type AccountRef, type LinkChange, type LinkDecision } from "./link.js";
import type { LinkedAccount, Person } from "./person.js";

/** What the admins decided about one account, the last decision winning (as {@link linkPeople} reads them). */
export type AccountDecision =
  | { readonly kind: "ignore"; readonly by: string }
  | { readonly kind: "link"; readonly personId: string; readonly by: string };

/**
 * The decision that pins `account`, if any: the last `link` or `ignore` about it, unless a later `unlink`
 * from that same person lifted it. `decisions` oldest first.
 */
export function decisionFor(
  decisions: readonly LinkDecision[],
  account: AccountRef,
): AccountDecision | undefined {
  let pin: AccountDecision | undefined;
  for (const d of decisions) {
    if (d.account.sourceId !== account.sourceId || d.account.subject !== account.subject) continue;
    if (d.kind === "ignore") pin = { kind: "ignore", by: d.by };
    else if (d.kind === "link") pin = { kind: "link", personId: d.personId, by: d.by };
    else if (pin?.kind === "link" && pin.personId === d.personId) pin = undefined;
  }
  return pin;
}

/**
 * The people an admin unlinked `account` from and did not link it back to since (decisions oldest
 * first): a stored link to one of them is void, even before the next sync removes it.
 */
export function unlinkedFrom(decisions: readonly LinkDecision[], account: AccountRef): ReadonlySet<string> {
  const forbidden = new Set<string>();
  for (const d of decisions) {
    if (d.account.sourceId !== account.sourceId || d.account.subject !== account.subject) continue;
    if (d.kind === "unlink") forbidden.add(d.personId);
    else if (d.kind === "link") forbidden.delete(d.personId);
  }
  return forbidden;
}

/** Input of {@link linkSignInAccount}. */
export interface SignInLinkInput {
  /** The proven identity; its `person` holds only values the organisation vouches for. */
  readonly identity: SignInIdentity;
  /** The kept snapshot of each directory source (the identity's own source's is left out). */
  readonly snapshots: readonly DirectorySnapshot[];
  /** The `identity:` config section: the sync's link rules. */
  readonly config: IdentityConfig;
  /** The people as stored. */
  readonly existing: readonly Person[];
  /** Admins' decisions, oldest first. */
  readonly decisions: readonly LinkDecision[];
  /** Time recorded on a new link. */
  readonly now: Date;
  /** A new person id. */
  readonly newId: () => string;
  /** Whether an account no rule links may found a new person (`signIn.justInTime`). */
  readonly justInTime: boolean;
}

/** What the link rules make of a sign-in account nobody has yet. */
export type SignInLinkResult =
  | {
      /** A rule linked it to one existing person: save `person`, audit `changes`. */
      readonly kind: "linked";
      readonly person: Person;
      readonly changes: readonly LinkChange[];
    }
  | {
      /** Nobody matched and just-in-time creation is on: a new person founded by the account. */
      readonly kind: "created";
      readonly person: Person;
      readonly changes: readonly LinkChange[];
    }
  | {
      /** The rules gave no single answer (several candidates, a taken source…): an admin decides. */
      readonly kind: "review";
      readonly reason: string;
    }
  | {
      /** Nobody matched (and just-in-time creation is off or must wait). */
      readonly kind: "none";
      readonly reason: string;
    };

/** Source type recorded on the one-account snapshot of a sign-in identity. */
const SIGN_IN_SNAPSHOT_TYPE = "sign-in";

/**
 * Applies the link rules to a sign-in account no person has, exactly as the sync would: the kept snapshots
 * of the other sources and a snapshot of the identity's source that holds just this account go through
 * {@link linkPeople}. Email and mobile rules compare only sides marked `verified`, and emails only on the
 * rule's domains, so an address the person set themselves, or another organisation's, links nothing.
 *
 * Only this account's person comes back: other unlinked accounts the snapshots hold are the sync's to
 * link, except those a just-in-time person is founded together with (the sync would do the same).
 */
export function linkSignInAccount(input: SignInLinkInput): SignInLinkResult {
  const { identity } = input;
  const account: AccountRef = { sourceId: identity.sourceId, subject: identity.subject };
  const own: DirectorySnapshot = {
    sourceId: identity.sourceId,
    sourceType:
      input.snapshots.find((s) => s.sourceId === identity.sourceId)?.sourceType ?? SIGN_IN_SNAPSHOT_TYPE,
    mode: "full",
    startedAt: input.now.toISOString(),
    finishedAt: input.now.toISOString(),
    people: [{ ...identity.person, subject: identity.subject }],
    departments: [],
    groups: [],
    unavailableFields: [],
    // Not a read of the whole source: its other accounts are absent, not gone.
    completeness: {
      complete: false,
      reasons: [{ code: "ABORTED", message: `${identity.sourceId}: one sign-in account, not a read` }],
    },
    warnings: [],
  };
  const result = linkPeople({
    snapshots: [...input.snapshots.filter((s) => s.sourceId !== identity.sourceId), own],
    config: input.config,
    existing: input.existing,
    decisions: input.decisions,
    now: input.now,
    newId: input.newId,
  });
  const isOurs = (a: AccountRef) => a.sourceId === account.sourceId && a.subject === account.subject;

  const review = result.reviewQueue.find((item) => item.accounts.some(isOurs));
  if (review !== undefined)
    return { kind: "review", reason: review.reasons.map((r) => r.message).join("; ") };
  const pending = result.pending.find((p) => isOurs(p.account));
  if (pending !== undefined)
    return {
      kind: "none",
      reason: `no link rule matches ${show(account)} and no new person may be made yet: ${pending.reason}`,
    };

  const linked = result.changes.find(
    (c): c is Extract<LinkChange, { kind: "account-linked" }> =>
      c.kind === "account-linked" && isOurs(c.account),
  );
  if (linked === undefined)
    return { kind: "none", reason: `no link rule matches ${show(account)} to a person` };
  const created = result.changes.some((c) => c.kind === "person-created" && c.personId === linked.personId);
  if (!created) {
    // Joined an existing person: add just this account to the person as stored (other changes the
    // decisions or snapshots imply are the sync's to make).
    const stored = input.existing.find((p) => p.id === linked.personId)!;
    const added: LinkedAccount = { ...account, rule: linked.rule, linkedAt: input.now.toISOString() };
    return {
      kind: "linked",
      person: { id: stored.id, accounts: sortAccounts([...stored.accounts, added]) },
      changes: [linked],
    };
  }
  if (!input.justInTime)
    return {
      kind: "none",
      reason: `no link rule matches ${show(account)} to a person, and just-in-time creation is off`,
    };
  const person = result.people.find((p) => p.id === linked.personId)!;
  return {
    kind: "created",
    person,
    changes: result.changes.filter((c) => c.personId === person.id),
  };
}

/** One linked account's state: what its source says now, and what its kept snapshot said. */
export interface AccountState {
  /** The account. */
  readonly account: AccountRef;
  /** The source's answer now; undefined when the source was not asked (it cannot be, or is not wired). */
  readonly live?: LiveStatus;
  /**
   * What the kept snapshot says: a status, `absent` when a snapshot is kept but does not list the account,
   * undefined when no snapshot of the source is kept.
   */
  readonly kept?: PersonStatus | "absent";
  /** When the kept snapshot was taken (ISO 8601), for the reason. */
  readonly keptAt?: string;
}

/** Whether a person may sign in, by the states of their accounts. */
export type StatusVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: "ACCOUNT_DISABLED" | "ACCOUNT_LEFT"; readonly reason: string };

const DISABLED: ReadonlySet<string> = new Set(["disabled", "locked", "expired"]);

/**
 * Judges a person's accounts: the source's answer now wins; a source that could not answer
 * (`unavailable`) or was not asked is judged by its kept snapshot. Any account disabled, locked or
 * expired refuses the person (ACCOUNT_DISABLED); any that left, is not found by its source, or is absent
 * from the kept snapshot refuses them as departed (ACCOUNT_LEFT), which wins over disabled.
 */
export function judgeAccountStates(states: readonly AccountState[]): StatusVerdict {
  let disabled: string | undefined;
  const sorted = [...states].sort((a, b) => compareStrings(show(a.account), show(b.account)));
  for (const state of sorted) {
    const who = show(state.account);
    let status: string | undefined;
    let said: string;
    if (state.live !== undefined && state.live !== "unavailable") {
      status = state.live;
      said = `${state.account.sourceId} says now that ${who} is ${state.live}`;
    } else {
      status = state.kept;
      const fallback =
        state.live === "unavailable" ? `${state.account.sourceId} could not be asked now; ` : "";
      said = `${fallback}its snapshot of ${state.keptAt ?? "the last read"} says ${who} is ${
        state.kept === "absent" ? "not listed" : String(state.kept)
      }`;
    }
    if (status === "left" || status === "not-found" || status === "absent")
      return { ok: false, code: "ACCOUNT_LEFT", reason: said };
    if (status !== undefined && DISABLED.has(status)) disabled ??= said;
  }
  return disabled === undefined ? { ok: true } : { ok: false, code: "ACCOUNT_DISABLED", reason: disabled };
}

/** What {@link claimsOf} reads. */
export interface ClaimsInput {
  /** The person. */
  readonly person: Person;
  /** The kept snapshots, indexed (buildDirectoryFacts). */
  readonly directories: DirectoryFacts;
  /** The org chart source (`sync.orgChartSource` ?? `identity.primarySource`). */
  readonly orgChartSource?: string;
  /** The primary source (`identity.primarySource`): the profile's second choice. */
  readonly primarySource?: string;
  /** The policy of the client's target, if it has one. */
  readonly policy?: Policy;
  /**
   * When each kept snapshot's read started (ISO 8601), by source id: an account linked after that (a
   * just-in-time sign-in of a new hire) is new to the snapshot, not removed from it.
   */
  readonly readStarted: ReadonlyMap<string, string>;
}

/** A person's claims from the kept snapshots. */
export interface Claims {
  readonly name?: string;
  readonly email?: string;
  readonly employee_no?: string;
  readonly departments: readonly string[];
  readonly roles: readonly string[];
}

/**
 * The claims of a person as of the kept snapshots, or null when they are not active there: an account
 * that is not active, or absent from its source's snapshot (removed), ends their tokens. Profile values
 * come from the org chart source's account, then the primary source's, then the others'; departments are
 * the org chart source's, main first; roles are the target role names of the grants the policy gives
 * (withheld grants are not held), by the same evaluation the sync plans with.
 */
export function claimsOf(input: ClaimsInput): Claims | null {
  const facts = buildPersonFacts(input.person, input.directories);
  if (facts.accounts.some((a) => a.person.status !== "active")) return null;
  for (const m of facts.missing) {
    const started = input.readStarted.get(m.sourceId);
    if (started === undefined) continue;
    const linkedAt = input.person.accounts.find(
      (a) => a.sourceId === m.sourceId && a.subject === m.subject,
    )?.linkedAt;
    if (linkedAt === undefined || linkedAt <= started) return null;
  }
  const order = [input.orgChartSource, input.primarySource].filter((s) => s !== undefined);
  const profile: AccountFacts[] = [
    ...order.flatMap((id) => facts.accounts.filter((a) => a.sourceId === id)),
    ...facts.accounts.filter((a) => !order.includes(a.sourceId)),
  ];
  const first = <K extends keyof SourcePerson>(key: K) =>
    profile.map((a) => a.person[key]).find((v) => v !== undefined && v !== "");
  const org = facts.accounts.find((a) => a.sourceId === input.orgChartSource);
  const departments = org
    ? [...org.person.departments]
        .sort((a, b) => Number(b.main) - Number(a.main))
        .map((m) => org.directory.departments.get(m.departmentId)?.name)
        .filter((n): n is string => n !== undefined)
    : [];
  const roles =
    input.policy === undefined
      ? []
      : [...new Set(evaluatePolicy(input.policy, facts, { explain: false }).grants.map((g) => g.targetRole))];
  const name = first("name") as string | undefined;
  const email = first("email") as string | undefined;
  const employeeNo = first("employeeNo") as string | undefined;
  return {
    ...(name !== undefined ? { name } : {}),
    ...(email !== undefined ? { email } : {}),
    ...(employeeNo !== undefined ? { employee_no: employeeNo } : {}),
    departments: [...new Set(departments)],
    roles,
  };
}

const show = (a: AccountRef): string => `${a.sourceId}:${a.subject}`;

function sortAccounts(accounts: readonly LinkedAccount[]): LinkedAccount[] {
  return [...accounts].sort(
    (a, b) => compareStrings(a.sourceId, b.sourceId) || compareStrings(a.subject, b.subject),
  );
}
