import { randomBytes } from "node:crypto";
import type { SimClock } from "../common/clock.js";
import { generateOrg, type SimOrg, type SimPerson } from "../common/org.js";
import { DingTalkOrgIndex } from "./org-index.js";

// Reference A3/A5: the 免登 code lives 5 min; the authCode's life is undocumented — 5 min too [unverified].
const CODE_TTL_MS = 5 * 60_000;
// Reference A3: user accessToken 7200 s, refreshToken 30 days.
const USER_TOKEN_TTL_S = 7200;
const REFRESH_TTL_MS = 30 * 24 * 3600_000;

/** Another DingTalk organisation whose people can sign in at the QR page with their own corpId. */
export interface ForeignOrg {
  readonly corpId: string;
  readonly org: SimOrg;
  readonly index: DingTalkOrgIndex;
}

/** A DingTalk account at the login page: a person and the organisation they sign in with. */
export interface SignedInAccount {
  readonly person: SimPerson;
  /** The organisation chosen (corpId), when the scope asked for it. */
  readonly corpId?: string;
}

/** Options of the simulator's sign-in side. */
export interface DingTalkSignInOptions {
  /** Redirect URLs registered for the app (开发配置 → 安全设置); exact match. Default: none. */
  readonly redirectUrls?: readonly string[];
  /** The second organisation: its size (default 5) and corpId (default random). */
  readonly foreignOrg?: { readonly people?: number; readonly corpId?: string };
  /** unionids that `getbyunionid` answers as external contacts (contact_type 1). */
  readonly externalContacts?: readonly string[];
}

/**
 * Codes and user tokens of the sign-in endpoints, on the simulator clock: authCodes and 免登 codes are
 * single-use and live 5 minutes; user access tokens 7200 s; refresh tokens 30 days, rotated on use.
 */
export class SignInGrants {
  readonly redirectUrls: ReadonlySet<string>;
  readonly foreign: ForeignOrg;
  readonly externalContacts: Set<string>;
  private readonly authCodes = new Map<
    string,
    { account: SignedInAccount; clientId: string; expiresAt: number }
  >();
  private readonly inAppCodes = new Map<string, { person: SimPerson; expiresAt: number }>();
  private readonly userTokens = new Map<string, { account: SignedInAccount; expiresAt: number }>();
  private readonly refreshTokens = new Map<string, { account: SignedInAccount; expiresAt: number }>();

  constructor(
    private readonly clock: SimClock,
    seed: number,
    options: DingTalkSignInOptions,
  ) {
    this.redirectUrls = new Set(options.redirectUrls ?? []);
    const org = generateOrg({ people: options.foreignOrg?.people ?? 5, seed: seed + 1000 });
    this.foreign = {
      corpId: options.foreignOrg?.corpId ?? `ding${randomBytes(8).toString("hex")}`,
      org,
      index: new DingTalkOrgIndex(org),
    };
    this.externalContacts = new Set(options.externalContacts ?? []);
  }

  /** A new authCode for the account, bound to the app that asked. */
  issueAuthCode(account: SignedInAccount, clientId: string): string {
    const code = token(16);
    this.authCodes.set(code, { account, clientId, expiresAt: this.clock.now() + CODE_TTL_MS });
    return code;
  }

  /** Consumes an authCode: the account once, null when unknown, used, expired or of another app. */
  takeAuthCode(code: unknown, clientId: string): SignedInAccount | null {
    if (typeof code !== "string") return null;
    const entry = this.authCodes.get(code);
    this.authCodes.delete(code);
    if (entry === undefined || entry.expiresAt <= this.clock.now() || entry.clientId !== clientId)
      return null;
    return entry.account;
  }

  /** A new 免登 code for a person of the org. */
  issueInAppCode(person: SimPerson): string {
    const code = token(16);
    this.inAppCodes.set(code, { person, expiresAt: this.clock.now() + CODE_TTL_MS });
    return code;
  }

  /** Consumes a 免登 code. */
  takeInAppCode(code: unknown): SimPerson | null {
    if (typeof code !== "string") return null;
    const entry = this.inAppCodes.get(code);
    this.inAppCodes.delete(code);
    return entry === undefined || entry.expiresAt <= this.clock.now() ? null : entry.person;
  }

  /** A user access token and refresh token for the account. */
  issueUserToken(account: SignedInAccount): { accessToken: string; refreshToken: string; expireIn: number } {
    const accessToken = token(24);
    const refreshToken = token(24);
    const now = this.clock.now();
    this.userTokens.set(accessToken, { account, expiresAt: now + USER_TOKEN_TTL_S * 1000 });
    this.refreshTokens.set(refreshToken, { account, expiresAt: now + REFRESH_TTL_MS });
    return { accessToken, refreshToken, expireIn: USER_TOKEN_TTL_S };
  }

  /** Consumes a refresh token (rotated: the new one comes with the new access token). */
  takeRefreshToken(value: unknown): SignedInAccount | null {
    if (typeof value !== "string") return null;
    const entry = this.refreshTokens.get(value);
    this.refreshTokens.delete(value);
    return entry === undefined || entry.expiresAt <= this.clock.now() ? null : entry.account;
  }

  /** The account of a valid user access token. */
  checkUserToken(value: string | undefined): SignedInAccount | null {
    const entry = value === undefined ? undefined : this.userTokens.get(value);
    return entry === undefined || entry.expiresAt <= this.clock.now() ? null : entry.account;
  }
}

function token(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
