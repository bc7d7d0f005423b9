/**
 * The broker with the real people side (StorePersonDirectory): AD password sign-in of an account no
 * person has yet, created just in time, then found by its link; the same `sub` both times, and the
 * roles claim from the client's target policy over the directory as a sync kept it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import type * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import { ldapConfigSchema } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import { openStore } from "../../src/store/index.js";
import { ldapTestContext } from "../helpers/ldap.js";
import {
  adSourceYaml,
  Browser,
  createAdUsers,
  HESI_TARGET_YAML,
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
      `${serviceYaml(tmp.dir, { storeUrl })}${adSourceYaml(info, users.ou)}
policiesDir: "${tmp.dir}/policies"
identity: { primarySource: corp-ad }
signIn:
  justInTime: true
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
      target: hesi-main
${HESI_TARGET_YAML}`,
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
    rp = await relyingParty(`${service.url}/oidc`, PORTAL);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await users?.remove();
    tmp.remove();
  });

  async function signIn(): Promise<oidc.IDToken> {
    const browser = new Browser(service.url);
    const { request, done } = await signInWithPassword(browser, rp, "brokerjit-dave", users.password.dave!);
    return (await redeemCode(rp, done, request)).claims()!;
  }

  it("creates the person at first sign-in, finds them by the link the next time, with the same sub", async () => {
    const first = await signIn();
    const second = await signIn();
    expect(first.sub).toMatch(/^p_/);
    expect(second.sub).toBe(first.sub);
    const entries = await recentAudit(storeUrl);
    const vias = entries.filter((e) => e.action === "login.succeeded").map((e) => e.details.via);
    expect(vias).toStrictEqual(["just-in-time", "link"]);
  });

  it("claims the roles the client's target policy grants the person", async () => {
    const claims = await signIn();
    expect(claims.roles).toStrictEqual(["报销提交人"]);
  });
});
