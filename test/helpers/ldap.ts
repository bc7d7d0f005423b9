/** The ldap source's test configs against the run's Samba AD and slapd, and a read that closes its reader. */
import { ldapConfigSchema, type LdapConfig } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import type { DirectorySnapshot } from "../../src/sources/snapshot.js";
import type { ReadOptions, SourceContext } from "../../src/sources/source.js";
import { GROUPS, STAFF } from "../fixtures/ldap/ad-directory.js";
import { OL_GROUPS, OL_PEOPLE } from "../fixtures/ldap/openldap-directory.js";
import type { SambaInfo, SlapdInfo } from "../peers/index.js";

/** A context on the real clock whose backoff does not wait. */
export function ldapTestContext(sourceId: string): SourceContext {
  return { sourceId, now: () => new Date(), sleep: () => Promise.resolve() };
}

/** The seeded AD over LDAPS with small pages (50) and ranges (100), so paging and ranges really run. */
export function adTestConfig(info: SambaInfo, overrides: Record<string, unknown> = {}): LdapConfig {
  return ldapConfigSchema.parse({
    url: info.url,
    flavor: "ad",
    caFile: info.caFile,
    bindDn: info.bindDn,
    bindPassword: info.bindPassword,
    users: { baseDns: [STAFF] },
    groups: { baseDns: [GROUPS] },
    pageSize: 50,
    rangeSize: 100,
    ...overrides,
  });
}

/** The seeded slapd over plain LDAP (loopback) with pages of 2. */
export function openldapTestConfig(info: SlapdInfo, overrides: Record<string, unknown> = {}): LdapConfig {
  return ldapConfigSchema.parse({
    url: info.url,
    flavor: "openldap",
    insecure: true,
    bindDn: info.adminDn,
    bindPassword: info.adminPassword,
    users: { baseDns: [OL_PEOPLE] },
    groups: { baseDns: [OL_GROUPS] },
    pageSize: 2,
    extraAttributes: ["memberOf"],
    ...overrides,
  });
}

/** One read with a fresh reader, closed afterwards. */
export async function readLdap(
  context: SourceContext,
  config: LdapConfig,
  options?: ReadOptions,
): Promise<DirectorySnapshot> {
  const reader = openLdapDirectory(context, config);
  try {
    return await reader.read(options);
  } finally {
    await reader.close();
  }
}
