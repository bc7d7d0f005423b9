import { z } from "zod";

// Only zod here: the config loader imports this module eagerly, the reader loads on demand.

const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/;

const baseUrl = z
  .string()
  .regex(/^https?:\/\/[^/?#\s]+\/?$/i, "must be a base URL such as https://oapi.dingtalk.com (no path)");

/** Settings of a `dingtalk` source (`sources[].config`): an internal app (企业内部应用) of one DingTalk org. */
export const dingtalkConfigSchema = z.strictObject({
  appKey: z
    .string()
    .min(1, "required")
    .describe("AppKey (Client ID) of the internal app, from 开发者后台 → 应用开发 → 凭证与基础信息."),
  appSecret: z
    .string()
    .min(1, "required")
    .describe("AppSecret (Client Secret) of the same app. Use `${ENV}` to keep it out of the file."),
  corpId: z
    .string()
    .min(1)
    .optional()
    .describe(
      "CorpId of the organisation (ding…). Required for sign-in: only people of this organisation may sign in, and the in-app JSAPI asks codes for it. Shown by `sources test`.",
    ),
  oapiBaseUrl: baseUrl
    .default("https://oapi.dingtalk.com")
    .describe("Base URL of the legacy API (gettoken, topapi directory calls)."),
  apiBaseUrl: baseUrl
    .default("https://api.dingtalk.com")
    .describe("Base URL of the new API (v1.0 OAuth2 app token)."),
  loginBaseUrl: baseUrl
    .default("https://login.dingtalk.com")
    .describe("Base URL of DingTalk's sign-in page (OAuth2 /oauth2/auth, the QR code at a desktop)."),
  jsapiScriptUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/i, "must be an http(s) URL")
    .default("https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js")
    .describe(
      "The DingTalk JSAPI script the in-app sign-in page loads to ask the DingTalk client for a one-time code (dd.requestAuthCode).",
    ),
  tokenApi: z
    .enum(["api", "oapi"])
    .default("api")
    .describe(
      "Where the app access token comes from: `api` = POST /v1.0/oauth2/accessToken (current docs), `oapi` = GET /gettoken (legacy). Both issue the same 7200 s token.",
    ),
  rootDepartmentId: z
    .number()
    .int()
    .positive()
    .default(1)
    .describe("Department the walk starts from; 1 is the whole organisation."),
  requestsPerSecond: z
    .number()
    .int()
    .positive()
    .default(20)
    .describe(
      "Calls per second per API (DingTalk's documented limit for a standard org is 20 per app and API; a higher value draws errcode 90018 and waits).",
    ),
  callsPer20sPerIp: z
    .number()
    .int()
    .positive()
    .default(9000)
    .describe(
      "Calls per 20 s over all APIs. DingTalk bans an egress IP for 5 minutes above 10,000 calls in 20 s; keep a margin when other apps share the IP.",
    ),
  concurrency: z.number().int().positive().max(64).default(4).describe("Requests in flight per API at most."),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .default(15_000)
    .describe("How long one HTTP request may take, in milliseconds."),
  readRoles: z
    .boolean()
    .default(true)
    .describe("Read roles and role groups with their members (role/list, role/simplelist) as groups."),
  fetchUserDetails: z
    .boolean()
    .default(false)
    .describe(
      "Call user/get once per person for the manager (manager_userid). Off: `managers` is reported unavailable; leaders still come from user/list and department/get.",
    ),
  callback: z
    .strictObject({
      token: z
        .string()
        .min(1, "required")
        .describe(
          "The Token (签名 token) entered with the callback URL (事件订阅 → 加密 aes_key 与签名 token).",
        ),
      aesKey: z
        .string()
        .regex(ENCODING_AES_KEY, "must be the 43-character aes_key (A-Z, a-z, 0-9)")
        .describe("The aes_key (EncodingAESKey, 43 characters) entered with the callback URL. Use `${ENV}`."),
      ownerKey: z
        .string()
        .min(1)
        .optional()
        .describe(
          "Whose events these are: the AppKey when the app's 事件订阅 page registered the URL (the default), the CorpId when the URL was registered through the API. A message for any other owner is refused.",
        ),
    })
    .optional()
    .describe(
      "Contact-change events (HTTP push) received at `/callbacks/<source id>`; absent: no callback endpoint. Each event makes the bridge re-read the people or departments it names.",
    ),
});

export type DingTalkConfig = z.infer<typeof dingtalkConfigSchema>;
