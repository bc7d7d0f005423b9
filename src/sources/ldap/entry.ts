import type { Entry } from "ldapts";

/**
 * A search result entry as ldapts returns it: attribute names as the server spelled them (with options
 * such as `;range=0-99`), one value or an array, `[]` for a requested attribute the entry lacks.
 */
export type LdapEntry = Entry;

type Value = Entry[string];

/** An attribute's raw value, matching the name case-insensitively (servers spell names their own way). */
function lookup(entry: LdapEntry, name: string): Value | undefined {
  const exact = entry[name];
  if (exact !== undefined && name !== "dn") return exact;
  const lower = name.toLowerCase();
  for (const key in entry) {
    if (key !== "dn" && key.toLowerCase() === lower) return entry[key];
  }
  return undefined;
}

function list(value: Value | undefined): ReadonlyArray<string | Buffer> {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** True when the entry holds at least one value of the attribute. */
export function has(entry: LdapEntry, name: string): boolean {
  return list(lookup(entry, name)).length > 0;
}

/** All values of an attribute as strings. */
export function strings(entry: LdapEntry, name: string): string[] {
  return list(lookup(entry, name)).map((v) => (typeof v === "string" ? v : v.toString("utf8")));
}

/** The first value of an attribute as a string, if any. */
export function first(entry: LdapEntry, name: string): string | undefined {
  const value = list(lookup(entry, name))[0];
  return value === undefined || typeof value === "string" ? value : value.toString("utf8");
}

/** The first value of an attribute as bytes, if any. */
export function firstBuffer(entry: LdapEntry, name: string): Buffer | undefined {
  const value = list(lookup(entry, name))[0];
  if (value === undefined) return undefined;
  return typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

/** The attribute names of the entry (without `dn`). */
export function attributeNames(entry: LdapEntry): string[] {
  return Object.keys(entry).filter((key) => key !== "dn");
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

/**
 * The DN of a NameAndOptionalUID value (RFC 4517 §3.3.21, the syntax of `uniqueMember`):
 * `uid=a,dc=x#'0101'B` is `uid=a,dc=x`. A `#` inside the DN is escaped (`\#`), so only a trailing
 * unescaped `#'…'B` is the UID.
 */
export function dnOfNameAndOptionalUid(value: string): string {
  const match = /#'[01]*'B$/.exec(value);
  if (match === null) return value;
  let backslashes = 0;
  for (let i = match.index - 1; i >= 0 && value[i] === "\\"; i--) backslashes++;
  return backslashes % 2 === 0 ? value.slice(0, match.index) : value;
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

/**
 * The values of `name;range=low-high` in an entry ([MS-ADTS] 3.1.1.3.1.3.3); `high` is null when the range
 * ends in `*` (the last one). A range without values is the last one too: ldapts hands back every
 * requested attribute the entry lacks (an empty group) as `[]` under the requested name, which would
 * otherwise read as a full range with more to come.
 */
export function rangedValues(
  entry: LdapEntry,
  name: string,
): { low: number; high: number | null; values: string[] } | null {
  const prefix = `${name.toLowerCase()};range=`;
  for (const key of attributeNames(entry)) {
    if (!key.toLowerCase().startsWith(prefix)) continue;
    const match = /^(\d+)-(\d+|\*)$/.exec(key.slice(prefix.length));
    if (!match) continue;
    const values = strings(entry, key);
    return {
      low: Number(match[1]),
      high: match[2] === "*" || values.length === 0 ? null : Number(match[2]),
      values,
    };
  }
  return null;
}
