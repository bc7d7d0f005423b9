/** The `saml` sign-in source: a corporate SAML 2.0 IdP (ADFS and others) with idbridge as the SP. */
import type { SourceModule } from "../source.js";
import { samlConfigSchema, type SamlConfig } from "./config.js";
import { openSamlSignIn } from "./sign-in.js";

export { samlConfigSchema, type SamlConfig } from "./config.js";

/** The `saml` source module. */
export const samlSource: SourceModule<SamlConfig> = {
  type: "saml",
  configSchema: samlConfigSchema,
  openSignIn: openSamlSignIn,
};
