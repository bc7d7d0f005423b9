import { z } from "zod";

/** Settings of a `ldap` source (`sources[].config`). PLACEHOLDER: filled in by the ldap reader. */
export const ldapConfigSchema = z.strictObject({});

export type LdapConfig = z.infer<typeof ldapConfigSchema>;
