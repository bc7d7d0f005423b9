import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { LineCounter, parseDocument, isNode, type Document } from "yaml";
import type { z } from "zod";
import { AppError, describeError } from "../domain/errors.js";
import { configSchema, type ParsedConfig } from "./schema.js";

/** The default config file, used when it exists and no `-c` is given. */
export const DEFAULT_CONFIG_FILE = "idbridge.yaml";

/** The configuration after defaults, `${ENV}` substitution and path resolution. Frozen. */
export type Config = Readonly<
  Omit<ParsedConfig, "store" | "keys"> & {
    /** Absolute path of the file this came from; null when running on built-in defaults. */
    file: string | null;
    store: Readonly<{ url: string; poolSize: number }>;
    keys: Readonly<{ dir: string; generateIfMissing: boolean }>;
  }
>;

export interface LoadConfigOptions {
  /** Path given with `-c`; a missing file is then an error. */
  file?: string | undefined;
  /** Environment for `${VAR}` substitution. */
  env: Readonly<Record<string, string | undefined>>;
  /** Directory used for relative paths and the default file. */
  cwd: string;
}

type Path = ReadonlyArray<string | number>;

/** Formats a path as `sources[1].config.appSecret`. */
export function formatPath(path: Path): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out === "" ? "(top level)" : out;
}

/**
 * Loads, substitutes and validates the configuration. Throws one `CONFIG_INVALID` AppError whose
 * `details` list every problem as `dotted.path: message`.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const explicit = options.file !== undefined;
  const file = resolve(options.cwd, options.file ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    if (explicit) throw new AppError("CONFIG_INVALID", `config file ${file} does not exist`);
    return resolveConfig(validate({}, null, null, options.env), null, options.cwd);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new AppError("CONFIG_INVALID", `cannot read config file ${file}: ${describeError(err)}`, {
      cause: err,
    });
  }
  return resolveConfig(parseConfigText(text, file, options.env), file, dirname(file));
}

/** Loads the configuration with this process's environment and working directory (the CLI's entry). */
export function loadConfigFromProcess(file: string | undefined): Config {
  return loadConfig({ file, env: process.env, cwd: process.cwd() });
}

/** Parses and validates YAML text; exported for tests and `config check`. */
export function parseConfigText(
  text: string,
  file: string,
  env: Readonly<Record<string, string | undefined>>,
): ParsedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const details = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return `line ${pos.line}, column ${pos.col}: ${e.message.split("\n")[0]}`;
    });
    throw new AppError("CONFIG_INVALID", `${file} is not valid YAML`, { details });
  }
  const value: unknown = doc.toJS() ?? {};
  return validate(value, doc, lineCounter, env, file);
}

function validate(
  value: unknown,
  doc: Document | null,
  lineCounter: LineCounter | null,
  env: Readonly<Record<string, string | undefined>>,
  file = "built-in defaults",
): ParsedConfig {
  const problems: string[] = [];
  const where = (path: Path): string => {
    if (!doc || !lineCounter) return "";
    const node = doc.getIn(path, true);
    const offset = isNode(node) ? node.range?.[0] : undefined;
    return offset === undefined ? "" : ` (line ${lineCounter.linePos(offset).line})`;
  };
  // A value whose ${VAR} is not set is reported once, as that; what the schema then says about the
  // empty stand-in would only repeat it.
  const unset = new Set<string>();
  const substituted = substituteEnv(value, [], env, (path, message) => {
    unset.add(formatPath(path));
    problems.push(`${formatPath(path)}: ${message}${where(path)}`);
  });
  const result = configSchema.safeParse(substituted);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      if (!unset.has(formatPath(path))) problems.push(...formatIssue(issue, where));
    }
  }
  if (problems.length > 0 || !result.success) {
    throw new AppError("CONFIG_INVALID", `${file} has ${problems.length} problem(s)`, { details: problems });
  }
  return result.data;
}

function formatIssue(issue: z.core.$ZodIssue, where: (path: Path) => string): string[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => `${formatPath([...path, key])}: unknown key${where([...path, key])}`);
  }
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) {
    return [`${formatPath(path)}: required${where(path.slice(0, -1))}`];
  }
  return [`${formatPath(path)}: ${issue.message}${where(path)}`];
}

const ENV_REF = /\$\$\{|\$\{([^}]*)\}/g;

/** Replaces `${VAR}` inside string values only (keys and other scalars are left alone); `$${` escapes. */
function substituteEnv(
  value: unknown,
  path: Path,
  env: Readonly<Record<string, string | undefined>>,
  report: (path: Path, message: string) => void,
): unknown {
  if (typeof value === "string") {
    return value.replace(ENV_REF, (match, name: string | undefined) => {
      if (name === undefined) return "${";
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        report(path, `"${match}" is not a valid environment variable reference`);
        return match;
      }
      const found = env[name];
      if (found === undefined) {
        report(path, `environment variable ${name} is not set`);
        return "";
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, [...path, i], env, report));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...path, k], env, report)]),
    );
  }
  return value;
}

function resolveConfig(parsed: ParsedConfig, file: string | null, baseDir: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const dataDir = abs(parsed.dataDir);
  let url = parsed.store.url ?? `sqlite:${resolve(dataDir, "idbridge.db")}`;
  if (url.startsWith("sqlite:") && url !== "sqlite::memory:")
    url = `sqlite:${abs(url.slice("sqlite:".length))}`;
  return deepFreeze({
    ...parsed,
    file,
    dataDir,
    policiesDir: abs(parsed.policiesDir),
    store: { ...parsed.store, url },
    keys: { ...parsed.keys, dir: abs(parsed.keys.dir ?? resolve(dataDir, "keys")) },
    sources: parsed.sources.map((source) => resolveFileKeys(source, abs)),
    targets: parsed.targets.map((target) => resolveFileKeys(target, abs)),
  });
}

/** Source settings whose key ends in `File` (caFile, certFile) are paths relative to the config file. */
function resolveFileKeys<T>(value: T, abs: (p: string) => string): T {
  if (Array.isArray(value)) return value.map((item: unknown) => resolveFileKeys(item, abs)) as T;
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) => [
      key,
      key.endsWith("File") && typeof child === "string" ? abs(child) : resolveFileKeys(child, abs),
    ]),
  ) as T;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
