/** The `oidc` sign-in source. */
import type { SourceModule } from "../source.js";
import { oidcConfigSchema, type OidcConfig } from "./config.js";

/** The `oidc` source module. */
export const oidcSource: SourceModule<OidcConfig> = {
  type: "oidc",
  configSchema: oidcConfigSchema,
};
