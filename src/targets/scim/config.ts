import { z } from "zod";

// Only zod here: the config loader imports this module eagerly, the connector loads on demand.

/** Settings of a `scim` target (`targets[].config`): one SCIM 2.0 service provider (RFC 7643/7644). */
export const scimConfigSchema = z.strictObject({
  baseUrl: z
    .url({ protocol: /^https?$/ })
    .describe(
      "The SCIM base URL, the one `/Users`, `/Groups` and `/ServiceProviderConfig` hang off (e.g. `https://idp.example.com/scim/v2`).",
    ),
  token: z
    .string()
    .min(1)
    .describe("The bearer token the service provider issued for provisioning (RFC 6750). Use `${ENV}`."),
  userNameFrom: z
    .enum(["email", "employeeNo", "externalId"])
    .default("email")
    .describe(
      "What becomes `userName` (unique, the sign-in name at most providers): the email, the employee number, or our Person id; a user without the chosen value falls back to the Person id.",
    ),
  deprovision: z
    .enum(["disable", "delete"])
    .default("disable")
    .describe(
      "What `disable-user` does: `disable` = `active: false` (the account stays, can be enabled again; what Entra and Okta do); `delete` = `DELETE /Users/{id}` (gone for good, group memberships with it).",
    ),
  pageSize: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe(
      "`count` per page when reading /Users and /Groups; servers may return fewer (RFC 7644 §3.4.2.4).",
    ),
  membersPerPatch: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe(
      "Group members added or removed per PATCH request; large changes are split so no request grows past what servers accept.",
    ),
  requestsPerSecond: z
    .number()
    .min(0.1)
    .max(100)
    .default(10)
    .describe("Calls per second at most (reference §6.4: 10 is a safe default for SCIM services)."),
  timeoutMs: z.number().int().min(100).max(300_000).default(30_000).describe("Timeout of one HTTP call."),
});

/** A `scim` target's settings as written. */
export type ScimConfigInput = z.input<typeof scimConfigSchema>;
/** A `scim` target's settings with defaults filled. */
export type ScimConfig = z.output<typeof scimConfigSchema>;
