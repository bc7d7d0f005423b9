/**
 * One permission-sync setup for the end-to-end and reliability tests: the DingTalk simulator (and, when
 * asked, a WeCom simulator serving the same company, linked by userid), a target (the 合思 simulator or the
 * scimmy SCIM peer) running in this test process, a config file and policies in a temp dir, a SQLite store,
 * freshly generated keys, and a {@link SyncService} over them. The CLI (`idbridge … -c <config>`) sees the
 * same files, so a test can mix in-process calls with real child processes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { AuditLog } from "../../src/audit/log.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { generateKeys, KEY_FILES, type KeySet } from "../../src/keys/keys.js";
import { generateOrg, type SimOrg, type SimPerson } from "../../src/simulators/common/org.js";
import {
  startDingTalkSimulator,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import {
  startHesiSimulator,
  type HesiDepartment,
  type HesiStaff,
  type HesiSimulatorOptions,
  type RunningHesiSimulator,
} from "../../src/simulators/hesi/index.js";
import { startWeComSimulator, type RunningWeComSimulator } from "../../src/simulators/wecom/index.js";
import { openStore, type Store } from "../../src/store/index.js";
import type { AuditRecord } from "../../src/store/store.js";
import type { Plan } from "../../src/sync/plan.js";
import { SyncService } from "../../src/sync/service.js";
import { runCli, type CliResult } from "./cli.js";
import { startScimServer, type ScimServer } from "./scim-server.js";

/** Source ids the tests' policies name. */
export const DINGTALK_ID = "dingtalk-hq";
export const WECOM_ID = "wecom-hq";

/** Options of {@link startSyncEnv}. */
export interface SyncEnvOptions {
  /** Size of the generated company (default 150). */
  readonly people?: number;
  /** Seed of the generated company (default 1). */
  readonly seed?: number;
  /** Also serve the company from a WeCom simulator, linked to DingTalk by userid. */
  readonly wecom?: boolean;
  /** The target: 合思 (with simulator options) or the SCIM peer. */
  readonly target:
    | { readonly kind: "hesi"; readonly id?: string; readonly simulator?: HesiSimulatorOptions }
    | { readonly kind: "scim"; readonly id?: string };
  /** Policy files by name (`hesi-main.yaml` → its YAML text). */
  readonly policies: Readonly<Record<string, string>>;
  /** The config's `sync:` section. */
  readonly sync?: Readonly<Record<string, unknown>>;
  /** More `sources:` entries (an LDAP server of the test's own). */
  readonly sources?: readonly Readonly<Record<string, unknown>>[];
  /** More `identity.rules:` entries. */
  readonly identityRules?: readonly Readonly<Record<string, unknown>>[];
}

/** A running setup; close it in afterAll. */
export interface SyncEnv {
  readonly dir: string;
  readonly configFile: string;
  readonly config: Config;
  readonly targetId: string;
  /** The company both simulators serve. */
  readonly org: SimOrg;
  readonly dingtalk: RunningDingTalkSimulator;
  readonly wecom: RunningWeComSimulator | undefined;
  readonly hesi: RunningHesiSimulator | undefined;
  readonly scim: ScimServer | undefined;
  readonly store: Store;
  readonly keys: KeySet;
  readonly audit: AuditLog;
  /** The sync of this test process (holder `test`). */
  readonly sync: SyncService;
  /** Lines the sync noted for a person watching. */
  readonly notes: string[];
  /** Replaces (or adds) a policy file. */
  writePolicy(name: string, text: string): void;
  /** Runs `idbridge ARGS -c <config>` as a child process. */
  cli(...args: string[]): Promise<CliResult>;
  /** Every audit entry, oldest first. */
  auditEntries(): Promise<AuditRecord[]>;
  /** The stored plan's content. */
  planOf(id: string): Promise<Plan>;
  close(): Promise<void>;
}

/** An idbridge's files in a temp dir, and the part of its config that names them. */
export interface IdbridgeFiles {
  /** The freshly generated signing keys. */
  readonly keys: KeySet;
  /** The policies directory, with the given policies written. */
  readonly policiesDir: string;
  /** The SQLite store's URL. */
  readonly storeUrl: string;
  /** Where the config file is to be written. */
  readonly configFile: string;
  /** Config keys for these files, a silent log and rare audit checkpoints; the caller adds the rest. */
  readonly fileConfig: Record<string, unknown>;
}

/** Writes the policies and generates the keys of an idbridge under `dir` (the config is left to the caller). */
export async function prepareIdbridgeFiles(
  dir: string,
  policies: Readonly<Record<string, string>>,
): Promise<IdbridgeFiles> {
  const policiesDir = join(dir, "policies");
  mkdirSync(policiesDir);
  for (const [name, text] of Object.entries(policies)) writeFileSync(join(policiesDir, name), text);
  const keysDir = join(dir, "keys");
  const keys = await generateKeys(keysDir);
  const storeUrl = `sqlite:${join(dir, "idbridge.db")}`;
  return {
    keys,
    policiesDir,
    storeUrl,
    configFile: join(dir, "idbridge.yaml"),
    fileConfig: {
      policiesDir,
      store: { url: storeUrl },
      keys: { dir: keysDir, generateIfMissing: false },
      audit: { checkpointEvery: 100_000 },
      log: { level: "silent" },
    },
  };
}

/** Starts the simulators and the target, writes config and policies, opens store, keys and sync. */
export async function startSyncEnv(options: SyncEnvOptions): Promise<SyncEnv> {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-sync-"));
  const org = generateOrg({ people: options.people ?? 150, seed: options.seed ?? 1 });
  // A generous QPS keeps reads short; the reader is told the same limit.
  const dingtalk = await startDingTalkSimulator({ org, qps: 500 });
  const wecom = options.wecom ? await startWeComSimulator({ org }) : undefined;
  const targetId = options.target.id ?? (options.target.kind === "hesi" ? "hesi-main" : "scim-main");
  let hesi: RunningHesiSimulator | undefined;
  let scim: ScimServer | undefined;
  let targetConfig: Record<string, unknown>;
  if (options.target.kind === "hesi") {
    hesi = await startHesiSimulator({ timeoutMs: 50, ...options.target.simulator });
    // The simulator answers at once; the default 5 calls per second would only make the tests slow.
    targetConfig = { ...hesi.targetConfig(), requestsPerSecond: 100, timeoutMs: 5000 };
  } else {
    scim = await startScimServer();
    targetConfig = { baseUrl: scim.baseUrl, token: scim.token, requestsPerSecond: 100 };
  }

  const { keys, policiesDir, storeUrl, configFile, fileConfig } = await prepareIdbridgeFiles(
    dir,
    options.policies,
  );
  const writePolicy = (name: string, text: string) => writeFileSync(join(policiesDir, name), text);
  writeFileSync(
    configFile,
    stringify({
      ...fileConfig,
      sources: [
        { id: DINGTALK_ID, type: "dingtalk", config: { ...dingtalk.sourceConfig(), requestsPerSecond: 500 } },
        ...(wecom ? [{ id: WECOM_ID, type: "wecom", config: wecom.sourceConfig() }] : []),
        ...(options.sources ?? []),
      ],
      targets: [{ id: targetId, type: options.target.kind, config: targetConfig }],
      identity: {
        primarySource: DINGTALK_ID,
        rules: [
          ...(wecom
            ? [
                {
                  id: "same-userid",
                  description: "The company gives everyone the same userid in DingTalk and WeCom.",
                  match: [
                    { source: DINGTALK_ID, attribute: "subject" },
                    { source: WECOM_ID, attribute: "subject" },
                  ],
                },
              ]
            : []),
          ...(options.identityRules ?? []),
        ],
      },
      sync: { orgChartSource: DINGTALK_ID, ...options.sync },
    }),
  );
  const config = loadConfig({ file: configFile, env: {}, cwd: dir });
  const store = await openStore({ url: storeUrl });
  const audit = new AuditLog(store, keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
  const notes: string[] = [];
  const sync = new SyncService({ config, store, audit, holder: "test", note: (line) => notes.push(line) });

  return {
    dir,
    configFile,
    config,
    targetId,
    org,
    dingtalk,
    wecom,
    hesi,
    scim,
    store,
    keys,
    audit,
    sync,
    notes,
    writePolicy,
    cli: (...args) => runCli([...args, "-c", configFile]),
    auditEntries: () => store.readAudit(0, Number.MAX_SAFE_INTEGER, 1_000_000),
    planOf: async (id) => JSON.parse((await sync.getPlan(id)).content) as Plan,
    close: async () => {
      await audit.close();
      await store.close();
      await Promise.all([dingtalk.close(), wecom?.close(), hesi?.close(), scim?.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The public keys file of an env (for `idbridge audit verify --jwks`). */
export function jwksFile(env: SyncEnv): string {
  return join(env.config.keys.dir, KEY_FILES.jwks);
}

/** People DingTalk lists (it drops those who left and disabled ones), by userid. */
export function listedPeople(org: SimOrg): Map<string, SimPerson> {
  return new Map(
    org.people.filter((p) => p.status === "active" || p.status === "not-activated").map((p) => [p.userid, p]),
  );
}

/** A department's path below the company root (`财务部/华东区`); "" for the root. */
export function departmentPaths(org: SimOrg): Map<number, string> {
  const byId = new Map(org.departments.map((d) => [d.id, d]));
  const paths = new Map<number, string>();
  const pathOf = (id: number): string => {
    const known = paths.get(id);
    if (known !== undefined) return known;
    const d = byId.get(id)!;
    const path = d.parentId === 0 ? "" : [pathOf(d.parentId), d.name].filter(Boolean).join("/");
    paths.set(id, path);
    return path;
  };
  for (const d of org.departments) pathOf(d.id);
  return paths;
}

/** One expected grant: who (DingTalk userid), which target role, which department path ("" = none/root). */
export type Grant = `${string}|${string}|${string}`;

/**
 * What the policies mean for the generated company, worked out from the org itself: DingTalk lists the
 * active and not-yet-activated people; everyone active submits; leaders approve the departments they lead;
 * holders of the DingTalk role 会计 inside 财务部 account; holders of 出纳 are cashiers.
 */
export function expectedGrants(
  org: SimOrg,
  names: { submitter: string; approver?: string; accountant: string; cashier: string },
  submits: (person: SimPerson) => boolean = () => true,
): Map<string, Set<Grant>> {
  const listed = listedPeople(org);
  const paths = departmentPaths(org);
  const members = (role: string) => new Set(org.roles.find((r) => r.name === role)?.members ?? []);
  const accountants = members("会计");
  const cashiers = members("出纳");
  const inFinance = (p: SimPerson) => p.departments.some((d) => paths.get(d)!.split("/")[0] === "财务部");
  const out = new Map<string, Set<Grant>>();
  for (const p of listed.values()) {
    const grants = new Set<Grant>();
    if (p.status === "active" && submits(p)) grants.add(`${p.userid}|${names.submitter}|`);
    if (names.approver)
      for (const d of p.leaderOf) grants.add(`${p.userid}|${names.approver}|${paths.get(d)!}`);
    if (accountants.has(p.userid) && inFinance(p)) grants.add(`${p.userid}|${names.accountant}|`);
    if (cashiers.has(p.userid)) grants.add(`${p.userid}|${names.cashier}|`);
    if (grants.size > 0) out.set(p.userid, grants);
  }
  return out;
}

/** Paths of 合思's departments below its root, by id. */
export function hesiPaths(departments: readonly HesiDepartment[]): Map<string, string> {
  const byId = new Map(departments.map((d) => [d.id, d]));
  const pathOf = (id: string): string => {
    const d = byId.get(id)!;
    return d.parentId === "" ? "" : [pathOf(d.parentId), d.name].filter(Boolean).join("/");
  };
  return new Map(departments.map((d) => [d.id, pathOf(d.id)]));
}

/** How often each item occurs. */
export function counts<T>(items: readonly T[]): Map<T, number> {
  const out = new Map<T, number>();
  for (const item of items) out.set(item, (out.get(item) ?? 0) + 1);
  return out;
}

/**
 * What the 合思 simulator holds, in the terms of {@link expectedGrants}: its staff by DingTalk userid
 * (matched by 工号, the employee number), and every role row member as `userid|role|department path`.
 */
export function hesiHoldings(
  hesi: RunningHesiSimulator,
  org: SimOrg,
): { staff: Map<string, HesiStaff>; grants: string[] } {
  const useridByNumber = new Map(org.people.map((p) => [p.jobNumber, p.userid]));
  const staff = new Map<string, HesiStaff>();
  for (const s of hesi.staff()) staff.set(useridByNumber.get(s.code) ?? `?${s.id}`, s);
  const paths = hesiPaths(hesi.departments());
  const useridOf = new Map([...staff].map(([u, s]) => [s.id, u]));
  const grants: string[] = [];
  for (const role of hesi.roles())
    for (const row of role.rows)
      for (const member of row.staffs)
        grants.push(
          `${useridOf.get(member) ?? member}|${role.name}|${row.departmentId === null ? "" : paths.get(row.departmentId)}`,
        );
  return { staff, grants: grants.sort() };
}
