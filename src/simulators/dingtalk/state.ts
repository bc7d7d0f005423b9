import { randomBytes } from "node:crypto";
import { SimClock } from "../common/clock.js";
import type { SimControls } from "../common/control.js";
import { Faults, parseFaults } from "../common/faults.js";
import { generateOrg, type SimOrg } from "../common/org.js";
import { Bans, RateWindows } from "../common/rate-window.js";
import { TokenStore } from "../common/tokens.js";
import { DingTalkOrgIndex } from "./org-index.js";
import type { BanReply, LegacyErrorShape } from "./replies.js";
import { SignInGrants, type DingTalkSignInOptions } from "./sign-in-state.js";

/** The internal app the simulator knows (one per simulator). */
export interface DingTalkCredentials {
  /** AppKey / Client ID (`ding…`). */
  readonly appKey: string;
  /** AppSecret / Client Secret. */
  readonly appSecret: string;
  /** CorpId of the org (`ding…`). */
  readonly corpId: string;
}

/**
 * The app's permission points (reference A6). Contact points gate whole APIs (errcode 60011); `mobile`
 * (企业员工手机号信息) and `email` (邮箱等个人信息) only decide whether those fields are sent.
 */
export interface DingTalkPermissions {
  /** qyapi_get_member: user/get, user/listid, user/getbyunionid. */
  readonly qyapi_get_member: boolean;
  /** qyapi_get_department_list: department APIs, role/list, role/getrolegroup. */
  readonly qyapi_get_department_list: boolean;
  /** qyapi_get_department_member: user/list, role/getrole, role/simplelist. */
  readonly qyapi_get_department_member: boolean;
  /** 企业员工手机号信息: mobile, state_code. */
  readonly mobile: boolean;
  /** 邮箱等个人信息: email, org_email, work_place, remark, extension. */
  readonly email: boolean;
}

/** The per-IP limit: `calls` in a fixed window of `windowMs`, then a ban of `banMs`. */
export interface IpLimit {
  readonly calls: number;
  readonly windowMs: number;
  readonly banMs: number;
}

export interface DingTalkSimulatorOptions extends DingTalkSignInOptions {
  /** Size of the generated org (default 200); ignored when `org` is given. */
  readonly people?: number;
  /** Seed of the generated org (default 1). */
  readonly seed?: number;
  /** A ready org (shared between simulators or tests). */
  readonly org?: SimOrg;
  /** Fault spec (see common/faults.ts). */
  readonly faults?: string;
  /** App credentials; generated per simulator when not given. */
  readonly credentials?: Partial<DingTalkCredentials>;
  /** Permission points; all granted by default. */
  readonly permissions?: Partial<DingTalkPermissions>;
  /**
   * The app's contact scope (通讯录权限范围): departments whose subtrees `user/list` may read (else 50004).
   * Default: the whole org.
   */
  readonly contactScope?: readonly number[];
  /** Shape of legacy errors (default `wrapped`, as topapi's gateway answers). */
  readonly legacyErrors?: LegacyErrorShape;
  /** Errcode for an expired token on the legacy API: 40014 (what the pagination doc shows, default) or 42001. */
  readonly expiredTokenErrcode?: 40014 | 42001;
  /** Calls per second per app and API (default 20, the standard org's limit). */
  readonly qps?: number;
  /** Per-IP limit (default 10,000 calls per 20 s, then banned 5 minutes). */
  readonly ipLimit?: Partial<IpLimit>;
  /** How the ban looks (default `json`). */
  readonly banReply?: BanReply;
  /** App token lifetime in seconds (default 7200). */
  readonly tokenTtlSeconds?: number;
  /** The simulated clock (tests share it with the reader's context). */
  readonly clock?: SimClock;
  /** Keep a journal of legacy API calls (path, body, answer) for tests that check what was asked. */
  readonly journal?: boolean;
}

/** One legacy API call as the simulator saw it. */
export interface JournalEntry {
  readonly path: string;
  readonly body: Readonly<Record<string, unknown>>;
  /** The errcode answered (0 = ok; 88-wrapped errors are recorded by their sub_code), or `HTTP 502` etc. */
  readonly answer: number | string;
}

/** Everything the routers share: one object, so later routers (sign-in) add to it without reshaping. */
export interface DingTalkSimState {
  readonly org: SimOrg;
  readonly index: DingTalkOrgIndex;
  readonly credentials: DingTalkCredentials;
  readonly permissions: DingTalkPermissions;
  /** Departments `user/list` may read; null = the whole org. */
  readonly contactScope: ReadonlySet<number> | null;
  readonly legacyErrors: LegacyErrorShape;
  readonly expiredTokenErrcode: 40014 | 42001;
  readonly qps: number;
  readonly ipLimit: IpLimit;
  readonly banReply: BanReply;
  readonly controls: SimControls;
  /** App access tokens, owner = appKey. */
  readonly appTokens: TokenStore;
  readonly windows: RateWindows;
  readonly bans: Bans;
  /** Calls answered with a throttling error, by path (the benchmark's floor leaves them out). */
  readonly throttled: Map<string, number>;
  /** Legacy API calls, when the journal is on. */
  readonly journal: JournalEntry[] | undefined;
  /** Sign-in: registered redirect URLs, the second org, codes and user tokens. */
  readonly signIn: SignInGrants;
}

export function createState(options: DingTalkSimulatorOptions): DingTalkSimState {
  const clock = options.clock ?? new SimClock();
  const org = options.org ?? generateOrg({ people: options.people ?? 200, seed: options.seed ?? 1 });
  const faults = new Faults();
  if (options.faults !== undefined) faults.set(parseFaults(options.faults));
  // DingTalk: "有效期内重复获取会返回相同结果并自动续期" — same token, extended, while valid.
  const appTokens = new TokenStore(clock, {
    ttlSeconds: options.tokenTtlSeconds ?? 7200,
    extendOnRefetch: true,
  });
  const index = new DingTalkOrgIndex(org);
  return {
    org,
    index,
    contactScope:
      options.contactScope === undefined
        ? null
        : new Set(options.contactScope.flatMap((id) => index.subtree(id))),
    credentials: {
      appKey: options.credentials?.appKey ?? `ding${randomBytes(8).toString("hex")}`,
      appSecret: options.credentials?.appSecret ?? randomBytes(32).toString("base64url"),
      corpId: options.credentials?.corpId ?? `ding${randomBytes(8).toString("hex")}`,
    },
    permissions: {
      qyapi_get_member: true,
      qyapi_get_department_list: true,
      qyapi_get_department_member: true,
      mobile: true,
      email: true,
      ...options.permissions,
    },
    legacyErrors: options.legacyErrors ?? "wrapped",
    expiredTokenErrcode: options.expiredTokenErrcode ?? 40014,
    qps: options.qps ?? 20,
    ipLimit: { calls: 10_000, windowMs: 20_000, banMs: 300_000, ...options.ipLimit },
    banReply: options.banReply ?? "json",
    controls: { clock, faults, tokenStores: [appTokens], calls: new Map() },
    appTokens,
    windows: new RateWindows(() => clock.now()),
    bans: new Bans(() => clock.now()),
    throttled: new Map(),
    journal: options.journal === true ? [] : undefined,
    signIn: new SignInGrants(clock, options.seed ?? 1, options),
  };
}
