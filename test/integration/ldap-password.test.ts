/**
 * Password sign-in (verifyPassword) against the run's real Samba AD DC and slapd. The people it signs in are
 * created here, in an OU of their own, so the reader tests' counts stay as seeded.
 */
import { randomBytes } from "node:crypto";
import type { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyPassword, type PasswordResult } from "../../src/sources/ldap/index.js";
import { INVALID_CREDENTIALS_FLOOR_MS } from "../../src/sources/ldap/password.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import { AD_BASE, LOCKOUT_THRESHOLD } from "../fixtures/ldap/ad-directory.js";
import { OL_BASE } from "../fixtures/ldap/openldap-directory.js";
import {
  addAdUser,
  adTestConfig,
  ldapTestContext,
  lockAdAccount,
  openAdAdmin,
  openldapTestConfig,
  seedSlapdEntries,
  type SlapdEntry,
} from "../helpers/ldap.js";
import { sambaOrSkip, slapdOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const slapd = slapdOrSkip();
const context = ldapTestContext("corp-ad");

/** Passwords made up per run; the AD ones meet the default complexity rules. */
const pw = () => `Pw1!${randomBytes(9).toString("base64url")}`;

function failure(result: PasswordResult) {
  if (result.ok) throw new Error(`expected a refusal, got a sign-in as ${result.dn}`);
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe.skipIf(samba === null)("password sign-in against Samba AD", () => {
  const info = samba!;
  const OU = `OU=SignIn,${AD_BASE}`;
  const passwords = {
    good: pw(),
    disabled: pw(),
    expired: pw(),
    mustchange: pw(),
    locked: pw(),
    timing: pw(),
  };
  const dn = (name: keyof typeof passwords) => `CN=signin-${name},${OU}`;
  const config = () => adTestConfig(info, { users: { baseDns: [OU] }, groups: { baseDns: [] } });
  let admin: Client;

  beforeAll(async () => {
    admin = await openAdAdmin(info);
    await admin.add(OU, { objectClass: ["top", "organizationalUnit"], ou: "SignIn" });
    for (const [name, password] of Object.entries(passwords) as [keyof typeof passwords, string][]) {
      await addAdUser(admin, dn(name), `signin-${name}`, {
        password,
        disabled: name === "disabled",
        expired: name === "expired",
        mustChangePassword: name === "mustchange",
      });
    }
    await lockAdAccount(info, dn("locked"));
  });

  afterAll(async () => {
    if (admin === undefined) return;
    for (const name of Object.keys(passwords) as (keyof typeof passwords)[]) {
      await admin.del(dn(name)).catch(() => undefined);
    }
    await admin.del(OU).catch(() => undefined);
    await admin.unbind();
  });

  it("signs in with the right password by sAMAccountName, with the subject the reader reports", async () => {
    const result = await verifyPassword(context, config(), {
      login: "signin-good",
      password: passwords.good,
    });
    expect(result).toMatchObject({ ok: true, username: "signin-good", dn: dn("good") });
    const snapshot = await openLdapDirectory(context, config()).read();
    const person = snapshot.people.find((p) => p.username === "signin-good");
    expect(result.ok && result.subject).toBe(person!.subject);
  });

  it("signs in by userPrincipalName too", async () => {
    const result = await verifyPassword(context, config(), {
      login: "signin-good@corp.example.test",
      password: passwords.good,
    });
    expect(result).toMatchObject({ ok: true, username: "signin-good", dn: dn("good") });
  });

  it("refuses a wrong password and an unknown login with the same code and message", async () => {
    const wrong = failure(
      await verifyPassword(context, config(), { login: "signin-good", password: "Nope1!nope" }),
    );
    const unknown = failure(
      await verifyPassword(context, config(), { login: "signin-nobody", password: "Nope1!nope" }),
    );
    expect(wrong.code).toBe("INVALID_CREDENTIALS");
    expect([unknown.code, unknown.message]).toEqual([wrong.code, wrong.message]);
    // Only the audit reason tells them apart.
    expect(wrong.reason).toMatch(/sub-code 52e/);
    expect(unknown.reason).toMatch(/no person/);
  });

  it("refuses an empty or blank password without binding, even for an existing account", async () => {
    for (const password of ["", "   ", "\t"]) {
      const result = failure(await verifyPassword(context, config(), { login: "signin-good", password }));
      expect(result.code).toBe("INVALID_CREDENTIALS");
      expect(result.reason).toMatch(/empty password refused before binding/);
    }
  });

  it("refuses a disabled account with the right password as ACCOUNT_DISABLED", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "signin-disabled", password: passwords.disabled }),
    );
    expect(result.code).toBe("ACCOUNT_DISABLED");
  });

  it("refuses an account past its accountExpires as ACCOUNT_EXPIRED", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "signin-expired", password: passwords.expired }),
    );
    expect(result.code).toBe("ACCOUNT_EXPIRED");
  });

  it("refuses an account that must change its password as MUST_CHANGE_PASSWORD", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "signin-mustchange", password: passwords.mustchange }),
    );
    expect(result.code).toBe("MUST_CHANGE_PASSWORD");
  });

  it("refuses a locked-out account with the right password as ACCOUNT_LOCKED", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "signin-locked", password: passwords.locked }),
    );
    expect(result.code).toBe("ACCOUNT_LOCKED");
  });

  it("matches filter metacharacters in the login literally, finding nobody", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "signin-*", password: passwords.good }),
    );
    expect(result.code).toBe("INVALID_CREDENTIALS");
    expect(result.reason).toMatch(/no person/);
  });

  it("makes a wrong password and an unknown login both take the floor, and a right password not", async () => {
    const wrong: number[] = [];
    const unknown: number[] = [];
    const good: number[] = [];
    // Fewer wrong binds than the lockout threshold.
    for (let i = 0; i < LOCKOUT_THRESHOLD - 1; i++) {
      let started = performance.now();
      await verifyPassword(context, config(), { login: "signin-timing", password: "Nope1!nope" });
      wrong.push(performance.now() - started);
      started = performance.now();
      await verifyPassword(context, config(), { login: "signin-nobody", password: "Nope1!nope" });
      unknown.push(performance.now() - started);
      started = performance.now();
      expect(
        (await verifyPassword(context, config(), { login: "signin-timing", password: passwords.timing })).ok,
      ).toBe(true);
      good.push(performance.now() - started);
    }
    // On Samba a wrong password took ~42 ms and an unknown login ~24 ms before the floor: both far below it.
    expect(Math.min(...wrong)).toBeGreaterThanOrEqual(INVALID_CREDENTIALS_FLOOR_MS);
    expect(Math.min(...unknown)).toBeGreaterThanOrEqual(INVALID_CREDENTIALS_FLOOR_MS);
    expect(median(good)).toBeLessThan(INVALID_CREDENTIALS_FLOOR_MS);
  });

  it("makes a refusal before any bind (an empty password) take the floor too", async () => {
    const started = performance.now();
    const result = failure(await verifyPassword(context, config(), { login: "signin-good", password: " " }));
    expect(result.code).toBe("INVALID_CREDENTIALS");
    expect(performance.now() - started).toBeGreaterThanOrEqual(INVALID_CREDENTIALS_FLOOR_MS);
  });

  it("reports a service account that cannot bind as SOURCE_UNAVAILABLE, not as the person's fault", async () => {
    const result = failure(
      await verifyPassword(context, adTestConfig(info, { users: { baseDns: [OU] }, bindPassword: "wrong" }), {
        login: "signin-good",
        password: passwords.good,
      }),
    );
    expect(result.code).toBe("SOURCE_UNAVAILABLE");
    expect(result.reason).toMatch(/service account/);
  });
});

describe.skipIf(slapd === null)("password sign-in against slapd", () => {
  const info = slapd!;
  const OU = `ou=signin,${OL_BASE}`;
  const A = `ou=a,${OU}`;
  const B = `ou=b,${OU}`;
  const passwords = { good: pw(), expired: pw(), twin: pw() };
  const config = () => openldapTestConfig(info, { users: { baseDns: [OU] }, groups: { baseDns: [] } });
  const entries: SlapdEntry[] = [
    [OU, { objectClass: "organizationalUnit", ou: "signin" }],
    [A, { objectClass: "organizationalUnit", ou: "a" }],
    [B, { objectClass: "organizationalUnit", ou: "b" }],
    [
      `uid=sgood,${A}`,
      { objectClass: "inetOrgPerson", uid: "sgood", cn: "S Good", sn: "Good", userPassword: passwords.good },
    ],
    [
      `uid=sexpired,${A}`,
      {
        objectClass: ["inetOrgPerson", "shadowAccount"],
        uid: "sexpired",
        cn: "S Expired",
        sn: "Expired",
        // 1970-01-02 (RFC 2307 shadowExpire counts days).
        shadowExpire: "1",
        userPassword: passwords.expired,
      },
    ],
    // The same uid twice: a login that names two people signs in neither.
    [
      `uid=twin,${A}`,
      { objectClass: "inetOrgPerson", uid: "twin", cn: "Twin A", sn: "A", userPassword: passwords.twin },
    ],
    [
      `uid=twin,${B}`,
      { objectClass: "inetOrgPerson", uid: "twin", cn: "Twin B", sn: "B", userPassword: passwords.twin },
    ],
  ];
  const admin = seedSlapdEntries(info, entries);

  it("signs in with the right password by uid, with the entryUUID as subject", async () => {
    const result = await verifyPassword(context, config(), { login: "sgood", password: passwords.good });
    expect(result).toMatchObject({ ok: true, username: "sgood", dn: `uid=sgood,${A}` });
    const uuid = await admin().search(`uid=sgood,${A}`, { scope: "base", attributes: ["entryUUID"] });
    expect(result.ok && result.subject).toBe(uuid.searchEntries[0]!.entryUUID);
  });

  it("refuses a wrong password and an unknown login alike", async () => {
    const wrong = failure(await verifyPassword(context, config(), { login: "sgood", password: "nope" }));
    const unknown = failure(await verifyPassword(context, config(), { login: "nobody", password: "nope" }));
    expect(wrong.code).toBe("INVALID_CREDENTIALS");
    expect([unknown.code, unknown.message]).toEqual([wrong.code, wrong.message]);
    expect(wrong.reason).toMatch(/LDAP result 49/);
  });

  it("refuses a login that matches two people, naming both in the audit reason", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "twin", password: passwords.twin }),
    );
    expect(result.code).toBe("INVALID_CREDENTIALS");
    expect(result.reason).toContain(`uid=twin,${A}`);
    expect(result.reason).toContain(`uid=twin,${B}`);
    expect(result.message).not.toContain("twin");
  });

  it("refuses an account past its shadowExpire after the bind succeeds, with the reader's status rule", async () => {
    const result = failure(
      await verifyPassword(context, config(), { login: "sexpired", password: passwords.expired }),
    );
    expect(result.code).toBe("ACCOUNT_EXPIRED");
    expect(result.reason).toMatch(/status expired/);
  });

  it("refuses an empty password without binding", async () => {
    const result = failure(await verifyPassword(context, config(), { login: "sgood", password: "" }));
    expect(result.reason).toMatch(/before binding/);
  });

  it("reports a server nobody listens on as SOURCE_UNAVAILABLE", async () => {
    const result = failure(
      await verifyPassword(
        context,
        openldapTestConfig(info, { url: "ldap://127.0.0.1:1", users: { baseDns: [OU] } }),
        { login: "sgood", password: passwords.good },
      ),
    );
    expect(result.code).toBe("SOURCE_UNAVAILABLE");
  });
});
