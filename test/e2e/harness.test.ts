/**
 * The browser harness proves itself: headless Chromium signs a person into the test finance client at a bare
 * oidc-provider (dev interactions), a second client signs in without a prompt, and a logout reaches both
 * clients over the back channel.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import Provider, { type KoaContextWithOIDC } from "oidc-provider";
import type { Browser } from "playwright-core";
import { freePort } from "../peers/process.js";
import { startFinanceClient, type FinanceClient } from "../helpers/finance-client.js";
import {
  chromiumOrSkip,
  launchBrowser,
  newContext,
  screenshot,
  setCookiesOn,
  USER_AGENTS,
} from "./browser.js";

// Each test drives a real browser through several redirects.
const TIMEOUT = 60_000;
const chromium = chromiumOrSkip();

/** A bare oidc-provider on 127.0.0.1 with its dev login form, first-party clients (no consent screen). */
async function startProvider(
  port: number,
  clients: readonly { id: string; secret?: string; rp: FinanceClient }[],
): Promise<{ issuer: string; stop: () => Promise<void> }> {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const provider = new Provider(issuer, {
    clients: clients.map(({ id, secret, rp }) => ({
      client_id: id,
      ...(secret === undefined
        ? { token_endpoint_auth_method: "none" }
        : { client_secret: secret, token_endpoint_auth_method: "client_secret_basic" }),
      redirect_uris: [rp.redirectUri],
      post_logout_redirect_uris: [rp.postLogoutRedirectUri],
      backchannel_logout_uri: rp.backchannelLogoutUri,
      backchannel_logout_session_required: true,
    })),
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: "RS256", use: "sig", kid: "k1" }] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    claims: { openid: ["sub", "sid"], profile: ["name", "roles"], email: ["email"] },
    // The profile claims in the ID token itself, as idbridge issues them.
    conformIdTokenClaims: false,
    // oidc-provider's own dispatcher refuses loopback and private addresses (SSRF protection); every peer here
    // is on 127.0.0.1, so the back-channel logout calls go through Node's default dispatcher instead.
    fetch: (input, init) => {
      const { dispatcher: _ssrfGuard, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return fetch(input, rest);
    },
    findAccount: (_ctx: KoaContextWithOIDC, sub: string) => ({
      accountId: sub,
      claims: () => ({
        sub,
        name: `名字 ${sub}`,
        email: `${sub}@example.test`,
        roles: ["approver", "viewer"],
      }),
    }),
    // First-party clients: the grant is made on the spot, so a second client signs in without a prompt.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const existing =
        ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(ctx.oidc.client!.clientId);
      if (existing !== undefined) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client!.clientId,
        accountId: ctx.oidc.session!.accountId!,
      });
      grant.addOIDCScope("openid profile email");
      await grant.save();
      return grant;
    },
  });
  const server = provider.listen(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  return {
    issuer,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(chromium === null)("browser harness (headless Chromium)", () => {
  let browser: Browser;
  let finance: FinanceClient;
  let expenses: FinanceClient;
  let stopProvider: () => Promise<void>;
  let shots: string;
  let issuer: string;

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    // The clients start first: their redirect URIs go into the provider's client list.
    finance = await startFinanceClient({ issuer, clientId: "finance", name: "finance" });
    // One public client, one confidential.
    const secret = randomBytes(32).toString("base64url");
    expenses = await startFinanceClient({
      issuer,
      clientId: "expenses",
      clientSecret: secret,
      name: "expenses",
    });
    const provider = await startProvider(port, [
      { id: "finance", rp: finance },
      { id: "expenses", secret, rp: expenses },
    ]);
    stopProvider = provider.stop;
    browser = await launchBrowser(chromium!);
    shots = await mkdtemp(join(tmpdir(), "idbridge-e2e-"));
  });

  afterAll(async () => {
    await browser?.close();
    await stopProvider?.();
    await finance?.stop();
    await expenses?.stop();
    if (shots !== undefined) await rm(shots, { recursive: true, force: true });
  });

  it(
    "signs in at the provider, signs into a second client with no prompt, and a logout ends both",
    async () => {
      const context = await newContext(browser);
      const page = await context.newPage();

      await page.goto(finance.url);
      await expect.poll(() => page.textContent("#status")).toBe("not signed in");
      await page.click("text=Sign in");
      // oidc-provider's dev login form: any login is accepted and becomes the subject.
      await page.fill('input[name="login"]', "p_zhang");
      await page.fill('input[name="password"]', "any");
      await page.click('button[type="submit"]');
      await page.waitForURL(`${finance.url}/`);
      expect(await page.textContent("#status")).toBe(
        "signed in as 名字 p_zhang (p_zhang) with roles approver, viewer",
      );

      const file = await screenshot(page, shots, "finance-signed-in");
      const png = await readFile(file);
      expect(png.subarray(0, 8)).toStrictEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(png.length).toBeGreaterThan(1_000);

      // The second client: the provider's session signs the person in without a form.
      await page.goto(`${expenses.url}/login`);
      await page.waitForURL(`${expenses.url}/`);
      expect(await page.textContent("#status")).toBe(
        "signed in as 名字 p_zhang (p_zhang) with roles approver, viewer",
      );

      // RP-initiated logout from the first client; oidc-provider asks to confirm.
      await page.goto(finance.url);
      await page.click("text=Sign out");
      await page.click('button[name="logout"]');
      await page.waitForURL(finance.postLogoutRedirectUri);
      expect(await page.textContent("#status")).toBe("signed out");

      // The back channel told both clients; the second one ended its own session.
      await expect.poll(() => expenses.received().length).toBe(1);
      const [told] = expenses.received();
      expect(told).toMatchObject({ accepted: true, endedSessions: 1, claims: { sub: "p_zhang" } });
      expect(finance.received()).toMatchObject([{ accepted: true, claims: { sub: "p_zhang" } }]);
      await page.goto(expenses.url);
      expect(await page.textContent("#status")).toBe("not signed in");
      await context.close();
    },
    TIMEOUT,
  );

  it(
    "refuses a forged back-channel logout token and keeps the session",
    async () => {
      const context = await newContext(browser);
      const page = await context.newPage();
      await page.goto(`${finance.url}/login`);
      await page.fill('input[name="login"]', "p_li");
      await page.fill('input[name="password"]', "any");
      await page.click('button[type="submit"]');
      await page.waitForURL(`${finance.url}/`);
      const before = finance.received().length;

      // Signed with a key the provider never published.
      const { privateKey } = await generateKeyPair("RS256");
      const forged = await new SignJWT({
        sub: "p_li",
        events: { "http://schemas.openid.net/event/backchannel-logout": {} },
        jti: "forged-1",
      })
        .setProtectedHeader({ alg: "RS256", kid: "k1", typ: "logout+jwt" })
        .setIssuer(issuer)
        .setAudience("finance")
        .setIssuedAt()
        .sign(privateKey);
      const response = await fetch(finance.backchannelLogoutUri, {
        method: "POST",
        body: new URLSearchParams({ logout_token: forged }),
      });
      expect(response.status).toBe(400);
      expect(finance.received().slice(before)).toMatchObject([{ accepted: false, endedSessions: 0 }]);
      await page.reload();
      expect(await page.textContent("#status")).toMatch(/^signed in as .* \(p_li\)/);
      await context.close();
    },
    TIMEOUT,
  );

  it(
    "sends the DingTalk user agent and the cookies set for another origin",
    async () => {
      const context = await newContext(browser, { userAgent: USER_AGENTS.dingTalk });
      await setCookiesOn(context, finance.url, [{ name: "simulator_seen", value: "yes" }]);
      const page = await context.newPage();
      const seen = page.waitForRequest((request) => request.url().startsWith(finance.url));
      await page.goto(finance.url);
      const request = await seen;
      const headers = await request.allHeaders();
      expect(headers["user-agent"]).toContain("DingTalk/7.0.40");
      expect(headers.cookie).toContain("simulator_seen=yes");
      expect(await page.evaluate(() => navigator.userAgent)).toBe(USER_AGENTS.dingTalk);
      // Off-loopback requests fail at once: no test reaches the internet.
      const remote = await page.evaluate(() =>
        fetch("https://example.com/").then(
          () => "reached",
          () => "blocked",
        ),
      );
      expect(remote).toBe("blocked");
      await context.close();
    },
    TIMEOUT,
  );
});
