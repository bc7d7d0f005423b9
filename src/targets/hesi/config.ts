import { z } from "zod";

// Only zod here: the config loader imports this module eagerly, the connector loads on demand.

/** Settings of a `hesi` target (`targets[].config`): one 合思 (Hesi) tenant's open API. */
export const hesiConfigSchema = z.strictObject({
  baseUrl: z
    .url({ protocol: /^https?$/ })
    .describe(
      "The tenant's address prefix (地址前缀), e.g. `https://app.ekuaibao.com` for the standalone edition; find it with `GET /api/openapi/v2/location?corpId=`.",
    ),
  appKey: z.string().min(1).describe("The open-API appKey (合思+ → 开放接口(新)). Use `${ENV}`."),
  appSecurity: z.string().min(1).describe("The open-API appSecurity. Use `${ENV}`."),
  rolesOnly: z
    .boolean()
    .default(false)
    .describe(
      "true for the DingTalk / WeCom editions: they take staff and departments from that platform and refuse contact writes, so only role members are managed; staff are found by their DingTalk/WeCom userid.",
    ),
  onPendingApprovals: z
    .enum(["fail", "force"])
    .default("fail")
    .describe(
      "What disabling a staff with pending approvals does: `fail` = the item fails with PENDING_APPROVALS so someone hands the approvals over first; `force` = disable anyway (doCheck=false), leaving the approvals orphaned.",
    ),
  requestsPerSecond: z
    .number()
    .min(0.1)
    .max(100)
    .default(5)
    .describe(
      "Calls per second at most; Hesi documents no limit for contacts (reference §1.7), 5 is the safe default.",
    ),
  timeoutMs: z.number().int().min(100).max(300_000).default(30_000).describe("Timeout of one HTTP call."),
  launchLinkSeconds: z
    .number()
    .int()
    .min(10)
    .max(600)
    .default(90)
    .describe(
      "`/launch/<targetId>`: lifetime of the single-use sign-in link asked from Hesi for one redirect; short, since it carries a bearer token (reference §1.6b).",
    ),
});

/** A `hesi` target's settings as written. */
export type HesiConfigInput = z.input<typeof hesiConfigSchema>;
/** A `hesi` target's settings with defaults filled. */
export type HesiConfig = z.output<typeof hesiConfigSchema>;
