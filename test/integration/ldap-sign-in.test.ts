/**
 * The ldap source's sign-in connector against the run's real Samba AD DC and slapd: password sign-in gives
 * the person the directory reader gives, failures are results, and accountStatus asks the directory by
 * subject. The people are created here, in an OU of their own, so the reader tests' counts stay as seeded.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LdapConfig } from "../../src/sources/ldap/config.js";
import { ldapSource, openLdapSignIn } from "../../src/sources/ldap/index.js";
import type { SignInContext, SignInOutcome } from "../../src/sources/sign-in.js";
import { AD_BASE } from "../fixtures/ldap/ad-directory.js";
import { OL_BASE } from "../fixtures/ldap/openldap-directory.js";
import {
  addAdUser,
  adTestConfig,
  ldapTestContext,
  lockAdAccount,
  openAdAdmin,
  openldapTestConfig,
  readLdap,
  replaceValues,
  seedSlapdEntries,
  type SlapdEntry,
} from "../helpers/ldap.js";
import { sambaOrSkip, slapdOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const slapd = slapdOrSkip();

function signInContext(timeoutMs = 15_000): SignInContext {
  return {
    sourceId: "corp-ad",
    now: () => new Date(),
    timeoutMs,
    publicUrl: "https://idbridge.example.test",
    once: () => Promise.resolve(true),
  };
}

/** Passwords made up per run; they meet AD's default complexity rules. */
const pw = () => `Pw1!${randomBytes(9).toString("base64url")}`;

function refusal(outcome: SignInOutcome) {
  if (outcome.ok) throw new Error(`expected a refusal, got a sign-in as ${outcome.identity.subject}`);
  return outcome;
}

async function verify(config: LdapConfig, login: string, password: string, context = signInContext()) {
  const connector = openLdapSignIn(context, config);
  try {
    return await connector.password!.verify({ login, password });
  } finally {
    await connector.close();
  }
}

async function status(config: LdapConfig, subject: string, context = signInContext()) {
  const connector = openLdapSignIn(context, config);
  try {
    return await connector.accountStatus!(subject);
  } finally {
    await connector.close();
  }
}

/** A TCP server on 127.0.0.1 that accepts connections and never says a word. */
async function silentServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `ldap://127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

it("the ldap source module offers the sign-in connector", () => {
  expect(ldapSource.openSignIn).toBe(openLdapSignIn);
});

describe.skipIf(samba === null)("ldap sign-in connector against Samba AD", () => {
  const info = samba!;
  const OU = `OU=SignInConnector,${AD_BASE}`;
  const passwords = { good: pw(), boss: pw(), disabled: pw(), expired: pw(), locked: pw(), gone: pw() };
  type Name = keyof typeof passwords;
  const sam = (name: Name) => `sic-${name}`;
  const dn = (name: Name) => `CN=${sam(name)},${OU}`;
  const config = () => adTestConfig(info, { users: { baseDns: [OU] }, groups: { baseDns: [] } });
  let admin: Client;

  beforeAll(async () => {
    admin = await openAdAdmin(info);
    await admin.add(OU, { objectClass: ["top", "organizationalUnit"], ou: "SignInConnector" });
    // The boss first: the good person's manager must exist.
    for (const name of ["boss", "good", "disabled", "expired", "locked", "gone"] as const) {
      await addAdUser(admin, dn(name), sam(name), {
        password: passwords[name],
        disabled: name === "disabled",
        expired: name === "expired",
        attributes:
          name === "good"
            ? {
                displayName: "王 Good",
                mail: "sic-good@corp.example.test",
                employeeID: "E-4711",
                title: "Cashier",
                manager: dn("boss"),
              }
            : {},
      });
    }
    await admin.modify(OU, [replaceValues("managedBy", [dn("good")])]);
    await lockAdAccount(info, dn("locked"));
  });

  afterAll(async () => {
    if (admin === undefined) return;
    for (const name of Object.keys(passwords) as Name[]) await admin.del(dn(name)).catch(() => undefined);
    await admin.del(OU).catch(() => undefined);
    await admin.unbind();
  });

  it("signs in with the right password as exactly the person the directory reader gives", async () => {
    const outcome = await verify(config(), sam("good"), passwords.good);
    if (!outcome.ok) throw new Error(`refused: ${outcome.code} ${outcome.reason}`);
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const read = snapshot.people.find((p) => p.username === sam("good"));
    const boss = snapshot.people.find((p) => p.username === sam("boss"));
    expect(outcome.identity.sourceId).toBe("corp-ad");
    expect(outcome.identity.subject).toBe(read!.subject);
    expect(outcome.identity.person).toEqual(read);
    // Checked by value too, so an empty mapping on both sides cannot pass.
    expect(outcome.identity.person).toMatchObject({
      name: "王 Good",
      email: "sic-good@corp.example.test",
      employeeNo: "E-4711",
      managers: [boss!.subject],
      departments: [{ main: true, leader: true }],
      status: "active",
    });
  });

  it("signs in by userPrincipalName with the same subject", async () => {
    const bySam = await verify(config(), sam("good"), passwords.good);
    const byUpn = await verify(config(), `${sam("good")}@corp.example.test`, passwords.good);
    expect(byUpn.ok && byUpn.identity.subject).toBe(bySam.ok && bySam.identity.subject);
    expect(byUpn.ok).toBe(true);
  });

  it("refuses a wrong password, and an unknown login with the same code", async () => {
    const wrong = refusal(await verify(config(), sam("good"), "Nope1!nope"));
    const unknown = refusal(await verify(config(), "sic-nobody", "Nope1!nope"));
    expect(wrong.code).toBe("INVALID_CREDENTIALS");
    expect(unknown.code).toBe(wrong.code);
    expect(Object.keys(unknown).sort()).toEqual(Object.keys(wrong).sort());
    expect(wrong.reason).not.toContain("Nope1!nope");
  });

  it("refuses a disabled account with the right password as ACCOUNT_DISABLED", async () => {
    expect(refusal(await verify(config(), sam("disabled"), passwords.disabled)).code).toBe(
      "ACCOUNT_DISABLED",
    );
  });

  it("refuses an account past accountExpires as ACCOUNT_EXPIRED", async () => {
    expect(refusal(await verify(config(), sam("expired"), passwords.expired)).code).toBe("ACCOUNT_EXPIRED");
  });

  it("refuses a locked-out account as ACCOUNT_LOCKED", async () => {
    expect(refusal(await verify(config(), sam("locked"), passwords.locked)).code).toBe("ACCOUNT_LOCKED");
  });

  it("refuses an empty password without contacting the server", async () => {
    // Nobody listens on port 1: had anything been sent, the answer would be SOURCE_UNAVAILABLE.
    const nowhere = adTestConfig(info, { url: "ldaps://127.0.0.1:1", users: { baseDns: [OU] } });
    for (const password of ["", "  "]) {
      const outcome = refusal(await verify(nowhere, sam("good"), password));
      expect(outcome.code).toBe("INVALID_CREDENTIALS");
      expect(outcome.reason).toMatch(/before binding/);
    }
  });

  it("reports the live status of active, disabled, locked and expired accounts by objectGUID", async () => {
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const subject = (name: Name) => snapshot.people.find((p) => p.username === sam(name))!.subject;
    expect(await status(config(), subject("good"))).toBe("active");
    expect(await status(config(), subject("disabled"))).toBe("disabled");
    expect(await status(config(), subject("locked"))).toBe("locked");
    expect(await status(config(), subject("expired"))).toBe("expired");
  });

  it("reports a deleted account as not-found, and a subject that is no GUID too", async () => {
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const gone = snapshot.people.find((p) => p.username === sam("gone"))!.subject;
    expect(await status(config(), gone)).toBe("active");
    await admin.del(dn("gone"));
    expect(await status(config(), gone)).toBe("not-found");
    expect(await status(config(), "*")).toBe("not-found");
  });

  it("reports a service account that cannot bind as unavailable, not as a gone account", async () => {
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const good = snapshot.people.find((p) => p.username === sam("good"))!.subject;
    const broken = adTestConfig(info, { users: { baseDns: [OU] }, bindPassword: "wrong" });
    expect(await status(broken, good)).toBe("unavailable");
    expect(refusal(await verify(broken, sam("good"), passwords.good)).code).toBe("SOURCE_UNAVAILABLE");
  });
});

describe.skipIf(slapd === null)("ldap sign-in connector against slapd", () => {
  const info = slapd!;
  const OU = `ou=signinconnector,${OL_BASE}`;
  const passwords = { good: pw(), expired: pw(), gone: pw() };
  const config = () => openldapTestConfig(info, { users: { baseDns: [OU] }, groups: { baseDns: [] } });
  const person = (uid: string, extra: Record<string, string | string[]> = {}) => ({
    objectClass: "inetOrgPerson",
    uid,
    cn: `Olc ${uid}`,
    sn: uid,
    ...extra,
  });
  const entries: SlapdEntry[] = [
    [OU, { objectClass: "organizationalUnit", ou: "signinconnector" }],
    [
      `uid=olgood,${OU}`,
      person("olgood", { mail: "olgood@example.test", employeeNumber: "7", userPassword: passwords.good }),
    ],
    [
      `uid=olexpired,${OU}`,
      {
        ...person("olexpired", { userPassword: passwords.expired }),
        objectClass: ["inetOrgPerson", "shadowAccount"],
        // 1970-01-02 (RFC 2307 shadowExpire counts days).
        shadowExpire: "1",
      },
    ],
    [`uid=olgone,${OU}`, person("olgone", { userPassword: passwords.gone })],
  ];
  const admin = seedSlapdEntries(info, entries);

  it("signs in with the right password as exactly the person the directory reader gives", async () => {
    const outcome = await verify(config(), "olgood", passwords.good);
    if (!outcome.ok) throw new Error(`refused: ${outcome.code} ${outcome.reason}`);
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const read = snapshot.people.find((p) => p.username === "olgood");
    expect(outcome.identity.person).toEqual(read);
    expect(outcome.identity.subject).toMatch(/^[0-9a-f-]{36}$/);
    expect(outcome.identity.person).toMatchObject({ email: "olgood@example.test", employeeNo: "7" });
  });

  it("refuses a wrong password and an unknown login alike", async () => {
    const wrong = refusal(await verify(config(), "olgood", "nope"));
    const unknown = refusal(await verify(config(), "olnobody", "nope"));
    expect(wrong.code).toBe("INVALID_CREDENTIALS");
    expect(unknown.code).toBe(wrong.code);
  });

  it("refuses an account past shadowExpire as ACCOUNT_EXPIRED", async () => {
    expect(refusal(await verify(config(), "olexpired", passwords.expired)).code).toBe("ACCOUNT_EXPIRED");
  });

  it("reports live status by entryUUID: active, expired, and not-found once deleted", async () => {
    const snapshot = await readLdap(ldapTestContext("corp-ad"), config());
    const subject = (uid: string) => snapshot.people.find((p) => p.username === uid)!.subject;
    expect(await status(config(), subject("olgood"))).toBe("active");
    expect(await status(config(), subject("olexpired"))).toBe("expired");
    const gone = subject("olgone");
    expect(await status(config(), gone)).toBe("active");
    await admin().del(`uid=olgone,${OU}`);
    expect(await status(config(), gone)).toBe("not-found");
    // Filter metacharacters are matched literally, not as a wildcard.
    expect(await status(config(), "*")).toBe("not-found");
  });

  it("gives up on a server that never answers after timeoutMs, as SOURCE_UNAVAILABLE / unavailable", async () => {
    const silent = await silentServer();
    try {
      const mute = openldapTestConfig(info, { url: silent.url, users: { baseDns: [OU] } });
      const started = performance.now();
      const outcome = refusal(await verify(mute, "olgood", passwords.good, signInContext(400)));
      expect(outcome.code).toBe("SOURCE_UNAVAILABLE");
      expect(await status(mute, "00000000-0000-0000-0000-000000000000", signInContext(400))).toBe(
        "unavailable",
      );
      expect(performance.now() - started).toBeLessThan(3_000);
    } finally {
      await silent.close();
    }
  });
});
