/**
 * The DingTalk simulator: both API generations on one port (legacy oapi `/gettoken`, `/topapi/...` with
 * `?access_token=`; new api `/v1.0/...` with `x-acs-dingtalk-access-token`), serving a generated org with
 * DingTalk's envelopes, error codes, token lifetime, paging and rate limits (reference dingtalk-wecom.md,
 * part A). Sign-in endpoints come as another router on the same state.
 */
import express, { type Express } from "express";
import { controlRouter, listenLocal, type SimControls } from "../common/control.js";
import { orgPageRouter } from "../common/org-page.js";
import type { SimOrg } from "../common/org.js";
import {
  createDingTalkCallbackRegistration,
  dingTalkCallbackControlRouter,
  pushDingTalkEvent,
  type DingTalkCallbackRegistration,
  type DingTalkPushEvent,
  type DingTalkPushOptions,
  type DingTalkPushResult,
} from "./callbacks.js";
import { sendApiError } from "./replies.js";
import { directoryRouter } from "./routes/directory.js";
import { jsapiRouter } from "./routes/jsapi.js";
import { loginRouter } from "./routes/login.js";
import { roleRouter } from "./routes/roles.js";
import { tokenRouter } from "./routes/tokens.js";
import type { ForeignOrg } from "./sign-in-state.js";
import {
  createState,
  type DingTalkCredentials,
  type DingTalkSimState,
  type DingTalkSimulatorOptions,
  type JournalEntry,
} from "./state.js";

export type {
  DingTalkCredentials,
  DingTalkPermissions,
  DingTalkSimulatorOptions,
  IpLimit,
  JournalEntry,
} from "./state.js";
export type { BanReply, LegacyErrorShape } from "./replies.js";
export type { DingTalkSignInOptions, ForeignOrg } from "./sign-in-state.js";
export { DINGTALK_SIM_USER_COOKIE } from "./routes/jsapi.js";
export { personalEmail } from "./routes/login.js";
export type {
  DingTalkCallbackRegistration,
  DingTalkPushEvent,
  DingTalkPushOptions,
  DingTalkPushResult,
} from "./callbacks.js";

/** A DingTalk simulator, not yet listening. */
export interface DingTalkSimulator {
  /** The Express app (mount it or listen on it). */
  readonly app: Express;
  /** Clock, faults, token stores and call counters. */
  readonly controls: SimControls;
  /** The org it serves (people who left and disabled people included; DingTalk does not list them). */
  readonly org: SimOrg;
  /** The internal app's credentials. */
  readonly credentials: DingTalkCredentials;
  /** The second organisation, whose people sign in at the QR page with their own corpId. */
  readonly foreignOrg: ForeignOrg;
  /** unionids `getbyunionid` answers as external contacts (tests may add to it). */
  readonly externalContacts: Set<string>;
  /** Calls answered with a throttling error, by path. */
  readonly throttled: ReadonlyMap<string, number>;
  /** Legacy API calls (path, body, answer) when started with `journal: true`. */
  readonly journal: readonly JournalEntry[] | undefined;
  /** The `config:` of a `dingtalk` source entry pointing at this simulator at `baseUrl`. */
  sourceConfig(baseUrl: string): Record<string, unknown>;
  /** The event subscription's token and aes_key (random per simulator): a source's `callback:`. */
  readonly callback: DingTalkCallbackRegistration;
  /** Pushes a signed, encrypted event to a callback URL and checks the reply as DingTalk does. */
  pushEvent(
    url: string,
    event: DingTalkPushEvent,
    options?: DingTalkPushOptions,
  ): Promise<DingTalkPushResult>;
}

/** A DingTalk simulator listening on 127.0.0.1. */
export interface RunningDingTalkSimulator extends Omit<DingTalkSimulator, "app" | "sourceConfig"> {
  /** Base URL, e.g. http://127.0.0.1:41234 (both API generations). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  /** The `config:` of a `dingtalk` source entry pointing at this simulator. */
  sourceConfig(): Record<string, unknown>;
}

/** Builds the simulator's app and state. */
export function createDingTalkSimulator(options: DingTalkSimulatorOptions = {}): DingTalkSimulator {
  const state = createState(options);
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const callback = createDingTalkCallbackRegistration(state.credentials.appKey);
  app.use("/__simulator/callbacks", dingTalkCallbackControlRouter(callback, state.controls.clock));
  app.use("/__simulator", controlRouter(state.controls));
  app.use(tokenRouter(state));
  app.use(directoryRouter(state));
  app.use(roleRouter(state));
  app.use(loginRouter(state));
  app.use(jsapiRouter(state));
  app.use(orgPageRouter("DingTalk", state.org));
  app.use("/v1.0", (_req, res) =>
    sendApiError(res, 404, "InvalidAction.NotFound", "Specified api is not found"),
  );
  app.use((_req, res) => {
    res.status(404).json({ errcode: 404, errmsg: "not found" });
  });
  return {
    app,
    controls: state.controls,
    org: state.org,
    credentials: state.credentials,
    foreignOrg: state.signIn.foreign,
    externalContacts: state.signIn.externalContacts,
    throttled: state.throttled,
    journal: state.journal,
    sourceConfig: (baseUrl) => sourceConfigFor(state, baseUrl),
    callback,
    pushEvent: (url, event, options) =>
      pushDingTalkEvent(url, callback, event, state.controls.clock, options),
  };
}

/** Starts a simulator on 127.0.0.1 (`port` 0 or absent: any free port). */
export async function startDingTalkSimulator(
  options: DingTalkSimulatorOptions & { readonly port?: number } = {},
): Promise<RunningDingTalkSimulator> {
  const simulator = createDingTalkSimulator(options);
  const running = await listenLocal(simulator.app, options.port ?? 0);
  return {
    url: running.url,
    port: running.port,
    close: running.close,
    controls: simulator.controls,
    org: simulator.org,
    credentials: simulator.credentials,
    foreignOrg: simulator.foreignOrg,
    externalContacts: simulator.externalContacts,
    throttled: simulator.throttled,
    journal: simulator.journal,
    sourceConfig: () => simulator.sourceConfig(running.url),
    callback: simulator.callback,
    pushEvent: simulator.pushEvent,
  };
}

function sourceConfigFor(state: DingTalkSimState, baseUrl: string): Record<string, unknown> {
  const url = baseUrl.replace(/\/+$/, "");
  return {
    appKey: state.credentials.appKey,
    appSecret: state.credentials.appSecret,
    corpId: state.credentials.corpId,
    oapiBaseUrl: url,
    apiBaseUrl: url,
    loginBaseUrl: url,
    jsapiScriptUrl: `${url}/jsapi/dingtalk.open.js`,
    requestsPerSecond: state.qps,
  };
}
