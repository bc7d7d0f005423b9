import express, { type Express } from "express";
import type { SimOrg } from "../common/org.js";
import { controlRouter, listenLocal, type SimControls } from "../common/control.js";
import { orgPageRouter } from "../common/org-page.js";
import {
  createWeComCallbackRegistration,
  pushWeComEvent,
  verifyWeComCallbackUrl,
  weComCallbackControlRouter,
  type WeComCallbackRegistration,
  type WeComPushEvent,
  type WeComPushOptions,
  type WeComPushResult,
} from "./callbacks.js";
import { directoryRouter } from "./routes/directory.js";
import { signInApiRouter, signInPagesRouter } from "./routes/sign-in.js";
import { tokenRouter } from "./routes/tokens.js";
import { createState, type WeComSimState, type WeComSimulatorOptions } from "./state.js";

export type { WeComSimAppOptions, WeComSimulatorOptions } from "./state.js";
export type {
  WeComCallbackRegistration,
  WeComPushEvent,
  WeComPushOptions,
  WeComPushResult,
} from "./callbacks.js";

/** The credentials of a simulated corp (generated per start unless given; test use only). */
export interface WeComSimCredentials {
  /** CorpID. */
  readonly corpId: string;
  /** The 通讯录同步 secret. */
  readonly contactSecret: string;
  /** Each app's AgentId and Secret. */
  readonly apps: readonly { readonly agentId: number; readonly secret: string }[];
}

/** Which secret `sourceConfig` puts into the source entry. */
export type WeComSourceConfigChoice =
  { readonly use?: "contact-sync" } | { readonly use: "app"; readonly agentId?: number };

/** A WeCom simulator that is not listening yet. */
export interface WeComSimulator {
  readonly app: Express;
  readonly controls: SimControls;
  readonly org: SimOrg;
  readonly credentials: WeComSimCredentials;
  /** Error replies served so far, by errcode (HTTP 502 fault replies are not counted). */
  readonly errcodes: ReadonlyMap<number, number>;
  /** The `config:` of a `sources:` entry of type `wecom` that reads this simulator at `baseUrl`. */
  sourceConfig(baseUrl: string, choice?: WeComSourceConfigChoice): Record<string, unknown>;
  /** The contact callback's Token and EncodingAESKey (random per simulator): a source's `callback:`. */
  readonly callback: WeComCallbackRegistration;
  /** Pushes a signed, encrypted `change_contact` event to a callback URL (accepted: HTTP 200 within 5 s). */
  pushEvent(url: string, event: WeComPushEvent, options?: WeComPushOptions): Promise<WeComPushResult>;
  /** Makes WeCom's URL check (GET with an encrypted echostr) against a callback URL. */
  verifyUrl(url: string, options?: WeComPushOptions): Promise<WeComPushResult>;
}

/** A listening WeCom simulator. */
export interface RunningWeComSimulator extends Omit<WeComSimulator, "app" | "sourceConfig"> {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
  sourceConfig(choice?: WeComSourceConfigChoice): Record<string, unknown>;
}

/**
 * A WeCom (企业微信) server for tests, benchmarks and the demo: `/cgi-bin/gettoken` and the contact APIs,
 * with apps, the 通讯录同步 secret, visible ranges, the 2022 restrictions, rate and concurrency limits and
 * fault injection, and sign-in: the web login page with a user picker (`/wwlogin/sso/login`, the old
 * `/wwopen/sso/qrConnect`), the silent in-app OAuth (`/connect/oauth2/authorize`, who is in the app comes
 * from the `wecom_sim_user` cookie, set by `GET /sim/sign-in-as?userid=`), trusted redirect domains and
 * single-use 5-minute codes for `auth/getuserinfo`. One origin serves every WeCom host. Admin hooks live
 * under `/__simulator/`.
 */
export function createWeComSimulator(options: WeComSimulatorOptions = {}): WeComSimulator {
  const state: WeComSimState = createState(options);
  const app = express();
  app.disable("x-powered-by");
  const callback = createWeComCallbackRegistration();
  app.use("/__simulator/callbacks", weComCallbackControlRouter(callback, state.corpId, state.controls.clock));
  app.use("/__simulator", controlRouter(state.controls));
  app.use(signInPagesRouter(state));
  app.use("/cgi-bin", tokenRouter(state));
  app.use("/cgi-bin", signInApiRouter(state));
  app.use("/cgi-bin", directoryRouter(state));
  app.use(orgPageRouter("WeCom", state.index.org));
  const credentials: WeComSimCredentials = {
    corpId: state.corpId,
    contactSecret: state.contactSecret,
    apps: state.apps.map((a) => ({ agentId: a.agentId, secret: a.secret })),
  };
  return {
    app,
    controls: state.controls,
    org: state.index.org,
    credentials,
    errcodes: state.errcodes,
    callback,
    pushEvent: (url, event, options) =>
      pushWeComEvent(url, callback, state.corpId, event, state.controls.clock, options),
    verifyUrl: (url, options) =>
      verifyWeComCallbackUrl(url, callback, state.corpId, state.controls.clock, options),
    sourceConfig(baseUrl, choice = {}) {
      if (choice.use === "app") {
        const chosen = state.apps.find((a) => choice.agentId === undefined || a.agentId === choice.agentId);
        if (chosen === undefined)
          throw new TypeError(`the simulator has no app with agentId ${choice.agentId}`);
        return {
          corpId: state.corpId,
          secret: chosen.secret,
          agentId: chosen.agentId,
          baseUrl,
          loginBaseUrl: baseUrl,
          oauthBaseUrl: baseUrl,
        };
      }
      return { corpId: state.corpId, contactSecret: state.contactSecret, baseUrl };
    },
  };
}

/** Starts a WeCom simulator on 127.0.0.1 (port 0 = any free port). */
export async function startWeComSimulator(
  options: WeComSimulatorOptions & { readonly port?: number } = {},
): Promise<RunningWeComSimulator> {
  const simulator = createWeComSimulator(options);
  const running = await listenLocal(simulator.app, options.port);
  return {
    url: running.url,
    port: running.port,
    close: () => running.close(),
    controls: simulator.controls,
    org: simulator.org,
    credentials: simulator.credentials,
    errcodes: simulator.errcodes,
    callback: simulator.callback,
    pushEvent: simulator.pushEvent,
    verifyUrl: simulator.verifyUrl,
    sourceConfig: (choice) => simulator.sourceConfig(running.url, choice),
  };
}
