import { Filter } from "ldapts";

/**
 * Escapes a value for use inside an LDAP filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become `\2a`,
 * `\28`, `\29`, `\5c`, `\00`. Every value the reader puts into a filter (DNs, CSNs) goes through here.
 */
export function escapeFilterValue(value: string): string {
  return Filter.escape(value);
}

/** `(&a b …)`, dropping empty parts; a single part is returned as is. */
export function and(...filters: readonly string[]): string {
  const parts = filters.filter((f) => f !== "");
  return parts.length === 1 ? parts[0]! : `(&${parts.join("")})`;
}
