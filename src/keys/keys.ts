import { randomBytes } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
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
  /** Which token signing keys exist, newest first, with when each was made and retired. */
  tokenKeys: "token-keys.json",
  /** Secrets for the OIDC provider's signed cookies, newest first. */
  cookieSecrets: "cookie-secrets.json",
} as const;

/** The file of one token signing key by kid (current and retired alike, once a manifest exists). */
export const tokenKeyFile = (kid: string): string => `token-signing.${kid}.pem`;

const DAY_MS = 86_400_000;

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

/** A token signing key with its place in the rotation. */
export interface TokenSigningKey extends SigningKey {
  /** When the key was made (for a key from before rotation existed: its file's modification time). */
  createdAt: Date;
  /** When a newer key replaced it; absent for the current key. */
  retiredAt?: Date;
  /** The private key as a JWK with kid, alg and use, for oidc-provider's `jwks` option. */
  privateJwk: JWK;
}

/** The keys idbridge signs with. */
export interface KeySet {
  /** Signs audit checkpoints and export heads. */
  audit: SigningKey;
  /** Signs ID and access tokens: the current token key, `tokenKeys[0]`. */
  token: SigningKey;
  /** Public keys of the audit key and the current token key, as handed to auditors. */
  jwks: JSONWebKeySet;
  /** Every token signing key on disk, newest (current) first; pass to {@link tokenSigningJwks}. */
  tokenKeys: TokenSigningKey[];
  /** Secrets for signed cookies, newest first: the first signs, all verify. */
  cookieSecrets: string[];
}

/** One entry of token-keys.json. */
interface TokenKeyRecord {
  kid: string;
  createdAt: string;
  retiredAt?: string;
}

/**
 * RSA size of new token signing keys. RS256 is what every OIDC client accepts by default (OIDC Core §3.1.3.7);
 * 2048 bits is the common choice (Keycloak, Entra ID) and NIST-acceptable through 2030, and it signs about
 * 5 times faster than 3072 bits (2,878 against 529 signatures/s on one core here): every token exchange
 * signs an ID token, so this bounds the token endpoint's throughput. Rotate (`idbridge keys rotate`) to a
 * larger key when policy asks for it; existing keys of any size keep working.
 */
export const TOKEN_KEY_BITS = 2048;

const KINDS = [
  { file: KEY_FILES.auditSigning, alg: "EdDSA", options: { crv: "Ed25519" } },
  { file: KEY_FILES.tokenSigning, alg: "RS256", options: { modulusLength: TOKEN_KEY_BITS } },
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

/** Options of {@link loadKeys}. */
export interface LoadKeysOptions {
  /** Write jwks.json when it is missing (default true). */
  requireJwks?: boolean;
  /** The time retirement grace is judged at, for a jwks.json written now. */
  now?: Date;
  /** `signIn.signingKeyGraceDays`, for a jwks.json written now (default 7). */
  graceDays?: number;
}

/**
 * Loads the private keys of `dir` and derives their public JWKS. Cookie secrets are created (0600) when
 * the directory has none, also in a directory written by a version without them.
 */
export async function loadKeys(dir: string, options: LoadKeysOptions = {}): Promise<KeySet> {
  const [audit, token] = await Promise.all(KINDS.map((kind) => loadKey(join(dir, kind.file), kind.alg)));
  if (!audit || !token) throw new TypeError("unreachable: both key kinds are loaded");
  const tokenKeys = await loadTokenKeys(dir, token);
  const current = tokenKeys[0]!;
  const jwks = { keys: [audit.publicJwk, current.publicJwk] };
  if (options.requireJwks !== false && !existsSync(join(dir, KEY_FILES.jwks))) {
    const published = publishedJwks(audit, tokenKeys, options.now ?? new Date(), options.graceDays ?? 7);
    writeAtomically(join(dir, KEY_FILES.jwks), `${JSON.stringify(published, null, 2)}\n`, 0o644);
  }
  const cookieSecrets = ensureCookieSecrets(dir);
  return { audit, token: current, jwks, tokenKeys, cookieSecrets };
}

/**
 * The private token signing JWKs for oidc-provider's `jwks` option: the current key first (oidc-provider
 * signs with the first key of an algorithm), then the retired keys still within `graceDays` of their
 * retirement (they only verify); keys past their grace are left out.
 */
export function tokenSigningJwks(
  keys: readonly TokenSigningKey[],
  now: Date,
  graceDays: number,
): { keys: JWK[] } {
  return { keys: keysInGrace(keys, now, graceDays).map((key) => key.privateJwk) };
}

function keysInGrace(keys: readonly TokenSigningKey[], now: Date, graceDays: number): TokenSigningKey[] {
  return keys.filter(
    (key, index) =>
      index === 0 ||
      (key.retiredAt !== undefined && key.retiredAt.getTime() + graceDays * DAY_MS > now.getTime()),
  );
}

/** jwks.json: the audit key (for auditors) and the token keys that still verify (for clients). */
function publishedJwks(
  audit: SigningKey,
  tokenKeys: readonly TokenSigningKey[],
  now: Date,
  graceDays: number,
): JSONWebKeySet {
  return { keys: [audit.publicJwk, ...keysInGrace(tokenKeys, now, graceDays).map((key) => key.publicJwk)] };
}

/** The result of {@link rotateTokenKey}. */
export interface RotationResult {
  /** The keys after the rotation. */
  keys: KeySet;
  /** The new current token key. */
  current: TokenSigningKey;
  /** The key it replaced, now retired. */
  retired: TokenSigningKey;
  /** Until when tokens signed with the retired key still verify. */
  retiredVerifiesUntil: Date;
}

/**
 * Makes a new RS256 token signing key current and retires the old one at `now`; also puts a new cookie
 * secret first, keeping the previous one for verification. Every file is replaced atomically (temp file +
 * rename); the manifest token-keys.json is written after the key files it names, so a crash part-way leaves
 * the old key current. Running instances keep their keys until restarted.
 */
export async function rotateTokenKey(
  dir: string,
  now: Date,
  options: { graceDays?: number } = {},
): Promise<RotationResult> {
  const graceDays = options.graceDays ?? 7;
  const before = await loadKeys(dir, { requireJwks: false });
  try {
    const { privateKey } = await generateKeyPair("RS256", { modulusLength: TOKEN_KEY_BITS, extractable: true });
    const pem = await exportPKCS8(privateKey);
    const fresh = await tokenKeyFrom(await describeKey(pem, "RS256", "the new key"), now);
    const records: TokenKeyRecord[] = [
      { kid: fresh.kid, createdAt: now.toISOString() },
      ...before.tokenKeys.map((key, index) => ({
        kid: key.kid,
        createdAt: key.createdAt.toISOString(),
        retiredAt: (index === 0 ? now : key.retiredAt!).toISOString(),
      })),
    ];
    // Every key the manifest will name is on disk before the manifest names it.
    for (const key of before.tokenKeys) {
      const file = join(dir, tokenKeyFile(key.kid));
      if (!existsSync(file)) writeAtomically(file, await exportPKCS8(key.privateKey), 0o600);
    }
    writeAtomically(join(dir, tokenKeyFile(fresh.kid)), pem, 0o600);
    writeAtomically(join(dir, KEY_FILES.tokenKeys), `${JSON.stringify({ keys: records }, null, 2)}\n`, 0o644);
    // token-signing.pem stays the current key, for older versions and tools that read only it.
    writeAtomically(join(dir, KEY_FILES.tokenSigning), pem, 0o600);
    const secrets = [newCookieSecret(), ...before.cookieSecrets.slice(0, 1)];
    writeAtomically(join(dir, KEY_FILES.cookieSecrets), `${JSON.stringify(secrets)}\n`, 0o600);
    const after = await loadKeys(dir, { requireJwks: false });
    const published = publishedJwks(after.audit, after.tokenKeys, now, graceDays);
    writeAtomically(join(dir, KEY_FILES.jwks), `${JSON.stringify(published, null, 2)}\n`, 0o644);
    return {
      keys: after,
      current: after.tokenKeys[0]!,
      retired: after.tokenKeys[1]!,
      retiredVerifiesUntil: new Date(now.getTime() + graceDays * DAY_MS),
    };
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError("KEYS_INVALID", `cannot rotate the token key in ${dir}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * The token keys of `dir`, newest first. Without token-keys.json (a directory from before rotation) the
 * one key is token-signing.pem; with it, each key is read from its own file and token-signing.pem must be
 * the current one (it is repaired when a rotation stopped before replacing it).
 */
async function loadTokenKeys(dir: string, tokenPem: SigningKey): Promise<TokenSigningKey[]> {
  const manifestFile = join(dir, KEY_FILES.tokenKeys);
  if (!existsSync(manifestFile)) {
    const createdAt = statSync(join(dir, KEY_FILES.tokenSigning)).mtime;
    return [await tokenKeyFrom(tokenPem, createdAt)];
  }
  const records = readManifest(manifestFile);
  const keys: TokenSigningKey[] = [];
  for (const record of records) {
    const key = await loadKey(join(dir, tokenKeyFile(record.kid)), "RS256");
    if (key.kid !== record.kid) {
      throw new AppError(
        "KEYS_INVALID",
        `${join(dir, tokenKeyFile(record.kid))} holds the key ${key.kid}, not ${record.kid}`,
      );
    }
    const entry = await tokenKeyFrom(key, new Date(record.createdAt));
    if (record.retiredAt !== undefined) entry.retiredAt = new Date(record.retiredAt);
    keys.push(entry);
  }
  const current = keys[0]!;
  if (tokenPem.kid !== current.kid) {
    writeAtomically(join(dir, KEY_FILES.tokenSigning), await exportPKCS8(current.privateKey), 0o600);
  }
  return keys;
}

function readManifest(file: string): TokenKeyRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new AppError("KEYS_INVALID", `${file} cannot be read as JSON: ${describeError(err)}`, {
      cause: err,
    });
  }
  const records = (parsed as { keys?: unknown }).keys;
  const valid =
    Array.isArray(records) &&
    records.length > 0 &&
    records.every(
      (r: unknown, index) =>
        typeof r === "object" &&
        r !== null &&
        typeof (r as TokenKeyRecord).kid === "string" &&
        /^[A-Za-z0-9_-]+$/.test((r as TokenKeyRecord).kid) &&
        !Number.isNaN(Date.parse((r as TokenKeyRecord).createdAt)) &&
        (index === 0
          ? (r as TokenKeyRecord).retiredAt === undefined
          : !Number.isNaN(Date.parse((r as TokenKeyRecord).retiredAt ?? ""))),
    );
  if (!valid) {
    throw new AppError(
      "KEYS_INVALID",
      `${file} is not a token key list: expected {"keys": [{kid, createdAt}, {kid, createdAt, retiredAt}, …]}, newest first`,
    );
  }
  return records as TokenKeyRecord[];
}

async function tokenKeyFrom(key: SigningKey, createdAt: Date): Promise<TokenSigningKey> {
  const privateJwk = { ...(await exportJWK(key.privateKey)), kid: key.kid, alg: key.alg, use: "sig" };
  return { ...key, createdAt, privateJwk };
}

function newCookieSecret(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The cookie secrets of `dir`, creating the file with one secret when it is missing. Creation links a
 * finished temp file into place, which fails when another instance got there first: then its secret wins.
 */
function ensureCookieSecrets(dir: string): string[] {
  const file = join(dir, KEY_FILES.cookieSecrets);
  if (!existsSync(file)) {
    const tmp = tempName(file);
    writeFileSync(tmp, `${JSON.stringify([newCookieSecret()])}\n`, { mode: 0o600, flag: "wx" });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") {
        throw new AppError("KEYS_INVALID", `cannot write ${file}: ${describeError(err)}`, { cause: err });
      }
    } finally {
      unlinkSync(tmp);
    }
  }
  let secrets: unknown;
  try {
    secrets = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new AppError("KEYS_INVALID", `${file} cannot be read as JSON: ${describeError(err)}`, {
      cause: err,
    });
  }
  if (
    !Array.isArray(secrets) ||
    secrets.length === 0 ||
    !secrets.every((s) => typeof s === "string" && s.length >= 32)
  ) {
    throw new AppError("KEYS_INVALID", `${file} must be a JSON array of secrets (newest first)`);
  }
  return secrets as string[];
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
  return describeKey(pem, alg, file);
}

async function describeKey(pem: string, alg: string, what: string): Promise<SigningKey> {
  try {
    const privateKey = await importPKCS8(pem, alg, { extractable: true });
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(pub);
    return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: "sig" } };
  } catch (err) {
    throw new AppError(
      "KEYS_INVALID",
      `${what} is not a PKCS#8 PEM ${alg} private key: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
}

function tempName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
}

function writeAtomically(file: string, content: string, mode: number): void {
  const tmp = tempName(file);
  writeFileSync(tmp, content, { mode, flag: "wx" });
  renameSync(tmp, file);
}
