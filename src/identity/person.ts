/**
 * A Person is one human across sources: our own opaque, stable id and the source accounts linked to it.
 * Sign-in (tokens' `sub`) and sync (target links) both key on `Person.id`, never on a source's id.
 */

/** One source account linked to a person, with how and when it was linked. */
export interface LinkedAccount {
  /** Source id from the config. */
  readonly sourceId: string;
  /** The account's stable subject in that source (see SourcePerson.subject). */
  readonly subject: string;
  /** The link rule that made the link, `created` for the account that founded the person, or `manual` for an admin's decision. */
  readonly rule: string;
  /** When the link was made (ISO 8601). */
  readonly linkedAt: string;
}

/** One human. */
export interface Person {
  /** Ours, opaque and stable (survives renames, OU moves and a source being replaced). */
  readonly id: string;
  /** Linked source accounts, at most one per source. */
  readonly accounts: readonly LinkedAccount[];
}
