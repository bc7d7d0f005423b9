/**
 * What the sign-in broker needs from the rest of idbridge, as interfaces, so the provider and the login
 * pages (src/broker/provider.ts, login.ts) and the people side (src/broker/people.ts) meet here.
 */
import type { Person } from "../identity/person.js";
import type { PersonFacts } from "../policy/facts.js";
import type { SignInIdentity } from "../sources/sign-in.js";

/** Why a proven sign-in identity does not become a signed-in person. */
export type ResolveFailureCode =
  /** No person has this account and no link rule finds one (and just-in-time creation is off). */
  | "NOT_PROVISIONED"
  /** The account or its person waits in the identity review queue. */
  | "IN_REVIEW"
  /** An admin marked the account as nobody we manage. */
  | "IGNORED"
  /** The person is disabled, locked or expired in one of their linked sources. */
  | "ACCOUNT_DISABLED"
  /** The person has left (departed) in one of their linked sources. */
  | "ACCOUNT_LEFT";

/** The outcome of resolving a sign-in identity to a person. */
export type ResolveOutcome =
  | {
      readonly ok: true;
      /** Person.id: the `sub` of every token. */
      readonly personId: string;
      /** How: an existing link, a link rule that linked it now, or a just-in-time new person. */
      readonly via: "link" | "rule" | "just-in-time";
    }
  | {
      readonly ok: false;
      readonly code: ResolveFailureCode;
      /** For the audit log: which source said what; English, no secrets. */
      readonly reason: string;
      /** The person, when one was found (a disabled or departed one). */
      readonly personId?: string;
    };

/** Whether a person may still use a session now, and why not. */
export type ActiveOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** SOURCE_UNAVAILABLE: a linked source could not be asked, and the check was strict. */
      readonly code: ResolveFailureCode | "SOURCE_UNAVAILABLE";
      /** For the audit log: which source said what; English, no secrets. */
      readonly reason: string;
    };

/** The claims of a person for one finance platform (ID token and userinfo). */
export interface PersonClaims {
  /** Display name. */
  readonly name?: string;
  /** Work email from a source that vouches for it. */
  readonly email?: string;
  /** Employee number. */
  readonly employee_no?: string;
  /** Department names (the org chart source's, main department first). */
  readonly departments: readonly string[];
  /** The platform's role names this person holds by policy (the target's `targetRole`s). */
  readonly roles: readonly string[];
}

/** A person with their directory facts from the kept snapshots (for the console's access rules). */
export interface PersonWithFacts {
  readonly person: Person;
  /** Their accounts' facts, as a policy `when` sees them. */
  readonly facts: PersonFacts;
  /** Display name, when a source gives one. */
  readonly name?: string;
}

/** People as sign-in sees them. */
export interface PersonDirectory {
  /**
   * Finds the person of a proven identity: persisted links first, then the configured link rules
   * (recording and auditing a new link), then just-in-time creation when enabled. Refuses a person who
   * is disabled, locked or departed in any linked source, asking those sources now where they can answer.
   */
  resolve(identity: SignInIdentity): Promise<ResolveOutcome>;
  /**
   * The claims of a person for a platform whose roles come from `targetId`'s policy (none when
   * undefined); null when the person is unknown or no longer active as of the last reads (their
   * session and refresh tokens then stop working).
   */
  claims(personId: string, targetId: string | undefined): Promise<PersonClaims | null>;
  /**
   * Whether a signed-in person is still active now: their linked directory accounts asked now, as at
   * sign-in, and the admins' link decisions. `strict`: a source that cannot be asked refuses
   * (SOURCE_UNAVAILABLE) instead of being judged by its kept snapshot. Optional: without it, callers
   * resolve one of the person's accounts again (src/broker/people.ts LiveChecks).
   */
  activeNow?(personId: string, options: { readonly strict: boolean }): Promise<ActiveOutcome>;
  /**
   * The person and their facts from the kept snapshots (as the sync judges them), or null when the
   * person is unknown. Optional: directories without kept snapshots give none.
   */
  facts?(personId: string): Promise<PersonWithFacts | null>;
}
