/**
 * Bad input for the ldap source against the real peers: each problem ends the read as incomplete, with a
 * reason that names the source and the cause, and never throws.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server, type Socket } from "node:net";
import type { LdapConfig } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import type { DirectorySnapshot } from "../../src/sources/snapshot.js";
import type { ReadOptions } from "../../src/sources/source.js";
import { AD_PROBE_USER, AD_USERS, STAFF } from "../fixtures/ldap/ad-directory.js";
import { freePort } from "../peers/process.js";
import { adTestConfig, ldapTestContext, openldapTestConfig, readLdap } from "../helpers/ldap.js";
import { sambaOrSkip, slapdOrSkip, type SambaInfo } from "../peers/index.js";

const samba = sambaOrSkip();
const slapd = slapdOrSkip();
const context = ldapTestContext("corp-ad");
const adConfig = (info: SambaInfo, overrides: Record<string, unknown> = {}): LdapConfig =>
  adTestConfig(info, { timeouts: { connectMs: 3_000, operationMs: 10_000 }, ...overrides });
const read = (cfg: LdapConfig, options?: ReadOptions): Promise<DirectorySnapshot> =>
  readLdap(context, cfg, options);

function reasons(snapshot: DirectorySnapshot) {
  if (snapshot.completeness.complete) throw new Error("expected an incomplete snapshot");
  return snapshot.completeness.reasons;
}

describe.skipIf(samba === null)("ldap source: bad input against Samba AD", () => {
  const info = samba!;

  it("reports a wrong password as AUTH_FAILED with AD's sub-code 52e explained", async () => {
    const snapshot = await read(
      adConfig(info, { bindDn: AD_PROBE_USER.dn, bindPassword: "not-the-password" }),
    );
    expect(snapshot.people).toEqual([]);
    expect(snapshot.cursor).toBeUndefined();
    const [reason, ...more] = reasons(snapshot);
    expect(more).toEqual([]);
    expect(reason!.code).toBe("AUTH_FAILED");
    expect(reason!.message).toContain("source corp-ad (ldaps://127.0.0.1:636)");
    expect(reason!.message).toMatch(/password is wrong.*sub-code 52e/);
  });

  it("test() reports the same wrong password as not ok", async () => {
    const report = await openLdapDirectory(context, adConfig(info, { bindPassword: "nope" })).test();
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.code)).toEqual(["AUTH_FAILED"]);
  });

  it("reports a port nobody listens on as UNREACHABLE", async () => {
    const port = await freePort();
    const snapshot = await read(adConfig(info, { url: `ldaps://127.0.0.1:${port}` }));
    const [reason] = reasons(snapshot);
    expect(reason!.code).toBe("UNREACHABLE");
    expect(reason!.message).toMatch(
      new RegExp(`source corp-ad \\(ldaps://127.0.0.1:${port}\\).*ECONNREFUSED`),
    );
  });

  describe("a server that accepts the connection and never answers", () => {
    let silent: Server;
    let port: number;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      silent = createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      port = (silent.address() as { port: number }).port;
    });
    afterAll(async () => {
      // What the reader left open after giving up shows here; the server must close regardless.
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    it("ends the read at the operation timeout as UNREACHABLE", async () => {
      const snapshot = await read(
        adConfig(info, {
          url: `ldap://127.0.0.1:${port}`,
          caFile: undefined,
          insecure: true,
          timeouts: { connectMs: 1_000, operationMs: 500 },
        }),
      );
      const [reason] = reasons(snapshot);
      expect(reason!.code).toBe("UNREACHABLE");
      expect(reason!.message).toMatch(/did not answer in time/);
    });
  });

  it("reports a server certificate from another CA as TLS_FAILED", async () => {
    const snapshot = await read(adConfig(info, { caFile: info.otherCaFile }));
    const [reason] = reasons(snapshot);
    expect(reason!.code).toBe("TLS_FAILED");
    expect(reason!.message).toMatch(/could not be verified against the configured CA/);
  });

  it("reports a CA file that cannot be read as TLS_FAILED naming the file", async () => {
    const snapshot = await read(adConfig(info, { caFile: "/nonexistent/ca.pem" }));
    const [reason] = reasons(snapshot);
    expect(reason!.code).toBe("TLS_FAILED");
    expect(reason!.message).toContain("/nonexistent/ca.pem");
  });

  it("reports a base DN that does not exist as NOT_FOUND and still reads the other base", async () => {
    const missing = `OU=Nowhere,${info.baseDn}`;
    const snapshot = await read(adConfig(info, { users: { baseDns: [missing, STAFF] } }));
    const found = reasons(snapshot);
    expect(found.map((r) => [r.code, r.where])).toEqual([["NOT_FOUND", missing]]);
    expect(found[0]!.message).toMatch(/OU=Nowhere.*does not exist/);
    expect(snapshot.people).toHaveLength(AD_USERS.length);
    expect(snapshot.cursor).toBeUndefined();
  });

  it("reads over plain ldap:// when insecure: true says so", async () => {
    // The test DC allows plain binds (ldap server require strong auth = no), so this only checks the read works.
    const snapshot = await read(
      adConfig(info, { url: info.plainUrl, caFile: undefined, insecure: true, groups: { baseDns: [] } }),
    );
    expect(snapshot.completeness).toEqual({ complete: true });
  });

  it("matches filter metacharacters and NUL in a configured filter literally, finding nobody", async () => {
    const snapshot = await read(
      adConfig(info, {
        users: { baseDns: [STAFF], filter: "(&(objectClass=user)(sAMAccountName=a\\2a\\28\\29\\5c\\00b))" },
        groups: { baseDns: [] },
      }),
    );
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people).toEqual([]);
  });
});

describe.skipIf(slapd === null)("ldap source: bad input against slapd", () => {
  const info = slapd!;
  const config = (overrides: Record<string, unknown> = {}) =>
    openldapTestConfig(info, { groups: { baseDns: [] }, pageSize: 500, extraAttributes: [], ...overrides });

  it("reports a wrong password as AUTH_FAILED (no AD sub-code)", async () => {
    const [reason] = reasons(await read(config({ bindPassword: "wrong" })));
    expect(reason!.code).toBe("AUTH_FAILED");
    expect(reason!.message).toMatch(/rejected the bind DN or password \(LDAP result 49/);
  });

  it("reports a base DN that does not exist as NOT_FOUND", async () => {
    const missing = `ou=nowhere,${info.baseDn}`;
    const [reason] = reasons(await read(config({ users: { baseDns: [missing] } })));
    expect([reason!.code, reason!.where]).toEqual(["NOT_FOUND", missing]);
  });

  it("ends an aborted read as incomplete with ABORTED", async () => {
    const controller = new AbortController();
    controller.abort();
    const snapshot = await read(config({ pageSize: 1 }), { mode: "full", signal: controller.signal });
    expect(reasons(snapshot).map((r) => r.code)).toEqual(["ABORTED"]);
    expect(snapshot.cursor).toBeUndefined();
  });

  it("refuses a cursor written by another source type (a caller mistake)", async () => {
    await expect(
      read(config(), { mode: "incremental", cursor: { type: "dingtalk", state: {} } }),
    ).rejects.toThrow(TypeError);
  });

  it("reports StartTLS on a server without TLS as a failure, not a crash", async () => {
    const snapshot = await read(config({ insecure: false, startTls: true }));
    expect(reasons(snapshot)[0]!.message).toMatch(/StartTLS/);
  });
});
