/**
 * `idbridge demo`: the whole product in one process on 127.0.0.1 — idbridge (started as `idbridge serve`
 * starts it), the DingTalk, WeCom and 合思 simulators serving the demo company, and the demo finance app —
 * with a first plan waiting for a security admin. State lives in the data dir and survives restarts.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { join } from "node:path";
import { pino } from "pino";
import type { Logger } from "pino";
import { startService, type RunningService } from "../cli/serve.js";
import { withSync } from "../cli/sync.js";
import { AppError } from "../domain/errors.js";
import { createLogger } from "../http/logging.js";
import { startDingTalkSimulator, type RunningDingTalkSimulator } from "../simulators/dingtalk/index.js";
import { startHesiSimulator, type RunningHesiSimulator } from "../simulators/hesi/index.js";
import { startWeComSimulator, type RunningWeComSimulator } from "../simulators/wecom/index.js";
import type { PlanRecord } from "../store/store.js";
import type { Plan } from "../sync/plan.js";
import { demoCompany, type DemoCompany } from "./company.js";
import { DEMO_IDS, FINANCE_CLIENT_ID, writeDemoConfig } from "./config.js";
import { openDemoDataDir, type DemoDataDir, type SimulatorState } from "./data-dir.js";
import { startFinanceClient, type FinanceClient } from "./finance-app.js";

/** The WeCom app the demo signs people in with. */
const WECOM_AGENT_ID = 1000002;
/** How long a burst of 合思 writes (a plan being applied) may go unsaved. */
const SAVE_DELAY_MS = 200;

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** idbridge's port; the simulators and the finance app take the next four. 0: any free ports. */
  readonly port: number;
  readonly dataDir: string;
  /** Delete the data dir first (only a demo data dir). */
  readonly reset: boolean;
  /** idbridge's logger; default JSON lines at info to `idbridge.log` in the data dir. */
  readonly logger?: Logger;
  /** Lines of progress while starting (the sync's notes); default none. */
  readonly note?: (line: string) => void;
}

/** The URLs the demo serves. */
export interface DemoUrls {
  /** Base URL (no page of its own at `/`). */
  readonly idbridge: string;
  /** The OpenID Provider's discovery document. */
  readonly openIdConfiguration: string;
  readonly console: string;
  readonly adminApi: string;
  readonly financeApp: string;
  readonly launch: string;
  readonly dingtalk: string;
  readonly wecom: string;
  readonly hesi: string;
}

/** A running demo. */
export interface RunningDemo {
  readonly urls: DemoUrls;
  readonly dataDir: string;
  readonly company: DemoCompany;
  /** The plan made at first start, as it stands now. */
  readonly initialPlan: PlanRecord;
  /** True when this start created the data dir (and the plan). */
  readonly fresh: boolean;
  /** The start-up text: URLs, the plan, the accounts and how to sign in as each. */
  readonly banner: string;
  readonly service: RunningService;
  readonly dingtalk: RunningDingTalkSimulator;
  readonly wecom: RunningWeComSimulator;
  readonly hesi: RunningHesiSimulator;
  readonly financeApp: FinanceClient;
  /** Stops everything and saves the 合思 tenant. */
  stop(): Promise<void>;
}

/** Starts the demo; a failure releases what was already started. */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const data = openDemoDataDir(options.dataDir, options.reset);
  const company = demoCompany();
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  try {
    const ports = await demoPorts(options.port);
    const url = `http://127.0.0.1:${ports.idbridge}`;
    const saved = data.simulators;

    const dingtalk = await onPort(
      "the DingTalk simulator",
      ports.dingtalk,
      startDingTalkSimulator({
        org: company.org,
        port: ports.dingtalk,
        qps: 500,
        // DingTalk only redirects to the URLs registered for the app.
        redirectUrls: [`${url}/login/callback/${DEMO_IDS.dingtalk}`],
        ...(saved === null ? {} : { credentials: saved.dingtalk }),
      }),
    );
    closers.push(() => dingtalk.close());
    const wecom = await onPort(
      "the WeCom simulator",
      ports.wecom,
      startWeComSimulator({
        org: company.org,
        port: ports.wecom,
        ...(saved === null
          ? {}
          : {
              corpId: saved.wecom.corpId,
              contactSecret: saved.wecom.contactSecret,
              apps: [{ agentId: WECOM_AGENT_ID, secret: saved.wecom.appSecret }],
            }),
      }),
    );
    closers.push(() => wecom.close());
    const saver = new HesiSaver(data, () => state());
    const hesi = await onPort(
      "the 合思 simulator",
      ports.hesi,
      startHesiSimulator({
        port: ports.hesi,
        onChange: () => saver.soon(),
        ...(saved === null
          ? {}
          : {
              corpId: saved.hesi.credentials.corpId,
              appKey: saved.hesi.credentials.appKey,
              appSecurity: saved.hesi.credentials.appSecurity,
              restore: saved.hesi.tenant,
            }),
      }),
    );
    // Closed after the tenant is saved for the last time (closers run in reverse).
    closers.push(() => hesi.close());
    closers.push(async () => saver.now());
    const financeSecret = saved?.financeSecret ?? randomBytes(32).toString("base64url");
    const wecomApp = wecom.credentials.apps.find((a) => a.agentId === WECOM_AGENT_ID)!;
    const state = (): SimulatorState => ({
      dingtalk: dingtalk.credentials,
      wecom: {
        corpId: wecom.credentials.corpId,
        contactSecret: wecom.credentials.contactSecret,
        appSecret: wecomApp.secret,
      },
      hesi: { credentials: hesi.credentials, tenant: hesi.snapshot() },
      financeSecret,
    });
    saver.now();

    const financeApp = await onPort(
      "the finance app",
      ports.financeApp,
      startFinanceClient({
        issuer: `${url}/oidc`,
        clientId: FINANCE_CLIENT_ID,
        clientSecret: financeSecret,
        name: "demo finance app (示例报销平台)",
        scope: "openid profile email roles",
        port: ports.financeApp,
      }),
    );
    closers.push(() => financeApp.stop());

    const config = writeDemoConfig({
      dataDir: data.dir,
      port: ports.idbridge,
      dingtalk: dingtalk.sourceConfig(),
      wecom: {
        ...wecom.sourceConfig({ use: "app", agentId: WECOM_AGENT_ID }),
        contactSecret: wecom.credentials.contactSecret,
      },
      hesi: hesi.targetConfig(),
      financeApp: {
        redirectUri: financeApp.redirectUri,
        postLogoutRedirectUri: financeApp.postLogoutRedirectUri,
        backchannelLogoutUri: financeApp.backchannelLogoutUri,
        clientSecret: financeSecret,
      },
      accounts: company.accounts,
    });
    const logger =
      options.logger ??
      createLogger(
        config.log.level,
        pino.destination({ dest: join(data.dir, "idbridge.log"), mkdir: true, sync: true }),
      );
    const service = await startService(config, logger);
    closers.push(() => service.stop());

    // The first plan: made once (first start or after --reset), then left for a security admin to decide.
    const note = options.note ?? (() => undefined);
    const initialPlan = await withSync(config, async (sync) => {
      if (data.marker.initialPlan === undefined) {
        note("reading the demo company from the DingTalk and WeCom simulators and planning the first sync…");
        const planned = await sync.plan(DEMO_IDS.hesi);
        data.recordInitialPlan(planned.id);
        return planned;
      }
      return sync.getPlan(data.marker.initialPlan);
    });

    const urls: DemoUrls = {
      idbridge: service.url,
      openIdConfiguration: `${service.url}/oidc/.well-known/openid-configuration`,
      console: `${service.url}/console`,
      adminApi: `${service.url}/api/v1/openapi.json`,
      financeApp: financeApp.url,
      launch: `${service.url}/launch/${DEMO_IDS.hesi}`,
      dingtalk: dingtalk.url,
      wecom: wecom.url,
      hesi: hesi.url,
    };
    let stopping: Promise<void> | null = null;
    return {
      urls,
      dataDir: data.dir,
      company,
      initialPlan,
      fresh: data.fresh,
      banner: demoBanner({ urls, dataDir: data.dir, company, plan: initialPlan }),
      service,
      dingtalk,
      wecom,
      hesi,
      financeApp,
      stop: () => (stopping ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Saves the simulators' state a moment after 合思 changed (a plan applies in many calls), and at stop. */
class HesiSaver {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly data: DemoDataDir,
    private readonly state: () => SimulatorState,
  ) {}

  soon(): void {
    this.timer ??= setTimeout(() => this.now(), SAVE_DELAY_MS);
  }

  now(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.data.saveSimulators(this.state());
  }
}

/** idbridge's port and the next four; with 0, free ports picked now (the DingTalk app needs idbridge's). */
async function demoPorts(port: number): Promise<{
  idbridge: number;
  dingtalk: number;
  wecom: number;
  hesi: number;
  financeApp: number;
}> {
  if (port === 0) return { idbridge: await freePort(), dingtalk: 0, wecom: 0, hesi: 0, financeApp: 0 };
  return { idbridge: port, dingtalk: port + 1, wecom: port + 2, hesi: port + 3, financeApp: port + 4 };
}

/** A start that failed because its port is taken, said as a user error that names the way out. */
async function onPort<T>(what: string, port: number, starting: Promise<T>): Promise<T> {
  try {
    return await starting;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    throw new AppError(
      "INPUT_INVALID",
      `cannot start ${what}: 127.0.0.1:${port} is already in use; choose other ports with --port (idbridge's; the next four follow)`,
      { cause: err },
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The start-up text (plain, for a terminal). */
export function demoBanner(input: {
  urls: DemoUrls;
  dataDir: string;
  company: DemoCompany;
  plan: PlanRecord;
}): string {
  const { urls, company, plan } = input;
  const content = JSON.parse(plan.content) as Plan;
  const sensitive = content.changes.filter((c) => c.kind === "grant" && c.sensitive).length;
  const people = company.org.people.filter((p) => p.status !== "left").length;
  const row = (label: string, value: string): string => `  ${label.padEnd(18)}${value}`;
  const sourceName = { dingtalk: "钉钉 (DingTalk)", wecom: "企业微信 (WeCom)" } as const;
  const lines = [
    `idbridge demo: ${company.org.corpName}, ${people} people (test data only)`,
    `data in ${input.dataDir} (kept across restarts; start afresh with: idbridge demo --reset)`,
    "",
    row("OpenID provider", urls.openIdConfiguration),
    row("console", urls.console),
    row("admin API", urls.adminApi),
    row("finance app", `${urls.financeApp}  (signs in through idbridge, shows your 合思 roles)`),
    row("launch into Hesi", `${urls.launch}  (signs in, then opens 合思 as you)`),
    row("DingTalk sim", `${urls.dingtalk}  (the demo company: people, userids, roles)`),
    row("WeCom sim", urls.wecom),
    row("Hesi sim", `${urls.hesi}  (the 合思 tenant: staff, departments, roles)`),
    "",
    `First sync plan ${plan.id} for ${plan.target}: ${plan.status}` +
      (plan.status === "pending" ? ", waiting for a security admin's approval" : ""),
    `  ${content.changes.length} changes, ${sensitive} sensitive grants, ` +
      `${content.sod.length} separation-of-duties conflict${content.sod.length === 1 ? "" : "s"}` +
      content.sod.map((f) => ` (${f.name}: ${f.constraint})`).join(""),
    "",
    "Demo accounts: open the console or the finance app, choose the source on the sign-in page, then pick",
    "the person on the simulator's page.",
    ...company.accounts.map(
      (a) =>
        row(a.label, `${a.person.name} (${a.note})`) +
        ` — choose ${sourceName[a.via]}, then pick ${a.person.name} (userid ${a.person.userid})`,
    ),
    "",
    "Ctrl-C stops everything.",
  ];
  return `${lines.join("\n")}\n`;
}
