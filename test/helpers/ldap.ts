/**
 * The ldap source's test configs against the run's Samba AD and slapd, a read that closes its reader, and
 * the seeding of people a suite creates for itself (so the reader tests' counts stay as seeded).
 */
import { readFile } from "node:fs/promises";
import { Attribute, Change, Client } from "ldapts";
import { afterAll, beforeAll } from "vitest";
import { dateToFileTime } from "../../src/sources/ldap/ad.js";
import { ldapConfigSchema, type LdapConfig } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import type { DirectorySnapshot } from "../../src/sources/snapshot.js";
import type { ReadOptions, SourceContext } from "../../src/sources/source.js";
import { GROUPS, LOCKOUT_THRESHOLD, STAFF } from "../fixtures/ldap/ad-directory.js";
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

/** An LDAP modify step that replaces all values of `type`. */
export function replaceValues(type: string, values: string[] | Buffer[]): Change {
  return new Change({ operation: "replace", modification: new Attribute({ type, values }) });
}

/** A client bound to the Samba AD as its administrator, over LDAPS with the run's CA. */
export async function openAdAdmin(info: SambaInfo): Promise<Client> {
  const client = new Client({ url: info.url, tlsOptions: { ca: await readFile(info.caFile) } });
  await client.bind(info.bindDn, info.bindPassword);
  return client;
}

/** How {@link addAdUser} sets a user up. */
export interface AdUserSetup {
  /** The user's password; AD only takes one over LDAPS, and it must meet the complexity rules. */
  readonly password: string;
  /** Left disabled (userAccountControl 514) instead of enabled (512). */
  readonly disabled?: boolean;
  /** The account expired on 2020-01-01. */
  readonly expired?: boolean;
  /** "User must change password at next logon" (pwdLastSet 0, [MS-ADA3] Pwd-Last-Set). */
  readonly mustChangePassword?: boolean;
  /** Further attributes of the new entry (mail, employeeID, manager, …). */
  readonly attributes?: Record<string, string>;
}

/** Adds a user to the Samba AD named `sam` (sAMAccountName and CN) at `dn`, with a password set. */
export async function addAdUser(admin: Client, dn: string, sam: string, setup: AdUserSetup): Promise<void> {
  await admin.add(dn, {
    objectClass: ["top", "person", "organizationalPerson", "user"],
    cn: sam,
    sAMAccountName: sam,
    userPrincipalName: `${sam}@corp.example.test`,
    // NORMAL_ACCOUNT | ACCOUNTDISABLE until the password is set ([MS-ADTS] 2.2.16).
    userAccountControl: "514",
    ...setup.attributes,
  });
  const changes = [
    replaceValues("unicodePwd", [Buffer.from(`"${setup.password}"`, "utf16le")]),
    replaceValues("userAccountControl", [setup.disabled === true ? "514" : "512"]),
  ];
  if (setup.expired === true) {
    changes.push(replaceValues("accountExpires", [dateToFileTime(new Date("2020-01-01T00:00:00Z"))]));
  }
  if (setup.mustChangePassword === true) changes.push(replaceValues("pwdLastSet", ["0"]));
  await admin.modify(dn, changes);
}

/** Locks an AD account the way it happens: failed binds up to the domain's lockout threshold. */
export async function lockAdAccount(info: SambaInfo, dn: string): Promise<void> {
  for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
    const probe = new Client({ url: info.url, tlsOptions: { ca: await readFile(info.caFile) } });
    await probe.bind(dn, "wrong-password").catch(() => undefined);
    await probe.unbind().catch(() => undefined);
  }
}

/** An entry to add to slapd: its DN and attributes. */
export type SlapdEntry = [dn: string, attributes: Record<string, string | string[]>];

/**
 * Adds `entries` to slapd as its administrator before the suite's tests and deletes them (in reverse, so
 * children first) after them. Returns the administrator's client, for tests that change the directory.
 */
export function seedSlapdEntries(info: SlapdInfo, entries: readonly SlapdEntry[]): () => Client {
  let admin: Client | undefined;
  beforeAll(async () => {
    admin = new Client({ url: info.url });
    await admin.bind(info.adminDn, info.adminPassword);
    for (const [dn, attributes] of entries) await admin.add(dn, attributes);
  });
  afterAll(async () => {
    if (admin === undefined) return;
    for (const [dn] of [...entries].reverse()) await admin.del(dn).catch(() => undefined);
    await admin.unbind();
  });
  return () => {
    if (admin === undefined)
      throw new Error("slapd entries are seeded in beforeAll; ask for the client in a test");
    return admin;
  };
}
