/** The `ldap` source: Active Directory and OpenLDAP directories read over LDAP. */
import type { SourceModule } from "../source.js";
import { ldapConfigSchema, type LdapConfig } from "./config.js";
import { LDAP_SOURCE_TYPE, openLdapDirectory } from "./reader.js";
import { openLdapSignIn } from "./sign-in.js";

export type { LdapConfig } from "./config.js";

/** The `ldap` source module. */
export const ldapSource: SourceModule<LdapConfig> = {
  type: LDAP_SOURCE_TYPE,
  configSchema: ldapConfigSchema,
  openDirectory: openLdapDirectory,
  openSignIn: openLdapSignIn,
};
export { openLdapSignIn } from "./sign-in.js";
export {
  verifyPassword,
  type PasswordCredentials,
  type PasswordFailure,
  type PasswordFailureCode,
  type PasswordResult,
  type PasswordSuccess,
} from "./password.js";
