/**
 * The login pages' guards without any real source: the password form's limits (which count only
 * wrong passwords), an LDAP server that is down shown as a sentence, and stale or malformed requests answered
 * with a clear 4xx page. The LDAP source points at a closed loopback port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import {
  Browser,
  errorSentence,
  openPasswordForm,
  recentAudit,
  PORTAL,
  relyingParty,
  serviceYaml,
  start,
  tempDir,
  writeConfig,
  type RelyingParty,
} from "../helpers/broker-env.js";

describe("sign-in broker: login page guards", () => {
  const tmp = tempDir();
  let service: RunningService;
  let rp: RelyingParty;
  let storeUrl: string;

  beforeAll(async () => {
    storeUrl = `sqlite:${tmp.dir}/idbridge.db`;
    const config = writeConfig(
      tmp.dir,
      `${serviceYaml(tmp.dir, { storeUrl })}
sources:
  - id: corp-ad
    type: ldap
    config:
      url: "ldap://127.0.0.1:1"
      insecure: true
      flavor: ad
      bindDn: "CN=svc,DC=corp,DC=example,DC=test"
      bindPassword: "not-used-here"
      users: { baseDns: ["DC=corp,DC=example,DC=test"] }
signIn:
  upstreamTimeoutSeconds: 1
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`,
    );
    // The real person directory: no sign-in here gets past the source to ask it.
    service = await start(config, { passwordLimits: { perIp: 100, perLogin: 3, windowMs: 60_000 } });
    rp = await relyingParty(`${service.url}/oidc`, PORTAL);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    tmp.remove();
  });

  it("says the domain is not reachable when the LDAP server is down", async () => {
    const browser = new Browser(service.url);
    const { form } = await openPasswordForm(browser, rp);
    const done = await browser.go(form.action, {
      form: { csrf: form.csrf, login: "someone", password: "x" },
    });
    expect(done.kind === "page" && errorSentence(done.html)).toBe("域账号暂时无法访问，请稍后重试。");
  });

  it("does not count attempts the source could not check against the login name", async () => {
    const browser = new Browser(service.url, undefined, "en");
    const { form } = await openPasswordForm(browser, rp);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const done = await browser.go(form.action, {
        form: { csrf: form.csrf, login: "Guessed.Name", password: `try-${i}` },
      });
      if (done.kind !== "page") throw new Error("expected a page");
      statuses.push(done.status);
    }
    // The domain being down says nothing about the password: no lock-out, no RATE_LIMITED entry.
    expect(statuses).not.toContain(429);
    const entries = await recentAudit(storeUrl);
    expect(entries.filter((e) => e.details.code === "RATE_LIMITED")).toHaveLength(0);
    expect(JSON.stringify(entries)).not.toContain("try-3");
  });

  it("answers an unknown interaction with a 400 page, not a stack", async () => {
    const browser = new Browser(service.url);
    const landing = await browser.go("/login/not-an-interaction");
    expect(landing.kind === "page" && landing.status).toBe(400);
    expect(landing.kind === "page" && landing.html).toContain("登录页面已过期");
  });

  it("answers a malformed authorization request with a plain 400 page", async () => {
    const browser = new Browser(service.url);
    const landing = await browser.go("/oidc/auth?client_id=nobody&response_type=code&scope=openid");
    expect(landing.kind === "page" && landing.status).toBe(400);
    expect(landing.kind === "page" && landing.html).toContain("请求无效。");
    expect(landing.kind === "page" && landing.html).not.toMatch(/invalid_client|stack|Error:/);
  });

  it("refuses an oversized SAML-style callback post with 413", async () => {
    const res = await fetch(`${service.url}/login/callback/corp-ad`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `SAMLResponse=${"A".repeat(300_000)}`,
    });
    expect(res.status).toBe(413);
  });
});
