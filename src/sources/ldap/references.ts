/** What a search continuation reference (RFC 4511 §4.5.3) means for the completeness of a read. */
import { isWithin, normalizeDn } from "./entry.js";

/**
 * The DN a reference's LDAP URL (RFC 4516: `ldap://host/dn?…`) points at, percent-decoded; "" when the URL
 * names none (RFC 4511 §4.5.3: the client then uses the DN of the search), null when it is no LDAP URL.
 */
export function referenceDn(reference: string): string | null {
  const match = /^ldaps?:\/\/[^/?]*\/?([^?]*)/i.exec(reference.trim());
  if (match === null) return null;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return null;
  }
}

// AD's configuration partition and its DNS application partitions hold no people or groups of the domain;
// a search from the domain root meets references to them whenever the forest root is the domain.
const NON_USER_PARTITION = /^(cn=configuration|dc=domaindnszones|dc=forestdnszones)(,dc=[^,]+)+$/;

/**
 * Whether a reference met while searching under `searchBase` hides entries the read was asked for: true
 * when it points inside (or above) one of `bases` — the configured user and group base DNs — so people or
 * groups there were not read; false for AD's non-user partitions and anything outside the bases. A
 * reference whose DN cannot be read counts as inside: the read cannot show it is not.
 */
export function referenceHidesEntries(
  reference: string,
  searchBase: string,
  bases: readonly string[],
): boolean {
  const dn = referenceDn(reference);
  if (dn === null) return true;
  const key = normalizeDn(dn === "" ? searchBase : dn);
  if (NON_USER_PARTITION.test(key)) return false;
  return bases.some((base) => {
    const b = normalizeDn(base);
    return isWithin(key, b) || isWithin(b, key);
  });
}
