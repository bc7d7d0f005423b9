import { z } from "zod";

// Only zod here: the config loader imports this module eagerly, the reader loads on demand.

const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/;

/** Settings of a `wecom` source (`sources[].config`): one WeCom (企业微信) corp. */
export const wecomConfigSchema = z
  .strictObject({
    corpId: z
      .string()
      .min(1)
      .describe("The corp's CorpID (企业ID), from 管理后台 → 我的企业 → 企业信息; starts with `ww`."),
    contactSecret: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The 通讯录同步 (contact sync) secret, from 管理后台 → 安全与管理 → 管理工具 → 通讯录同步. Sees the whole corp and is the only secret that may call user/list_id. Set this or `secret` + `agentId`; set both only when people sign in with the app: the directory is then read with this secret, sign-in uses the app's. Use `${ENV}`.",
      ),
    secret: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A self-built app's Secret (应用管理 → the app). Sees only the app's visible range (可见范围); apps created after 2022-06-20 get no mobile, email, gender or avatar. Needs `agentId`. Sign-in always uses this secret: WeCom gives login codes to the app, and only its token may exchange them. Use `${ENV}`.",
      ),
    agentId: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "The AgentId of the app whose `secret` is configured (required with `secret`); people sign in with this app (web login and the in-app OAuth).",
      ),
    baseUrl: z
      .url({ protocol: /^https?$/ })
      .default("https://qyapi.weixin.qq.com")
      .describe("API host; change only for a proxy or the simulator (`idbridge simulate wecom`)."),
    loginBaseUrl: z
      .url({ protocol: /^https?$/ })
      .default("https://login.work.weixin.qq.com")
      .describe(
        "Host of the web login page (`/wwlogin/sso/login`: QR code or the desktop client's quick login); change only for the simulator.",
      ),
    oauthBaseUrl: z
      .url({ protocol: /^https?$/ })
      .default("https://open.weixin.qq.com")
      .describe(
        "Host of the in-app OAuth page (`/connect/oauth2/authorize`, silent snsapi_base inside the WeCom client); change only for the simulator.",
      ),
    listing: z
      .enum(["department", "list-id"])
      .default("department")
      .describe(
        "How people are listed: `department` = department/list, then user/list per department (one call per department); `list-id` = user/list_id (10,000 rows per call, needs `contactSecret`), then user/get per person (one call per person).",
      ),
    pageSize: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(10_000)
      .describe("Rows per user/list_id call with `listing: list-id` (WeCom allows 1..10000)."),
    requestsPerMinute: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(8_000)
      .describe(
        "Calls per minute per API this reader makes at most. WeCom allows 10,000 per minute per corp and API and blocks the API for 60 s beyond that; keep room for other tools of the corp.",
      ),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(32)
      .default(4)
      .describe("Requests in flight at once (WeCom answers 45033 beyond its concurrency limit)."),
    timeoutMs: z
      .number()
      .int()
      .positive()
      .default(15_000)
      .describe("How long one request may take, in milliseconds."),
    readTags: z
      .boolean()
      .default(true)
      .describe("Read tags (标签) and their members as groups of kind `tag`."),
    employeeNoAttribute: z
      .string()
      .min(1)
      .default("工号")
      .describe("Name of the custom field (extattr) that holds the employee number."),
    callback: z
      .strictObject({
        token: z
          .string()
          .min(1, "required")
          .describe("The Token of the callback (接收事件服务器 / 通讯录同步 → 设置接收事件服务器)."),
        aesKey: z
          .string()
          .regex(ENCODING_AES_KEY, "must be the 43-character EncodingAESKey (A-Z, a-z, 0-9)")
          .describe("The EncodingAESKey (43 characters) of the same callback. Use `${ENV}`."),
      })
      .optional()
      .describe(
        "Contact-change events (change_contact) received at `/callbacks/<source id>`; the receiveid checked is `corpId`. Absent: no callback endpoint.",
      ),
  })
  .superRefine((config, ctx) => {
    if (config.contactSecret === undefined && config.secret === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["contactSecret"],
        message:
          "required: set contactSecret (the 通讯录同步 secret) or secret + agentId (a self-built app's secret)",
      });
    }
    if (config.secret !== undefined && config.agentId === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["agentId"],
        message: "required with secret (the app's AgentId)",
      });
    }
    if (config.secret === undefined && config.agentId !== undefined) {
      ctx.addIssue({ code: "custom", path: ["secret"], message: "required with agentId (the app's Secret)" });
    }
    if (config.listing === "list-id" && config.contactSecret === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["listing"],
        message:
          "list-id calls user/list_id, which only the 通讯录同步 secret may call (WeCom answers 48002 to an app secret): set contactSecret, or use listing: department",
      });
    }
  });

export type WeComConfig = z.infer<typeof wecomConfigSchema>;
