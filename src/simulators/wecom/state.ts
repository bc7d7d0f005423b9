import { randomBytes } from "node:crypto";
import { SimClock } from "../common/clock.js";
import type { SimControls } from "../common/control.js";
import { Faults, parseFaults } from "../common/faults.js";
import { generateOrg, type SimOrg, type SimRole } from "../common/org.js";
import { OrgIndex } from "../common/org-index.js";
import { Bans, RateWindows } from "../common/rate-window.js";
import { TokenStore } from "../common/tokens.js";

/** One self-built app (自建应用) of the simulated corp. */
export interface WeComSimAppOptions {
  /** The app's AgentId. */
  readonly agentId: number;
  /** The app's Secret; generated per start when absent. */
  readonly secret?: string;
  /** Departments in the app's visible range (可见范围), each with its whole subtree. Default: [1]. */
  readonly visibleDepartments?: readonly number[];
  /**
   * Created after 2022-06-20 20:00: user/get and user/list leave out avatar, thumb_avatar, gender, mobile,
   * email, biz_mail, qr_code and address (WX-DOC 96255, 96260). Default: false.
   */
  readonly createdAfter2022?: boolean;
  /**
   * 企业可信IP: when set, calls from any other IP get 60020. Apps created after 2022-06-20 must have one
   * in real WeCom; the simulator enforces it whenever it is set.
   */
  readonly trustedIps?: readonly string[];
  /**
   * 可信域名 / 授权回调域 of the app's web login and OAuth: `host` or `host:port`, matched exactly against the
   * redirect_uri's host and port (no wildcards; scheme and path ignored). Default: none set, and the
   * simulator then trusts 127.0.0.1, localhost and [::1] at any port (a simulator convenience: real WeCom
   * refuses every redirect until the domain is verified).
   */
  readonly trustedDomains?: readonly string[];
}

/** Options of the WeCom simulator. */
export interface WeComSimulatorOptions {
  /** Size of the generated org (ignored when `org` is given). Default 200. */
  readonly people?: number;
  /** Seed of the generated org. Default 1. */
  readonly seed?: number;
  /** A ready org instead of a generated one. */
  readonly org?: SimOrg;
  /** Fault spec (see common/faults.ts). */
  readonly faults?: string;
  /** The corp's CorpID; generated per start when absent. */
  readonly corpId?: string;
  /** The 通讯录同步 (contact sync) secret; generated per start when absent. */
  readonly contactSecret?: string;
  /**
   * The caller's IP was added to the 通讯录同步 helper after 2022-08-15 10:00: then user/get, user/list,
   * department/list and department/get refuse the contact secret with 60020 (WX-DOC 96067). Default false.
   */
  readonly contactSyncIpAddedAfter20220815?: boolean;
  /** 企业可信IP of the 通讯录同步 helper: when set, calls with its token from any other IP get 60020. */
  readonly contactSyncTrustedIps?: readonly string[];
  /** Self-built apps. Default: one app, agentId 1000002, visible range the whole corp, created before 2022. */
  readonly apps?: readonly WeComSimAppOptions[];
  /** Per corp, per API, per minute (WX-DOC 90454: 10,000); over it the API is blocked for 60 s with 45009. */
  readonly rateLimitPerMinute?: number;
  /** Per corp, per API, per hour (WX-DOC 90454: 150,000); over it the API is blocked for 60 min with 45009. */
  readonly rateLimitPerHour?: number;
  /** Calls in flight at once per corp before 45033 (older docs: 300). */
  readonly maxConcurrent?: number;
  /** What an expired token gets: 42001 (documented) or 40014 (what WeCom returns in practice). Default 42001. */
  readonly expiredTokenErrcode?: 40014 | 42001;
  /** Token lifetime in seconds (WeCom: 7200). */
  readonly tokenTtlSeconds?: number;
  /** Base of the simulated clock (defaults to Date.now). */
  readonly now?: () => number;
}

/** A resolved app. */
export interface SimApp {
  readonly agentId: number;
  readonly secret: string;
  readonly visibleRoots: readonly number[];
  readonly createdAfter2022: boolean;
  readonly trustedIps?: ReadonlySet<string>;
  /** Trusted redirect hosts (`host[:port]`); undefined = loopback at any port. */
  readonly trustedDomains?: ReadonlySet<string>;
}

/** Who a login code or user_ticket stands for: a member, a linked corp's member, or a WeChat user. */
export type SimSignedIn =
  | { readonly kind: "member"; readonly userid: string }
  | { readonly kind: "linked"; readonly corpId: string; readonly userid: string }
  | { readonly kind: "wechat"; readonly openid: string };

/** A login code (WX-DOC 91022: ≤512 bytes, single use, 5 minutes). */
export interface SimLoginCode {
  readonly who: SimSignedIn;
  /** The app it was made for; undefined when the OAuth URL named none (any app of the corp may use it). */
  readonly agentId?: number;
  /** snsapi_privateinfo: getuserinfo also hands out a user_ticket. */
  readonly privateInfo: boolean;
  readonly expiresAt: number;
}

/** Who a token belongs to: the 通讯录同步 helper or one app. */
export type Principal = { readonly kind: "contact-sync" } | { readonly kind: "app"; readonly app: SimApp };

/** The org indexed for 100,000 people, plus tags and the user/list_id rows. */
export class WeComOrgIndex extends OrgIndex {
  readonly tags = new Map<number, SimRole>();
  private rows: { userid: string; department: number }[] | null = null;

  constructor(org: SimOrg) {
    // WeCom lists everyone, people who left included (status 5).
    super(org);
    for (const r of org.roles) this.tags.set(r.id, r);
  }

  /** user/list_id rows: one per (user, department), in a stable order. */
  listIdRows(): readonly { userid: string; department: number }[] {
    this.rows ??= this.org.people.flatMap((p) =>
      p.departments.map((department) => ({ userid: p.userid, department })),
    );
    return this.rows;
  }
}

/** Everything the routes share. */
export interface WeComSimState {
  readonly corpId: string;
  readonly contactSecret: string;
  readonly contactSyncNewIp: boolean;
  readonly contactSyncTrustedIps?: ReadonlySet<string>;
  readonly apps: readonly SimApp[];
  readonly index: WeComOrgIndex;
  readonly controls: SimControls;
  readonly appTokens: TokenStore;
  readonly windows: RateWindows;
  readonly bans: Bans;
  readonly limits: { readonly perMinute: number; readonly perHour: number; readonly concurrent: number };
  readonly expiredTokenErrcode: 40014 | 42001;
  /** Error replies served, by errcode (tests check that a limit or fault really fired). */
  readonly errcodes: Map<number, number>;
  /** Calls in flight, for 45033. */
  inFlight: number;
  /** Sequence in the errmsg hint. */
  hintSeq: number;
  /** Visible departments per app (whole subtrees), computed once. */
  readonly visible: Map<number, ReadonlySet<number>>;
  /** Login codes not used yet. */
  readonly loginCodes: Map<string, SimLoginCode>;
  /** user_tickets (snsapi_privateinfo, 1800 s): the member and the app. */
  readonly userTickets: Map<
    string,
    { readonly userid: string; readonly agentId: number; readonly expiresAt: number }
  >;
}

const secret = (): string => randomBytes(32).toString("base64url").slice(0, 43);

/** Builds the shared state from the options (credentials generated unless given). */
export function createState(options: WeComSimulatorOptions): WeComSimState {
  const clock = new SimClock(options.now);
  const org = options.org ?? generateOrg({ people: options.people ?? 200, seed: options.seed ?? 1 });
  const index = new WeComOrgIndex(org);
  const appTokens = new TokenStore(clock, {
    ttlSeconds: options.tokenTtlSeconds ?? 7200,
    extendOnRefetch: false,
  });
  const faults = new Faults();
  if (options.faults !== undefined) faults.set(parseFaults(options.faults));
  const apps: SimApp[] = (options.apps ?? [{ agentId: 1000002 }]).map((a) => ({
    agentId: a.agentId,
    secret: a.secret ?? secret(),
    visibleRoots: a.visibleDepartments ?? [1],
    createdAfter2022: a.createdAfter2022 ?? false,
    ...(a.trustedIps === undefined ? {} : { trustedIps: new Set(a.trustedIps) }),
    ...(a.trustedDomains === undefined ? {} : { trustedDomains: new Set(a.trustedDomains) }),
  }));
  const visible = new Map<number, ReadonlySet<number>>();
  for (const app of apps) {
    const set = new Set<number>();
    for (const root of app.visibleRoots)
      if (index.departments.has(root)) for (const d of index.subtree(root)) set.add(d);
    visible.set(app.agentId, set);
  }
  return {
    corpId: options.corpId ?? `ww${randomBytes(8).toString("hex")}`,
    contactSecret: options.contactSecret ?? secret(),
    contactSyncNewIp: options.contactSyncIpAddedAfter20220815 ?? false,
    ...(options.contactSyncTrustedIps === undefined
      ? {}
      : { contactSyncTrustedIps: new Set(options.contactSyncTrustedIps) }),
    apps,
    index,
    controls: { clock, faults, tokenStores: [appTokens], calls: new Map() },
    appTokens,
    windows: new RateWindows(() => clock.now()),
    bans: new Bans(() => clock.now()),
    limits: {
      perMinute: options.rateLimitPerMinute ?? 10_000,
      perHour: options.rateLimitPerHour ?? 150_000,
      concurrent: options.maxConcurrent ?? 300,
    },
    expiredTokenErrcode: options.expiredTokenErrcode ?? 42001,
    errcodes: new Map(),
    inFlight: 0,
    hintSeq: 0,
    visible,
    loginCodes: new Map(),
    userTickets: new Map(),
  };
}

/** Token owner key of a principal. */
export function ownerKey(principal: Principal): string {
  return principal.kind === "contact-sync" ? "contact-sync" : `app:${principal.app.agentId}`;
}

/** The principal behind an owner key. */
export function principalOf(state: WeComSimState, owner: string): Principal | undefined {
  if (owner === "contact-sync") return { kind: "contact-sync" };
  const app = state.apps.find((a) => `app:${a.agentId}` === owner);
  return app === undefined ? undefined : { kind: "app", app };
}

/** The trusted IPs (企业可信IP) that apply to a principal, if any are set. */
export function trustedIpsOf(state: WeComSimState, principal: Principal): ReadonlySet<string> | undefined {
  return principal.kind === "app" ? principal.app.trustedIps : state.contactSyncTrustedIps;
}

/** True when the principal may see the department (the contact secret sees the whole corp). */
export function canSeeDepartment(state: WeComSimState, principal: Principal, id: number): boolean {
  return principal.kind === "contact-sync" || (state.visible.get(principal.app.agentId)?.has(id) ?? false);
}
