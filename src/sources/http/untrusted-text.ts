/** Longest piece of a caller-chosen string that goes into an audit reason. */
export const UNTRUSTED_TEXT_MAX = 100;

/**
 * A string someone else chose (an `error` parameter on a redirect back to us) made safe for the audit
 * log: at most {@link UNTRUSTED_TEXT_MAX} characters, anything outside printable ASCII shown as `?`, so
 * it can neither flood the log nor forge lines or terminal escapes in it.
 */
export function clipUntrusted(text: string, max = UNTRUSTED_TEXT_MAX): string {
  // Cut first: the replacement keeps the length, and a 16 KB parameter is never scanned whole.
  return text.slice(0, max).replace(/[^\x20-\x7E]/g, "?");
}
