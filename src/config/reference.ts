import { z } from "zod";
import { SOURCE_CONFIG_SCHEMAS } from "../sources/registry.js";
import { TARGET_CONFIG_SCHEMAS } from "../targets/registry.js";
import { configSchema } from "./schema.js";

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  required?: string[];
  minimum?: number;
  maximum?: number;
}

function typeOf(node: JsonSchemaNode): string {
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  const type = Array.isArray(node.type) ? node.type.join(" \\| ") : (node.type ?? "any");
  if (type === "array" && node.items) return `list of ${typeOf(node.items)}`;
  const max = node.maximum === Number.MAX_SAFE_INTEGER ? undefined : node.maximum;
  if (max !== undefined) return `${type} (${node.minimum ?? "…"}–${max})`;
  if (node.minimum !== undefined) return `${type} (≥ ${node.minimum})`;
  return type;
}

function rows(node: JsonSchemaNode, path: string, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const name = path ? `${path}.${key}` : key;
    const isObject = child.properties !== undefined;
    const required = node.required?.includes(key) && child.default === undefined;
    const dflt =
      child.default === undefined || isObject
        ? required
          ? "**required**"
          : ""
        : `\`${JSON.stringify(child.default)}\``;
    const description = (child.description ?? "").replace(/\|/g, "\\|").replace(/</g, "&lt;");
    out.push(`| \`${name}\` | ${isObject ? "section" : typeOf(child)} | ${dflt} | ${description} |`);
    if (isObject) rows(child, name, out);
    if (child.items?.properties) rows(child.items, `${name}[]`, out);
  }
}

/** The configuration reference in Markdown, generated from the one schema (docs/config.md). */
export function renderConfigReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchemaNode;
  const out = [
    "# Configuration reference",
    "",
    "<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->",
    "",
    "idbridge reads one YAML file: `-c FILE`, else `./idbridge.yaml` if it exists, else built-in defaults.",
    "`${VAR}` inside a string value is replaced by the environment variable VAR (`$${` writes a literal `${`);",
    "keep secrets there. Unknown keys are errors. Relative paths are resolved against the config file's directory.",
    "Check a file with `idbridge config check -c FILE`.",
    "",
    "| key | type | default | description |",
    "| --- | --- | --- | --- |",
  ];
  rows(schema, "", out);
  const perType = [
    ...Object.entries(SOURCE_CONFIG_SCHEMAS).map(([type, schema]) => ["sources", type, schema] as const),
    ...Object.entries(TARGET_CONFIG_SCHEMAS).map(([type, schema]) => ["targets", type, schema] as const),
  ];
  for (const [list, type, typeSchema] of perType) {
    const node = z.toJSONSchema(typeSchema, { io: "input", unrepresentable: "any" }) as JsonSchemaNode;
    out.push("", `## \`${list}[].config\` for \`type: ${type}\``, "");
    if (node.properties === undefined) {
      out.push("Not validated yet: this sign-in source's settings arrive with sign-in support.");
      continue;
    }
    out.push("| key | type | default | description |", "| --- | --- | --- | --- |");
    rows(node, "", out);
  }
  out.push("");
  return out.join("\n");
}
