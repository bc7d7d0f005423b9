/**
 * RFC 8785 (JSON Canonicalization Scheme) serialisation of plain JSON values.
 *
 * Written here rather than taken from the `canonicalize` package because it is on the hot path of
 * hashing, exporting and verifying the audit log, where the package's generic checks cost a third of the
 * time (docs/benchmarks.md). The tests compare it with `canonicalize` on awkward input.
 */

/**
 * A string member: for well-formed strings JSON.stringify gives exactly the JCS escaping (RFC 8785
 * §3.2.2.2); lone surrogates have no canonical form and are refused.
 */
export function jcsString(value: string): string {
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new TypeError("text contains a lone surrogate, which has no canonical JSON form");
  }
  return JSON.stringify(value);
}

/** RFC 8785 canonical JSON of `value`. Throws TypeError for values JSON cannot carry. */
export function jcs(value: unknown): string {
  switch (typeof value) {
    case "string":
      return jcsString(value);
    case "number":
      // RFC 8785 §3.2.2.3: ECMAScript Number serialisation, which JSON.stringify implements (-0 → 0).
      if (!Number.isFinite(value)) throw new TypeError(`${value} has no JSON form`);
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) out += `${i > 0 ? "," : ""}${jcs(value[i] ?? null)}`;
        return `${out}]`;
      }
      // RFC 8785 §3.2.3: members sorted by their names as arrays of UTF-16 code units (the default sort).
      const record = value as Record<string, unknown>;
      let out = "{";
      for (const key of Object.keys(record).sort()) {
        const member = record[key];
        if (member === undefined) continue;
        out += `${out.length > 1 ? "," : ""}${jcsString(key)}:${jcs(member)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} has no JSON form`);
  }
}
