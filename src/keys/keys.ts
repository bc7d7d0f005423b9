import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importPKCS8,
  type CryptoKey,
  type JWK,
  type JSONWebKeySet,
} from "jose";
import { AppError, describeError } from "../domain/errors.js";

/** File names inside the keys directory (see certs.example/README.md). */
export const KEY_FILES = {
  tokenSigning: "token-signing.pem",
  auditSigning: "audit-signing.pem",
  jwks: "jwks.json",
} as const;

/** A private signing key with its public JWK. */
export interface SigningKey {
  /** RFC 7638 thumbprint of the public key, used as `kid`. */
  kid: string;
  /** JWS algorithm (`EdDSA`, `RS256`). */
  alg: string;
  /** The private key, for signing. */
  privateKey: CryptoKey;
  /** The public key as a JWK with kid, alg and use. */
  publicJwk: JWK;
}

/** The keys idbridge signs with. */
export interface KeySet {
  /** Signs audit checkpoints and export heads. */
  audit: SigningKey;
  /** Signs ID and access tokens. */
  token: SigningKey;
  /** Public keys of both, as published and handed to auditors. */
  jwks: JSONWebKeySet;
}

const KINDS = [
  { file: KEY_FILES.auditSigning, alg: "EdDSA", options: { crv: "Ed25519" } },
  { file: KEY_FILES.tokenSigning, alg: "RS256", options: { modulusLength: 3072 } },
] as const;

/**
 * Writes new private keys (0600) and the public jwks.json into `dir`. Refuses to overwrite keys that
 * exist: replacing a signing key silently would orphan every signature made with it.
 */
export async function generateKeys(dir: string): Promise<KeySet> {
  const existing = [...KINDS.map((k) => k.file), KEY_FILES.jwks].filter((f) => existsSync(join(dir, f)));
  if (existing.length > 0) {
    throw new AppError(
      "KEYS_INVALID",
      `${dir} already holds ${existing.join(", ")}; refusing to overwrite signing keys (move them away first)`,
    );
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const kind of KINDS) {
      const { privateKey } = await generateKeyPair(kind.alg, { ...kind.options, extractable: true });
      writeAtomically(join(dir, kind.file), await exportPKCS8(privateKey), 0o600);
    }
    const keys = await loadKeys(dir, { requireJwks: false });
    writeAtomically(join(dir, KEY_FILES.jwks), `${JSON.stringify(keys.jwks, null, 2)}\n`, 0o644);
    return keys;
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError("KEYS_INVALID", `cannot write keys to ${dir}: ${describeError(err)}`, { cause: err });
  }
}

/** Loads the private keys of `dir` and derives their public JWKS. */
export async function loadKeys(dir: string, options: { requireJwks?: boolean } = {}): Promise<KeySet> {
  const [audit, token] = await Promise.all(KINDS.map((kind) => loadKey(join(dir, kind.file), kind.alg)));
  if (!audit || !token) throw new TypeError("unreachable: both key kinds are loaded");
  const jwks = { keys: [audit.publicJwk, token.publicJwk] };
  if (options.requireJwks !== false && !existsSync(join(dir, KEY_FILES.jwks))) {
    writeAtomically(join(dir, KEY_FILES.jwks), `${JSON.stringify(jwks, null, 2)}\n`, 0o644);
  }
  return { audit, token, jwks };
}

/** Loads the keys of `dir`, generating them first if the directory has none and that is allowed. */
export async function ensureKeys(
  dir: string,
  generateIfMissing: boolean,
): Promise<KeySet & { generated: boolean }> {
  const missing = KINDS.every((k) => !existsSync(join(dir, k.file)));
  if (missing && generateIfMissing) return { ...(await generateKeys(dir)), generated: true };
  return { ...(await loadKeys(dir)), generated: false };
}

async function loadKey(file: string, alg: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (err) {
    const why =
      (err as { code?: string }).code === "ENOENT" ? "is missing" : `cannot be read (${describeError(err)})`;
    throw new AppError(
      "KEYS_INVALID",
      `signing key ${file} ${why}; run \`idbridge keys generate --dir DIR\``,
      {
        cause: err,
      },
    );
  }
  try {
    const privateKey = await importPKCS8(pem, alg, { extractable: true });
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(pub);
    return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: "sig" } };
  } catch (err) {
    throw new AppError(
      "KEYS_INVALID",
      `${file} is not a PKCS#8 PEM ${alg} private key: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
}

function writeAtomically(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode, flag: "wx" });
  renameSync(tmp, file);
}
