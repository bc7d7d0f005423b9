/**
 * Headless Chromium for the end-to-end tests: Debian's `chromium` (test/peers/debian-packages.txt) driven by
 * playwright-core. Playwright's own browser downloads are never used.
 */
import { accessSync, constants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { peerMissing } from "../peers/availability.js";

/** Where Debian installs the browser; `$CHROMIUM_PATH` overrides it. */
const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/**
 * User agents of the in-app browsers the sign-in page recognises, as the apps send them (Android builds;
 * the markers the server looks for are `DingTalk/<version>` and `wxwork/<version>`).
 */
export const USER_AGENTS = {
  /** DingTalk 7.0.40's in-app browser on Android. */
  dingTalk:
    "Mozilla/5.0 (Linux; U; Android 13; zh-CN; PGT-AN10 Build/HONORPGT-AN10) AppleWebKit/537.36 " +
    "(KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 Mobile Safari/537.36 " +
    "AliApp(DingTalk/7.0.40) com.alibaba.android.rimet/36128062 Channel/700159 language/zh-CN " +
    "abi/64 UT4Aplus/0.2.25 colorScheme/light",
  /** WeCom (企业微信) 4.1.16's in-app browser on Android. */
  weCom:
    "Mozilla/5.0 (Linux; Android 13; M2102K1C Build/TKQ1.221114.001; wv) AppleWebKit/537.36 " +
    "(KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 " +
    "wxwork/4.1.16 MicroMessenger/7.0.1 NetType/WIFI Language/zh ColorScheme/Light",
  /** A desktop Chrome on Windows: the QR and password flows. */
  desktop:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
    "Chrome/126.0.0.0 Safari/537.36",
} as const;

/** The path of the Chromium binary the tests use. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM;
}

/**
 * The Chromium binary when it is there, or null — then the caller skips its tests (`describe.skipIf`); under
 * CI=true a missing browser throws instead (see peerMissing).
 */
export function chromiumOrSkip(): string | null {
  const executablePath = chromiumPath();
  try {
    accessSync(executablePath, constants.X_OK);
    return executablePath;
  } catch {
    peerMissing(
      "Chromium",
      `${executablePath} is not an executable (install Debian's chromium, or set CHROMIUM_PATH)`,
    );
    return null;
  }
}

/** Launches headless Chromium (the binary of chromiumOrSkip). */
export function launchBrowser(executablePath: string = chromiumPath()): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    // No extra args: playwright-core already passes --no-sandbox (chromiumSandbox defaults to false, and
    // Chromium refuses its sandbox when run as root, as in the CI container) and --disable-dev-shm-usage.
    args: [],
  });
}

/** Options of a browser context. */
export interface ContextOptions {
  /** The User-Agent header and navigator.userAgent (USER_AGENTS.dingTalk for the in-app flows). */
  readonly userAgent?: string;
  /** Accept-Language and navigator.language; zh-CN as the employees' browsers by default. */
  readonly locale?: string;
  /**
   * Let requests leave 127.0.0.1 / localhost. Off by default: the tests never reach the internet, and a
   * page asking for a web font (oidc-provider's dev pages do) fails at once instead of waiting on DNS.
   */
  readonly allowRemote?: boolean;
}

/** A fresh context (its own cookies and storage: one person's browser) on `browser`. */
export async function newContext(browser: Browser, options: ContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({
    userAgent: options.userAgent ?? USER_AGENTS.desktop,
    locale: options.locale ?? "zh-CN",
    viewport: { width: 1280, height: 800 },
  });
  if (options.allowRemote !== true) {
    await context.route(
      (url) => !isLoopback(url),
      (route) => route.abort("internetdisconnected"),
    );
  }
  return context;
}

/** True for http(s) URLs on the loopback interface and for in-browser schemes (data:, about:, blob:). */
function isLoopback(url: URL): boolean {
  if (url.protocol !== "http:" && url.protocol !== "https:") return true;
  return url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
}

/** A cookie to put into a context for a site other than the page's. */
export interface CookieOnOrigin {
  /** Cookie name. */
  readonly name: string;
  /** Cookie value. */
  readonly value: string;
  /** HttpOnly flag; true by default. */
  readonly httpOnly?: boolean;
}

/**
 * Sets cookies for `origin` (e.g. a simulator's `http://127.0.0.1:PORT`) in the context, as if that site had
 * set them: a person already signed in at DingTalk's web login before they reach ours.
 */
export async function setCookiesOn(
  context: BrowserContext,
  origin: string,
  cookies: readonly CookieOnOrigin[],
): Promise<void> {
  const url = new URL(origin);
  await context.addCookies(
    cookies.map((c) => ({
      name: c.name,
      value: c.value,
      // A cookie given with `url` is host-only for that host, with the path of the URL.
      url: `${url.protocol}//${url.host}/`,
      httpOnly: c.httpOnly ?? true,
      secure: url.protocol === "https:",
      sameSite: "Lax" as const,
    })),
  );
}

/**
 * Saves a PNG of the page to `dir/<name>.png` (the directory is made when missing) and returns its path.
 * The console docs commit such screenshots, so names are kebab-case and stable.
 */
export async function screenshot(
  page: Page,
  dir: string,
  name: string,
  options: { fullPage?: boolean } = {},
): Promise<string> {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) {
    throw new TypeError(`screenshot name must be kebab-case, got ${JSON.stringify(name)}`);
  }
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.png`);
  await writeFile(file, await page.screenshot({ fullPage: options.fullPage ?? true, type: "png" }));
  return file;
}
