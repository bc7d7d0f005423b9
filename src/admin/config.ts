/**
 * The `console:` config section: who may use the console and the admin API, and as which role.
 * People are named by a linked account (`SOURCE:SUBJECT`) or chosen by a policy condition (a group, a
 * department, a title — the same `when` as in policies); automation authenticates as an API client
 * with the OAuth 2.0 client-credentials grant at idbridge's own OpenID Connect provider.
 */
import { z } from "zod";
import { conditionSchema } from "../policy/schema.js";
import { ADMIN_ROLES } from "./access.js";

const roleSchema = z.enum(ADMIN_ROLES).describe("security-admin, auditor or viewer (see docs/console.md).");

const accessRuleSchema = z
  .strictObject({
    role: roleSchema,
    people: z
      .array(
        z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*:.+$/, "must be SOURCE:SUBJECT (for example ad-hq:alice)"),
      )
      .default([])
      .describe("People holding the role, each by one linked account: SOURCE:SUBJECT."),
    when: conditionSchema
      .optional()
      .describe("People holding the role by a condition on the directories (as a policy rule's `when`)."),
  })
  .refine((rule) => rule.people.length > 0 || rule.when !== undefined, {
    message: "give people, when, or both: a rule that names nobody grants nothing",
  });

const apiClientSchema = z.strictObject({
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 letters, digits, '.', '_' or '-'")
    .describe("The client id automation sends to the token endpoint."),
  clientSecret: z
    .string()
    .min(32, "must be at least 32 characters (generate one: openssl rand -base64 32)")
    .describe("Its secret; use ${ENV} rather than writing it in the file."),
  roles: z.array(roleSchema).min(1).describe("Its roles."),
});

export const consoleConfigSchema = z
  .strictObject({
    access: z
      .array(accessRuleSchema)
      .default([])
      .describe("Who may use the console and the admin API. Nobody may until a rule names them."),
    apiClients: z
      .array(apiClientSchema)
      .default([])
      .describe("Automation calling /api/v1 with a client-credentials bearer token."),
  })
  .prefault({});

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;
