/**
 * The SAML POST callback stash: only a RelayState naming a live flow of a SAML source gets its fields
 * kept for the GET hop (and the flow stays usable); anything else is refused with an audit entry. The
 * IdP is never contacted: the posted response is junk, so the sign-in ends at the connector's check.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import {
  Browser,
  PORTAL,
  recentAudit,
  relyingParty,
  serviceYaml,
  start,
  tempDir,
  writeConfig,
  type RelyingParty,
} from "../helpers/broker-env.js";

describe("sign-in broker: SAML POST callback stash", () => {
  const tmp = tempDir();
  let service: RunningService;
  let rp: RelyingParty;
  let storeUrl: string;

  beforeAll(async () => {
    const certFile = `${tmp.dir}/idp.pem`;
    execFileSync("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=idp"],
      ...["-keyout", `${tmp.dir}/idp.key`, "-out", certFile],
    ]);
    storeUrl = `sqlite:${tmp.dir}/idbridge.db`;
    const config = writeConfig(
      tmp.dir,
      `${serviceYaml(tmp.dir, { storeUrl })}
sources:
  - id: corp-saml
    type: saml
    config:
      idpEntityId: "https://idp.example.test/idp"
      idpSsoUrl: "https://idp.example.test/sso"
      idpCertFile: "${certFile}"
  - id: other-saml
    type: saml
    config:
      idpEntityId: "https://idp.example.test/idp"
      idpSsoUrl: "https://idp.example.test/sso"
      idpCertFile: "${certFile}"
signIn:
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`,
    );
    service = await start(config);
    rp = await relyingParty(`${service.url}/oidc`, PORTAL);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    tmp.remove();
  });

  /** A browser that left for the IdP of corp-saml: its RelayState. */
  async function leaveForIdp(browser: Browser): Promise<string> {
    const request = await rp.authorizationRequest();
    const page = await browser.go(request.url);
    if (page.kind !== "page") throw new Error("expected the login page");
    const href = /<a class="source" href="([^"]+corp-saml[^"]*)"/.exec(page.html)?.[1];
    if (href === undefined) throw new Error(`no corp-saml button:\n${page.html}`);
    const away = await browser.go(href.replace(/&amp;/g, "&"));
    if (away.kind !== "away") throw new Error("expected a redirect to the IdP");
    const state = away.url.searchParams.get("RelayState");
    expect(state).toMatch(/^[0-9a-f]{64}$/);
    return state!;
  }

  const post = (sourceId: string, fields: Record<string, string>) =>
    fetch(`${service.url}/login/callback/${sourceId}`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  const failures = async (code: string) =>
    (await recentAudit(storeUrl)).filter((e) => e.action === "login.failed" && e.details.code === code);

  it("keeps the post of a live flow for the GET hop, and the flow still reaches the SAML check", async () => {
    const browser = new Browser(service.url);
    const state = await leaveForIdp(browser);
    const res = await post("corp-saml", { SAMLResponse: "bm90IGEgcmVzcG9uc2U=", RelayState: state });
    expect(res.status).toBe(303);
    const location = res.headers.get("location")!;
    expect(location).toMatch(/^\/login\/callback\/corp-saml\?posted=[0-9a-f]{64}$/);
    const landing = await browser.go(location);
    // The junk response failed the SAML check, not the flow: the state was put back unused.
    expect(landing.kind === "page" && landing.status).toBe(200);
    expect((await failures("INVALID_RESPONSE")).map((e) => e.details.source)).toContain("corp-saml");
  });

  it("refuses a post whose RelayState names no live flow, or another source's flow, without a stash", async () => {
    const before = (await failures("FLOW_INVALID")).length;
    const state = await leaveForIdp(new Browser(service.url));
    for (const [sourceId, relayState] of [
      ["corp-saml", "c".repeat(64)],
      ["corp-saml", "idp-initiated"],
      ["other-saml", state],
    ] as const) {
      const res = await post(sourceId, { SAMLResponse: "eA==", RelayState: relayState });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
    }
    expect((await failures("FLOW_INVALID")).length - before).toBe(3);
  });
});
