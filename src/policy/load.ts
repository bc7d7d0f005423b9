/**
 * Loading and checking `policies/*.yaml`: every problem at once as `file:line: dotted.path: message`,
 * schema problems and cross-references inside a policy (unknown roles, duplicate ids) as errors;
 * references to sources, groups and departments missing from the last snapshots as warnings.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { isNode, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { formatPath } from "../config/load.js";
import { AppError, describeError } from "../domain/errors.js";
import { resolveDepartment, resolveGroup } from "./evaluate.js";
import type { DirectoryFacts } from "./facts.js";
import { policySchema, type Condition, type Policy } from "./schema.js";

type Path = ReadonlyArray<string | number>;

/** The outcome of checking a policy directory: errors make it unusable, warnings do not. */
export interface PolicyCheck {
  /** Policies that validated (one per target). */
  readonly policies: readonly Policy[];
  /** Errors, one line each: `file:line: dotted.path: message`. */
  readonly problems: readonly string[];
  /** Warnings, same form (references the snapshots do not know). */
  readonly warnings: readonly string[];
}

/**
 * Reads and validates every `*.yaml` in `dir` (sorted by name). Throws one `POLICY_INVALID` AppError whose
 * `details` list every problem of every file.
 */
export function loadPolicies(dir: string): readonly Policy[] {
  const check = checkPolicies(dir);
  if (check.problems.length > 0) {
    throw new AppError(
      "POLICY_INVALID",
      `policies in ${resolve(dir)} have ${check.problems.length} problem(s)`,
      {
        details: check.problems,
      },
    );
  }
  return check.policies;
}

/** What a check compares the policies with, when the caller has it. */
export interface CheckOptions {
  /** The last snapshots, indexed: groups and departments the policies name must be there. */
  readonly directories?: DirectoryFacts;
  /** Source ids from the config: sources the policies name must be configured. */
  readonly sourceIds?: readonly string[];
}

/**
 * Checks every policy in `dir` (for `idbridge policy check`): problems, and warnings for sources that are
 * not configured and for groups and departments the last snapshots do not hold (see {@link CheckOptions}).
 * Never throws for bad content; an unreadable directory is a problem line.
 */
export function checkPolicies(dir: string, options: CheckOptions = {}): PolicyCheck {
  const root = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(root)
      .filter((n) => n.endsWith(".yaml") || n.endsWith(".yml"))
      .sort();
  } catch (err) {
    return { policies: [], problems: [`${root}: cannot read: ${describeError(err)}`], warnings: [] };
  }
  const policies: Policy[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  if (names.length === 0) problems.push(`${root}: no policy files (*.yaml)`);
  const targets = new Map<string, string>();
  for (const name of names) {
    const file = join(root, name);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      problems.push(`${file}: cannot read: ${describeError(err)}`);
      continue;
    }
    const parsed = parsePolicyText(text, file, options);
    problems.push(...parsed.problems);
    warnings.push(...parsed.warnings);
    if (!parsed.policy) continue;
    const other = targets.get(parsed.policy.target);
    if (other !== undefined) {
      problems.push(
        `${file}:${parsed.targetLine}: target: ${parsed.policy.target} already has a policy in ${other}`,
      );
      continue;
    }
    targets.set(parsed.policy.target, file);
    policies.push(parsed.policy);
  }
  return { policies, problems, warnings };
}

/** Parses and validates one policy file's text; exported for tests and `policy check`. */
export function parsePolicyText(
  text: string,
  file: string,
  options: CheckOptions = {},
): { policy: Policy | null; problems: string[]; warnings: string[]; targetLine: number } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return `${file}:${pos.line}: (yaml): ${e.message.split("\n")[0]}`;
    });
    return { policy: null, problems, warnings: [], targetLine: 1 };
  }
  const at = (path: Path, message: string): string => {
    return `${file}:${lineOf(doc, lineCounter, path)}: ${formatPath(path)}: ${message}`;
  };
  const result = policySchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    return {
      policy: null,
      problems: result.error.issues.flatMap((i) => formatIssue(i, at)),
      warnings: [],
      targetLine: 1,
    };
  }
  const policy: Policy = deepFreeze({ ...result.data, file });
  const problems = crossReferenceProblems(policy, at);
  const warnings = referenceWarnings(policy, options, at);
  return {
    policy: problems.length === 0 ? policy : null,
    problems,
    warnings,
    targetLine: lineOf(doc, lineCounter, ["target"]),
  };
}

/** The line of the node at `path`, or of its nearest ancestor that exists (a missing key's parent). */
function lineOf(doc: Document, lineCounter: LineCounter, path: Path): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const offset = isNode(node) ? node.range?.[0] : undefined;
    if (offset !== undefined) return lineCounter.linePos(offset).line;
  }
  return 1; // an empty document: the problem is the file as a whole
}

function formatIssue(issue: z.core.$ZodIssue, at: (path: Path, message: string) => string): string[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") return issue.keys.map((key) => at([...path, key], "unknown key"));
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined"))
    return [at(path, "required")];
  if (issue.code === "invalid_key") {
    return [at(path, `invalid key: ${issue.issues.map((i) => i.message).join("; ")}`)];
  }
  if (issue.code === "invalid_union") {
    // Report the branch that got furthest (most path segments), not every alternative's complaint.
    const branches = issue.errors.map((errs) =>
      errs.filter((e) => e.code !== "invalid_type" || e.path.length > 0),
    );
    const best = branches.find((b) => b.length > 0 && b.every((e) => e.path.length > 0));
    if (best) return best.flatMap((e) => formatIssue({ ...e, path: [...path, ...e.path] }, at));
  }
  return [at(path, issue.message)];
}

function crossReferenceProblems(policy: Policy, at: (path: Path, message: string) => string): string[] {
  const problems: string[] = [];
  const roles = Object.keys(policy.roles);
  const known = (role: string): boolean => Object.hasOwn(policy.roles, role);
  const seen = new Map<string, number>();
  policy.rules.forEach((rule, i) => {
    const first = seen.get(rule.id);
    if (first !== undefined)
      problems.push(at(["rules", i, "id"], `duplicate rule id ${rule.id} (also rules[${first}])`));
    else seen.set(rule.id, i);
    const role = policy.roles[rule.grant];
    if (!known(rule.grant)) {
      problems.push(
        at(["rules", i, "grant"], `role ${rule.grant} is not in roles (known: ${roles.join(", ")})`),
      );
    } else if (role && role.scope !== "none" && rule.scope === undefined) {
      problems.push(at(["rules", i, "scope"], `required: role ${rule.grant} is ${role.scope}-scoped`));
    } else if (role && role.scope === "none" && rule.scope !== undefined) {
      problems.push(at(["rules", i, "scope"], `role ${rule.grant} is not scoped; remove scope`));
    } else if (role?.scope === "dimension" && typeof rule.scope === "string") {
      problems.push(
        at(["rules", i, "scope"], `role ${rule.grant} is dimension-scoped; give { values: [...] }`),
      );
    }
  });
  const sodIds = new Set<string>();
  policy.separationOfDuties.forEach((sod, i) => {
    if (sodIds.has(sod.id))
      problems.push(at(["separationOfDuties", i, "id"], `duplicate constraint id ${sod.id}`));
    sodIds.add(sod.id);
    sod.roles.forEach((role, j) => {
      if (!known(role))
        problems.push(at(["separationOfDuties", i, "roles", j], `role ${role} is not in roles`));
      else if (sod.roles.indexOf(role) !== j)
        problems.push(at(["separationOfDuties", i, "roles", j], `role ${role} listed twice`));
    });
  });
  const targetRoles = new Map<string, string>();
  for (const [key, role] of Object.entries(policy.roles)) {
    const other = targetRoles.get(role.targetRole);
    if (other !== undefined) {
      problems.push(
        at(["roles", key, "targetRole"], `target role ${role.targetRole} is also managed as ${other}`),
      );
    } else targetRoles.set(role.targetRole, key);
  }
  return problems;
}

/** Warnings for sources not configured and references the snapshots do not know (a typo, or deleted upstream). */
function referenceWarnings(
  policy: Policy,
  { directories, sourceIds }: CheckOptions,
  at: (path: Path, message: string) => string,
): string[] {
  const warnings: string[] = [];
  const noSnapshot = (message: string): string =>
    message.replace(/:? (not held: )?no linked account in /, ": no snapshot of source ");
  // A source that is not configured gets one warning per place; its groups and departments are not looked up.
  const configured = (source: string, where: Path): boolean => {
    if (sourceIds === undefined || sourceIds.includes(source)) return true;
    warnings.push(at(where, `source ${source} is not configured (sources: ${sourceIds.join(", ")})`));
    return false;
  };
  const visit = (condition: Condition, path: Path): void => {
    condition.all?.forEach((c, i) => visit(c, [...path, "all", i]));
    condition.any?.forEach((c, i) => visit(c, [...path, "any", i]));
    if (condition.not) visit(condition.not, [...path, "not"]);
    const sources: [string | undefined, Path][] = [
      [condition.statusSource, [...path, "statusSource"]],
      [condition.attribute?.source, [...path, "attribute", "source"]],
    ];
    for (const [source, where] of sources) {
      if (source === undefined || !configured(source, where)) continue;
      if (directories && !directories.has(source))
        warnings.push(at(where, `no snapshot of source ${source}`));
    }
    if (condition.group !== undefined) {
      const where = [...path, "group"];
      const group = condition.group;
      const source = typeof group === "string" ? group.slice(0, group.indexOf(":")) : group.source;
      if (configured(source, where) && directories) {
        const resolved = resolveGroup(group, (id) => directories.get(id));
        if ("problem" in resolved) warnings.push(at(where, noSnapshot(resolved.problem)));
      }
    }
    const department =
      condition.department ?? (condition.leaderOf === "any" ? undefined : condition.leaderOf);
    if (department !== undefined) {
      const where = [...path, condition.department !== undefined ? "department" : "leaderOf"];
      if (configured(department.source, where) && directories) {
        const resolved = resolveDepartment(department, directories.get(department.source));
        if ("problem" in resolved) warnings.push(at(where, noSnapshot(resolved.problem)));
      }
    }
  };
  policy.rules.forEach((rule, i) => visit(rule.when, ["rules", i, "when"]));
  return warnings;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
