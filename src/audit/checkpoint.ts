import {
  CompactSign,
  compactVerify,
  createLocalJWKSet,
  errors as joseErrors,
  type JSONWebKeySet,
} from "jose";
import type { SigningKey } from "../keys/keys.js";
import { jcs } from "./jcs.js";

/** JWS `typ` values: a checkpoint can never be passed off as an export head, nor the reverse. */
export const JWS_TYPES = {
  checkpoint: "idbridge-audit-checkpoint",
  exportHead: "idbridge-audit-export-head",
} as const;

export type JwsType = (typeof JWS_TYPES)[keyof typeof JWS_TYPES];

/** Signs `payload` (as RFC 8785 canonical JSON) as a compact JWS of the given type. */
export async function signStatement(key: SigningKey, typ: JwsType, payload: object): Promise<string> {
  return new CompactSign(new TextEncoder().encode(jcs(payload)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ })
    .sign(key.privateKey);
}

/** The outcome of checking a signed statement. */
export type StatementResult<T> = { ok: true; payload: T; kid: string } | { ok: false; reason: string };

/** Verifies a compact JWS of the given type against a JWKS and returns its JSON payload. */
export async function verifyStatement<T>(
  jws: string,
  typ: JwsType,
  jwks: JSONWebKeySet,
): Promise<StatementResult<T>> {
  let header: { kid?: string; typ?: string };
  try {
    const parsed: unknown = JSON.parse(Buffer.from(jws.split(".")[0] ?? "", "base64url").toString("utf8"));
    if (parsed === null || typeof parsed !== "object") throw new TypeError("header is not an object");
    header = parsed as typeof header;
  } catch {
    return { ok: false, reason: "not a compact JWS" };
  }
  if (header.typ !== typ) return { ok: false, reason: `wrong statement type ${JSON.stringify(header.typ)}` };
  try {
    const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(jwks), {
      algorithms: ["EdDSA", "Ed25519"],
    });
    return {
      ok: true,
      payload: JSON.parse(new TextDecoder().decode(payload)) as T,
      kid: protectedHeader.kid ?? "",
    };
  } catch (err) {
    if (err instanceof joseErrors.JWKSNoMatchingKey) {
      return {
        ok: false,
        reason: `the JWKS has no key with kid ${JSON.stringify(header.kid)} (wrong JWKS?)`,
      };
    }
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
      return {
        ok: false,
        reason: `signature does not verify with key ${JSON.stringify(header.kid)} (forged or altered)`,
      };
    }
    return { ok: false, reason: `cannot verify signature: ${(err as Error).message}` };
  }
}
