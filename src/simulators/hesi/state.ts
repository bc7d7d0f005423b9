import { randomBytes } from "node:crypto";
import { SimClock } from "../common/clock.js";
import type { SimControls } from "../common/control.js";
import { Faults } from "../common/faults.js";
import { Bans, RateWindows } from "../common/rate-window.js";
import type { SimOrg } from "../common/org.js";
import { FailureDraw, parseHesiFaults, type RandomFailures } from "./failures.js";
import { DEPARTMENT_ROLE, PLAIN_ROLE } from "./model.js";
import { HesiTenant, type HesiTenantSnapshot } from "./tenant.js";
import { HesiTokens } from "./tokens.js";

/** Which Hesi edition the tenant is: only the standalone one (独立版) accepts contact writes (reference §1.1). */
export type HesiEdition = "standalone" | "dingtalk" | "wecom";

/** Data a tenant already holds, to exercise the traps. Departments are named by their path below the root. */
export interface HesiExistingData {
  /** Departments by path (`财务部/出纳组`); parents are created as needed. */
  readonly departments?: readonly {
    readonly path: string;
    readonly code?: string;
    readonly active?: boolean;
  }[];
  /** Staff; `departments` are paths (default: the root). */
  readonly staff?: readonly {
    readonly name: string;
    readonly cellphone?: string;
    readonly email?: string;
    readonly userid?: string;
    readonly code?: string;
    readonly departments?: readonly string[];
    /** false: a disabled (已离职) staff. Default true. */
    readonly active?: boolean;
    /** Has pending approvals: disabling with doCheck=true answers 403. */
    readonly pendingApprovals?: boolean;
  }[];
  /** Role definitions, with rows of members given by userid. */
  readonly roles?: readonly {
    readonly name: string;
    /** Default 普通角色. */
    readonly scope?: string;
    /** Default API. */
    readonly sourceChannel?: "API" | "MANUAL";
    /** `department` is a path (部门角色 only). */
    readonly rows?: readonly { readonly department?: string; readonly staff: readonly string[] }[];
  }[];
  /** userids of staff in the main admin role (`<corpId>:admin`), e.g. the operator of `flows/relay`. */
  readonly admins?: readonly string[];
  /** Phones already registered in Hesi by another tenant, with that account's userId. */
  readonly registeredPhones?: readonly { readonly cellphone: string; readonly userId: string }[];
}

/** Options of the Hesi simulator. */
export interface HesiSimulatorOptions {
  /** Corporation id (also the root department id); generated per start when absent. */
  readonly corpId?: string;
  /** Name of the root department. Default 示例科技有限公司. */
  readonly corpName?: string;
  /** Open-API key (接入账号); generated when absent. */
  readonly appKey?: string;
  /** Open-API secret (接入密码, `appSecurity`); generated when absent. */
  readonly appSecurity?: string;
  /**
   * Data the tenant already holds (a disabled staff, a phone registered elsewhere…) to exercise the traps;
   * without it the tenant starts empty: only the root department and the main admin role.
   */
  readonly existing?: HesiExistingData;
  /** Fault spec: the common rules plus failure-rate/failure-seed/failure-kinds (see failures.ts). */
  readonly faults?: string;
  /** Random failures (overrides those of `faults`). */
  readonly failures?: RandomFailures;
  /** How long a timed-out call hangs before the connection is dropped. Default 30,000 ms. */
  readonly timeoutMs?: number;
  /** Calls per second across the tenant before 429 (Hesi documents none; reference §1.7). Default unlimited. */
  readonly requestsPerSecond?: number;
  /** Lifetime of a new access token. Default 7200 s (2 h). */
  readonly tokenTtlSeconds?: number;
  /** Lifetime of a refreshed token. Default 32 days. */
  readonly refreshedTokenDays?: number;
  /** Licence end (epoch ms): caps every token's expiry. */
  readonly licenceEndsAt?: number;
  /** A token is refused with 403 for this long after issue (changelog 1.17.0). Default 0. */
  readonly freshTokenDelayMs?: number;
  /** Purchased seats; unlimited when absent. */
  readonly seats?: number;
  /** Edition. Default standalone. DingTalk/WeCom editions refuse staff and department writes. */
  readonly edition?: HesiEdition;
  /** Base of the simulated clock (defaults to Date.now). */
  readonly now?: () => number;
  /** Data kept from an earlier run (`snapshot()` of a tenant with the same `corpId`); replaces `existing`. */
  readonly restore?: HesiTenantSnapshot;
  /** Called after every API call that succeeded and may have changed the tenant (a write), e.g. to save it. */
  readonly onChange?: () => void;
}

/** The tenant's open-API credentials (test use only). */
export interface HesiCredentials {
  readonly appKey: string;
  readonly appSecurity: string;
  readonly corpId: string;
}

/** A provisional access link (访问临时授权) handed out by getProvisionalAuth. */
export interface ProvisionalLink {
  readonly staffId: string;
  readonly pageType: string;
  readonly flowId?: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  /** authType CODE: the link works once. */
  readonly once: boolean;
  used: boolean;
  readonly overdueTokenRedirect?: string;
  readonly isApplet: boolean;
}

/** One browser arrival through a provisional link (tests check who got in, where, and how often). */
export interface Launch {
  readonly staffId: string;
  readonly pageType: string;
  readonly flowId?: string;
  /** Epoch ms. */
  readonly at: number;
}

/** Everything the routes share. */
export interface HesiSimState {
  readonly tenant: HesiTenant;
  readonly controls: SimControls;
  readonly tokens: HesiTokens;
  readonly credentials: HesiCredentials;
  /** Random failures, when on. */
  failures: FailureDraw | null;
  readonly timeoutMs: number;
  readonly windows: RateWindows;
  readonly bans: Bans;
  readonly requestsPerSecond: number | undefined;
  readonly edition: HesiEdition;
  /** Replies by HTTP status (faults included), for tests that check a fault really fired. */
  readonly statuses: Map<number, number>;
  /** Provisional links by their token. */
  readonly links: Map<string, ProvisionalLink>;
  /** Successful arrivals through provisional links. */
  readonly launches: Launch[];
}

/** Builds the shared state and loads the existing data. */
export function createState(options: HesiSimulatorOptions): HesiSimState {
  const clock = new SimClock(options.now);
  const corpId = options.corpId ?? randomBytes(10).toString("base64url").slice(0, 14);
  const tenant = new HesiTenant(
    corpId,
    options.corpName ?? "示例科技有限公司",
    () => clock.now(),
    options.seats,
  );
  const faults = new Faults();
  let random: RandomFailures | undefined = options.failures;
  if (options.faults !== undefined) {
    const parsed = parseHesiFaults(options.faults);
    faults.set(parsed.rules);
    random ??= parsed.random;
  }
  const tokens = new HesiTokens(clock, {
    ttlMs: (options.tokenTtlSeconds ?? 7200) * 1000,
    refreshedTtlMs: (options.refreshedTokenDays ?? 32) * 86_400_000,
    ...(options.licenceEndsAt === undefined ? {} : { licenceEndsAt: options.licenceEndsAt }),
    freshTokenDelayMs: options.freshTokenDelayMs ?? 0,
  });
  if (options.restore !== undefined) tenant.restore(options.restore);
  else if (options.existing !== undefined) applyExisting(tenant, options.existing);
  return {
    tenant,
    // Tokens are Hesi's own (with refresh); the common expire-tokens hook expires them too.
    controls: { clock, faults, tokenStores: [tokens], calls: new Map() },
    tokens,
    credentials: {
      appKey: options.appKey ?? randomBytes(16).toString("hex"),
      appSecurity: options.appSecurity ?? randomBytes(16).toString("hex"),
      corpId,
    },
    failures: random === undefined ? null : new FailureDraw(random),
    timeoutMs: options.timeoutMs ?? 30_000,
    windows: new RateWindows(() => clock.now()),
    bans: new Bans(() => clock.now()),
    requestsPerSecond: options.requestsPerSecond,
    edition: options.edition ?? "standalone",
    statuses: new Map(),
    links: new Map(),
    launches: [],
  };
}

/** A small pre-existing tenant: two departments, three staff (one disabled, one with pending approvals), one role. */
export function demoExistingData(): HesiExistingData {
  return {
    departments: [
      { path: "财务部", code: "FIN" },
      { path: "财务部/出纳组" },
      { path: "销售部", code: "SALES" },
    ],
    staff: [
      {
        name: "老财务",
        cellphone: "13900000001",
        userid: "legacy-1",
        code: "E0001",
        departments: ["财务部"],
      },
      {
        name: "离职员工",
        cellphone: "13900000002",
        userid: "legacy-2",
        code: "E0002",
        departments: ["销售部"],
        active: false,
      },
      {
        name: "待交接",
        cellphone: "13900000003",
        userid: "legacy-3",
        code: "E0003",
        departments: ["销售部"],
        pendingApprovals: true,
      },
    ],
    roles: [{ name: "出纳", scope: PLAIN_ROLE, sourceChannel: "API", rows: [{ staff: ["legacy-1"] }] }],
    admins: ["legacy-1"],
  };
}

/**
 * The people and departments of a generated org (common/org.ts) as a Hesi tenant would hold them after the
 * DingTalk or WeCom edition synced them: userId = the platform's userid, 工号 = job number; people who left
 * or are disabled are disabled staff. Use it with `edition: "dingtalk"` to test role-only sync.
 */
export function existingFromOrg(org: SimOrg): HesiExistingData {
  const byId = new Map(org.departments.map((d) => [d.id, d]));
  const pathOf = (id: number): string => {
    const names: string[] = [];
    for (let d = byId.get(id); d !== undefined && d.parentId !== 0; d = byId.get(d.parentId))
      names.unshift(d.name);
    return names.join("/");
  };
  return {
    departments: org.departments.filter((d) => d.parentId !== 0).map((d) => ({ path: pathOf(d.id) })),
    staff: org.people.map((p) => ({
      name: p.name,
      cellphone: p.mobile,
      email: p.email,
      userid: p.userid,
      code: p.jobNumber,
      departments: p.departments.map(pathOf),
      active: p.status === "active" || p.status === "not-activated",
    })),
  };
}

function applyExisting(tenant: HesiTenant, data: HesiExistingData): void {
  const byPath = new Map<string, string>([["", tenant.corpId]]);
  const ensure = (path: string): string => {
    const parts = path.split("/").filter(Boolean);
    let parentId = tenant.corpId;
    for (let i = 0; i < parts.length; i++) {
      const key = parts.slice(0, i + 1).join("/");
      let id = byPath.get(key);
      if (id === undefined) {
        id = tenant.createDepartment({ name: parts[i], parentId, code: "" }).id;
        byPath.set(key, id);
      }
      parentId = id;
    }
    return parentId;
  };
  for (const d of data.departments ?? []) {
    const id = ensure(d.path);
    if (d.code !== undefined) tenant.updateDepartment(id, { code: d.code });
  }
  for (const p of data.registeredPhones ?? []) tenant.registeredPhones.set(p.cellphone, p.userId);
  const disabled: string[] = [];
  for (const s of data.staff ?? []) {
    const departments = (s.departments ?? [""]).map(ensure);
    const staff = tenant.createStaff({
      name: s.name,
      departments,
      defaultDepartment: departments[0],
      ...(s.cellphone === undefined ? {} : { cellphone: s.cellphone }),
      ...(s.email === undefined ? {} : { email: s.email }),
      ...(s.userid === undefined ? {} : { userid: s.userid }),
      ...(s.code === undefined ? {} : { code: s.code }),
    });
    if (s.pendingApprovals === true) tenant.pendingApprovals.add(staff.id);
    if (s.active === false) disabled.push(staff.id);
  }
  for (const r of data.roles ?? []) {
    const role = tenant.createRole({
      name: r.name,
      scope: r.scope ?? PLAIN_ROLE,
      sourceChannel: r.sourceChannel ?? "API",
    });
    const contents = (r.rows ?? []).map((row) => ({
      ...(row.department === undefined || role.scope !== DEPARTMENT_ROLE
        ? {}
        : { pathType: "id", path: [ensure(row.department)] }),
      staffs: [...row.staff],
    }));
    if (contents.length > 0) tenant.putRoleRows(role.id, { contents }, "sourceId", "v1.1");
  }
  if (data.admins !== undefined && data.admins.length > 0)
    tenant.putRoleRows(
      `${tenant.corpId}:admin`,
      { contents: [{ staffs: [...data.admins] }] },
      "sourceId",
      "v1.1",
    );
  // Disabled last, so the roles may name them and their departments stay valid.
  if (disabled.length > 0) tenant.setStaffActive(disabled, "id", false, false);
  // Departments the data disables (after their staff are disabled or moved).
  for (const d of data.departments ?? [])
    if (d.active === false) tenant.setDepartmentActive(ensure(d.path), false);
}
