import type { SourcePerson } from "../sources/snapshot.js";
import type { CompareKind, LinkTerm } from "./config.js";

/**
 * Normalisation of the values link rules compare. A value that does not normalise (blank, not an email,
 * not a recognisable mobile number) gives no key: it links nothing, rather than linking on garbage.
 */

/** Unicode NFKC (full-width digits and letters become ASCII, as Chinese input methods produce them), trimmed. */
export function normaliseText(value: string): string | undefined {
  // Printable ASCII without surrounding spaces is already normal (the common case, and NFKC is slow).
  if (/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value)) return value;
  const text = value.normalize("NFKC").trim();
  return text === "" ? undefined : text;
}

/** Text, case-folded (AD's sAMAccountName and WeCom's userid compare case-insensitively). */
export function normaliseUsername(value: string): string | undefined {
  return normaliseText(value)?.toLowerCase();
}

/** A username that is `local@domain` with a dotted domain; anything else is not an email. */
export function normaliseEmail(value: string): string | undefined {
  const email = normaliseUsername(value);
  return email !== undefined && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) ? email : undefined;
}

/**
 * A mobile number in E.164 form. Mainland China numbers (11 digits starting with 1) lose any +86, 0086 or
 * 86 prefix, spaces, dashes, dots and brackets and become `+86` + 11 digits. Other numbers count only when
 * written with their country code (`+852 9123 4567`, `00852…`); a bare number that is not a mainland mobile
 * gives no key, because without its country it could be anyone's.
 */
export function normaliseMobile(value: string): string | undefined {
  const text = normaliseText(value);
  if (text === undefined || !/^[+\d\s\-.()]+$/.test(text)) return undefined;
  const international = text.startsWith("+") || /^\(\+/.test(text);
  let digits = text.replace(/\D/g, "");
  if (!international && digits.startsWith("00")) return e164(digits.slice(2));
  if (international) return e164(digits);
  if (digits.length === 13 && digits.startsWith("86")) digits = digits.slice(2);
  return /^1[3-9]\d{9}$/.test(digits) ? `+86${digits}` : undefined;
}

function e164(digits: string): string | undefined {
  if (digits.startsWith("86")) {
    const national = digits.slice(2);
    return /^1[3-9]\d{9}$/.test(national) ? `+86${national}` : undefined;
  }
  // ITU-T E.164: at most 15 digits including the country code, which never starts with 0.
  return /^[1-9]\d{6,14}$/.test(digits) ? `+${digits}` : undefined;
}

/** The normaliser for a comparison kind. */
export function normaliserFor(kind: CompareKind): (value: string) => string | undefined {
  switch (kind) {
    case "text":
      return normaliseText;
    case "username":
      return normaliseUsername;
    case "email":
      return normaliseEmail;
    case "mobile":
      return normaliseMobile;
  }
}

/** The raw value(s) a term names on a person: a field, `attributes.NAME` or `altIds.NAME`. */
export function rawValues(person: SourcePerson, attribute: string): readonly string[] {
  let value: string | readonly string[] | undefined;
  if (attribute.startsWith("attributes.")) value = person.attributes[attribute.slice("attributes.".length)];
  else if (attribute.startsWith("altIds.")) value = person.altIds?.[attribute.slice("altIds.".length)];
  else if (attribute === "subject") value = person.subject;
  else if (attribute === "username") value = person.username;
  else if (attribute === "email") value = person.email;
  else if (attribute === "mobile") value = person.mobile;
  else if (attribute === "employeeNo") value = person.employeeNo;
  if (value === undefined) return [];
  return typeof value === "string" ? [value] : value;
}

/**
 * The keys a person has under one term of a rule: its values normalised by the rule's kind, without the
 * ones that do not normalise and (emails) those outside the term's domains. Several values (a multi-valued
 * attribute) give several keys.
 */
export function matchKeys(person: SourcePerson, term: LinkTerm, kind: CompareKind): string[] {
  const normalise = normaliserFor(kind);
  const keys = new Set<string>();
  for (const raw of rawValues(person, term.attribute)) {
    const key = normalise(raw);
    if (key === undefined) continue;
    if (kind === "email" && term.domains !== undefined) {
      const domain = key.slice(key.lastIndexOf("@") + 1);
      if (!term.domains.includes(domain)) continue;
    }
    keys.add(key);
  }
  return [...keys];
}
