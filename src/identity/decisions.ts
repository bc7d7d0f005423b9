/**
 * Recording an admin's link decision (link, unlink, ignore an account): checked against the config and
 * the stored people, then stored with its audit entry in one transaction. `idbridge identities` and the
 * console's review queue both call {@link recordLinkDecision}, so a decision means the same and is
 * audited the same whichever door it came through; only the actor differs (`cli:<name>`, `person:<id>`).
 */
import { chainEvents, checkEvent } from "../audit/chain.js";
import { AppError } from "../domain/errors.js";
import type { JsonObject } from "../domain/json.js";
import type { Store } from "../store/store.js";
import type { AccountRef, LinkDecision } from "./link.js";

/** What an admin decides about one account (`sourceId:subject`). */
export type LinkDecisionRequest =
  | { readonly kind: "link" | "unlink"; readonly account: string; readonly personId: string }
  | { readonly kind: "ignore"; readonly account: string };

/** Who decides, when and why. */
export interface LinkDecisionContext {
  /** Audit actor (`cli:<name>`, `person:<id>`, `client:<id>`). */
  readonly actor: string;
  /** The admin's name, kept on the decision for messages. */
  readonly by: string;
  /** Why, in the admin's words. */
  readonly comment?: string;
  /** When. */
  readonly now: Date;
  /** Configured source ids: an account of another source is refused unless a stored person has one. */
  readonly sourceIds: readonly string[];
}

const AUDIT_ACTIONS = { link: "identity.linked", unlink: "identity.unlinked", ignore: "identity.ignored" };

/** Parses `sourceId:subject`; the subject may itself contain colons (source ids never do). */
export function parseAccount(text: string): AccountRef {
  const i = text.indexOf(":");
  const sourceId = i < 0 ? "" : text.slice(0, i);
  const subject = i < 0 ? "" : text.slice(i + 1);
  if (sourceId.trim() === "" || subject.trim() === "") {
    throw new AppError(
      "INPUT_INVALID",
      `account "${text}" is not of the form SOURCE:SUBJECT (e.g. wecom-hq:zhangwei — the source id from the config and the account's subject)`,
      { expose: true },
    );
  }
  return { sourceId, subject };
}

/** `sourceId:subject`. */
export const showAccount = (a: AccountRef): string => `${a.sourceId}:${a.subject}`;

/**
 * Checks the request (the account's source is known, the person exists) and stores the decision with its
 * audit entry in one transaction. It takes effect at the next sync's linking. Returns the decision.
 */
export async function recordLinkDecision(
  store: Pick<Store, "listPeople" | "getPerson" | "addLinkDecision">,
  request: LinkDecisionRequest,
  context: LinkDecisionContext,
): Promise<LinkDecision> {
  const account = parseAccount(request.account);
  const by = context.by.trim();
  if (by === "")
    throw new AppError("INPUT_INVALID", "the name of the admin deciding is required", { expose: true });
  // A source no longer configured is still known while a stored person has an account of it.
  if (
    !context.sourceIds.includes(account.sourceId) &&
    !(await store.listPeople()).some((p) => p.accounts.some((a) => a.sourceId === account.sourceId))
  )
    throw new AppError(
      "INPUT_INVALID",
      `no source "${account.sourceId}" (configured: ${context.sourceIds.join(", ") || "none"}); ` +
        "give the account as SOURCE:SUBJECT",
      { expose: true },
    );
  if (request.kind !== "ignore" && (await store.getPerson(request.personId)) === null)
    throw new AppError(
      "INPUT_INVALID",
      `no person "${request.personId}" in the store (person ids look like p_…; see the candidates in the review queue)`,
      { expose: true },
    );
  const comment = context.comment;
  const base = {
    account,
    by,
    at: context.now.toISOString(),
    ...(comment === undefined ? {} : { comment }),
  };
  const decision: LinkDecision =
    request.kind === "ignore"
      ? { ...base, kind: "ignore" }
      : { ...base, kind: request.kind, personId: request.personId };
  const details: JsonObject = {
    account: showAccount(account),
    ...(request.kind === "ignore" ? {} : { personId: request.personId }),
    ...(comment === undefined ? {} : { comment }),
    ...(context.actor.startsWith("cli:") ? {} : { by }),
  };
  const event = {
    actor: context.actor,
    action: AUDIT_ACTIONS[request.kind],
    subject: request.kind === "ignore" ? showAccount(account) : request.personId,
    details,
  };
  checkEvent(event);
  // The decision and its audit entry are stored together or not at all.
  await store.addLinkDecision(decision, (head) => chainEvents(head, [event], context.now.toISOString()));
  return decision;
}
