/**
 * Token signing key rotation and cookie secrets: the rotation on disk (modes, manifest, jwks.json), the
 * grace of retired keys with a pinned clock, a keys directory from before rotation, and `keys rotate`.
 */
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, createLocalJWKSet, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import {
  KEY_FILES,
  generateKeys,
  loadKeys,
  rotateTokenKey,
  tokenKeyFile,
  tokenSigningJwks,
} from "../../src/keys/keys.js";
import { runCli } from "../helpers/cli.js";

const tmp = (): string => join(mkdtempSync(join(tmpdir(), "idbridge-keys-")), "keys");
const DAY = 86_400_000;
const mode = (file: string): number => statSync(file).mode & 0o777;
const publicKids = (dir: string): string[] =>
  (
    JSON.parse(readFileSync(join(dir, KEY_FILES.jwks), "utf8")) as { keys: { kid: string; d?: string }[] }
  ).keys.map((k) => k.kid);

describe("token signing key rotation", () => {
  it("makes the new key current and keeps the old one verifying until its grace passes", async () => {
    const dir = tmp();
    const before = await generateKeys(dir);
    const t0 = new Date("2030-01-01T00:00:00Z");
    const rotated = await rotateTokenKey(dir, t0, { graceDays: 7 });

    expect(rotated.current.kid).not.toBe(before.token.kid);
    expect(rotated.retired.kid).toBe(before.token.kid);
    expect(rotated.keys.token.kid).toBe(rotated.current.kid);
    expect(rotated.retired.retiredAt).toEqual(t0);
    expect(rotated.retiredVerifiesUntil).toEqual(new Date(t0.getTime() + 7 * DAY));

    // Reloaded from disk: same order, the new one signs.
    const loaded = await loadKeys(dir);
    expect(loaded.tokenKeys.map((k) => k.kid)).toEqual([rotated.current.kid, before.token.kid]);
    expect(loaded.token.kid).toBe(rotated.current.kid);

    const within = tokenSigningJwks(loaded.tokenKeys, new Date(t0.getTime() + 7 * DAY - 1), 7);
    expect(within.keys.map((k) => k.kid)).toEqual([rotated.current.kid, before.token.kid]);
    expect(within.keys.every((k) => typeof k.d === "string" && k.alg === "RS256" && k.use === "sig")).toBe(
      true,
    );
    const past = tokenSigningJwks(loaded.tokenKeys, new Date(t0.getTime() + 7 * DAY), 7);
    expect(past.keys.map((k) => k.kid)).toEqual([rotated.current.kid]);
  });

  it("signs with the first JWK and verifies an old token with the published jwks.json", async () => {
    const dir = tmp();
    const before = await generateKeys(dir);
    const oldToken = await new SignJWT({ sub: "p1" })
      .setProtectedHeader({ alg: "RS256", kid: before.token.kid })
      .sign(before.token.privateKey);
    const rotated = await rotateTokenKey(dir, new Date(), { graceDays: 7 });
    const signer = tokenSigningJwks(rotated.keys.tokenKeys, new Date(), 7).keys[0]!;
    const newToken = await new SignJWT({ sub: "p1" })
      .setProtectedHeader({ alg: "RS256", kid: signer.kid! })
      .sign(await importJWK(signer, "RS256"));
    const published = createLocalJWKSet(JSON.parse(readFileSync(join(dir, KEY_FILES.jwks), "utf8")));
    await expect(jwtVerify(oldToken, published)).resolves.toBeDefined();
    await expect(jwtVerify(newToken, published)).resolves.toBeDefined();
  });

  it("writes private files 0600, a public jwks.json of the audit key and the keys in grace, and no temp files", async () => {
    const dir = tmp();
    const before = await generateKeys(dir);
    const t0 = new Date();
    const first = await rotateTokenKey(dir, t0, { graceDays: 7 });
    for (const file of [
      KEY_FILES.tokenSigning,
      KEY_FILES.auditSigning,
      KEY_FILES.cookieSecrets,
      tokenKeyFile(first.current.kid),
      tokenKeyFile(before.token.kid),
    ]) {
      expect([file, mode(join(dir, file))]).toEqual([file, 0o600]);
    }
    expect(publicKids(dir)).toEqual([before.audit.kid, first.current.kid, before.token.kid]);
    const jwks = JSON.parse(readFileSync(join(dir, KEY_FILES.jwks), "utf8")) as { keys: object[] };
    expect(jwks.keys.every((k) => !("d" in k))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    // A second rotation eight days later: the first retired key is past its grace and leaves jwks.json.
    const second = await rotateTokenKey(dir, new Date(t0.getTime() + 8 * DAY), { graceDays: 7 });
    expect(publicKids(dir)).toEqual([before.audit.kid, second.current.kid, first.current.kid]);
    expect(second.keys.tokenKeys.map((k) => k.kid)).toEqual([
      second.current.kid,
      first.current.kid,
      before.token.kid,
    ]);
  });

  it("loads a keys directory from before rotation as one current key and adds cookie secrets", async () => {
    const dir = tmp();
    const generated = await generateKeys(dir);
    // The layout of older versions: no token-keys.json, no cookie secrets.
    unlinkSync(join(dir, KEY_FILES.cookieSecrets));
    const loaded = await loadKeys(dir);
    expect(loaded.tokenKeys.map((k) => k.kid)).toEqual([generated.token.kid]);
    expect(loaded.tokenKeys[0]!.retiredAt).toBeUndefined();
    expect(loaded.tokenKeys[0]!.createdAt).toEqual(statSync(join(dir, KEY_FILES.tokenSigning)).mtime);
    expect(loaded.token.kid).toBe(generated.token.kid);
    expect(loaded.cookieSecrets).toHaveLength(1);
    expect(Buffer.from(loaded.cookieSecrets[0]!, "base64url")).toHaveLength(32);
    expect(mode(join(dir, KEY_FILES.cookieSecrets))).toBe(0o600);
    // Created once: the next start reads the same secret.
    expect((await loadKeys(dir)).cookieSecrets).toEqual(loaded.cookieSecrets);
  });

  it("puts a new cookie secret first on rotation and keeps only the previous one", async () => {
    const dir = tmp();
    const start = (await generateKeys(dir)).cookieSecrets;
    const once = (await rotateTokenKey(dir, new Date())).keys.cookieSecrets;
    const twice = (await rotateTokenKey(dir, new Date())).keys.cookieSecrets;
    expect(once).toHaveLength(2);
    expect(once[1]).toBe(start[0]);
    expect(twice).toEqual([expect.any(String), once[0]]);
    expect(new Set([...start, ...once, ...twice]).size).toBe(3);
  });

  it("repairs token-signing.pem when a rotation stopped after writing the manifest", async () => {
    const dir = tmp();
    await generateKeys(dir);
    const stale = join(dir, "stale.pem");
    copyFileSync(join(dir, KEY_FILES.tokenSigning), stale);
    const rotated = await rotateTokenKey(dir, new Date());
    copyFileSync(stale, join(dir, KEY_FILES.tokenSigning));
    const loaded = await loadKeys(dir);
    expect(loaded.token.kid).toBe(rotated.current.kid);
    expect(readFileSync(join(dir, KEY_FILES.tokenSigning), "utf8")).toBe(
      readFileSync(join(dir, tokenKeyFile(rotated.current.kid)), "utf8"),
    );
  });
});

describe("idbridge keys rotate", () => {
  it("prints the new kid and until when the old one verifies, with the grace of the config", async () => {
    const base = mkdtempSync(join(tmpdir(), "idbridge-keys-cli-"));
    const dir = join(base, "k");
    expect((await runCli(["keys", "generate", "--dir", dir])).code).toBe(0);
    const oldKid = (await loadKeys(dir)).token.kid;

    const started = Date.now();
    const result = await runCli(["keys", "rotate", "--dir", dir]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const newKid = (await loadKeys(dir)).token.kid;
    expect(newKid).not.toBe(oldKid);
    expect(result.stdout).toContain(`new token key kid ${newKid}`);
    const until = /old token key kid (\S+) still verifies until (\S+)/.exec(result.stdout);
    expect(until?.[1]).toBe(oldKid);
    const graceMs = Date.parse(until![2]!) - started;
    expect(graceMs).toBeGreaterThan(7 * DAY - 60_000);
    expect(graceMs).toBeLessThan(7 * DAY + 60_000);

    const config = join(base, "idbridge.yaml");
    writeFileSync(config, "keys: { dir: ./k }\nsignIn: { signingKeyGraceDays: 2 }\n");
    const byConfig = await runCli(["keys", "rotate", "--config", config]);
    expect(byConfig.code).toBe(0);
    const graceTwo = /still verifies until (\S+)/.exec(byConfig.stdout);
    expect(Date.parse(graceTwo![1]!) - Date.now()).toBeLessThan(2 * DAY + 60_000);
    expect(Date.parse(graceTwo![1]!) - started).toBeGreaterThan(2 * DAY - 60_000);
  });
});
