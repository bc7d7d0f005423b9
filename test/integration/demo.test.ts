/**
 * `idbridge demo`: the whole product in one process on free ports with a temp data dir — the banner's URLs
 * answer, the first plan waits with one separation-of-duties conflict and sensitive grants, the finance app
 * signs a person in through the DingTalk simulator's picker, a restart keeps the plan and the 合思 tenant,
 * `--reset` starts afresh and refuses a directory that is not the demo's.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withSync } from "../../src/cli/sync.js";
import { loadConfig } from "../../src/config/load.js";
import { DEMO_CONFIG_FILE, DEMO_IDS } from "../../src/demo/config.js";
import { DEMO_MARKER } from "../../src/demo/data-dir.js";
import { startDemo, type RunningDemo } from "../../src/demo/run.js";
import type { Plan } from "../../src/sync/plan.js";
import { Browser } from "../helpers/broker-env.js";
import { runCli } from "../helpers/cli.js";

const silent = pino({ level: "silent" });
let root: string;
let dataDir: string;
let demo: RunningDemo | undefined;

function start(reset = false): Promise<RunningDemo> {
  return startDemo({ port: 0, dataDir, reset, logger: silent });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "idbridge-demo-"));
  dataDir = join(root, "demo");
  demo = await start();
}, 120_000);

afterAll(async () => {
  await demo?.stop();
  rmSync(root, { recursive: true, force: true });
});

function running(): RunningDemo {
  if (demo === undefined) throw new Error("the demo is not running");
  return demo;
}

function planOf(d: RunningDemo): Plan {
  return JSON.parse(d.initialPlan.content) as Plan;
}

/** Signs in at the finance app through idbridge and the DingTalk simulator's picker; returns its page. */
async function signInAtFinanceApp(d: RunningDemo, userid: string): Promise<string> {
  const finance = new Browser(d.urls.financeApp);
  const idbridge = new Browser(d.urls.idbridge);
  // One browser: every port of 127.0.0.1 shares one cookie jar.
  const share = (from: Browser, to: Browser): void => {
    for (const [name, value] of from.jar.cookies) to.jar.cookies.set(name, value);
  };
  const toIdbridge = await finance.go("/login");
  if (toIdbridge.kind !== "away") throw new Error("the finance app did not send the browser to idbridge");
  expect(toIdbridge.url.origin).toBe(d.urls.idbridge);
  const login = await idbridge.go(toIdbridge.url);
  if (login.kind !== "page") throw new Error("expected idbridge's sign-in page");
  expect(login.html).toContain("钉钉");
  const toDingTalk = await idbridge.go(`${login.url.pathname}/source/${DEMO_IDS.dingtalk}`);
  if (toDingTalk.kind !== "away") throw new Error("expected a redirect to DingTalk");
  expect(toDingTalk.url.origin).toBe(d.urls.dingtalk);
  const picker = await (await fetch(toDingTalk.url)).text();
  const href = new RegExp(`data-userid="${userid}"[^>]*href="([^"]+)"`).exec(picker)?.[1];
  if (href === undefined) throw new Error(`${userid} is not on the DingTalk picker`);
  const picked = await fetch(new URL(href.replaceAll("&#38;", "&"), toDingTalk.url), { redirect: "manual" });
  expect(picked.status).toBe(302);
  const back = await idbridge.go(picked.headers.get("location")!);
  if (back.kind !== "away")
    throw new Error(`idbridge did not send the browser back: ${back.html.slice(0, 300)}`);
  expect(back.url.origin).toBe(d.urls.financeApp);
  share(idbridge, finance);
  const page = await finance.go(back.url);
  if (page.kind !== "page") throw new Error("expected the finance app's page");
  expect(page.status).toBe(200);
  return page.html;
}

describe("idbridge demo", () => {
  it("prints every URL it serves, and each one answers", async () => {
    const d = running();
    const urls = [...d.banner.matchAll(/http:\/\/127\.0\.0\.1:\d+[^\s)]*/g)].map((m) => m[0]);
    // Every URL but idbridge's bare base, which has no page of its own.
    const { idbridge: _base, ...listed } = d.urls;
    expect(new Set(urls)).toEqual(new Set(Object.values(listed)));
    for (const url of urls) {
      const res = await fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      expect(res.status, url).toBeLessThan(400);
    }
    expect(await (await fetch(d.urls.dingtalk)).text()).toContain(d.company.conflicted.userid);
  });

  it("lists the demo accounts with how to sign in as each", () => {
    const d = running();
    for (const account of d.company.accounts) {
      expect(d.banner).toContain(`${account.person.name} (userid ${account.person.userid})`);
    }
    expect(d.banner).toMatch(/security admin +\S+/);
    expect(d.banner).toMatch(/auditor +\S+/);
    expect(d.banner).toContain("choose 钉钉 (DingTalk)");
  });

  it("names the same accounts as the README's Demo section", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Demo"), readme.indexOf("## CLI"));
    for (const { label, person } of running().company.accounts) {
      expect(section).toMatch(new RegExp(`\\| ${label} +\\| ${person.name} .*\\(.*\`${person.userid}\`\\)`));
    }
  });

  it("shows in the README walkthrough every screenshot the browser tests take, and only those", () => {
    const root = join(import.meta.dirname, "..", "..");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const shown = [...readme.matchAll(/\(docs\/screenshots\/([a-z0-9-]+)\.png\)/g)].map((m) => m[1]);
    const e2e = readFileSync(join(root, "test", "e2e", "console.test.ts"), "utf8");
    const taken = [
      ...[...e2e.matchAll(/screenshot\(page, shots, "([a-z0-9-]+)"/g)].map((m) => m[1]),
      ...[...e2e.matchAll(/shotOf\(page, "[a-z-]+", "([a-z0-9-]+)"\)/g)].map((m) => m[1]),
      // signIn(…, "console") saves the sign-in page as console-sign-in.
      ...[...e2e.matchAll(/signIn\([\w.]+, "([a-z]+)"\)/g)].map((m) => `${m[1]}-sign-in`),
    ];
    expect(new Set(shown)).toEqual(new Set(taken));
    for (const name of shown)
      expect(existsSync(join(root, "docs", "screenshots", `${name}.png`)), name).toBe(true);
  });

  it("plans the first sync with exactly one separation-of-duties conflict and sensitive grants to approve", () => {
    const d = running();
    expect(d.fresh).toBe(true);
    expect(d.initialPlan.status).toBe("pending");
    expect(d.initialPlan.needsApproval).toBe(true);
    const plan = planOf(d);
    expect(plan.sod).toHaveLength(1);
    expect(plan.sod[0]).toMatchObject({
      constraint: "cashier-is-not-accountant",
      name: d.company.conflicted.name,
      effect: "block",
      withheld: "accountant",
    });
    expect(plan.risk.map((r) => r.code)).toContain("SENSITIVE_GRANT");
    expect(plan.changes.some((c) => c.kind === "grant" && c.sensitive)).toBe(true);
    expect(d.banner).toContain(`${d.initialPlan.id} for hesi-main: pending`);
  });

  it("signs a DingTalk person in at the finance app, whose page shows their name and roles", async () => {
    const d = running();
    const who = d.company.conflicted;
    const html = await signInAtFinanceApp(d, who.userid);
    expect(html).toContain(`signed in as <span id="name">${who.name}</span>`);
    // The policy's roles for them: 出纳 kept, 会计 withheld by cashier-is-not-accountant.
    const roles = /with roles <span id="roles">([^<]+)<\/span>/.exec(html)?.[1]?.split(", ");
    expect(roles).toEqual(expect.arrayContaining(["报销提交人", "出纳"]));
    expect(roles).not.toContain("会计");
    expect(html).toContain('href="/logout"');
  }, 60_000);

  it("keeps the plan and the 合思 tenant across a restart", async () => {
    let d = running();
    const config = loadConfig({ file: join(d.dataDir, DEMO_CONFIG_FILE), env: {}, cwd: d.dataDir });
    // As a security admin would from the CLI beside the running demo: approve and apply the first plan.
    await withSync(config, async (sync) => {
      await sync.approve(d.initialPlan.id, "demo-test", "approved by the demo test");
      await sync.apply(d.initialPlan.id);
    });
    const staff = d.hesi.staff().length;
    const roles = d.hesi.roles().map((r) => `${r.name}:${r.rows.flatMap((row) => row.staffs).length}`);
    expect(staff).toBeGreaterThan(100);
    await d.stop();
    demo = undefined;

    demo = d = await start();
    expect(d.fresh).toBe(false);
    expect(d.initialPlan.id).toBe(planOf(d).id);
    expect(d.initialPlan.status).toBe("applied");
    expect(d.hesi.staff()).toHaveLength(staff);
    expect(d.hesi.roles().map((r) => `${r.name}:${r.rows.flatMap((row) => row.staffs).length}`)).toEqual(
      roles,
    );
    // Signing in still works against the restarted simulators and the kept keys.
    const html = await signInAtFinanceApp(d, d.company.accounts[0]!.person.userid);
    expect(html).toContain(d.company.accounts[0]!.person.name);
  }, 180_000);

  it("--reset starts afresh: a new pending plan and an empty 合思 tenant", async () => {
    const before = running();
    const applied = before.initialPlan.id;
    await before.stop();
    demo = undefined;
    const d = (demo = await start(true));
    expect(d.fresh).toBe(true);
    expect(d.initialPlan.id).not.toBe(applied);
    expect(d.initialPlan.status).toBe("pending");
    expect(d.hesi.staff()).toHaveLength(0);
    expect(planOf(d).sod).toHaveLength(1);
  }, 120_000);

  it("--reset refuses a directory that is not a demo data dir, and deletes nothing", async () => {
    const other = join(root, "not-a-demo");
    mkdirSync(other);
    writeFileSync(join(other, "precious.txt"), "keep me");
    await expect(startDemo({ port: 0, dataDir: other, reset: true, logger: silent })).rejects.toThrow(
      /not a demo data dir/,
    );
    await expect(startDemo({ port: 0, dataDir: other, reset: false, logger: silent })).rejects.toThrow(
      /not a demo data dir/,
    );
    expect(existsSync(join(other, "precious.txt"))).toBe(true);
    expect(existsSync(join(other, DEMO_MARKER))).toBe(false);
  });
});

describe("idbridge demo (CLI)", () => {
  it("demo --help describes the command and its options", async () => {
    const r = await runCli(["demo", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--reset");
    expect(r.stdout).toContain("--port");
    expect(r.stdout).toContain("--data-dir");
  });

  it("demo --reset refuses a directory that is not the demo's, with exit 2", async () => {
    const other = mkdtempSync(join(tmpdir(), "idbridge-not-demo-"));
    try {
      writeFileSync(join(other, "precious.txt"), "keep me");
      const r = await runCli(["demo", "--reset", "--port", "0", "--data-dir", other]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("not a demo data dir");
      expect(existsSync(join(other, "precious.txt"))).toBe(true);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
