/**
 * Who holds which role in which target, as the audit log tells it: a replay of `role.granted` and
 * `role.revoked` entries, with `target.user.disabled` suspending whatever the account still holds there
 * (a disabled account cannot use its roles) until `target.user.enabled`. Pure.
 *
 * For each (target, person, role, scope) the entry with the highest seq wins, and for each (target,
 * person) the latest disable or enable: the result does not depend on the order entries are fed in, so a
 * caller can page through the log newest first. A holding is keyed by the scope's label as recorded.
 */
import type { RoleHolder } from "../admin/contracts.js";
import type { JsonValue } from "../domain/json.js";
import type { AuditRecord } from "../store/store.js";

/** The actions that change who holds what (src/sync/apply.ts ACTIONS). */
export const HOLDING_ACTIONS: readonly string[] = [
  "role.granted",
  "role.revoked",
  "target.user.disabled",
  "target.user.enabled",
];

/** What a replay looks at. */
export interface ReplayOptions {
  /** Only entries recorded at or before this ISO time: holdings at that moment. */
  readonly at?: string;
  /** Only this target. */
  readonly target?: string;
  /** Only this role (policy key). */
  readonly role?: string;
}

const text = (value: JsonValue | undefined): string | undefined =>
  typeof value === "string" ? value : undefined;

/** Accumulates holding entries in any order; {@link holders} gives the result. */
export class HoldingsReplay {
  private readonly roles = new Map<string, AuditRecord>();
  private readonly accounts = new Map<string, AuditRecord>();
  private readonly atMs: number | null;

  constructor(private readonly options: ReplayOptions = {}) {
    this.atMs = options.at === undefined ? null : Date.parse(options.at);
  }

  /** Takes one entry into account; entries that do not change holdings are ignored. */
  add(entry: AuditRecord): void {
    const { target, subject } = entry;
    if (target === null || subject === null) return;
    if (this.options.target !== undefined && target !== this.options.target) return;
    if (this.atMs !== null && Date.parse(entry.time) > this.atMs) return;
    if (entry.action === "role.granted" || entry.action === "role.revoked") {
      const role = text(entry.details.role);
      if (role === undefined || (this.options.role !== undefined && role !== this.options.role)) return;
      latest(this.roles, JSON.stringify([target, subject, role, text(entry.details.scope) ?? ""]), entry);
    } else if (entry.action === "target.user.disabled" || entry.action === "target.user.enabled") {
      latest(this.accounts, JSON.stringify([target, subject]), entry);
    }
  }

  /** The holdings in force, sorted by target, role, person and scope. */
  holders(): RoleHolder[] {
    const result: RoleHolder[] = [];
    for (const entry of this.roles.values()) {
      if (entry.action !== "role.granted") continue;
      const account = this.accounts.get(JSON.stringify([entry.target, entry.subject]));
      if (account?.action === "target.user.disabled") continue;
      result.push(holderOf(entry));
    }
    return result.sort(
      (a, b) =>
        compare(a.target, b.target) ||
        compare(a.role, b.role) ||
        compare(a.personId, b.personId) ||
        compare(a.scope ?? "", b.scope ?? ""),
    );
  }
}

/** The holdings in force after `entries` (any order), as {@link HoldingsReplay} computes them. */
export function replayHoldings(entries: Iterable<AuditRecord>, options: ReplayOptions = {}): RoleHolder[] {
  const replay = new HoldingsReplay(options);
  for (const entry of entries) replay.add(entry);
  return replay.holders();
}

/** The holder a `role.granted` entry makes. */
export function holderOf(grant: AuditRecord): RoleHolder {
  const role = text(grant.details.role) ?? "";
  const scope = text(grant.details.scope);
  return {
    personId: grant.subject ?? "",
    name: text(grant.details.name) ?? grant.subject ?? "",
    target: grant.target ?? "",
    role,
    targetRole: text(grant.details.targetRole) ?? role,
    ...(scope !== undefined && scope !== "" ? { scope } : {}),
    since: grant.time,
    grantSeq: grant.seq,
    sensitive: grant.details.sensitive === true,
  };
}

function latest(map: Map<string, AuditRecord>, key: string, entry: AuditRecord): void {
  const seen = map.get(key);
  if (seen === undefined || seen.seq < entry.seq) map.set(key, entry);
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
