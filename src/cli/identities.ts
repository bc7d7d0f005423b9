import { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { AppError } from "../domain/errors.js";
import { parseAccount, recordLinkDecision, showAccount } from "../identity/decisions.js";
import type { ReviewItem } from "../identity/link.js";
import { loadKeys } from "../keys/keys.js";
import { openStore } from "../store/index.js";

/** What an admin decides about an account from the command line. */
export type DecisionRequest =
  | { kind: "link"; account: string; personId: string; by: string; comment?: string }
  | { kind: "unlink"; account: string; personId: string; by: string; comment?: string }
  | { kind: "ignore"; account: string; by: string; comment?: string };

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
 * and stores the decision with its audit entry in one transaction (src/identity/decisions.ts).
 */
export async function recordDecision(config: Config, request: DecisionRequest, now: Date): Promise<string> {
  const account = parseAccount(request.account);
  const by = request.by.trim();
  if (by === "") throw new AppError("INPUT_INVALID", "--by: the name of the admin deciding is required");
  const store = await openStore({ url: config.store.url, poolSize: 1 });
  try {
    const keys = await loadKeys(config.keys.dir);
    const audit = new AuditLog(store, keys.audit, {
      checkpointEvery: config.audit.checkpointEvery,
      checkpointIntervalMs: 0,
      now: () => now,
    });
    try {
      await recordLinkDecision(store, request, {
        actor: `cli:${by}`,
        by,
        ...(request.comment === undefined ? {} : { comment: request.comment }),
        now,
        sourceIds: config.sources.map((s) => s.id),
      });
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
