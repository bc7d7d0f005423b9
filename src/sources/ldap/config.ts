import { z } from "zod";

// Only zod here: the config loader imports this module eagerly, the reader (ldapts) loads on demand.

const dn = z.string().min(1, "must be a DN such as OU=Staff,DC=corp,DC=example");

const filter = z
  .string()
  .regex(/^\(.*\)$/s, "must be an LDAP filter in parentheses (RFC 4515), e.g. (objectClass=user)");

const attributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, "must be an LDAP attribute name");

/** Which `SourcePerson` field each directory attribute feeds; unset fields take the flavor's default. */
const attributesSchema = z
  .strictObject({
    username: attributeName.optional().describe("Login name. Default: sAMAccountName (ad), uid (openldap)."),
    name: attributeName.optional().describe("Display name. Default: displayName (ad), cn (openldap)."),
    email: attributeName.optional().describe("Work email. Default: mail."),
    mobile: attributeName.optional().describe("Mobile number. Default: mobile."),
    employeeNo: attributeName
      .optional()
      .describe("Employee number. Default: employeeID (ad), employeeNumber (openldap)."),
    title: attributeName.optional().describe("Job title. Default: title."),
    manager: attributeName
      .optional()
      .describe("Attribute holding the DN of the person's manager. Default: manager."),
    department: attributeName
      .optional()
      .describe(
        "Attribute naming the department when `departments.from` is `attribute`. Default: department.",
      ),
  })
  .default({})
  .describe("Directory attribute for each person field; defaults depend on `flavor`.");

const departmentsSchema = z
  .strictObject({
    from: z
      .enum(["ou", "attribute", "none"])
      .default("ou")
      .describe(
        "Where departments come from: `ou` = the organizational units under the user base DNs (id = OU objectGUID/entryUUID, parent = enclosing OU); `attribute` = the value of `attributes.department` (id = the value); `none` = no departments.",
      ),
  })
  .default({ from: "ou" })
  .describe("How people are placed in departments.");

const timeoutsSchema = z
  .strictObject({
    connectMs: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe("How long to wait for the TCP/TLS connection, in milliseconds."),
    operationMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe("How long one LDAP operation (bind, one page of a search) may take, in milliseconds."),
  })
  .default({ connectMs: 10_000, operationMs: 60_000 })
  .describe("Network timeouts.");

/** Settings of an `ldap` source (`sources[].config`): Active Directory or OpenLDAP. */
export const ldapConfigSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^ldaps?:\/\/[^/?#\s]+\/?$/i, "must be ldaps://host[:port] or ldap://host[:port]")
      .describe(
        "Server URL, `ldaps://dc1.corp.example:636` (TLS) or `ldap://host:389` (then `startTls: true`, or `insecure: true`).",
      ),
    flavor: z
      .enum(["ad", "openldap"])
      .describe(
        "Server kind: `ad` (Active Directory, Samba AD) or `openldap`. Decides the subject attribute (objectGUID / entryUUID), status rules, nested-group resolution and defaults.",
      ),
    startTls: z
      .boolean()
      .default(false)
      .describe("Upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before binding."),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "PEM file with the CA certificate(s) that signed the server's certificate, relative to the config file. Without it the system CAs are used. TLS certificates and host names are always verified.",
      ),
    insecure: z
      .boolean()
      .default(false)
      .describe(
        "Allow `ldap://` without StartTLS: the password and all data cross the network in clear text. Only for test labs.",
      ),
    bindDn: z
      .string()
      .min(1)
      .describe(
        "The service account to bind as: a DN, or for AD also `user@REALM` / `DOMAIN\\user`. It needs read access to the users, groups and OUs (see docs/sources-ldap.md).",
      ),
    bindPassword: z.string().min(1).describe("The service account's password; use `${ENV_VAR}`."),
    users: z
      .strictObject({
        baseDns: z.array(dn).min(1).describe("Where people are searched (subtree)."),
        filter: filter
          .optional()
          .describe(
            "Which entries are people. Default: (&(objectCategory=person)(objectClass=user)) (ad), (objectClass=inetOrgPerson) (openldap).",
          ),
      })
      .describe("Where the people are."),
    groups: z
      .strictObject({
        baseDns: z
          .array(dn)
          .default([])
          .describe("Where groups are searched (subtree). Empty: no groups are read."),
        filter: filter
          .optional()
          .describe(
            "Which entries are groups. Default: (objectClass=group) (ad), (|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)) (openldap).",
          ),
      })
      .default({ baseDns: [] })
      .describe("Where the groups are; memberships are resolved transitively to people."),
    departments: departmentsSchema,
    attributes: attributesSchema,
    extraAttributes: z
      .array(attributeName)
      .default([])
      .describe("Further attributes kept in each person's `attributes` for policy conditions."),
    pageSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .describe(
        "Entries per page of the paged search (RFC 2696, control 1.2.840.113556.1.4.319); always requested. AD caps it at MaxPageSize (1000).",
      ),
    rangeSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1500)
      .describe(
        "Values per ranged retrieval of a group's `member` attribute (AD `member;range=0-1499`); AD caps it at MaxValRange (1500).",
      ),
    timeouts: timeoutsSchema,
  })
  .superRefine((config, ctx) => {
    const tls = config.url.toLowerCase().startsWith("ldaps://");
    if (tls && config.startTls) {
      ctx.addIssue({
        code: "custom",
        path: ["startTls"],
        message: "cannot be used with an ldaps:// URL, which is TLS already",
      });
    }
    if (!tls && !config.startTls && !config.insecure) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message:
          "ldap:// sends the password in clear text: use ldaps://, or set startTls: true, or (test labs only) insecure: true",
      });
    }
  })
  .describe("An Active Directory or OpenLDAP directory read over LDAP.");

export type LdapConfig = z.infer<typeof ldapConfigSchema>;
