/**
 * Values the broker signs with the cookie secrets: the browser binding of a sign-in flow (which
 * interaction this browser is in) and the CSRF token of a login form (bound to the interaction). HMAC
 * SHA-256; the newest secret signs, every configured secret verifies, so secrets rotate without
 * breaking pages already open.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** What a signature is for; one value signed for one purpose never verifies for another. */
export type BindingPurpose = "login-binding" | "login-csrf" | "admin-csrf";

/** Signs and verifies short values. */
export interface Binder {
  /** `value.signature`, for a cookie or a hidden form field. */
  sign(purpose: BindingPurpose, value: string): string;
  /** The value of a signed `value.signature`, or null when it was not signed by us for `purpose`. */
  open(purpose: BindingPurpose, signed: string | undefined): string | null;
  /** True when `token` is our signature of `value` for `purpose`. */
  check(purpose: BindingPurpose, value: string, token: string | undefined): boolean;
}

/** A binder on `secrets` (newest first). */
export function createBinder(secrets: readonly string[]): Binder {
  if (secrets.length === 0) throw new TypeError("createBinder needs at least one secret");
  const mac = (secret: string, purpose: BindingPurpose, value: string): Buffer =>
    createHmac("sha256", secret).update(`${purpose}\u0000${value}`).digest();
  const verifies = (purpose: BindingPurpose, value: string, signature: string): boolean => {
    const given = Buffer.from(signature, "base64url");
    return secrets.some((secret) => {
      const expected = mac(secret, purpose, value);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  };
  return {
    sign: (purpose, value) => `${value}.${mac(secrets[0] as string, purpose, value).toString("base64url")}`,
    open(purpose, signed) {
      if (signed === undefined) return null;
      const dot = signed.lastIndexOf(".");
      if (dot <= 0) return null;
      const value = signed.slice(0, dot);
      return verifies(purpose, value, signed.slice(dot + 1)) ? value : null;
    },
    check(purpose, value, token) {
      if (token === undefined) return false;
      const dot = token.lastIndexOf(".");
      return dot > 0 && token.slice(0, dot) === value && verifies(purpose, value, token.slice(dot + 1));
    },
  };
}
