/**
 * The policy file schema (`policies/*.yaml`): which target roles idbridge manages, the rules that grant
 * them, separation-of-duties constraints and guardrails. Every field has its default and its description
 * here, in one place; `docs/policies.md` explains them with examples.
 */
import { z } from "zod";
import { PERSON_STATUSES, type PersonStatus } from "../sources/snapshot.js";

const kebabId = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case (lowercase letters, digits and single dashes)");

const roleKey = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "must start with a letter and hold only letters, digits, - and _");

const statusSchema = z.enum(PERSON_STATUSES as [PersonStatus, ...PersonStatus[]]);

/**
 * A group in one source. The string form is `SOURCE:REF`, where REF is the group's path (an AD/LDAP DN,
 * a DingTalk role group + role), its id, or its name; the object form says which one it is.
 */
export interface GroupRef {
  /** Source id from the config. */
  readonly source: string;
  /** The group's path (AD/LDAP DN; compared case-insensitively). */
  readonly path?: string;
  /** The group's id in the source. */
  readonly id?: string;
  /** The group's name; ambiguous when two groups of the source share it. */
  readonly name?: string;
}

/** A department of one source, by id or by the `/`-separated path of names below the root. */
export interface DepartmentRef {
  /** Source id from the config. */
  readonly source: string;
  /** Department id in the source. */
  readonly id?: string;
  /** Names from the top, `/`-separated (`财务部/华东区`); the root's own name may lead or be left out. */
  readonly path?: string;
  /** Whether departments below it count too (default true). */
  readonly includeSubDepartments?: boolean;
}

/** A comparison on a string value (title, attribute). Exactly one of equals / in / matches. */
export interface ValueTest {
  /** Equal to this value. */
  readonly equals?: string;
  /** Equal to one of these values. */
  readonly in?: readonly string[];
  /** Matches this regular expression (JavaScript syntax, unanchored unless you anchor it). */
  readonly matches?: string;
}

/** A `when` condition: exactly one key. */
export interface Condition {
  /** The person's status in some source (or in `statusSource` only) is one of these. */
  readonly status?: PersonStatus | readonly PersonStatus[];
  /** Restricts `status` to one source. */
  readonly statusSource?: string;
  /** Member of this source group (transitively). */
  readonly group?: string | GroupRef;
  /** Member of this department (and, by default, of any department below it). */
  readonly department?: DepartmentRef;
  /** Leader of any department (`any`) or of this department (or one below it, by default). */
  readonly leaderOf?: "any" | DepartmentRef;
  /** Job title in some source. */
  readonly title?: string | ValueTest;
  /** A raw source attribute (`attributes` of the person in that source). */
  readonly attribute?: ValueTest & { readonly name: string; readonly source?: string };
  /** All of these hold. */
  readonly all?: readonly Condition[];
  /** At least one of these holds. */
  readonly any?: readonly Condition[];
  /** This does not hold. */
  readonly not?: Condition;
}

/** Keys that make a condition; `statusSource` only qualifies `status`. */
export const CONDITION_KINDS = [
  "status",
  "group",
  "department",
  "leaderOf",
  "title",
  "attribute",
  "all",
  "any",
  "not",
] as const;

const groupRefSchema = z.union(
  [
    z
      .string()
      .regex(
        /^[a-z0-9]+(?:-[a-z0-9]+)*:.+$/,
        "must be SOURCE:REF (for example ad-hq:CN=Cashiers,OU=Finance,DC=corp)",
      ),
    z
      .strictObject({
        source: kebabId.describe("Source id from the config."),
        path: z.string().min(1).optional().describe("The group's path: AD/LDAP DN (case-insensitive)."),
        id: z.string().min(1).optional().describe("The group's id in the source."),
        name: z.string().min(1).optional().describe("The group's name (must be unique in the source)."),
      })
      .refine((g) => [g.path, g.id, g.name].filter((v) => v !== undefined).length === 1, {
        message: "give exactly one of path, id, name",
      }),
  ],
  { error: "must be SOURCE:REF or { source, path | id | name }" },
);

const departmentRefSchema = z
  .strictObject({
    source: kebabId.describe("Source id from the config."),
    id: z.string().min(1).optional().describe("Department id in the source."),
    path: z
      .string()
      .min(1)
      .optional()
      .describe("Names from the top, /-separated (财务部/华东区); the root's name may lead or be left out."),
    includeSubDepartments: z
      .boolean()
      .optional()
      .describe("Whether departments below it count too. Default true."),
  })
  .refine((d) => (d.id === undefined) !== (d.path === undefined), {
    message: "give exactly one of id, path",
  });

const valueTestFields = {
  equals: z.string().optional().describe("Equal to this value."),
  in: z.array(z.string()).min(1).optional().describe("Equal to one of these values."),
  matches: z
    .string()
    .refine(isValidRegExp, "is not a valid regular expression")
    .optional()
    .describe("Matches this regular expression (JavaScript syntax)."),
};

function exactlyOneTest(v: ValueTest): boolean {
  return [v.equals, v.in, v.matches].filter((x) => x !== undefined).length === 1;
}

const valueTestSchema = z.strictObject(valueTestFields).refine(exactlyOneTest, {
  message: "give exactly one of equals, in, matches",
});

function isValidRegExp(source: string): boolean {
  try {
    new RegExp(source, "u");
    return true;
  } catch {
    return false;
  }
}

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z
    .strictObject({
      status: z
        .union([statusSchema, z.array(statusSchema).min(1)], {
          error: `must be one of ${PERSON_STATUSES.join(", ")}, or a list of them`,
        })
        .optional()
        .describe(`Status in some source: ${PERSON_STATUSES.join(" | ")}, or a list of them.`),
      statusSource: kebabId.optional().describe("Restricts status to this source."),
      group: groupRefSchema.optional().describe("Member (transitively) of this source group."),
      department: departmentRefSchema
        .optional()
        .describe("Member of this department (and below, by default)."),
      leaderOf: z
        .union([z.literal("any"), departmentRefSchema], { error: 'must be "any" or { source, id | path }' })
        .optional()
        .describe("Leader of any department, or of this one (and below, by default)."),
      title: z
        .union([z.string(), valueTestSchema], { error: "must be a string or { equals | in | matches }" })
        .optional()
        .describe("Job title: a string or a value test."),
      attribute: z
        .strictObject({
          name: z.string().min(1).describe("Attribute name as the source reports it."),
          source: kebabId.optional().describe("Only this source's attribute."),
          ...valueTestFields,
        })
        .refine(exactlyOneTest, { message: "give exactly one of equals, in, matches" })
        .optional()
        .describe("A raw source attribute compared with equals / in / matches."),
      all: z.array(conditionSchema).min(1).optional().describe("All of these hold."),
      any: z.array(conditionSchema).min(1).optional().describe("At least one of these holds."),
      not: conditionSchema.optional().describe("This does not hold."),
    })
    .superRefine((c, ctx) => {
      const kinds = CONDITION_KINDS.filter((k) => c[k] !== undefined);
      if (kinds.length !== 1) {
        ctx.addIssue({
          code: "custom",
          message:
            kinds.length === 0
              ? `needs one of ${CONDITION_KINDS.join(", ")}`
              : `has ${kinds.join(" and ")}; use all: [...] to combine conditions`,
        });
      }
      if (c.statusSource !== undefined && c.status === undefined) {
        ctx.addIssue({ code: "custom", path: ["statusSource"], message: "only qualifies status" });
      }
    }),
);

/** How a scoped role's scope is computed for a person. */
export const SCOPE_KINDS = ["ledDepartments", "memberDepartments", "mainDepartment"] as const;

const roleSchema = z.strictObject({
  targetRole: z.string().min(1).describe("The role's name in the target (合思: the role name, e.g. 出纳)."),
  scope: z
    .enum(["none", "department", "dimension"])
    .default("none")
    .describe(
      "none: the role applies company-wide; department / dimension: it is granted with a scope list.",
    ),
  sensitive: z
    .boolean()
    .default(false)
    .describe("Grants of a sensitive role always need a person's approval."),
  description: z.string().optional().describe("What the role allows, for reviewers."),
});

const ruleSchema = z.strictObject({
  id: kebabId.describe("Stable id of the rule; shown in lineage, explain and audit."),
  description: z.string().optional().describe("Why the rule exists, for reviewers."),
  when: conditionSchema.describe("The condition a person must meet."),
  grant: roleKey.describe("Key of a role in `roles`."),
  scope: z
    .union([
      z.enum(SCOPE_KINDS),
      z.strictObject({ values: z.array(z.string().min(1)).min(1).describe("Fixed scope items.") }),
    ])
    .optional()
    .describe(
      "Required for scoped roles: ledDepartments | memberDepartments | mainDepartment, or { values: [...] }.",
    ),
});

const sodSchema = z.strictObject({
  id: kebabId.describe("Stable id of the constraint."),
  description: z.string().optional().describe("Why these roles must not be held together."),
  roles: z
    .array(roleKey)
    .min(2)
    .describe("Role keys that must not be held together; with block, the first one listed is kept."),
  effect: z
    .enum(["block", "flag"])
    .default("block")
    .describe("block: the later conflicting grants are withheld and reported; flag: granted and reported."),
});

const thresholdSchema = (count: number, percent: number) =>
  z
    .strictObject({
      count: z.number().int().nonnegative().default(count).describe("At most this many per plan."),
      percent: z
        .number()
        .min(0)
        .max(100)
        .default(percent)
        .describe("At most this percentage of the current total per plan."),
    })
    .default({ count, percent });

const guardrailsSchema = z
  .strictObject({
    maxDisables: thresholdSchema(50, 5).describe("User disables above this need approval."),
    maxRevocations: thresholdSchema(200, 10).describe("Role revocations above this need approval."),
    maxDepartmentDisables: thresholdSchema(10, 5).describe("Department disables above this need approval."),
  })
  .default({
    maxDisables: { count: 50, percent: 5 },
    maxRevocations: { count: 200, percent: 10 },
    maxDepartmentDisables: { count: 10, percent: 5 },
  });

/** One policy file. */
export const policySchema = z.strictObject({
  version: z.literal(1).describe("Schema version; 1."),
  target: kebabId.describe("Id of the target (finance platform) this policy is for."),
  roles: z
    .record(roleKey, roleSchema)
    .describe("The catalogue of target roles idbridge manages; roles not listed here are never touched."),
  rules: z.array(ruleSchema).default([]).describe("Rules, each granting one role when its condition holds."),
  separationOfDuties: z
    .array(sodSchema)
    .default([])
    .describe("Roles that must not be held together by one person."),
  guardrails: guardrailsSchema.describe("Bounds on destructive changes per plan."),
});

export type PolicyDocument = z.output<typeof policySchema>;
export type RoleDefinition = PolicyDocument["roles"][string];
export type Rule = PolicyDocument["rules"][number];
export type RuleScope = NonNullable<Rule["scope"]>;
export type SodConstraint = PolicyDocument["separationOfDuties"][number];
export type Guardrails = PolicyDocument["guardrails"];

/** A validated policy with the file it came from. */
export type Policy = Readonly<PolicyDocument & { /** Absolute path of the policy file. */ file: string }>;
