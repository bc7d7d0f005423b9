/**
 * The callback encryption DingTalk and WeCom share (WeCom 加解密方案 WX-DOC 91144; DingTalk's demo is the
 * same scheme): a SHA-1 signature over the sorted `[token, timestamp, nonce, encrypt]`, AES-256-CBC with the
 * key `base64(EncodingAESKey + "=")` and the IV its first 16 bytes, PKCS#7 padding to 32-byte blocks, and the
 * plaintext `16 random bytes ‖ 4-byte big-endian length ‖ message ‖ ownerKey`. Everything that reads a
 * remote value answers with a result, never throws.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A decrypted callback message, or the reason it could not be decrypted. */
export type OpenedMessage =
  | { readonly ok: true; readonly message: string; readonly ownerKey: string }
  | { readonly ok: false; readonly reason: "undecryptable" };

/** The token and key of one callback registration, as configured. */
export interface CallbackSecrets {
  /** The Token (签名 token) registered with the vendor. */
  readonly token: string;
  /** The 43-character EncodingAESKey registered with the vendor. */
  readonly aesKey: string;
}

// WeCom and DingTalk both pad to multiples of 32 bytes, not AES's 16 (WX-DOC 91144).
const PAD_BLOCK = 32;
const RANDOM_PREFIX = 16;
const LENGTH_FIELD = 4;
const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Whether `value` has the shape of an EncodingAESKey (43 base64 characters, 32 bytes once decoded). */
export function isEncodingAesKey(value: string): boolean {
  return ENCODING_AES_KEY.test(value);
}

/** The 32-byte AES key of an EncodingAESKey; a malformed key is a caller mistake (TypeError). */
export function decodeAesKey(encodingAesKey: string): Buffer {
  if (!isEncodingAesKey(encodingAesKey))
    throw new TypeError("an EncodingAESKey is 43 characters of A-Z, a-z, 0-9, + and /");
  return Buffer.from(`${encodingAesKey}=`, "base64");
}

/** The vendor signature: hex SHA-1 of the four values sorted as strings and joined without separator. */
export function signCallback(token: string, timestamp: string, nonce: string, encrypt: string): string {
  // Sorted by code unit, as the vendors' demos (Java Arrays.sort, Python sort) do.
  const parts = [token, timestamp, nonce, encrypt].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha1").update(parts.join(""), "utf8").digest("hex");
}

/** Checks a received signature in constant time (case-insensitive hex, as the vendors send lower case). */
export function verifyCallbackSignature(
  token: string,
  timestamp: string,
  nonce: string,
  encrypt: string,
  signature: string,
): boolean {
  const expected = Buffer.from(signCallback(token, timestamp, nonce, encrypt), "latin1");
  const given = Buffer.from(signature.toLowerCase(), "latin1");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Encrypts `message` for `ownerKey` (corpId, AppKey or SuiteKey) and returns the base64 `encrypt` value. */
export function encryptCallbackMessage(
  key: Buffer,
  message: string,
  ownerKey: string,
  random: Buffer = randomBytes(RANDOM_PREFIX),
): string {
  if (key.length !== 32) throw new TypeError("the AES key must be 32 bytes");
  if (random.length !== RANDOM_PREFIX) throw new TypeError("the random prefix must be 16 bytes");
  const body = Buffer.from(message, "utf8");
  const length = Buffer.alloc(LENGTH_FIELD);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([random, length, body, Buffer.from(ownerKey, "utf8")]);
  const pad = PAD_BLOCK - (plain.length % PAD_BLOCK);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([
    cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])),
    cipher.final(),
  ]).toString("base64");
}

/**
 * Decrypts an `encrypt` value. Any defect — not base64, not whole AES blocks, bad PKCS#7 padding, a length
 * field beyond the buffer, invalid UTF-8 — is `undecryptable`; the caller compares `ownerKey` itself.
 */
export function decryptCallbackMessage(key: Buffer, encrypt: string): OpenedMessage {
  const refused = { ok: false, reason: "undecryptable" } as const;
  if (key.length !== 32) throw new TypeError("the AES key must be 32 bytes");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encrypt)) return refused;
  const data = Buffer.from(encrypt, "base64");
  if (data.length === 0 || data.length % 16 !== 0) return refused;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-cbc", key, key.subarray(0, 16));
    decipher.setAutoPadding(false);
    plain = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    return refused;
  }
  // PKCS#7 to 32-byte blocks: the last byte n is 1..32 and the last n bytes all equal n. Accepting any
  // n ≤ 32 also takes senders that pad to 16 (some vendor SDKs do).
  const pad = plain[plain.length - 1] ?? 0;
  if (pad < 1 || pad > PAD_BLOCK || pad > plain.length) return refused;
  for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) return refused;
  const content = plain.subarray(0, plain.length - pad);
  if (content.length < RANDOM_PREFIX + LENGTH_FIELD) return refused;
  const length = content.readUInt32BE(RANDOM_PREFIX);
  const start = RANDOM_PREFIX + LENGTH_FIELD;
  if (length > content.length - start) return refused;
  try {
    return {
      ok: true,
      message: strictUtf8.decode(content.subarray(start, start + length)),
      ownerKey: strictUtf8.decode(content.subarray(start + length)),
    };
  } catch {
    return refused;
  }
}

/** Constant-time string equality, for owner keys (not secret, but no reason to leak a prefix match). */
export function equalsConstantTime(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A random nonce for replies and simulated pushes. */
export function createNonce(): string {
  return randomBytes(8).toString("hex");
}

/**
 * A callback `timestamp` query value in epoch milliseconds, or null. DingTalk sends milliseconds, WeCom and
 * older DingTalk docs seconds; a value below 10^11 cannot be a plausible millisecond time, so it is seconds.
 */
export function parseCallbackTimestamp(value: string): number | null {
  if (!/^\d{1,13}$/.test(value)) return null;
  const n = Number(value);
  return n < 1e11 ? n * 1000 : n;
}
