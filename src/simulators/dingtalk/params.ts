/**
 * Reading legacy request parameters. The topapi takes JSON, and the TOP SDKs send the same fields as a
 * form, so numbers may arrive as strings.
 */

/** An integer parameter: the number, undefined when absent, NaN when present but not an integer. */
export function intParam(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  return Number.isInteger(n) ? n : Number.NaN;
}

/** A string parameter, undefined when absent or empty. */
export function stringParam(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}
