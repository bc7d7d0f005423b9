import type { Request } from "express";
import { fail } from "./model.js";

/** A path id in Hesi's form `$<id>` (getting-started.md: ids in paths are prefixed with `$`). */
export function dollarId(req: Request, name = "id"): string {
  const raw = req.params[name];
  if (typeof raw !== "string" || !raw.startsWith("$") || raw.length < 2)
    fail(400, `路径参数格式不正确，应为$<id>: ${String(raw)}`);
  return raw.slice(1);
}

/** A list path parameter in Hesi's form `[id1,id2]`. */
export function bracketList(req: Request, name = "list"): string[] {
  const raw = req.params[name];
  if (typeof raw !== "string" || !raw.startsWith("[") || !raw.endsWith("]"))
    fail(400, `路径参数格式不正确，应为[id1,id2]: ${String(raw)}`);
  return raw
    .slice(1, -1)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A string query parameter. */
export function queryString(req: Request, name: string): string | undefined {
  const v = req.query[name];
  return typeof v === "string" ? v : undefined;
}

/** A boolean query parameter: "true" → true, absent → undefined, anything else → false. */
export function queryBool(req: Request, name: string): boolean | undefined {
  const v = queryString(req, name);
  return v === undefined ? undefined : v === "true";
}

/** A whole-number query parameter (NaN when unreadable, `fallback` when absent). */
export function queryInt(req: Request, name: string, fallback: number): number {
  const v = queryString(req, name);
  return v === undefined || v === "" ? fallback : Number(v);
}

/** The JSON body as an object ({} when absent). */
export function bodyOf(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  return body !== null && typeof body === "object" && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}

/** One of the allowed values of a query parameter, or the default. */
export function queryEnum<T extends string>(
  req: Request,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const v = queryString(req, name);
  if (v === undefined || v === "") return fallback;
  if (!allowed.includes(v as T)) fail(400, `参数${name}不正确: ${v}`);
  return v as T;
}
