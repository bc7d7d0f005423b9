import { chainEvents, checkEvent } from "../audit/chain.js";
import { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import type { JsonObject } from "../domain/json.js";
import type { AccountRef, LinkDecision, ReviewItem } from "../identity/link.js";
import { loadKeys } from "../keys/keys.js";
import { openStore } from "../store/index.js";

/** What an admin decides about an account from the command line. */
export type DecisionRequest =
  | { kind: "link"; account: string; personId: string; by: string; comment?: string }
  | { kind: "unlink"; account: string; personId: string; by: string; comment?: string }
  | { kind: "ignore"; account: string; by: string; comment?: string };

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
    );
  }
  return { sourceId, subject };
}

const showAccount = (a: AccountRef): string => `${a.sourceId}:${a.subject}`;

/** `idbridge identities review`: the review queue as text for a person, or as JSON. */
export function formatReviewQueue(items: readonly ReviewItem[], format: "text" | "json"): string {
  if (format === "json") return `${JSON.stringify(items, null, 2)}\n`;
  if (items.length === 0) return "the review queue is empty\n";
  const lines = [`${items.length} item(s) waiting for review`];
  for (const item of items) {
    lines.push("", item.id);
    lines.push(`  accounts:   ${item.accounts.map(showAccount).join(", ")}`);
    lines.push(`  candidates: ${item.candidates.length > 0 ? item.candidates.join(", ") : "(none)"}`);
    for (const reason of item.reasons) lines.push(`  reason:     ${reason.code}: ${reason.message}`);
    for (const e of item.evidence) {
      lines.push(
        `  evidence:   ${e.rule}: ${showAccount(e.account)} = ${showAccount(e.matched)} (${JSON.stringify(e.value)})`,
      );
    }
  }
  lines.push(
    "",
    "resolve with: idbridge identities link ACCOUNT --to PERSON --by NAME | unlink ACCOUNT --from PERSON --by NAME | ignore ACCOUNT --by NAME",
  );
  return `${lines.join("\n")}\n`;
}

/** `idbridge identities review`: reads the queue as the last linking left it. */
export async function reviewQueue(config: Config, format: "text" | "json"): Promise<string> {
  const store = await openStore({ url: config.store.url, poolSize: 1 });
  try {
    return formatReviewQueue(await store.getReviewQueue(), format);
  } finally {
    await store.close();
  }
}

/**
 * `idbridge identities link|unlink|ignore`: checks the request against the stored people and the config,
 * and stores the decision with its audit entry in one transaction.
 */
export async function recordDecision(config: Config, request: DecisionRequest, now: Date): Promise<string> {
  const account = parseAccount(request.account);
  const by = request.by.trim();
  if (by === "") throw new AppError("INPUT_INVALID", "--by: the name of the admin deciding is required");
  const store = await openStore({ url: config.store.url, poolSize: 1 });
  try {
    const people = await store.listPeople();
    const knownSources = new Set([
      ...config.sources.map((s) => s.id),
      ...people.flatMap((p) => p.accounts.map((a) => a.sourceId)),
    ]);
    if (!knownSources.has(account.sourceId)) {
      throw new AppError(
        "INPUT_INVALID",
        `no source "${account.sourceId}" (configured: ${config.sources.map((s) => s.id).join(", ") || "none"}); ` +
          "give the account as SOURCE:SUBJECT",
      );
    }
    if (request.kind !== "ignore" && !people.some((p) => p.id === request.personId)) {
      throw new AppError(
        "INPUT_INVALID",
        `no person "${request.personId}" in the store (person ids look like p_…; see the candidates in idbridge identities review)`,
      );
    }
    const base = {
      account,
      by,
      at: now.toISOString(),
      ...(request.comment === undefined ? {} : { comment: request.comment }),
    };
    const decision: LinkDecision =
      request.kind === "ignore"
        ? { ...base, kind: "ignore" }
        : { ...base, kind: request.kind, personId: request.personId };
    const details: JsonObject = {
      account: showAccount(account),
      ...(request.kind === "ignore" ? {} : { personId: request.personId }),
      ...(request.comment === undefined ? {} : { comment: request.comment }),
    };

    const keys = await loadKeys(config.keys.dir);
    const audit = new AuditLog(store, keys.audit, {
      checkpointEvery: config.audit.checkpointEvery,
      checkpointIntervalMs: 0,
      now: () => now,
    });
    try {
      // The decision and its audit entry are stored together or not at all.
      const event = {
        actor: `cli:${by}`,
        action: AUDIT_ACTIONS[request.kind],
        subject: request.kind === "ignore" ? showAccount(account) : request.personId,
        details,
      };
      checkEvent(event);
      await store.addLinkDecision(decision, (head) => chainEvents(head, [event], now.toISOString()));
    } finally {
      // Signs a checkpoint over the new entry, as the server does when it stops.
      await audit.close();
    }

    const what =
      request.kind === "link"
        ? `${showAccount(account)} belongs to ${request.personId}`
        : request.kind === "unlink"
          ? `${showAccount(account)} does not belong to ${request.personId}`
          : `${showAccount(account)} is ignored (never linked, never reviewed)`;
    return `recorded (${request.kind}, by ${by}): ${what}\nit takes effect at the next sync's linking\n`;
  } finally {
    await store.close();
  }
}
