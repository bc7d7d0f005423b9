/**
 * The demo's idbridge configuration, built in code: the DingTalk and WeCom simulators as sources, the 合思
 * simulator as the target, the repository's policies/ (the one source of truth for who holds which role —
 * its AD condition simply never matches, as the demo has no AD), console roles for the demo accounts and
 * the demo finance app as a client. It is written to `idbridge.yaml` in the data dir, so the CLI
 * (`idbridge sync show … -c data/demo/idbridge.yaml`) works beside the running demo.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { loadConfig, type Config } from "../config/load.js";
import type { DemoAccount } from "./company.js";

/** Source and target ids; policies/hesi-main.yaml names them. */
export const DEMO_IDS = { dingtalk: "dingtalk-hq", wecom: "wecom-hq", hesi: "hesi-main" } as const;
/** The finance app's client id at idbridge. */
export const FINANCE_CLIENT_ID = "demo-finance";
/** The config file the demo writes into its data dir. */
export const DEMO_CONFIG_FILE = "idbridge.yaml";
/** The policies shipped with idbridge (dist/demo → ../../policies, src/demo → ../../policies). */
export const DEMO_POLICIES_DIR = fileURLToPath(new URL("../../policies", import.meta.url));

/** What the demo config is built from: where things live and what the simulators answer. */
export interface DemoConfigInput {
  /** Absolute data dir (store, keys, logs). */
  readonly dataDir: string;
  /** idbridge's port (known before it starts: the DingTalk app registers its callback URL). */
  readonly port: number;
  /** `config:` of the DingTalk source, the WeCom source and the 合思 target. */
  readonly dingtalk: Record<string, unknown>;
  readonly wecom: Record<string, unknown>;
  readonly hesi: Record<string, unknown>;
  /** The finance app's URLs and secret. */
  readonly financeApp: {
    readonly redirectUri: string;
    readonly postLogoutRedirectUri: string;
    readonly backchannelLogoutUri: string;
    readonly clientSecret: string;
  };
  /** The people given console roles. */
  readonly accounts: readonly DemoAccount[];
}

/** The demo config as the YAML file would hold it. */
export function demoConfig(input: DemoConfigInput): Record<string, unknown> {
  const access = (["security-admin", "auditor", "viewer"] as const)
    .map((role) => ({
      role,
      people: input.accounts
        .filter((a) => a.role === role)
        .map((a) => `${DEMO_IDS[a.via]}:${a.person.userid}`),
    }))
    .filter((rule) => rule.people.length > 0);
  return {
    server: { host: "127.0.0.1", port: input.port },
    dataDir: input.dataDir,
    policiesDir: DEMO_POLICIES_DIR,
    store: { url: `sqlite:${join(input.dataDir, "idbridge.db")}` },
    keys: { dir: join(input.dataDir, "keys"), generateIfMissing: true },
    log: { level: "info" },
    sources: [
      // The simulators answer at once; DingTalk's default 20 calls per second would only slow the demo down.
      { id: DEMO_IDS.dingtalk, type: "dingtalk", config: { ...input.dingtalk, requestsPerSecond: 500 } },
      { id: DEMO_IDS.wecom, type: "wecom", config: input.wecom },
    ],
    targets: [
      {
        id: DEMO_IDS.hesi,
        type: "hesi",
        config: { ...input.hesi, requestsPerSecond: 100, timeoutMs: 5000 },
      },
    ],
    identity: {
      primarySource: DEMO_IDS.dingtalk,
      rules: [
        {
          id: "same-userid",
          description: "The demo company gives everyone the same userid in DingTalk and WeCom.",
          match: [
            { source: DEMO_IDS.dingtalk, attribute: "subject" },
            { source: DEMO_IDS.wecom, attribute: "subject" },
          ],
        },
      ],
    },
    // No schedule: the plan made at first start waits for a security admin instead of being replaced.
    sync: { orgChartSource: DEMO_IDS.dingtalk, fullEveryMinutes: 0, incrementalEveryMinutes: 0 },
    signIn: {
      clients: [
        {
          clientId: FINANCE_CLIENT_ID,
          name: "示例报销平台 (demo finance app)",
          clientSecret: input.financeApp.clientSecret,
          redirectUris: [input.financeApp.redirectUri],
          postLogoutRedirectUris: [input.financeApp.postLogoutRedirectUri],
          backchannelLogoutUri: input.financeApp.backchannelLogoutUri,
          target: DEMO_IDS.hesi,
        },
      ],
    },
    console: { access },
  };
}

/** Writes the demo config into the data dir and loads it as `idbridge serve -c` would. */
export function writeDemoConfig(input: DemoConfigInput): Config {
  const file = join(input.dataDir, DEMO_CONFIG_FILE);
  writeFileSync(
    file,
    `# Written by \`idbridge demo\` at every start (ports and simulator credentials); edits are overwritten.\n` +
      stringify(demoConfig(input)),
    { mode: 0o600 },
  );
  return loadConfig({ file, env: {}, cwd: input.dataDir });
}
