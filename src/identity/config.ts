import { z } from "zod";

/**
 * The `identity:` section of the config: how accounts of different sources are recognised as one person.
 *
 * A link rule names two or more (source, attribute) pairs whose normalised values must be equal, e.g.
 * DingTalk `employeeNo` (job_number) = AD `employeeNo` (employeeID), or WeCom `username` (userid) = AD
 * `username` (sAMAccountName). Email and mobile numbers are only ever compared where every side of the
 * rule is marked `verified: true`: an address or number a person can set themselves (DingTalk's
 * `contact/users/me` email, a WeCom personal email) must never decide who someone is.
 */

const kebabId = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case (lowercase letters, digits and single dashes)");

/** Rule ids we record ourselves on links that no configured rule made. */
export const RESERVED_RULE_IDS = ["manual", "created"] as const;

/** How two values are compared after normalisation. */
export type CompareKind = "text" | "username" | "email" | "mobile";

export const COMPARE_KINDS: readonly CompareKind[] = ["text", "username", "email", "mobile"];

/** `SourcePerson` fields a rule may name directly, with the comparison each implies. */
const FIELD_KINDS: Readonly<Record<string, CompareKind>> = {
  subject: "text",
  username: "username",
  email: "email",
  mobile: "mobile",
  employeeNo: "text",
};

const ATTRIBUTE_PATTERN = /^(subject|username|email|mobile|employeeNo|(attributes|altIds)\.[^.\s][^\s]*)$/;

const termSchema = z.strictObject({
  source: kebabId.describe("Id of a configured source (sources[].id)."),
  attribute: z
    .string()
    .regex(
      ATTRIBUTE_PATTERN,
      "must be subject, username, email, mobile, employeeNo, attributes.NAME or altIds.NAME",
    )
    .describe(
      "What to compare: a normalised field (subject, username, email, mobile, employeeNo), a raw source " +
        "attribute (attributes.NAME, e.g. attributes.employeeID) or an extra stable id (altIds.unionid). " +
        "Names are never a valid link: many people share one.",
    ),
  verified: z
    .boolean()
    .default(false)
    .describe(
      "True when the organisation, not the person, sets and checks this value in this source (a mobile " +
        "number the company verified, a mailbox on the company's domain). Required for every side of a " +
        "rule that compares emails or mobile numbers.",
    ),
  domains: z
    .array(
      z
        .string()
        .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, "must be a domain such as corp.example.com")
        .transform((d) => d.toLowerCase()),
    )
    .min(1)
    .optional()
    .describe(
      "Emails only: the organisation's own mail domains. An address on any other domain (a personal or " +
        "another organisation's mailbox) is not used for linking.",
    ),
});

/** One side of a link rule: an attribute of the people of one source. */
export type LinkTerm = z.infer<typeof termSchema>;

const ruleSchema = z
  .strictObject({
    id: kebabId
      .refine((id) => !(RESERVED_RULE_IDS as readonly string[]).includes(id), {
        message: `is reserved (${RESERVED_RULE_IDS.join(", ")} are recorded by idbridge itself)`,
      })
      .describe("Stable id of the rule, recorded on every link it makes (e.g. employee-no)."),
    description: z.string().optional().describe("What the rule means, for people reading the config."),
    compare: z
      .enum(COMPARE_KINDS as [CompareKind, ...CompareKind[]])
      .optional()
      .describe(
        "How values are normalised before comparing: text (Unicode NFKC, trimmed), username (text, " +
          "case-folded), email (username, must contain @), mobile (mainland China numbers to +86XXXXXXXXXXX, " +
          "other numbers only with an explicit +country code). Default: from the first term naming " +
          "username, email or mobile; else text.",
      ),
    match: z
      .array(termSchema)
      .min(2, "a rule needs at least two sides")
      .describe("The attributes that must be equal, each of a different source."),
  })
  .superRefine((rule, ctx) => {
    const seen = new Map<string, number>();
    rule.match.forEach((term, index) => {
      const first = seen.get(term.source);
      if (first === undefined) seen.set(term.source, index);
      else
        ctx.addIssue({
          code: "custom",
          path: ["match", index, "source"],
          message: `source "${term.source}" appears twice in one rule (also match[${first}]); a rule links different sources`,
        });
    });
    const kind = compareKindOf(rule);
    rule.match.forEach((term, index) => {
      const fieldKind = FIELD_KINDS[term.attribute];
      const personal =
        kind === "email" || kind === "mobile" || fieldKind === "email" || fieldKind === "mobile";
      if (personal && !term.verified)
        ctx.addIssue({
          code: "custom",
          path: ["match", index, "verified"],
          message: `rule compares ${kind === "mobile" || fieldKind === "mobile" ? "mobile numbers" : "emails"}: every side must be verified: true (idbridge never links on an unverified email or mobile)`,
        });
      if (term.domains !== undefined && kind !== "email")
        ctx.addIssue({
          code: "custom",
          path: ["match", index, "domains"],
          message: "domains applies to rules that compare emails only",
        });
    });
  });

/** A link rule as parsed. */
export type LinkRule = z.infer<typeof ruleSchema>;

/** The `identity:` section: link rules and the primary source. */
export const identityConfigSchema = z
  .strictObject({
    primarySource: kebabId
      .optional()
      .describe(
        "The source whose values are authoritative for a person's profile (name, employee number, " +
          "departments) when sources disagree. When a new person is seen in several sources at once, the " +
          "primary source's account founds them.",
      ),
    rules: z
      .array(ruleSchema)
      .default([])
      .describe(
        "Link rules, strongest first: when several rules link an account to the same person, the first " +
          "is recorded. Without rules every account is its own person.",
      ),
  })
  .superRefine((identity, ctx) => {
    const seen = new Map<string, number>();
    identity.rules.forEach((rule, index) => {
      const first = seen.get(rule.id);
      if (first === undefined) seen.set(rule.id, index);
      else
        ctx.addIssue({
          code: "custom",
          path: ["rules", index, "id"],
          message: `duplicate rule id "${rule.id}" (also used by rules[${first}])`,
        });
    });
  })
  .describe("Linking accounts of different sources to one person (see docs/identity.md).");

/** The `identity:` section as parsed (with defaults). */
export type IdentityConfig = z.infer<typeof identityConfigSchema>;

/** The comparison a rule uses: its `compare`, else the first term's field kind, else text. */
export function compareKindOf(rule: Pick<LinkRule, "compare" | "match">): CompareKind {
  if (rule.compare !== undefined) return rule.compare;
  for (const term of rule.match) {
    const kind = FIELD_KINDS[term.attribute];
    if (kind !== undefined && kind !== "text") return kind;
  }
  return "text";
}

/**
 * Problems with source ids the identity section names that are not configured, as dotted paths under
 * `identity` (for the config loader, which knows the sources).
 */
export function checkIdentitySources(
  identity: IdentityConfig,
  sourceIds: readonly string[],
): { path: (string | number)[]; message: string }[] {
  const known = new Set(sourceIds);
  const problems: { path: (string | number)[]; message: string }[] = [];
  const unknown = (id: string) => `unknown source "${id}" (configured: ${sourceIds.join(", ") || "none"})`;
  if (identity.primarySource !== undefined && !known.has(identity.primarySource))
    problems.push({ path: ["primarySource"], message: unknown(identity.primarySource) });
  identity.rules.forEach((rule, r) =>
    rule.match.forEach((term, t) => {
      if (!known.has(term.source))
        problems.push({ path: ["rules", r, "match", t, "source"], message: unknown(term.source) });
    }),
  );
  return problems;
}
