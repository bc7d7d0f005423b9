import { z } from "zod";
import { AppError } from "../../domain/errors.js";
import { isSourceReadError } from "../builder.js";
import { abortableSleep } from "../http/abortable-sleep.js";
import type { RetryPolicy } from "../http/vendor-call.js";
import type {
  FlowInput,
  LiveStatus,
  RedirectSignIn,
  RedirectStart,
  SignInConnector,
  SignInContext,
  SignInOutcome,
} from "../sign-in.js";
import type { SourceContext } from "../source.js";
import { WeComClient } from "./client.js";
import type { WeComConfig } from "./config.js";
import { toPerson } from "./map.js";
import { userSchema, type WeComUser } from "./schemas.js";

/** WX-DOC 91022 / the reference B2: `state` is at most 128 bytes of [a-zA-Z0-9]. */
const STATE_RULE = /^[A-Za-z0-9]{1,128}$/;

/** WX-DOC 91022: a login code is at most 512 bytes; anything longer was not made by WeCom. */
const MAX_CODE_BYTES = 512;

/**
 * A person waits at the browser: one quick repeat after a busy or 5xx reply, no waiting out a 45009
 * minute block (that is SOURCE_UNAVAILABLE at once), one token refresh.
 */
const SIGN_IN_POLICY: RetryPolicy = {
  transientRetries: 1,
  throttledRetries: 0,
  tokenRefreshes: 1,
  baseDelayMs: 200,
  maxDelayMs: 1_000,
};

/**
 * auth/getuserinfo spends the login code, so it is sent once: a repeat after a lost answer would present a
 * spent code and turn "WeCom is down" into "code refused". Only a rejected app token is fetched again and
 * the call repeated, as WeCom refuses that before it reads the code.
 */
const CODE_EXCHANGE_POLICY: RetryPolicy = {
  transientRetries: 0,
  throttledRetries: 0,
  tokenRefreshes: 1,
  baseDelayMs: 200,
  maxDelayMs: 1_000,
};

// WX-DOC 96442: a member comes back with userid (whether or not in the app's visible range), anyone else
// with openid (+ external_userid).
const userInfoReply = z.looseObject({
  userid: z.string().min(1).optional(),
  openid: z.string().min(1).optional(),
});

/** 40029: unknown, expired (5 min), reused or another app's code; 42022 "code已经被使用过" (WXJ). */
const CODE_REFUSED: ReadonlyMap<number, "code-refused"> = new Map([
  [40029, "code-refused"],
  [42022, "code-refused"],
]);

/** user/get answers that are about the person, not the source. */
const USER_GET_HANDLED: ReadonlyMap<number, "outside-app" | "gone"> = new Map([
  [60011, "outside-app"],
  [60111, "gone"],
  [40003, "gone"],
]);

type Failure = Extract<SignInOutcome, { ok: false }>;
const fail = (code: Failure["code"], reason: string): Failure => ({ ok: false, code, reason });
const isFailure = (value: unknown): value is Failure =>
  typeof value === "object" && value !== null && (value as { ok?: unknown }).ok === false;

/**
 * Opens the WeCom sign-in connector: web login (`wwlogin/sso/login`, QR code or the desktop client's quick
 * login) and the silent in-app OAuth (`snsapi_base`), both with the app `agentId` / `secret`, plus the live
 * account status. Throws a CONFIG_INVALID AppError when the source has no app to sign in with.
 */
export function openWeComSignIn(context: SignInContext, config: WeComConfig): SignInConnector {
  if (config.agentId === undefined || config.secret === undefined) {
    throw new AppError(
      "CONFIG_INVALID",
      `source ${context.sourceId}: sign-in with WeCom needs sources[].config.agentId and sources[].config.secret (the AgentId and Secret of the self-built app people sign in with; WeCom gives login codes to an app, and the 通讯录同步 secret cannot exchange them)`,
      { expose: true },
    );
  }
  const agentId = config.agentId;
  const sourceContext: SourceContext = {
    sourceId: context.sourceId,
    now: context.now,
    sleep: abortableSleep,
  };
  const signInConfig = { ...config, timeoutMs: Math.min(config.timeoutMs, context.timeoutMs) };
  const client = new WeComClient(sourceContext, signInConfig, { secret: "app", policy: SIGN_IN_POLICY });
  // A client's policy covers all its calls (gettoken too), so the code exchange has its own.
  const exchange = new WeComClient(sourceContext, signInConfig, {
    secret: "app",
    policy: CODE_EXCHANGE_POLICY,
  });
  const corp = config.corpId;
  const app = `app ${agentId} of corp ${corp}`;

  /** Runs `work` bounded by the context's timeout; a source error or the timeout is SOURCE_UNAVAILABLE. */
  async function bounded<T>(where: string, work: (signal: AbortSignal) => Promise<T>): Promise<T | Failure> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Failure>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve(fail("SOURCE_UNAVAILABLE", `WeCom did not answer ${where} within ${context.timeoutMs} ms`));
      }, context.timeoutMs);
    });
    try {
      return await Promise.race([work(controller.signal), timedOut]);
    } catch (error) {
      if (!isSourceReadError(error)) throw error;
      if (controller.signal.aborted)
        return fail("SOURCE_UNAVAILABLE", `WeCom did not answer ${where} within ${context.timeoutMs} ms`);
      const { code, message } = error.reason;
      return fail(
        "SOURCE_UNAVAILABLE",
        code === "AUTH_FAILED"
          ? `${message} (the credentials of ${app}: sources[].config.agentId / secret)`
          : message,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** user/get: the user, what WeCom said about the person instead, or SOURCE_UNAVAILABLE. */
  function readUser(userid: string): Promise<WeComUser | "outside-app" | "gone" | Failure> {
    return bounded("GET /cgi-bin/user/get", (signal) =>
      client.call(
        "/cgi-bin/user/get",
        { method: "GET", query: { userid } },
        userSchema,
        "GET /cgi-bin/user/get",
        signal,
        USER_GET_HANDLED,
      ),
    );
  }

  async function complete(
    flow: string,
    input: FlowInput & { readonly params: Readonly<Record<string, string>> },
  ): Promise<SignInOutcome> {
    const code = input.params.code;
    // WeCom redirects back without a code when the person declines or closes the login (reference B2).
    if (code === undefined || code === "")
      return fail("CANCELLED", `${flow}: WeCom came back without a code (the person cancelled)`);
    if (Buffer.byteLength(code) > MAX_CODE_BYTES)
      return fail("INVALID_RESPONSE", `${flow}: the code is longer than WeCom's ${MAX_CODE_BYTES} bytes`);

    const info = await bounded("GET /cgi-bin/auth/getuserinfo", (signal) =>
      exchange.call(
        "/cgi-bin/auth/getuserinfo",
        { method: "GET", query: { code } },
        userInfoReply,
        "GET /cgi-bin/auth/getuserinfo",
        signal,
        CODE_REFUSED,
      ),
    );
    if (info === "code-refused")
      return fail(
        "INVALID_RESPONSE",
        `${flow}: WeCom refused the code (errcode 40029: unknown, older than 5 minutes, already used or made for another app)`,
      );
    if (isFailure(info)) return info;
    const userid = info.userid;
    if (userid === undefined) {
      return info.openid !== undefined
        ? fail(
            "NOT_A_MEMBER",
            `${flow}: a WeChat user who is not a member of corp ${corp} signed in (openid, no userid)`,
          )
        : fail("INVALID_RESPONSE", `${flow}: auth/getuserinfo returned neither userid nor openid`);
    }
    // Members of a linked corp (上下游 / 互联企业) come as `CorpId/userid` (WX-DOC 96442).
    const slash = userid.indexOf("/");
    if (slash >= 0)
      return fail(
        "FOREIGN_ORGANISATION",
        `${flow}: a member of linked corp ${userid.slice(0, slash)} signed in, not of corp ${corp}`,
      );

    const user = await readUser(userid);
    if (user === "outside-app")
      return fail(
        "NOT_A_MEMBER",
        `${flow}: member ${userid} is outside the visible range of ${app} (errcode 60011)`,
      );
    if (user === "gone")
      return fail("NOT_A_MEMBER", `${flow}: member ${userid} is not in corp ${corp} any more`);
    if (isFailure(user)) return user;
    switch (user.status) {
      case 2:
        return fail("ACCOUNT_DISABLED", `${flow}: member ${userid} is disabled in WeCom (status 2)`);
      case 4:
        return fail("ACCOUNT_DISABLED", `${flow}: member ${userid} has not activated WeCom (status 4)`);
      case 5:
        return fail("ACCOUNT_LEFT", `${flow}: member ${userid} has left corp ${corp} (status 5)`);
      case 1:
        break;
    }
    // The reader's mapping: the same subject and attributes as the directory, and only what the admin set
    // (user/get); never the person's own mobile or email from auth/getuserdetail.
    return {
      ok: true,
      identity: {
        sourceId: context.sourceId,
        subject: userid,
        person: toPerson(user, config.employeeNoAttribute),
      },
    };
  }

  const web: RedirectSignIn = {
    kind: "redirect",
    begin: (input) =>
      start(config.loginBaseUrl, "/wwlogin/sso/login", input, {
        login_type: "CorpApp",
        appid: corp,
        agentid: String(agentId),
        redirect_uri: input.callbackUrl,
        state: input.state,
        lang: "zh",
      }),
    complete: (input) => complete("web login", input),
  };

  const inApp: RedirectSignIn = {
    kind: "redirect",
    begin: async (input) => {
      const started = await start(config.oauthBaseUrl, "/connect/oauth2/authorize", input, {
        appid: corp,
        redirect_uri: input.callbackUrl,
        response_type: "code",
        scope: "snsapi_base",
        state: input.state,
        agentid: String(agentId),
      });
      // WX-DOC 91022: the WeCom client only acts on the URL when it ends with #wechat_redirect.
      return { ...started, url: `${started.url}#wechat_redirect` };
    },
    complete: (input) => complete("in-app sign-in", input),
  };

  return {
    sourceId: context.sourceId,
    web,
    inApp,
    // WeCom's in-app browser puts "wxwork" in its user agent.
    inAppUserAgent: /wxwork/i,
    async accountStatus(subject: string): Promise<LiveStatus> {
      const user = await readUser(subject);
      if (user === "gone") return "not-found";
      // Outside the app's visible range the app cannot tell how the account is.
      if (user === "outside-app" || isFailure(user)) return "unavailable";
      return toPerson(user, config.employeeNoAttribute).status;
    },
    close: () => Promise.resolve(),
  };
}

async function start(
  base: string,
  path: string,
  input: FlowInput,
  query: Record<string, string>,
): Promise<RedirectStart> {
  if (!STATE_RULE.test(input.state))
    throw new TypeError("WeCom state must be 1 to 128 characters of [a-zA-Z0-9] (WX-DOC 91022)");
  const url = `${base.replace(/\/+$/, "")}${path}?${new URLSearchParams(query).toString()}`;
  return { url, keep: {} };
}
