import { z } from "zod";
import { plainHttpProblem } from "../http/plain-http.js";

// Only zod here: the config loader imports this module eagerly, node-saml loads when the source opens.

/** NameID formats idbridge accepts as a stable subject; transient ids change at every sign-in. */
export const NAME_ID_FORMATS = [
  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
  "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
  "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
] as const;

const attributeName = z.string().min(1, "must be a SAML attribute Name (a claim URI or a plain name)");

/** Which `SourcePerson` field each SAML attribute feeds. */
const attributesSchema = z
  .strictObject({
    username: attributeName
      .default("uid")
      .describe(
        "Attribute holding the login name. Default: uid (ADFS: http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn or a custom claim).",
      ),
    name: attributeName
      .default("displayName")
      .describe(
        "Attribute holding the display name. Default: displayName (ADFS: http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name).",
      ),
    email: attributeName
      .default("email")
      .describe(
        "Attribute holding the work email. Default: email (ADFS: http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress).",
      ),
    employeeNo: attributeName
      .optional()
      .describe("Attribute holding the employee number. Default: none (not mapped)."),
    groups: attributeName
      .default("groups")
      .describe(
        "Multi-valued attribute holding the person's groups, given to policies as the `groups` attribute. Default: groups (ADFS: http://schemas.xmlsoap.org/claims/Group).",
      ),
  })
  .default({ username: "uid", name: "displayName", email: "email", groups: "groups" })
  .describe("The SAML attribute (claim) behind each person field.");

/**
 * Settings of a `saml` sign-in source: a corporate SAML 2.0 IdP (ADFS, Keycloak, Shibboleth, …) with
 * idbridge as the SP. Signed responses and signed assertions are always required and cannot be turned
 * off; so is `InResponseTo` for SP-initiated sign-in.
 */
export const samlConfigSchema = z
  .strictObject({
    idpMetadataUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "URL of the IdP's SAML metadata (ADFS: https://adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml). The entity id, the HTTP-Redirect SingleSignOnService and the signing certificates are read from it; it is fetched when the first sign-in starts and again after an hour. Set this, or idpEntityId + idpSsoUrl + idpCert/idpCertFile.",
      ),
    idpEntityId: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The IdP's entity id: the Issuer every response and assertion must carry. Overrides the metadata's when both are set.",
      ),
    idpSsoUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe("The IdP's SingleSignOnService URL for the HTTP-Redirect binding (without metadata)."),
    idpCert: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The IdP's signing certificate, PEM or bare base64 (without metadata). Use idpCertFile to keep it out of the config file.",
      ),
    idpCertFile: z
      .string()
      .min(1)
      .optional()
      .describe("Path of a file holding the IdP's signing certificate in PEM (without metadata)."),
    spEntityId: z
      .string()
      .min(1)
      .optional()
      .describe(
        "idbridge's entity id at the IdP (the Audience it must put in assertions). Default: <publicUrl>/saml/<sourceId>/metadata, which is also where the SP metadata is served.",
      ),
    nameIdFormat: z
      .enum(NAME_ID_FORMATS)
      .default("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
      .describe(
        "The NameID format idbridge asks for and requires; the NameID becomes the person's subject of this source, so it must never change for a person. Transient is not accepted.",
      ),
    attributes: attributesSchema,
    allowUnsolicited: z
      .boolean()
      .default(false)
      .describe(
        "Accept IdP-initiated (unsolicited) responses. Off by default: a response that no sign-in of ours asked for is refused, which stops a stolen or injected response from starting a session.",
      ),
    clockSkewSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(60)
      .describe(
        "How far the IdP's clock may differ from ours when NotBefore and NotOnOrAfter are checked, in seconds (at most 300).",
      ),
    allowInsecureHttp: z
      .boolean()
      .default(false)
      .describe(
        "Allow `http:` for idpMetadataUrl, idpSsoUrl and the metadata's SingleSignOnService on a loopback address (tests, a local IdP). Never for a real IdP: whoever sits in between could swap the signing certificate in the metadata.",
      ),
  })
  .superRefine((config, ctx) => {
    for (const key of ["idpMetadataUrl", "idpSsoUrl"] as const) {
      const url = config[key];
      const problem = url === undefined ? null : plainHttpProblem(url, config.allowInsecureHttp);
      if (problem !== null)
        ctx.addIssue({
          code: "custom",
          path: [problem.at === "url" ? key : problem.at],
          message: problem.message,
        });
    }
    if (config.idpMetadataUrl !== undefined) {
      for (const key of ["idpSsoUrl", "idpCert", "idpCertFile"] as const) {
        if (config[key] !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: "comes from idpMetadataUrl: set either the metadata URL or the IdP's settings by hand",
          });
        }
      }
      return;
    }
    if (config.idpEntityId === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["idpEntityId"],
        message: "required without idpMetadataUrl: set idpMetadataUrl, or idpEntityId + idpSsoUrl + idpCert",
      });
    }
    if (config.idpSsoUrl === undefined) {
      ctx.addIssue({ code: "custom", path: ["idpSsoUrl"], message: "required without idpMetadataUrl" });
    }
    if ((config.idpCert === undefined) === (config.idpCertFile === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["idpCert"],
        message: "set exactly one of idpCert and idpCertFile when there is no idpMetadataUrl",
      });
    }
  })
  .describe(
    "A corporate SAML 2.0 IdP; idbridge is the SP. Signed responses and assertions are always required.",
  );

export type SamlConfig = z.infer<typeof samlConfigSchema>;
