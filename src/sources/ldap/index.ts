import type { SourceModule } from "../source.js";
import { ldapConfigSchema, type LdapConfig } from "./config.js";

/** The `ldap` source. PLACEHOLDER until its reader lands. */
export const ldapSource: SourceModule<LdapConfig> = {
  type: "ldap",
  configSchema: ldapConfigSchema,
};
