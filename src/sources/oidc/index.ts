/** The `oidc` sign-in source: a corporate OpenID Connect IdP (Azure AD, ADFS). */
import type { SourceModule } from "../source.js";
import { oidcConfigSchema, type OidcConfig } from "./config.js";
import { openOidcSignIn } from "./sign-in.js";

/** The `oidc` source module. */
export const oidcSource: SourceModule<OidcConfig> = {
  type: "oidc",
  configSchema: oidcConfigSchema,
  openSignIn: openOidcSignIn,
};
