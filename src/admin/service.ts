/**
 * The {@link AdminService} both doors use (the admin API and the console): the sync half and the audit
 * half composed, each checking the caller's permission itself.
 */
import type { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import type { KeySet } from "../keys/keys.js";
import type { Policy } from "../policy/schema.js";
import type { Store } from "../store/store.js";
import type { SyncService } from "../sync/service.js";
import { AuditOperations } from "./audit-operations.js";
import type { AdminService } from "./contracts.js";
import { SyncOperations } from "./sync-operations.js";

/** What {@link createAdminService} is built from. */
export interface AdminServiceOptions {
  /** The configuration. */
  readonly config: Config;
  /** The store. */
  readonly store: Store;
  /** Plans are decided and applied through it. */
  readonly sync: SyncService;
  /** Decisions and exports are audited here. */
  readonly audit: AuditLog;
  /** The audit key (export heads) and the public JWKS. */
  readonly keys: Pick<KeySet, "audit" | "jwks">;
  /** The policies (sensitive roles); default: read from `config.policiesDir` when needed. */
  readonly policies?: () => readonly Policy[];
  /** Clock, pinned in tests. */
  readonly now?: () => Date;
}

/** The admin service over the sync and the audit log. */
export function createAdminService(options: AdminServiceOptions): AdminService {
  const { config, store, sync, audit, keys } = options;
  const clock = options.now === undefined ? {} : { now: options.now };
  const syncOps = new SyncOperations({ config, store, sync, audit, ...clock });
  const auditOps = new AuditOperations({
    config,
    store,
    audit,
    keys,
    ...clock,
    ...(options.policies === undefined ? {} : { policies: options.policies }),
  });
  return {
    listPlans: (caller, query) => syncOps.listPlans(caller, query),
    getPlan: (caller, id, query) => syncOps.getPlan(caller, id, query),
    decidePlan: (caller, id, input) => syncOps.decidePlan(caller, id, input),
    applyPlan: (caller, id) => syncOps.applyPlan(caller, id),
    listSyncRuns: (caller, query) => syncOps.listSyncRuns(caller, query),
    reviewQueue: (caller) => syncOps.reviewQueue(caller),
    decideLink: (caller, input) => syncOps.decideLink(caller, input),
    searchPeople: (caller, query) => syncOps.searchPeople(caller, query),
    peopleNames: (caller, ids) => syncOps.peopleNames(caller, ids),
    getPerson: (caller, id) => syncOps.getPerson(caller, id),
    searchAudit: (caller, query) => auditOps.searchAudit(caller, query),
    exportAudit: (caller, filter, format) => auditOps.exportAudit(caller, filter, format),
    auditJwks: (caller) => auditOps.auditJwks(caller),
    roleHolders: (caller, target, role, at) => auditOps.roleHolders(caller, target, role, at),
    explainHolding: (caller, personId, target, role, at) =>
      auditOps.explainHolding(caller, personId, target, role, at),
    accessReview: (caller, target) => auditOps.accessReview(caller, target),
    accessReviewCsv: (caller, target) => auditOps.accessReviewCsv(caller, target),
  };
}
