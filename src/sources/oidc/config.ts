import { z } from "zod";
import { isLoopbackHost } from "../http/plain-http.js";

// Only zod and the import-free https rule here: the config loader imports this module eagerly,
// openid-client loads on demand.

const CLAIM_NAME = z.string().min(1);

/** Settings of an `oidc` sign-in source (`sources[].config`): a corporate OpenID Connect IdP (Azure AD, ADFS). */
export const oidcConfigSchema = z
  .strictObject({
    issuer: z
      .url({ protocol: /^https?$/ })
      .describe(
        "The IdP's issuer identifier; its metadata is discovered at `<issuer>/.well-known/openid-configuration`. Azure AD: `https://login.microsoftonline.com/<tenant id>/v2.0`; ADFS: `https://<adfs host>/adfs`.",
      ),
    clientId: z
      .string()
      .min(1)
      .describe("The client id idbridge is registered with at the IdP (Azure AD: Application (client) ID)."),
    clientSecret: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The client secret (sent as client_secret_post). Absent: a public client that proves itself with PKCE alone. Use `${ENV}`.",
      ),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "a scope token (RFC 6749 §3.3)"))
      .min(1)
      .default(["openid", "profile", "email"])
      .describe("Scopes asked for; `openid` is added when missing."),
    claims: z
      .strictObject({
        username: z
          .array(CLAIM_NAME)
          .default(["preferred_username", "upn", "unique_name"])
          .describe("Claims tried in order for the login name (Azure AD v2: preferred_username; ADFS: upn)."),
        name: z.array(CLAIM_NAME).default(["name"]).describe("Claims tried in order for the display name."),
        employeeNo: z
          .array(CLAIM_NAME)
          .default(["employee_id", "employeeid", "employee_number"])
          .describe(
            "Claims tried in order for the employee number (Azure AD: an optional claim mapped from employeeId; ADFS: a claim rule).",
          ),
      })
      .prefault({})
      .describe("Which ID token claims fill the signed-in person's fields. The subject is always `sub`."),
    emailDomains: z
      .array(
        z
          .string()
          .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, "a domain such as corp.example.com")
          .transform((domain) => domain.toLowerCase()),
      )
      .optional()
      .describe(
        "Email domains the organisation vouches for: a verified email outside them is dropped. Absent: any verified email is kept.",
      ),
    allowInsecureHttp: z
      .boolean()
      .default(false)
      .describe(
        "Allow an `http:` issuer on a loopback address (tests, a local IdP). Never for a real IdP: tokens would travel in clear text.",
      ),
  })
  .superRefine((config, ctx) => {
    const url = new URL(config.issuer);
    if (url.protocol === "http:") {
      if (!config.allowInsecureHttp) {
        ctx.addIssue({
          code: "custom",
          path: ["issuer"],
          message: "must be https (http only with allowInsecureHttp, for a loopback test IdP)",
        });
      } else if (!isLoopbackHost(url.hostname)) {
        ctx.addIssue({
          code: "custom",
          path: ["allowInsecureHttp"],
          message: "only allowed for an issuer on a loopback address (127.0.0.1, ::1, localhost)",
        });
      }
    }
  });

export type OidcConfig = z.infer<typeof oidcConfigSchema>;
