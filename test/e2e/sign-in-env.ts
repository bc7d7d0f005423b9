/**
 * Everything the browser sign-in tests need, started once per file: the DingTalk and WeCom simulators
 * (one company, linked by userid), AD users on the run's Samba (linked to the same people by employee
 * number), the corporate OIDC IdP peer, SimpleSAMLphp, the 合思 simulator as a target with a policy and a
 * sync applied to it, two finance clients (B told of logouts over the back channel), and one idbridge
 * service with all of it configured. Everything listens on 127.0.0.1.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Attribute, Change, Client } from "ldapts";
import { pino } from "pino";
import { stringify } from "yaml";
import { AuditLog } from "../../src/audit/log.js";
import { startService, type RunningService } from "../../src/cli/serve.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { generateOrg, type SimOrg, type SimPerson } from "../../src/simulators/common/org.js";
import {
  startDingTalkSimulator,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { startHesiSimulator, type RunningHesiSimulator } from "../../src/simulators/hesi/index.js";
import { startWeComSimulator, type RunningWeComSimulator } from "../../src/simulators/wecom/index.js";
import { openStore } from "../../src/store/index.js";
import { SyncService } from "../../src/sync/service.js";
import { hesiPolicy } from "../fixtures/sync/policies.js";
import { createAdUsers, type AdUsers } from "../helpers/broker-env.js";
import { startFinanceClient, type FinanceClient } from "../helpers/finance-client.js";
import { DINGTALK_ID, prepareIdbridgeFiles, WECOM_ID } from "../helpers/sync-env.js";
import type { SambaInfo } from "../peers/index.js";
import { startOidcIdp, type OidcIdp } from "../peers/oidc-idp.js";
import { freePort } from "../peers/process.js";
import { SAML_TEST_USERS, type SimpleSamlPhpPeer } from "../peers/simplesamlphp.js";

export { DINGTALK_ID, WECOM_ID };
export const AD_ID = "corp-ad";
export const OIDC_ID = "corp-oidc";
export const SAML_ID = "corp-saml";
export const HESI_ID = "hesi-main";

/** The one person every path signs in as: email of their AD, OIDC and SAML accounts alike. */
export const LINKED_EMAIL = SAML_TEST_USERS[0]!.attributes.email![0]!;
/** The SimpleSAMLphp account of the linked person (alice). */
export const SAML_USER = SAML_TEST_USERS[0]!;
/** The corporate IdP's account of the linked person. */
export const OIDC_USER = { username: "linked.person", password: `Pw-${randomBytes(9).toString("hex")}` };

/** A running sign-in setup. */
export interface SignInEnv {
  /** idbridge's base URL (also its public URL). */
  readonly url: string;
  /** idbridge's issuer. */
  readonly issuer: string;
  readonly org: SimOrg;
  readonly dingtalk: RunningDingTalkSimulator;
  readonly wecom: RunningWeComSimulator;
  readonly hesi: RunningHesiSimulator;
  readonly idp: OidcIdp;
  readonly saml: SimpleSamlPhpPeer;
  readonly ad: AdUsers;
  /** Client A: public, its target is 合思 (roles non-empty), no back channel. */
  readonly financeA: FinanceClient;
  /** Client B: confidential, told of logouts over the back channel. */
  readonly financeB: FinanceClient;
  /** The person linked across DingTalk, WeCom, AD, OIDC and SAML (active, a 合思 staff after the sync). */
  readonly linked: SimPerson;
  /** Another active person, linked to AD account `second` (disabled there during a test). */
  readonly second: SimPerson;
  /** A person DingTalk and WeCom list as not activated: not active, refused. */
  readonly inactive: SimPerson;
  /** sAMAccountName of an AD user's `name` (`linked`, `second`, `disabled`). */
  samOf(name: string): string;
  /** Disables (or enables again) an AD account. */
  setAdDisabled(name: string, disabled: boolean): Promise<void>;
  close(): Promise<void>;
}

const AD_NAMES = ["linked", "second", "disabled"] as const;

/** Starts the peers, applies a sync to 合思, and starts idbridge. */
export async function startSignInEnv(samba: SambaInfo, ssp: SimpleSamlPhpPeer): Promise<SignInEnv> {
  const closers: Array<() => Promise<unknown>> = [];
  const close = async (): Promise<void> => {
    for (const fn of closers.reverse()) await fn().catch(() => undefined);
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), "idbridge-e2e-sign-in-"));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const issuer = `${url}/oidc`;
    const callback = (sourceId: string) => `${url}/login/callback/${sourceId}`;

    const org = generateOrg({ people: 80, seed: 1 });
    const active = org.people.filter((p) => p.status === "active");
    const linked = active[1]!;
    const second = active[2]!;
    const inactive = org.people.find((p) => p.status === "not-activated");
    if (inactive === undefined) throw new Error("the generated company has nobody not activated");

    const dingtalk = await startDingTalkSimulator({ org, qps: 500, redirectUrls: [callback(DINGTALK_ID)] });
    closers.push(() => dingtalk.close());
    const wecom = await startWeComSimulator({ org });
    closers.push(() => wecom.close());
    const hesi = await startHesiSimulator({ timeoutMs: 50 });
    closers.push(() => hesi.close());

    const idpSecret = randomBytes(24).toString("base64url");
    const idp = await startOidcIdp({
      clients: [{ clientId: "idbridge", clientSecret: idpSecret, redirectUris: [callback(OIDC_ID)] }],
      users: [
        {
          ...OIDC_USER,
          claims: {
            sub: "oidc-0001",
            email: LINKED_EMAIL,
            email_verified: true,
            name: linked.name,
            preferred_username: OIDC_USER.username,
          },
        },
      ],
    });
    closers.push(() => idp.stop());
    await ssp.registerSp({ entityId: `${url}/saml/${SAML_ID}/metadata`, acsUrl: callback(SAML_ID) });

    const prefix = `e2e${randomBytes(2).toString("hex")}`;
    const ad = await createAdUsers(samba, prefix, AD_NAMES);
    closers.push(() => ad.remove());
    const samOf = (name: string) => `${prefix}-${name}`.slice(0, 20);
    const dnOf = (name: string) => `CN=${samOf(name)},${ad.ou}`;
    const admin = new Client({ url: samba.url, tlsOptions: { ca: readFileSync(samba.caFile) } });
    await admin.bind(samba.bindDn, samba.bindPassword);
    closers.push(() => admin.unbind());
    const replace = (name: string, type: string, value: string) =>
      admin.modify(dnOf(name), [
        new Change({ operation: "replace", modification: new Attribute({ type, values: [value] }) }),
      ]);
    await replace("linked", "employeeID", linked.jobNumber);
    await replace("linked", "mail", LINKED_EMAIL);
    await replace("second", "employeeID", second.jobNumber);

    const financeA = await startFinanceClient({
      issuer,
      clientId: "finance-a",
      name: "finance A",
      scope: "openid profile email roles",
    });
    closers.push(() => financeA.stop());
    const secretB = randomBytes(32).toString("base64url");
    const financeB = await startFinanceClient({
      issuer,
      clientId: "finance-b",
      clientSecret: secretB,
      name: "finance B",
      scope: "openid profile email roles",
    });
    closers.push(() => financeB.stop());

    const { keys, storeUrl, configFile, fileConfig } = await prepareIdbridgeFiles(dir, {
      [`${HESI_ID}.yaml`]: hesiPolicy(),
    });
    const emailTerm = (source: string) => ({
      source,
      attribute: "email",
      verified: true,
      domains: [LINKED_EMAIL.split("@")[1]!],
    });
    writeFileSync(
      configFile,
      stringify({
        server: { host: "127.0.0.1", port },
        ...fileConfig,
        sources: [
          {
            id: DINGTALK_ID,
            type: "dingtalk",
            config: { ...dingtalk.sourceConfig(), requestsPerSecond: 500 },
          },
          {
            id: WECOM_ID,
            type: "wecom",
            config: {
              ...wecom.sourceConfig({ use: "app" }),
              contactSecret: wecom.credentials.contactSecret,
            },
          },
          {
            id: AD_ID,
            type: "ldap",
            config: {
              url: samba.url,
              flavor: "ad",
              caFile: samba.caFile,
              bindDn: samba.bindDn,
              bindPassword: samba.bindPassword,
              users: { baseDns: [ad.ou] },
              groups: { baseDns: [] },
            },
          },
          {
            id: OIDC_ID,
            type: "oidc",
            config: {
              issuer: idp.issuer,
              clientId: "idbridge",
              clientSecret: idpSecret,
              allowInsecureHttp: true,
            },
          },
          {
            id: SAML_ID,
            type: "saml",
            config: { idpMetadataUrl: ssp.metadataUrl, allowInsecureHttp: true },
          },
        ],
        targets: [
          {
            id: HESI_ID,
            type: "hesi",
            config: { ...hesi.targetConfig(), requestsPerSecond: 100, timeoutMs: 5000 },
          },
        ],
        identity: {
          primarySource: DINGTALK_ID,
          rules: [
            {
              id: "same-userid",
              match: [
                { source: DINGTALK_ID, attribute: "subject" },
                { source: WECOM_ID, attribute: "subject" },
              ],
            },
            {
              id: "employee-no",
              match: [
                { source: DINGTALK_ID, attribute: "employeeNo" },
                { source: AD_ID, attribute: "employeeNo" },
              ],
            },
            { id: "work-email", match: [emailTerm(AD_ID), emailTerm(OIDC_ID), emailTerm(SAML_ID)] },
          ],
        },
        sync: { orgChartSource: DINGTALK_ID, fullEveryMinutes: 0, incrementalEveryMinutes: 0 },
        signIn: {
          clients: [
            {
              clientId: "finance-a",
              name: "报销平台 A",
              redirectUris: [financeA.redirectUri],
              postLogoutRedirectUris: [financeA.postLogoutRedirectUri],
              target: HESI_ID,
            },
            {
              clientId: "finance-b",
              name: "报销平台 B",
              clientSecret: secretB,
              redirectUris: [financeB.redirectUri],
              postLogoutRedirectUris: [financeB.postLogoutRedirectUri],
              backchannelLogoutUri: financeB.backchannelLogoutUri,
              target: HESI_ID,
            },
          ],
        },
      }),
    );
    let config: Config;
    try {
      config = loadConfig({ file: configFile, env: {}, cwd: dir });
    } catch (err) {
      // The problems are in the error's details; a failing setup should say them.
      throw new Error(`${String(err)}: ${JSON.stringify((err as { details?: unknown }).details)}`, {
        cause: err,
      });
    }

    // The sync first (its own store handle, closed before the service opens the same SQLite file): people,
    // links and 合思 staff exist before anyone signs in.
    const store = await openStore({ url: storeUrl });
    try {
      const audit = new AuditLog(store, keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
      try {
        const sync = new SyncService({ config, store, audit, holder: "e2e", note: () => undefined });
        const planned = await sync.plan(HESI_ID);
        if (planned.status === "pending") await sync.approve(planned.id, "e2e-admin");
        await sync.apply(planned.id);
      } finally {
        await audit.close();
      }
    } finally {
      await store.close();
    }

    const service: RunningService = await startService(config, pino({ level: "silent" }));
    closers.push(() => service.stop());

    return {
      url,
      issuer,
      org,
      dingtalk,
      wecom,
      hesi,
      idp,
      saml: ssp,
      ad,
      financeA,
      financeB,
      linked,
      second,
      inactive,
      samOf,
      setAdDisabled: async (name, disabled) => {
        await replace(name, "userAccountControl", disabled ? "514" : "512");
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
