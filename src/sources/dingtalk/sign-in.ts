import type { z } from "zod";
import { AppError } from "../../domain/errors.js";
import { isSourceReadError } from "../builder.js";
import { abortableSleep } from "../http/abortable-sleep.js";
import { sendRequest } from "../http/send.js";
import { callVendor, type CallOutcome } from "../http/vendor-call.js";
import { clipUntrusted } from "../http/untrusted-text.js";
import {
  scriptLiteral,
  type JsapiCodeSignIn,
  type LiveStatus,
  type RedirectSignIn,
  type SignInConnector,
  type SignInContext,
  type SignInFailureCode,
  type SignInOutcome,
} from "../sign-in.js";
import type { SourceContext } from "../source.js";
import { DingTalkClient } from "./client.js";
import type { DingTalkConfig } from "./config.js";
import { fromUserDetail } from "./person.js";
import { classifyReply, type Endpoint } from "./replies.js";
import {
  byUnionIdSchema,
  contactMeSchema,
  userAccessTokenSchema,
  userDetailOrGoneSchema,
  userInfoSchema,
} from "./schemas.js";

/**
 * DingTalk sign-in (reference A3, A5). At a desktop: the OAuth2 page at login.dingtalk.com (QR code),
 * `authCode` → user access token (which names the organisation chosen) → `contact/users/me` for the
 * unionId → `getbyunionid` with the app token for the org's userid. Inside the DingTalk client: the JSAPI
 * hands the page a 免登 code → `getuserinfo` → userid. Both end with `user/get`, so the person is the one the
 * directory reader sees, and a person who left or has not activated is refused there and then.
 *
 * The `me` profile is used for its unionId only: its email and mobile are set by the user and prove nothing.
 */

const ENDPOINTS = {
  userToken: { path: "/v1.0/oauth2/userAccessToken" },
  me: { path: "/v1.0/contact/users/me" },
  // DingTalk: 60121 未找到对应员工 — the DingTalk account is not an employee of this org.
  byUnionId: {
    path: "/topapi/user/getbyunionid",
    permission: "qyapi_get_member",
    answers: new Set([60121]),
  },
  // DingTalk: 40078 不存在的临时授权码 — unknown, used or expired 免登 code.
  userInfo: { path: "/topapi/v2/user/getuserinfo", answers: new Set([40078]) },
  // DingTalk deletes people who leave: user/get then answers 60121 (or 33012 for an invalid userid).
  getUser: { path: "/topapi/v2/user/get", permission: "qyapi_get_member", answers: new Set([60121, 33012]) },
} as const satisfies Record<string, Endpoint>;

// DingTalk: getbyunionid contact_type 1 = an external contact (外部联系人), not an employee.
const EXTERNAL_CONTACT = 1;

/** A refusal found midway; turned into the outcome at the top of the attempt. */
class Refusal extends Error {
  constructor(
    readonly code: SignInFailureCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Opens the DingTalk sign-in connector. `corpId` is required: only that organisation's people may sign in. */
export function openDingTalkSignIn(context: SignInContext, config: DingTalkConfig): SignInConnector {
  const corpId = config.corpId;
  if (corpId === undefined) {
    throw new AppError(
      "CONFIG_INVALID",
      `source ${context.sourceId}: config.corpId is required for sign-in (the CorpId of the organisation whose people may sign in)`,
      { expose: true },
    );
  }
  // Every single request is bounded by the sign-in timeout as well as the source's own.
  const bounded: DingTalkConfig = { ...config, timeoutMs: Math.min(config.timeoutMs, context.timeoutMs) };
  const sourceContext: SourceContext = {
    sourceId: context.sourceId,
    now: context.now,
    sleep: abortableSleep,
  };
  const client = new DingTalkClient(sourceContext, bounded);
  const flow = new DingTalkSignIn(context, bounded, corpId, client);

  const web: RedirectSignIn = {
    kind: "redirect",
    begin: ({ callbackUrl, state }) =>
      Promise.resolve({ url: flow.authorizeUrl(callbackUrl, state), keep: {} }),
    complete: ({ params }) => flow.completeWeb(params),
  };
  const inApp: JsapiCodeSignIn = {
    kind: "jsapi-code",
    page: { scriptUrl: config.jsapiScriptUrl, script: requestAuthCode(corpId, config.appKey) },
    complete: (code) => flow.completeInApp(code),
  };
  return {
    sourceId: context.sourceId,
    web,
    inApp,
    // DingTalk's in-app browser puts "DingTalk" in its user agent.
    inAppUserAgent: /DingTalk/i,
    accountStatus: (subject) => flow.accountStatus(subject),
    close: () => Promise.resolve(),
  };
}

/**
 * The in-app page's script: DingTalk's JSAPI `dd.runtime.permission.requestAuthCode` gives a one-time
 * 免登 code for the organisation (dingtalk-wecom.md §1); the app answers `code` (older builds `authCode`).
 */
function requestAuthCode(corpId: string, clientId: string): string {
  return `function ask() {
  dd.runtime.permission.requestAuthCode({
    corpId: ${scriptLiteral(corpId)},
    clientId: ${scriptLiteral(clientId)},
    onSuccess: function (result) { send("code", String(result.code || result.authCode || "")); },
    onFail: function () { send("error", "jsapi"); }
  });
}
if (typeof dd === "undefined") { send("error", "no-jsapi"); return; }
if (typeof dd.ready === "function") dd.ready(ask); else ask();`;
}

class DingTalkSignIn {
  constructor(
    private readonly context: SignInContext,
    private readonly config: DingTalkConfig,
    private readonly corpId: string,
    private readonly client: DingTalkClient,
  ) {}

  /** Reference A3: scope `openid corpid` so the token names the organisation the user chose. */
  authorizeUrl(callbackUrl: string, state: string): string {
    const query = new URLSearchParams({
      redirect_uri: callbackUrl,
      response_type: "code",
      client_id: this.config.appKey,
      scope: "openid corpid",
      state,
      prompt: "consent",
      corpId: this.corpId,
    });
    return `${trim(this.config.loginBaseUrl)}/oauth2/auth?${query}`;
  }

  completeWeb(params: Readonly<Record<string, string>>): Promise<SignInOutcome> {
    // Reference A3: a refusal comes back as `?error=…&state=` — no token call then.
    if (params.error !== undefined) {
      return Promise.resolve(fail("CANCELLED", `DingTalk returned error=${clipUntrusted(params.error)}`));
    }
    const code = params.authCode ?? params.code;
    if (code === undefined || code === "") {
      return Promise.resolve(fail("INVALID_RESPONSE", "DingTalk returned neither authCode nor error"));
    }
    return this.attempt(async (signal) => {
      const token = await this.callApi(
        ENDPOINTS.userToken,
        {
          method: "POST",
          body: {
            clientId: this.config.appKey,
            clientSecret: this.config.appSecret,
            code,
            grantType: "authorization_code",
          },
        },
        userAccessTokenSchema,
        signal,
      );
      if (token.corpId === undefined) {
        throw new Refusal("NOT_A_MEMBER", "DingTalk named no organisation for the account");
      }
      if (token.corpId !== this.corpId) {
        throw new Refusal(
          "FOREIGN_ORGANISATION",
          `the account signed in with organisation ${token.corpId}, not ${this.corpId}`,
        );
      }
      const me = await this.callApi(
        ENDPOINTS.me,
        { method: "GET", headers: { "x-acs-dingtalk-access-token": token.accessToken } },
        contactMeSchema,
        signal,
      );
      const member = await this.client.post(
        ENDPOINTS.byUnionId,
        { unionid: me.unionId },
        `POST ${ENDPOINTS.byUnionId.path}`,
        byUnionIdSchema,
        signal,
      );
      if (!("result" in member)) {
        throw new Refusal(
          "NOT_A_MEMBER",
          `the DingTalk account is not a member of ${this.corpId} (errcode ${member.errcode})`,
        );
      }
      if (member.result.contact_type === EXTERNAL_CONTACT) {
        throw new Refusal(
          "NOT_A_MEMBER",
          `the DingTalk account is an external contact of ${this.corpId}, not a member`,
        );
      }
      return this.signInMember(member.result.userid, signal);
    });
  }

  completeInApp(code: string): Promise<SignInOutcome> {
    if (code === "") return Promise.resolve(fail("INVALID_RESPONSE", "the page sent an empty 免登 code"));
    return this.attempt(async (signal) => {
      const info = await this.exchangeOnce(ENDPOINTS.userInfo, { code }, userInfoSchema, signal);
      if (!("result" in info)) {
        throw new Refusal(
          "INVALID_RESPONSE",
          `DingTalk does not know the 免登 code: unknown, used or expired (errcode ${info.errcode})`,
        );
      }
      return this.signInMember(info.result.userid, signal);
    });
  }

  async accountStatus(subject: string): Promise<LiveStatus> {
    const status = await this.attempt(async (signal): Promise<LiveStatus> => {
      const found = await this.getUser(subject, signal);
      // DingTalk has no disabled members: `active: false` is a member who has not activated the account.
      return found === "left" ? "left" : found.result.active === false ? "disabled" : "active";
    });
    return typeof status === "string" ? status : "unavailable";
  }

  /** The member's current state decides: gone → left, not activated → disabled, else the person. */
  private async signInMember(userid: string, signal: AbortSignal): Promise<SignInOutcome> {
    const found = await this.getUser(userid, signal);
    if (found === "left") {
      return fail("ACCOUNT_LEFT", `${userid} is no longer a member of ${this.corpId}`);
    }
    if (found.result.active === false) {
      return fail("ACCOUNT_DISABLED", `${userid} has not activated the DingTalk account`);
    }
    return {
      ok: true,
      identity: { sourceId: this.context.sourceId, subject: userid, person: fromUserDetail(found.result) },
    };
  }

  private async getUser(userid: string, signal: AbortSignal) {
    const reply = await this.client.post(
      ENDPOINTS.getUser,
      { userid },
      `POST ${ENDPOINTS.getUser.path}`,
      userDetailOrGoneSchema,
      signal,
    );
    return "result" in reply ? reply : ("left" as const);
  }

  /**
   * A legacy endpoint given a single-use code, sent once: a repeat after a lost answer would present a code
   * DingTalk may already have spent and turn "DingTalk is down" into "unknown code". Only a rejected app
   * token is fetched again and the call repeated, as the gateway refuses that before the code is read.
   * Not paced by the client's rate limits, which are for repeated reads, not one person's sign-in.
   */
  private exchangeOnce<T>(
    endpoint: Endpoint,
    body: Record<string, unknown>,
    schema: z.ZodType<T>,
    signal: AbortSignal,
  ): Promise<T> {
    const where = `POST ${endpoint.path}`;
    return callVendor({
      sourceId: this.context.sourceId,
      where,
      tokens: this.client.tokens,
      sleep: abortableSleep,
      signal,
      attempt: async (token) => {
        const url = `${trim(this.config.oapiBaseUrl)}${endpoint.path}?access_token=${encodeURIComponent(token)}`;
        const reply = await sendRequest(url, {
          method: "POST",
          body,
          timeoutMs: this.config.timeoutMs,
          signal,
        });
        return notRepeated(classifyReply(reply, endpoint, where, schema));
      },
    });
  }

  /**
   * One call of the new API with a user's code or token: never repeated (the code is single-use), and a
   * 4xx other than our app credentials means the code or token is bad.
   */
  private async callApi<T>(
    endpoint: Endpoint,
    init: { method: "GET" | "POST"; body?: unknown; headers?: Record<string, string> },
    schema: z.ZodType<T>,
    signal: AbortSignal,
  ): Promise<T> {
    const where = `${init.method} ${endpoint.path}`;
    const reply = await sendRequest(`${trim(this.config.apiBaseUrl)}${endpoint.path}`, {
      ...init,
      timeoutMs: this.config.timeoutMs,
      signal,
    });
    const outcome = classifyReply(reply, endpoint, where, schema);
    switch (outcome.kind) {
      case "ok":
        return outcome.value;
      case "token-rejected":
        throw new Refusal(
          "INVALID_RESPONSE",
          `DingTalk refused the user's access token at ${where} (${outcome.detail})`,
        );
      case "throttled":
      case "transient":
        throw new Refusal("SOURCE_UNAVAILABLE", `${where}: ${outcome.detail}`);
      case "failed": {
        const status = reply.kind === "reply" ? reply.status : 0;
        const codeRefused = outcome.reason.code === "SERVER_ERROR" && status >= 400 && status < 500;
        throw new Refusal(
          codeRefused ? "INVALID_RESPONSE" : "SOURCE_UNAVAILABLE",
          codeRefused
            ? `DingTalk refused the authorization code or token at ${where}: ${outcome.reason.message}`
            : outcome.reason.message,
        );
      }
    }
  }

  /** Runs one sign-in step under the timeout; refusals and source problems become outcomes. */
  private async attempt<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T | Failure> {
    const { timeoutMs } = this.context;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The race also bounds what the signal cannot reach, such as an app token fetch already under way.
    const deadline = new Promise<Failure>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve(fail("SOURCE_UNAVAILABLE", `DingTalk did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([
        work(controller.signal).catch((error: unknown) => this.toOutcome(error)),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private toOutcome(error: unknown): Failure {
    if (error instanceof Refusal) return fail(error.code, error.reason);
    if (isSourceReadError(error)) {
      // AUTH_FAILED names appKey/appSecret: our own credentials, so the source is unusable, not the user.
      return fail(
        "SOURCE_UNAVAILABLE",
        error.reason.code === "ABORTED"
          ? `DingTalk did not answer within ${this.context.timeoutMs} ms`
          : error.reason.message,
      );
    }
    throw error;
  }
}

type Failure = Extract<SignInOutcome, { ok: false }>;

function fail(code: SignInFailureCode, reason: string): Failure {
  return { ok: false, code, reason };
}

/** Busy, 5xx, network errors and throttling end the call: the code it carried must not be sent again. */
function notRepeated<T>(outcome: CallOutcome<T>): CallOutcome<T> {
  if (outcome.kind === "transient")
    return {
      kind: "failed",
      reason: {
        code: outcome.code ?? "SERVER_ERROR",
        message: `${outcome.detail} (not repeated: the code is single-use)`,
      },
    };
  if (outcome.kind === "throttled")
    return {
      kind: "failed",
      reason: { code: "RATE_LIMITED", message: `${outcome.detail} (not repeated: the code is single-use)` },
    };
  return outcome;
}

function trim(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, "");
}
