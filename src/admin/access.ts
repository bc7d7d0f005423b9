/**
 * Who may do what in the console and the admin API. Three roles, given in the config (`console.access`
 * for people, `console.apiClients` for automation); the server checks a permission on every request —
 * hiding a button is never the check. Pure.
 */
import { AppError } from "../domain/errors.js";

/** The roles of the console and the admin API. */
export const ADMIN_ROLES = ["security-admin", "auditor", "viewer"] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

/** One thing a caller may do. */
export type Permission =
  /** Plans, sync runs, the identity review queue, people and explain: read. */
  | "sync.read"
  /** Approve, reject or apply a plan; link, unlink or ignore in the identity review queue. */
  | "sync.decide"
  /** Audit search, role holders, "why does Y hold X". */
  | "audit.read"
  /** Audit export with its proof, the access-review report download. */
  | "audit.export";

/**
 * The permissions of each role. A security admin decides but does not export evidence of their own
 * decisions; an auditor reads and exports everything but cannot approve; a viewer only reads.
 */
export const ROLE_PERMISSIONS: Readonly<Record<AdminRole, readonly Permission[]>> = {
  "security-admin": ["sync.read", "sync.decide", "audit.read"],
  auditor: ["sync.read", "audit.read", "audit.export"],
  viewer: ["sync.read", "audit.read"],
};

/** Whoever makes a request to the console or the admin API, once authenticated. */
export interface Caller {
  /** Audit actor: `person:<personId>` for a person, `client:<clientId>` for an API client. */
  readonly actor: string;
  /** For pages and decisions: the person's name, or the client's id. */
  readonly name: string;
  /** Their roles (possibly none: signed in, but not allowed anything). */
  readonly roles: ReadonlySet<AdminRole>;
}

/** Whether any of the caller's roles grants `permission`. */
export function can(caller: Pick<Caller, "roles">, permission: Permission): boolean {
  for (const role of caller.roles) if (ROLE_PERMISSIONS[role].includes(permission)) return true;
  return false;
}

/** The caller's permissions, for pages that show only what may be used. */
export function permissionsOf(caller: Pick<Caller, "roles">): ReadonlySet<Permission> {
  return new Set([...caller.roles].flatMap((role) => ROLE_PERMISSIONS[role]));
}

/** Throws ACCESS_DENIED (HTTP 403) unless the caller holds `permission`. */
export function requirePermission(caller: Caller, permission: Permission): void {
  if (can(caller, permission)) return;
  const roles = [...caller.roles];
  const holders = ADMIN_ROLES.filter((role) => ROLE_PERMISSIONS[role].includes(permission));
  throw new AppError(
    "ACCESS_DENIED",
    `${caller.name} (${roles.length > 0 ? roles.join(", ") : "no console role"}) may not ${permission}: ` +
      `it needs the role ${holders.join(" or ")} (console.access in the config)`,
    { expose: true },
  );
}
