/**
 * The broker with the real people side (StorePersonDirectory): AD password sign-in of an account no
 * person has yet, created just in time, then found by its link; the same `sub` both times, and the
 * roles claim from the client's target policy over the directory as a sync kept it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import { ldapConfigSchema } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import { openStore } from "../../src/store/index.js";
import { ldapTestContext } from "../helpers/ldap.js";
import {
  Browser,
  createAdUsers,
  passwordForm,
  relyingParty,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type RelyingParty,
} from "../helpers/broker-env.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();

describe.skipIf(samba === null)("sign-in broker with the Store-backed person directory", () => {
  const info = samba!;
  const tmp = tempDir();
  let users: AdUsers;
  let service: RunningService;
  let rp: RelyingParty;
  let storeUrl: string;

  beforeAll(async () => {
    users = await createAdUsers(info, "brokerjit", ["dave"]);
    mkdirSync(`${tmp.dir}/policies`);
    writeFileSync(
      `${tmp.dir}/policies/hesi-main.yaml`,
      `version: 1
target: hesi-main
roles:
  submitter: { targetRole: "报销提交人" }
rules:
  - id: everyone-submits
    when: { status: active }
    grant: submitter
`,
    );
    storeUrl = `sqlite:${tmp.dir}/idbridge.db`;
    const config = writeConfig(
      tmp.dir,
      `
server: { host: 127.0.0.1, port: 0 }
store: { url: "${storeUrl}" }
keys: { dir: "${tmp.dir}/keys" }
log: { level: silent }
policiesDir: "${tmp.dir}/policies"
identity: { primarySource: corp-ad }
sources:
  - id: corp-ad
    type: ldap
    config:
      url: "${info.url}"
      flavor: ad
      caFile: "${info.caFile}"
      bindDn: "${info.bindDn}"
      bindPassword: "${info.bindPassword}"
      users: { baseDns: ["${users.ou}"] }
      groups: { baseDns: [] }
signIn:
  justInTime: true
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
      target: hesi-main
targets:
  - id: hesi-main
    type: hesi
    config: { baseUrl: "https://hesi.example.test", appKey: k, appSecurity: "s-0123456789abcdef" }
sync: { fullEveryMinutes: 0, incrementalEveryMinutes: 0 }
`,
    );
    // The directory as a sync would have kept it: the person's facts (active) that the policy reads.
    const snapshot = await openLdapDirectory(
      ldapTestContext("corp-ad"),
      ldapConfigSchema.parse(config.sources[0]!.config),
    ).read();
    expect(snapshot.completeness.complete).toBe(true);
    const store = await openStore({ url: storeUrl });
    await store.putLatestSnapshot("corp-ad", JSON.stringify(snapshot), snapshot.finishedAt);
    await store.close();
    service = await start(config);
    rp = await relyingParty(`${service.url}/oidc`, {
      clientId: "portal",
      redirectUri: "https://portal.example.test/cb",
    });
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await users?.remove();
    tmp.remove();
  });

  async function signIn(): Promise<oidc.IDToken> {
    const browser = new Browser(service.url);
    const request = await rp.authorizationRequest();
    const page = await browser.go(request.url);
    if (page.kind !== "page") throw new Error("expected the login page");
    const form = passwordForm(page.html);
    const done = await browser.go(form.action, {
      form: { csrf: form.csrf, login: "brokerjit-dave", password: users.password.dave! },
    });
    if (done.kind !== "away") throw new Error(`expected a redirect to the platform:\n${done.html}`);
    const tokens = await oidc.authorizationCodeGrant(rp.config, done.url, {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    return tokens.claims()!;
  }

  it("creates the person at first sign-in, finds them by the link the next time, with the same sub", async () => {
    const first = await signIn();
    const second = await signIn();
    expect(first.sub).toMatch(/^p_/);
    expect(second.sub).toBe(first.sub);
    const store = await openStore({ url: storeUrl });
    try {
      const head = await store.auditHead();
      const entries = await store.readAudit(0, head.seq, 500);
      const vias = entries.filter((e) => e.action === "login.succeeded").map((e) => e.details.via);
      expect(vias).toStrictEqual(["just-in-time", "link"]);
    } finally {
      await store.close();
    }
  });

  it("claims the roles the client's target policy grants the person", async () => {
    const claims = await signIn();
    expect(claims.roles).toStrictEqual(["报销提交人"]);
  });
});
