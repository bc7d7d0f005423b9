/**
 * How an `ldap` source turns a person entry into a {@link SourcePerson}: shared by the directory reader and
 * the sign-in connector, so a person signed in looks exactly like the same person read.
 */
import { createHash } from "node:crypto";
import type { SourcePerson } from "../snapshot.js";
import { activeDirectory } from "./ad.js";
import type { LdapConfig } from "./config.js";
import { first, strings, type LdapEntry } from "./entry.js";
import { openLdap } from "./openldap.js";
import type { LdapVendor, MappedField } from "./vendor.js";

/** Which entries are organizational units (departments when `departments.from` is `ou`). */
export const OU_FILTER = "(objectClass=organizationalUnit)";

const OPTIONAL_FIELDS = ["username", "name", "email", "mobile", "employeeNo", "title"] as const;

/** The config with the flavor's defaults filled in. */
export interface ResolvedLdapConfig {
  /** The flavor's quirks. */
  readonly vendor: LdapVendor;
  /** Which entries are people. */
  readonly userFilter: string;
  /** Which entries are groups. */
  readonly groupFilter: string;
  /** Attribute per person field. */
  readonly attributes: Readonly<Record<MappedField, string>>;
  /** Attributes requested for every person. */
  readonly personAttributes: readonly string[];
  /** Identifies what a cursor was taken over; a cursor of another scope is not continued. */
  readonly scope: string;
}

/** Fills in the flavor's defaults. */
export function resolveLdapConfig(config: LdapConfig): ResolvedLdapConfig {
  const vendor = config.flavor === "ad" ? activeDirectory : openLdap;
  const attributes = { ...vendor.defaultAttributes, ...config.attributes };
  const userFilter = config.users.filter ?? vendor.defaultUserFilter;
  const groupFilter = config.groups.filter ?? vendor.defaultGroupFilter;
  const personAttributes = [
    ...new Set([
      vendor.subjectAttribute,
      ...Object.entries(attributes)
        .filter(([field]) => field !== "department" || config.departments.from === "attribute")
        .map(([, name]) => name),
      ...vendor.statusAttributes,
      ...vendor.changeAttributes,
      ...config.extraAttributes,
    ]),
  ];
  const scope = createHash("sha256")
    .update(
      JSON.stringify([
        config.flavor,
        config.url.toLowerCase(),
        config.users.baseDns,
        userFilter,
        config.groups.baseDns,
        groupFilter,
        config.departments.from,
      ]),
    )
    .digest("hex")
    .slice(0, 16);
  return { vendor, userFilter, groupFilter, attributes, personAttributes, scope };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A person as read, before DNs (manager, OU) are turned into subjects and department ids. */
export interface MappedPerson {
  /** The person; `departments` and `managers` are empty until the caller fills them in. */
  readonly person: Mutable<SourcePerson>;
  /** The entry's DN. */
  readonly dn: string;
  /** DNs in the manager attribute. */
  readonly managerDns: readonly string[];
  /** The department attribute's value, when `departments.from` is `attribute`. */
  readonly departmentValue?: string;
}

/** Maps a person entry (read with `personAttributes`) whose subject is already known, judging status at `now`. */
export function mapPersonEntry(
  entry: LdapEntry,
  subject: string,
  config: LdapConfig,
  resolved: ResolvedLdapConfig,
  now: Date,
): MappedPerson {
  const a = resolved.attributes;
  const attributes: Record<string, string | readonly string[]> = { dn: entry.dn };
  for (const name of config.extraAttributes) {
    const values = strings(entry, name);
    if (values.length === 1) attributes[name] = values[0]!;
    else if (values.length > 1) attributes[name] = values;
  }
  const department = config.departments.from === "attribute" ? first(entry, a.department) : undefined;
  const person: Mutable<SourcePerson> = {
    subject,
    departments: [],
    managers: [],
    status: resolved.vendor.statusOf(entry, now),
    attributes,
  };
  for (const field of OPTIONAL_FIELDS) {
    const value = first(entry, a[field]);
    if (value !== undefined && value !== "") person[field] = value;
  }
  return {
    dn: entry.dn,
    managerDns: strings(entry, a.manager),
    ...(department === undefined || department === "" ? {} : { departmentValue: department }),
    person,
  };
}
