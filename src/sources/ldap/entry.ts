import type { Entry } from "ldapts";

/** A search result entry with attribute names folded to lower case (servers return them in any case). */
export interface LdapEntry {
  /** The entry's DN as the server returned it. */
  readonly dn: string;
  /** Values by lower-cased attribute name (with options such as `;range=0-99` kept). */
  readonly values: ReadonlyMap<string, readonly (string | Buffer)[]>;
}

export function toLdapEntry(entry: Entry): LdapEntry {
  const values = new Map<string, (string | Buffer)[]>();
  for (const [name, value] of Object.entries(entry)) {
    if (name === "dn") continue;
    const list = Array.isArray(value) ? value : [value];
    if (list.length > 0) values.set(name.toLowerCase(), list);
  }
  return { dn: entry.dn, values };
}

/** All values of an attribute as strings. */
export function strings(entry: LdapEntry, name: string): string[] {
  return (entry.values.get(name.toLowerCase()) ?? []).map((v) =>
    typeof v === "string" ? v : v.toString("utf8"),
  );
}

/** The first value of an attribute as a string, if any. */
export function first(entry: LdapEntry, name: string): string | undefined {
  return strings(entry, name)[0];
}

/** The first value of an attribute as bytes, if any. */
export function firstBuffer(entry: LdapEntry, name: string): Buffer | undefined {
  const value = entry.values.get(name.toLowerCase())?.[0];
  if (value === undefined) return undefined;
  return typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

const SLOW_DN = /\\|\s[,=+]|[,=+]\s|^\s|\s$/;

/**
 * A DN in a form two spellings of the same DN share: lower case, no blanks around `,` `=` `+` (RFC 4514
 * allows them; AD's `member` values and entry DNs differ only in case). Escaped characters stay escaped.
 */
export function normalizeDn(dn: string): string {
  // Fast path: most DNs have neither escapes nor blanks next to a separator.
  if (!SLOW_DN.test(dn)) return dn.toLowerCase();
  let out = "";
  let pendingSpace = "";
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === "\\" && i + 1 < dn.length) {
      out += pendingSpace + ch + dn[i + 1]!;
      pendingSpace = "";
      i++;
    } else if (ch === " ") {
      pendingSpace += ch;
    } else if (ch === "," || ch === "=" || ch === "+") {
      out += ch;
      pendingSpace = "";
      while (dn[i + 1] === " ") i++;
    } else {
      out += pendingSpace + ch;
      pendingSpace = "";
    }
  }
  return out.toLowerCase();
}

/** The DN's parent (everything after the first unescaped comma), or null for a single RDN. */
export function parentDn(dn: string): string | null {
  for (let i = 0; i < dn.length; i++) {
    if (dn[i] === "\\") i++;
    else if (dn[i] === ",") return dn.slice(i + 1).trimStart();
  }
  return null;
}

/** True when `dn` is `base` or lies below it (both normalised). */
export function isWithin(dn: string, base: string): boolean {
  return dn === base || dn.endsWith(`,${base}`);
}
