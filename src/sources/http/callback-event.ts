/** What a vendor's contact-change callback says changed, reduced to ids (the vendors send nothing more). */
export interface CallbackEvent {
  /**
   * `users` or `departments`: re-read those; `check`: the vendor is verifying the URL; `other`: an event
   * that needs no re-read (or one of a kind this bridge does not act on), answered and dropped.
   */
  readonly kind: "users" | "departments" | "check" | "other";
  /** The vendor's event name (`user_modify_org`, `update_user`, `check_url`, …). */
  readonly eventType: string;
  /** User ids the event names (old and new id on a WeCom rename). */
  readonly userIds: readonly string[];
  /** Department ids the event names, as strings. */
  readonly departmentIds: readonly string[];
}
