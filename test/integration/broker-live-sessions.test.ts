/**
 * A session and its tokens stop working as soon as the person is disabled at their source, not at the
 * next sync: silent sign-ins, refresh token grants and userinfo ask the person's linked AD account now
 * (signIn.session.liveCheckSeconds), end the session, revoke the grant and audit `session.ended`.
 */
import { readFileSync } from "node:fs";
import { Attribute, Change, Client } from "ldapts";
import * as oidc from "openid-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import type { AuditRecord } from "../../src/store/store.js";
import {
  adSourceYaml,
  Browser,
  createAdUsers,
  recentAudit,
  redeemCode,
  PORTAL,
  relyingParty,
  serviceYaml,
  signInWithPassword,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type RelyingParty,
} from "../helpers/broker-env.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const PREFIX = "brokerlive";

describe.skipIf(samba === null)("live account checks of sessions and tokens", () => {
  const info = samba!;
  const tmp = tempDir();
  let users: AdUsers;
  const running: RunningService[] = [];
  let databases = 0;

  beforeAll(async () => {
    users = await createAdUsers(info, PREFIX, ["erin", "fay", "gil"]);
  }, 60_000);
  afterEach(async () => {
    while (running.length > 0) await running.pop()!.stop();
  });
  afterAll(async () => {
    await users?.remove();
    tmp.remove();
  });

  /** The service on a fresh SQLite store, with a `liveCheckSeconds` of its own. */
  async function startService(
    liveCheckSeconds: number,
  ): Promise<{ service: RunningService; storeUrl: string }> {
    const storeUrl = `sqlite:${tmp.dir}/live-${++databases}.db`;
    const config = writeConfig(
      tmp.dir,
      `${serviceYaml(tmp.dir, { storeUrl })}${adSourceYaml(info, users.ou)}
identity: { primarySource: corp-ad }
signIn:
  session: { liveCheckSeconds: ${liveCheckSeconds} }
  justInTime: true
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`,
    );
    const service = await start(config);
    running.push(service);
    return { service, storeUrl };
  }

  async function setEnabled(name: string, enabled: boolean): Promise<void> {
    const admin = new Client({ url: info.url, tlsOptions: { ca: readFileSync(info.caFile) } });
    await admin.bind(info.bindDn, info.bindPassword);
    try {
      await admin.modify(`CN=${PREFIX}-${name},${users.ou}`, [
        new Change({
          operation: "replace",
          modification: new Attribute({ type: "userAccountControl", values: [enabled ? "512" : "514"] }),
        }),
      ]);
    } finally {
      await admin.unbind();
    }
  }

  /** A signed-in browser and the tokens its first authorization gave the portal. */
  async function signIn(service: RunningService, rp: RelyingParty, name: string) {
    const browser = new Browser(service.url);
    const { request, done } = await signInWithPassword(
      browser,
      rp,
      `${PREFIX}-${name}`,
      users.password[name]!,
    );
    const tokens = await redeemCode(rp, done, request);
    const personId = tokens.claims()?.sub;
    if (personId === undefined) throw new Error("no sub in the ID token");
    return { browser, tokens, personId };
  }

  /** Where a new authorization of the signed-in browser lands: back at the portal, or on the login page. */
  async function authorize(browser: Browser, rp: RelyingParty, extra?: Record<string, string>) {
    return browser.go((await rp.authorizationRequest(extra)).url.href);
  }

  function endedOf(entries: readonly AuditRecord[], personId: string): AuditRecord[] {
    return entries.filter((e) => e.action === "session.ended" && e.subject === personId);
  }

  it("refuses refresh, userinfo and the silent sign-in of a person disabled in AD since, and revokes the grant", async () => {
    const { service, storeUrl } = await startService(0);
    const rp = await relyingParty(`${service.url}/oidc`, PORTAL);
    const { browser, tokens, personId } = await signIn(service, rp, "erin");
    // Active: a silent sign-in and a refresh both work.
    expect((await authorize(browser, rp)).kind).toBe("away");
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(refreshed.access_token).toEqual(expect.any(String));

    await setEnabled("erin", false);
    await expect(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });
    await expect(oidc.fetchUserInfo(rp.config, refreshed.access_token, personId)).rejects.toBeInstanceOf(
      Error,
    );
    const landing = await authorize(browser, rp);
    expect(landing.kind).toBe("page");
    expect(landing.url.pathname).toMatch(/^\/login\//);

    const ended = endedOf(await recentAudit(storeUrl), personId);
    expect(ended.map((e) => e.details.use)).toEqual(["refresh", "authorize"]);
    for (const entry of ended)
      expect(entry.details).toMatchObject({ code: "ACCOUNT_DISABLED", personId, clientId: "portal" });
    expect(String(ended[0]!.details.reason)).toContain("corp-ad");
    // The refusal revoked the grant: the refresh token is gone even once erin is enabled again.
    await setEnabled("erin", true);
    await expect(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });
  });

  it("answers a prompt=none authorization of a disabled person with login_required and ends the session", async () => {
    const { service, storeUrl } = await startService(0);
    const rp = await relyingParty(`${service.url}/oidc`, PORTAL);
    const { browser, personId } = await signIn(service, rp, "fay");
    const before = await authorize(browser, rp, { prompt: "none" });
    expect(before.kind).toBe("away");
    expect(before.url.searchParams.get("code")).toEqual(expect.any(String));

    await setEnabled("fay", false);
    const silent = await authorize(browser, rp, { prompt: "none" });
    expect(silent.kind).toBe("away");
    expect(silent.url.searchParams.get("error")).toBe("login_required");
    // Enabled again, the ended session does not come back: the next sign-in is interactive.
    await setEnabled("fay", true);
    const after = await authorize(browser, rp, { prompt: "none" });
    expect(after.url.searchParams.get("error")).toBe("login_required");
    expect(endedOf(await recentAudit(storeUrl), personId)).toHaveLength(1);
  });

  it("trusts a yes for liveCheckSeconds, then asks the source again", async () => {
    const { service } = await startService(2);
    const rp = await relyingParty(`${service.url}/oidc`, PORTAL);
    const { browser, tokens } = await signIn(service, rp, "gil");
    // The refresh asks AD and caches the yes; disabled right after, the next use within 2 s still passes.
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    await setEnabled("gil", false);
    try {
      expect((await authorize(browser, rp)).kind).toBe("away");
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await expect(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token!)).rejects.toMatchObject({
        error: "invalid_grant",
      });
    } finally {
      await setEnabled("gil", true);
    }
  });
});
