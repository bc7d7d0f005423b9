/** The `saml` sign-in source. */
import type { SourceModule } from "../source.js";
import { samlConfigSchema, type SamlConfig } from "./config.js";

/** The `saml` source module. */
export const samlSource: SourceModule<SamlConfig> = {
  type: "saml",
  configSchema: samlConfigSchema,
};
