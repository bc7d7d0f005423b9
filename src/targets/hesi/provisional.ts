import { systemClock } from "../http/retry.js";
import type { ChangeFailure, LaunchLinks, LaunchPage } from "../target.js";
import { HesiClient, type HesiClock } from "./client.js";
import type { HesiConfig } from "./config.js";

/** getProvisionalAuth: `expireDate` is at most 7 days in seconds (reference §1.6b). */
const MAX_EXPIRE_SECONDS = 604_800;

/**
 * The page a provisional link opens (reference §1.6b): `frontPage` home page, `home` my bills, `approve` to-do
 * list, `form` one bill (needs `flowId`). Hesi keeps adding page types, so any other name passes through.
 */
export type HesiLinkPage = "frontPage" | "home" | "approve" | "form" | (string & {});

/** What to ask Hesi for: a single-use (`authType: CODE`) link for one staff. */
export interface HesiLinkRequest {
  /** Hesi staff id (`corpId:staffId`), sent as `uid`. */
  readonly staffId: string;
  /** The page the link opens. */
  readonly page: HesiLinkPage;
  /** The bill to open, required for `form`. */
  readonly flowId?: string;
  /** Lifetime in whole seconds, 1…604800 (keep it short: 60–120 s for a redirect). */
  readonly expiresInSeconds: number;
  /** true: the mobile/app page; false (default): the web page. */
  readonly applet?: boolean;
}

/**
 * A link or a classified failure. The URL carries a bearer token: hand it to the browser (302) and never log
 * it; failure messages never contain it.
 */
export type HesiLinkResult =
  { readonly ok: true; readonly url: string } | { readonly ok: false; readonly failure: ChangeFailure };

/** Asks one Hesi tenant for provisional access links (访问临时授权), the way single sign-on into Hesi works. */
export interface HesiProvisionalLinks {
  /** A single-use, short-lived login URL for `staffId`; a disabled or unknown staff gets a `NOT_FOUND` failure. */
  provisionalLink(request: HesiLinkRequest): Promise<HesiLinkResult>;
}

/** Opens the provisional-link client of a Hesi target (its own token cache and rate limit). */
export function openHesiProvisionalLinks(
  config: HesiConfig,
  clock: HesiClock = systemClock,
): HesiProvisionalLinks {
  const client = new HesiClient(config, clock);
  return { provisionalLink: (request) => provisionalLink(client, request) };
}

/** The Hesi page type of each launch page (§1.6b): `home` is Hesi's home page (`frontPage`), not "my bills". */
const HESI_PAGE: Readonly<Record<LaunchPage, HesiLinkPage>> = {
  home: "frontPage",
  approve: "approve",
  form: "form",
};

/** The launch links of a Hesi target: provisional links of `config.launchLinkSeconds`. */
export function openHesiLaunchLinks(config: HesiConfig, clock: HesiClock = systemClock): LaunchLinks {
  const links = openHesiProvisionalLinks(config, clock);
  const linkSeconds = config.launchLinkSeconds;
  return {
    linkSeconds,
    link: (request) =>
      links.provisionalLink({
        staffId: request.recordId,
        page: HESI_PAGE[request.page],
        ...(request.flowId === undefined ? {} : { flowId: request.flowId }),
        expiresInSeconds: linkSeconds,
        applet: request.applet,
      }),
  };
}

async function provisionalLink(client: HesiClient, request: HesiLinkRequest): Promise<HesiLinkResult> {
  const { staffId, page, flowId, expiresInSeconds } = request;
  // Requests Hesi would refuse anyway are refused here without a call, except the 7-day cap: Hesi owns it.
  if (staffId === "") return refused("INVALID_REQUEST", "staffId is empty");
  if (page === "") return refused("INVALID_REQUEST", "page is empty");
  if (page === "form" && (flowId === undefined || flowId === ""))
    return refused("INVALID_REQUEST", "page form needs a flowId");
  if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1)
    return refused("INVALID_REQUEST", `expiresInSeconds must be a whole number ≥ 1, got ${expiresInSeconds}`);

  const result = await client.call("POST", "/api/openapi/v1.1/provisional/getProvisionalAuth", {
    body: {
      uid: staffId,
      pageType: page,
      authType: "CODE",
      expireDate: expiresInSeconds,
      isApplet: request.applet === true,
      ...(flowId === undefined ? {} : { flowId }),
    },
  });
  if (!result.ok) return result;
  // 200 either way: `code` is the string "true" or "false", `message` the URL or the reason (§1.6b).
  const value = (result.reply.json as { value?: { code?: unknown; message?: unknown } } | undefined)?.value;
  const message = typeof value?.message === "string" ? value.message : "";
  if (value?.code === "true" || value?.code === true) {
    if (/^https?:\/\//i.test(message)) return { ok: true, url: message };
    return refused("BAD_REPLY", "getProvisionalAuth answered true without a URL");
  }
  if (value?.code === "false" || value?.code === false) {
    const reason = message || "refused without a reason";
    if (/员工|人员|uid|userId|停用|离职/i.test(reason) && !/expireDate/.test(reason))
      return refused("NOT_FOUND", `getProvisionalAuth: ${reason}`, 200);
    if (expiresInSeconds > MAX_EXPIRE_SECONDS || /expireDate|pageType|flowId/.test(reason))
      return refused("INVALID_REQUEST", `getProvisionalAuth: ${reason}`, 200);
    return refused("LINK_REFUSED", `getProvisionalAuth: ${reason}`, 200);
  }
  return refused("BAD_REPLY", "getProvisionalAuth: unreadable answer");
}

function refused(code: string, message: string, http?: number): HesiLinkResult {
  return {
    ok: false,
    failure: { class: "bad-data", code, message, ...(http === undefined ? {} : { http }) },
  };
}
