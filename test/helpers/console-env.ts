/**
 * The console over HTTP for integration tests: the demo (idbridge on SQLite, the DingTalk, WeCom and 合思
 * simulators, the demo company with its pending plan) started on free ports in a temp data dir, and people
 * signed in to the console through the DingTalk simulator's picker (a browser made of fetch and a cookie jar).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { AdminRole } from "../../src/admin/access.js";
import { DEMO_IDS } from "../../src/demo/config.js";
import { startDemo, type RunningDemo } from "../../src/demo/run.js";
import { Browser, type Landing } from "./broker-env.js";

/** A started demo and how to stop it. */
export interface ConsoleEnv {
  readonly demo: RunningDemo;
  /** The console's base URL (`…/console`). */
  readonly console: string;
  close(): Promise<void>;
}

/** Starts the demo in a fresh temp data dir. */
export async function startConsoleEnv(): Promise<ConsoleEnv> {
  const root = mkdtempSync(join(tmpdir(), "idbridge-console-"));
  try {
    const demo = await startDemo({
      port: 0,
      dataDir: join(root, "demo"),
      reset: false,
      logger: pino({ level: "silent" }),
    });
    return {
      demo,
      console: demo.urls.console,
      async close() {
        await demo.stop();
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/** The demo person with a console role (`security-admin`, `auditor`, `viewer`), or the first employee. */
export function demoPerson(env: ConsoleEnv, role: AdminRole | "employee"): { userid: string; name: string } {
  const account = env.demo.company.accounts.find((a) => a.role === role && a.via === "dingtalk");
  if (account === undefined) throw new Error(`the demo has no DingTalk account with role ${role}`);
  return account.person;
}

/**
 * Opens `path` of the console (default the home page) as `userid`: the console sends the browser to sign
 * in, idbridge to the DingTalk simulator, the picker back; returns the browser (its jar holds the
 * session) and the page the console finally shows.
 */
export async function signInToConsole(
  env: ConsoleEnv,
  userid: string,
  path = "/",
  language = "zh-CN,zh;q=0.9",
): Promise<{ browser: Browser; landing: Landing }> {
  const browser = new Browser(env.demo.urls.idbridge, undefined, language);
  const start = await browser.go(`/console${path}`);
  if (start.kind !== "page") throw new Error("expected idbridge's sign-in page");
  const chooser = /href="([^"]*\/source\/[^"]*)"/.exec(start.html)?.[1];
  const toSource =
    chooser !== undefined && chooser.includes(DEMO_IDS.dingtalk)
      ? chooser.replaceAll("&#38;", "&").replaceAll("&amp;", "&")
      : `${start.url.pathname}/source/${DEMO_IDS.dingtalk}`;
  const toDingTalk = await browser.go(toSource);
  if (toDingTalk.kind !== "away") throw new Error("expected a redirect to DingTalk");
  const picker = await (await fetch(toDingTalk.url)).text();
  const href = new RegExp(`data-userid="${userid}"[^>]*href="([^"]+)"`).exec(picker)?.[1];
  if (href === undefined) throw new Error(`${userid} is not on the DingTalk picker`);
  const picked = await fetch(new URL(href.replaceAll("&#38;", "&"), toDingTalk.url), { redirect: "manual" });
  const location = picked.headers.get("location");
  if (location === null) throw new Error(`the DingTalk picker answered ${picked.status} without a redirect`);
  const landing = await browser.go(location);
  return { browser, landing };
}

/** The `_csrf` value of the first form on a console page. */
export function csrfOf(html: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  if (token === undefined) throw new Error("the page has no form with a CSRF token");
  return token;
}
