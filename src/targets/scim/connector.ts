import { systemClock, type TargetClock } from "../http/retry.js";
import type {
  ChangeFailure,
  ChangeResult,
  RoleRow,
  TargetCapabilities,
  TargetChange,
  TargetConnector,
  TargetRole,
  TargetState,
  TargetUser,
  UserFields,
} from "../target.js";
import { SerialQueue } from "../serial-queue.js";
import { TargetReadError } from "../target.js";
import { ScimClient, type ScimCallResult } from "./client.js";
import type { ScimConfig } from "./config.js";

const USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CREATE_ATTEMPTS = 4;
const PUT_ATTEMPTS = 4;

type Raw = Record<string, unknown>;
type PatchOperation = { op: "add" | "remove" | "replace"; path?: string; value?: unknown };

/** What the service provider says it supports (`/ServiceProviderConfig`, RFC 7643 §5). */
interface Features {
  /** PATCH is supported; false after the server refused one with 501/405. */
  patch: boolean;
  /** ETags (`meta.version`, If-Match) are supported. */
  etag: boolean;
}

/** Opens a SCIM 2.0 target (reference finance-targets.md §4, §6). */
export function openScimTarget(
  id: string,
  config: ScimConfig,
  clock: TargetClock = systemClock,
): TargetConnector {
  return new ScimTarget(id, config, new ScimClient(config, clock));
}

class ScimTarget implements TargetConnector {
  private features: Features | null = null;
  /** Group writes read members first: one at a time per group so two diffs do not undo each other. */
  private readonly groupQueues = new SerialQueue();

  constructor(
    readonly id: string,
    private readonly config: ScimConfig,
    private readonly client: ScimClient,
  ) {}

  /** SCIM has no department tree and Groups have no per-department rows: both are off. */
  capabilities(): TargetCapabilities {
    return { users: true, departments: false, scopedRoles: false, reenable: true };
  }

  async readState(signal?: AbortSignal): Promise<TargetState> {
    await this.serviceProvider();
    const users: Record<string, TargetUser> = {};
    for (const raw of await this.listAll("/Users", signal)) {
      const user = toUser(raw);
      users[user.id] = user;
    }
    const roles: Record<string, TargetRole> = {};
    for (const raw of await this.listAll("/Groups", signal)) {
      const role = toRole(raw);
      roles[role.id] = role;
    }
    return { users, departments: {}, roles };
  }

  async applyAll(changes: readonly TargetChange[]): Promise<ChangeResult[]> {
    const results: ChangeResult[] = [];
    for (const change of changes) results.push(await this.apply(change));
    return results;
  }

  async apply(change: TargetChange): Promise<ChangeResult> {
    try {
      switch (change.kind) {
        case "create-user":
          return await this.createUser(change.externalId, change.user);
        case "update-user":
          return await this.modify(
            "/Users",
            change.targetId,
            userAttributes(change.user, this.userNameOf(change.user)),
          );
        case "disable-user":
          if (this.config.deprovision === "delete") return await this.deleteUser(change.targetId);
          return await this.modify("/Users", change.targetId, { active: false });
        case "enable-user":
          return await this.modify("/Users", change.targetId, { active: true });
        case "create-role":
          if (change.scoped) return unsupported(this.id, "per-department roles (SCIM groups have no scopes)");
          return await this.createGroup(change.name);
        case "set-role-members":
          return await this.groupQueues.run(change.roleId, () => this.setMembers(change.roleId, change.rows));
        case "create-department":
        case "update-department":
        case "disable-department":
          return unsupported(this.id, "departments (SCIM has no department tree)");
      }
    } catch (error) {
      if (error instanceof TargetReadError) return failed(error.failure);
      throw error;
    }
  }

  // ---------------------------------------------------------------- users

  /**
   * Look up before create (§6.2): `externalId eq` finds our own record (a create that was applied but whose
   * answer was lost), `userName eq` an account someone provisioned before us, which is adopted by writing
   * our externalId into it. A disabled match is not revived here: that is an explicit `enable-user`.
   */
  private async createUser(externalId: string, user: UserFields): Promise<ChangeResult> {
    const userName = this.userNameOf(user) ?? externalId;
    for (let attempt = 1; ; attempt++) {
      const found =
        (await this.findOne("/Users", "externalId", externalId)) ??
        (await this.findOne("/Users", "userName", userName)) ??
        (attempt > 1 ? await this.scanUserName(userName) : undefined);
      if (found !== undefined) return this.adoptUser(found, externalId, user, userName);
      const result = await this.client.call("POST", "/Users", {
        body: {
          schemas: [USER_SCHEMA, ENTERPRISE],
          externalId,
          ...userAttributes(user, userName),
          active: true,
        },
        // A dropped or failed POST may have created the user: look up again instead of posting blind.
        retryNetwork: false,
        retryServerErrors: false,
      });
      if (result.ok) return { status: "applied", targetId: idOf(result.reply.json) };
      // 409 uniqueness: someone holds that userName (RFC 7644 §3.3); look again, case-insensitively too.
      const again = result.failure.class === "retryable" || result.failure.http === 409;
      if (!again || attempt >= CREATE_ATTEMPTS) return failed(result.failure);
    }
  }

  private async adoptUser(
    found: Raw,
    externalId: string,
    user: UserFields,
    userName: string,
  ): Promise<ChangeResult> {
    const targetId = idOf(found);
    const theirs = str(found.externalId);
    if (theirs !== "" && theirs !== externalId) {
      return failed({
        class: "conflict",
        code: "USERNAME_TAKEN",
        targetId,
        message: `${this.id}: userName ${userName} belongs to user ${targetId} with externalId ${theirs}, not ${externalId}`,
      });
    }
    if (found.active === false) {
      return failed({
        class: "conflict",
        code: "DISABLED_MATCH",
        targetId,
        message: `${this.id}: creating ${externalId} matches disabled user ${targetId}; plan an explicit enable-user for it instead`,
      });
    }
    const updated = await this.modify("/Users", targetId, { externalId, ...userAttributes(user, userName) });
    return updated.status === "failed" ? updated : { status: "applied", targetId, adopted: true };
  }

  /**
   * userName is case-insensitive (RFC 7643 §4.1.1) but not every server's `eq` filter treats it so (scimmy
   * compares exactly): after a 409, the whole list is searched before giving up.
   */
  private async scanUserName(userName: string): Promise<Raw | undefined> {
    const wanted = userName.toLowerCase();
    return (await this.listAll("/Users")).find((u) => str(u.userName).toLowerCase() === wanted);
  }

  private async deleteUser(targetId: string): Promise<ChangeResult> {
    const result = await this.client.call("DELETE", `/Users/${encodeURIComponent(targetId)}`);
    if (result.ok) return { status: "applied", targetId };
    // Already gone (a retried DELETE whose first answer was lost): the goal is met.
    if (result.failure.http === 404) return { status: "noop", targetId };
    return failed(result.failure);
  }

  private userNameOf(user: UserFields): string | undefined {
    const value =
      this.config.userNameFrom === "email"
        ? user.email?.toLowerCase()
        : this.config.userNameFrom === "employeeNo"
          ? user.employeeNo
          : undefined;
    return value ? value : undefined;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Sets attributes: RFC 7644 §3.5.2.3 `replace` operations when the server does PATCH, else (501/405,
   * or patch.supported false) GET-modify-PUT, with If-Match where ETags are supported (§3.14).
   */
  private async modify(endpoint: string, targetId: string, attributes: Raw): Promise<ChangeResult> {
    const features = await this.serviceProvider();
    if (features.patch) {
      const result = await this.patch(endpoint, targetId, replaceOperations(attributes));
      if (result !== "unsupported") return result;
    }
    return this.replace(endpoint, targetId, (current) => merge(current, attributes));
  }

  /** One PATCH; "unsupported" when the server turns PATCH down as such (then it is not tried again). */
  private async patch(
    endpoint: string,
    targetId: string,
    operations: PatchOperation[],
  ): Promise<ChangeResult | "unsupported"> {
    const result = await this.client.call("PATCH", `${endpoint}/${encodeURIComponent(targetId)}`, {
      body: { schemas: [PATCH_OP], Operations: operations },
    });
    // 200 with the resource or 204 without: both are success (§3.5.2).
    if (result.ok) return { status: "applied", targetId };
    if (result.failure.http === 501 || result.failure.http === 405) {
      this.features = { ...(await this.serviceProvider()), patch: false };
      return "unsupported";
    }
    return failed(result.failure);
  }

  /** GET-modify-PUT; a 412 (someone wrote in between) reads again and repeats. */
  private async replace(
    endpoint: string,
    targetId: string,
    change: (current: Raw) => Raw,
  ): Promise<ChangeResult> {
    const path = `${endpoint}/${encodeURIComponent(targetId)}`;
    const { etag } = await this.serviceProvider();
    for (let attempt = 1; ; attempt++) {
      const read = await this.client.call("GET", path);
      if (!read.ok) return failed(read.failure);
      const current = objectOf(read.reply.json);
      const version = read.reply.etag ?? str(objectOf(current.meta).version);
      const { meta: _meta, ...writable } = change(current);
      const result = await this.client.call("PUT", path, {
        body: writable,
        ...(etag && version !== "" ? { ifMatch: version } : {}),
      });
      if (result.ok) return { status: "applied", targetId };
      if (result.failure.http !== 412 || attempt >= PUT_ATTEMPTS) return failed(result.failure);
    }
  }

  // ---------------------------------------------------------------- groups

  /** Group display names are how IdPs match groups (§4.1): an existing one of that name is adopted. */
  private async createGroup(name: string): Promise<ChangeResult> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.findOne("/Groups", "displayName", name);
      if (existing !== undefined) return { status: "applied", targetId: idOf(existing), adopted: true };
      const result = await this.client.call("POST", "/Groups", {
        body: { schemas: [GROUP_SCHEMA], displayName: name, members: [] },
        retryNetwork: false,
        retryServerErrors: false,
      });
      if (result.ok) return { status: "applied", targetId: idOf(result.reply.json) };
      const again = result.failure.class === "retryable" || result.failure.http === 409;
      if (!again || attempt >= CREATE_ATTEMPTS) return failed(result.failure);
    }
  }

  /**
   * The desired members against the current ones, as PATCH `add` / `remove` (RFC 7644 §3.5.2.1, §3.5.2.2)
   * in chunks of `membersPerPatch`. Nested groups among the members are not ours and are left alone.
   */
  private async setMembers(groupId: string, rows: readonly RoleRow[]): Promise<ChangeResult> {
    if (rows.some((row) => row.scope.kind !== "global"))
      return unsupported(this.id, "per-department role rows (SCIM groups have no scopes)");
    const path = `/Groups/${encodeURIComponent(groupId)}`;
    const read = await this.client.call("GET", path);
    if (!read.ok) return failed(read.failure);
    const have = new Set(userMembers(objectOf(read.reply.json)));
    const want = new Set(rows.flatMap((row) => row.memberIds));
    const add = [...want].filter((m) => !have.has(m));
    const remove = [...have].filter((m) => !want.has(m));
    if (add.length === 0 && remove.length === 0) return { status: "noop", targetId: groupId };

    if ((await this.serviceProvider()).patch) {
      const operations: PatchOperation[] = [
        ...chunk(add, this.config.membersPerPatch).map((ids): PatchOperation => ({
          op: "add",
          path: "members",
          value: ids.map((value) => ({ value })),
        })),
        // One filtered path per member: the RFC form (§3.5.2.2), not Entra's value-list remove.
        ...remove.map((id): PatchOperation => ({
          op: "remove",
          path: `members[value eq ${JSON.stringify(id)}]`,
        })),
      ];
      let sent = 0;
      for (const ops of chunkOperations(operations, this.config.membersPerPatch)) {
        const result = await this.patch("/Groups", groupId, ops);
        if (result === "unsupported") break;
        if (result.status === "failed") {
          // Earlier chunks are in: say so, the next run diffs from what is there.
          return sent === 0
            ? result
            : failed({
                ...result.failure,
                message: `${result.failure.message} (after ${sent} of the member changes were applied)`,
              });
        }
        sent += ops.length;
        if (sent === operations.length) return { status: "applied", targetId: groupId };
      }
    }
    return this.replace("/Groups", groupId, (current) => {
      const others = arrayOf(current.members).filter((m) => m.type === "Group");
      return { ...current, members: [...others, ...[...want].map((value) => ({ value }))] };
    });
  }

  // ---------------------------------------------------------------- reading

  /** `/ServiceProviderConfig` once; a server without one is taken to do PATCH and no ETags (§4). */
  private async serviceProvider(): Promise<Features> {
    if (this.features !== null) return this.features;
    const result = await this.client.call("GET", "/ServiceProviderConfig");
    if (!result.ok) {
      if (result.failure.http !== 404 && result.failure.http !== 501)
        throw new TargetReadError(result.failure);
      this.features = { patch: true, etag: false };
      return this.features;
    }
    const json = objectOf(result.reply.json);
    this.features = {
      patch: objectOf(json.patch).supported !== false,
      etag: objectOf(json.etag).supported === true,
    };
    return this.features;
  }

  /** The first resource whose attribute equals the value (`filter=attr eq "value"`, §3.4.2.2). */
  private async findOne(endpoint: string, attribute: string, value: string): Promise<Raw | undefined> {
    if (value === "") return undefined;
    const json = must(
      await this.client.call("GET", endpoint, {
        query: { filter: `${attribute} eq ${JSON.stringify(value)}`, startIndex: "1", count: "2" },
      }),
    );
    return arrayOf(objectOf(json).Resources)[0];
  }

  /**
   * Every resource, `count` per page from `startIndex` 1 (§3.4.2.4); the next page starts after what came
   * back, since servers may return fewer than asked. Index pages shift under concurrent change, so a
   * resource seen twice is kept once.
   */
  private async listAll(endpoint: string, signal?: AbortSignal): Promise<Raw[]> {
    const out = new Map<string, Raw>();
    for (let startIndex = 1; ;) {
      if (signal?.aborted)
        throw new TargetReadError({
          class: "retryable",
          code: "ABORTED",
          message: `${this.id}: read aborted`,
        });
      const json = objectOf(
        must(
          await this.client.call("GET", endpoint, {
            query: { startIndex: String(startIndex), count: String(this.config.pageSize) },
          }),
        ),
      );
      const page = arrayOf(json.Resources);
      for (const r of page) out.set(idOf(r), r);
      const total = typeof json.totalResults === "number" ? json.totalResults : 0;
      startIndex += page.length;
      if (page.length > 0 && startIndex <= total) continue;
      // Fewer distinct resources than the server counts: pages shifted under a concurrent change, or the
      // server ignored startIndex. A plan from a partial read would disable whoever is missing.
      if (out.size < total)
        throw new TargetReadError({
          class: "retryable",
          code: "INCOMPLETE_READ",
          message: `${this.id}: read ${out.size} distinct of ${total} resources at ${endpoint}; read again`,
        });
      return [...out.values()];
    }
  }
}

function must(result: ScimCallResult): unknown {
  if (!result.ok) throw new TargetReadError(result.failure);
  return result.reply.json;
}

function failed(failure: ChangeFailure): ChangeResult {
  return { status: "failed", failure };
}

function unsupported(id: string, what: string): ChangeResult {
  return failed({
    class: "bad-data",
    code: "UNSUPPORTED",
    message: `${id}: a SCIM target does not manage ${what}`,
  });
}

/** The SCIM attributes a user's fields map to (RFC 7643 §4.1, §4.3). */
function userAttributes(user: UserFields, userName: string | undefined): Raw {
  const email = user.email?.toLowerCase() ?? "";
  return {
    ...(userName === undefined ? {} : { userName }),
    displayName: user.name,
    name: { formatted: user.name },
    emails: email === "" ? [] : [{ value: email, type: "work", primary: true }],
    phoneNumbers: user.mobile ? [{ value: user.mobile, type: "mobile" }] : [],
    // Omitted rather than "": SCIM has no empty strings, only unassigned attributes (RFC 7643 §2.5).
    ...(user.employeeNo ? { [ENTERPRISE]: { employeeNumber: user.employeeNo } } : {}),
  };
}

/**
 * PATCH operations that set `attributes`: single-valued ones in one `replace` without a path; each
 * multi-valued one as its own `replace` with a path (or `remove` when empty), since §3.5.2.3 says a pathless
 * replace replaces the attribute but servers differ (scimmy appends to multi-valued attributes).
 */
function replaceOperations(attributes: Raw): PatchOperation[] {
  const single = Object.fromEntries(Object.entries(attributes).filter(([, v]) => !Array.isArray(v)));
  const operations: PatchOperation[] =
    Object.keys(single).length === 0 ? [] : [{ op: "replace", value: single }];
  for (const [path, value] of Object.entries(attributes)) {
    if (!Array.isArray(value)) continue;
    operations.push(value.length === 0 ? { op: "remove", path } : { op: "replace", path, value });
  }
  return operations;
}

/** A resource with attributes set, extension objects merged rather than replaced (for PUT). */
function merge(current: Raw, attributes: Raw): Raw {
  const out: Raw = { ...current, ...attributes };
  for (const [key, value] of Object.entries(attributes))
    if (Array.isArray(value) && value.length === 0) delete out[key];
  if (ENTERPRISE in attributes) {
    out[ENTERPRISE] = { ...objectOf(current[ENTERPRISE]), ...objectOf(attributes[ENTERPRISE]) };
    const schemas = Array.isArray(current.schemas) ? current.schemas.map(String) : [USER_SCHEMA];
    out.schemas = schemas.includes(ENTERPRISE) ? schemas : [...schemas, ENTERPRISE];
  }
  return out;
}

function toUser(raw: Raw): TargetUser {
  const emails = arrayOf(raw.emails);
  const email = emails.find((e) => e.primary === true) ?? emails[0];
  const name = objectOf(raw.name);
  const composed = [str(name.givenName), str(name.familyName)].filter((x) => x !== "").join(" ");
  return {
    id: idOf(raw),
    externalId: str(raw.externalId),
    name: str(raw.displayName) || str(name.formatted) || composed || str(raw.userName),
    email: str(email?.value).toLowerCase(),
    mobile: str(arrayOf(raw.phoneNumbers).find((p) => p.type === "mobile")?.value),
    employeeNo: str(objectOf(raw[ENTERPRISE]).employeeNumber),
    departmentIds: [],
    primaryDepartmentId: "",
    // `active` absent means the server has no notion of disabling: the account is usable.
    active: raw.active !== false,
  };
}

function toRole(raw: Raw): TargetRole {
  return {
    id: idOf(raw),
    name: str(raw.displayName),
    scoped: false,
    rows: [{ scope: { kind: "global" }, memberIds: userMembers(raw) }],
  };
}

/** Member ids that are not nested groups (`type` "Group"). */
function userMembers(group: Raw): string[] {
  return arrayOf(group.members)
    .filter((m) => m.type !== "Group")
    .map((m) => str(m.value))
    .filter((v) => v !== "");
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Operations into requests of at most `size` member changes each (an `add` counts its values). */
function chunkOperations(operations: readonly PatchOperation[], size: number): PatchOperation[][] {
  const out: PatchOperation[][] = [];
  let current: PatchOperation[] = [];
  let weight = 0;
  for (const op of operations) {
    const w = Array.isArray(op.value) ? op.value.length : 1;
    if (current.length > 0 && weight + w > size) {
      out.push(current);
      current = [];
      weight = 0;
    }
    current.push(op);
    weight += w;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function idOf(raw: unknown): string {
  return str(objectOf(raw).id);
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function objectOf(value: unknown): Raw {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Raw) : {};
}

function arrayOf(value: unknown): Raw[] {
  return Array.isArray(value) ? value.filter((x): x is Raw => x !== null && typeof x === "object") : [];
}
