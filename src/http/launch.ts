/**
 * `/launch/<targetId>` over HTTP: the query checked, an idbridge session ensured (through the login page,
 * which signs in silently inside DingTalk and WeCom), then a 302 to the single-use Hesi link or a plain
 * sentence. What a launch does is decided by src/broker/launch.ts.
 */
import express, { type Request, type Response, type Router } from "express";
import type { Logger } from "pino";
import type { FirstParty } from "../broker/first-party.js";
import type { LaunchFailureCode, LaunchRequest, LaunchService } from "../broker/launch.js";
import { pickLanguage, translator, type FailureCode, type Language } from "../broker/messages.js";
import { renderFailure, renderNotice, type Page } from "../broker/pages.js";

/** What the launch router needs. */
export interface LaunchRouterOptions {
  /** The launch logic. */
  readonly launch: LaunchService;
  /** Session helpers of idbridge's own pages. */
  readonly firstParty: FirstParty;
  /** Server log. */
  readonly logger: Logger;
}

/**
 * HTTP status and the sentence shown for each way a launch can stop: a launch sentence (`launch.*`) where
 * the target matters, the sign-in sentence of the same failure otherwise.
 */
const SHOWN: Readonly<
  Record<LaunchFailureCode, { status: number } & ({ launch: string } | { failure: FailureCode })>
> = {
  TARGET_UNKNOWN: { status: 404, launch: "invalid" },
  PAGE_INVALID: { status: 400, launch: "invalid" },
  FLOW_ID_INVALID: { status: 400, launch: "invalid" },
  NOT_LINKED: { status: 403, launch: "notLinked" },
  // Hesi refuses a staff it has disabled or does not know.
  LINK_REFUSED: { status: 403, launch: "refused" },
  NOT_PROVISIONED: { status: 403, failure: "NOT_PROVISIONED" },
  IN_REVIEW: { status: 403, failure: "IN_REVIEW" },
  IGNORED: { status: 403, failure: "IGNORED" },
  ACCOUNT_DISABLED: { status: 403, failure: "ACCOUNT_DISABLED" },
  ACCOUNT_LEFT: { status: 403, failure: "ACCOUNT_LEFT" },
  TARGET_UNAVAILABLE: { status: 503, failure: "SOURCE_UNAVAILABLE" },
};

/** How Hesi is named in a sentence ("合思暂时无法访问，请稍后重试。"). */
const HESI_LABEL: Readonly<Record<Language, string>> = { "zh-CN": "合思", en: "Hesi" };

/** Phones get Hesi's app page, everything else its web page. */
const MOBILE = /Android|iPhone|iPad|Mobile/i;

function send(res: Response, status: number, page: Page): void {
  res
    .status(status)
    .set({
      "Content-Security-Policy": page.csp,
      "Cache-Control": "no-store",
      "Referrer-Policy": "no-referrer",
    })
    .type("html")
    .send(page.html);
}

function single(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The canonical path of a checked launch: where sign-in comes back to. */
function launchPath(request: LaunchRequest, lang: string | undefined): string {
  const query = new URLSearchParams({ page: request.page });
  if (request.flowId !== undefined) query.set("flowId", request.flowId);
  if (lang === "en" || lang === "zh-CN") query.set("lang", lang);
  return `/launch/${encodeURIComponent(request.targetId)}?${query}`;
}

/** The `/launch` router. */
export function launchRouter(options: LaunchRouterOptions): Router {
  const { launch, firstParty, logger } = options;
  const router = express.Router();
  const language = (req: Request): Language =>
    pickLanguage({ lang: single(req.query.lang), acceptLanguage: req.get("accept-language") });
  const stop = (req: Request, res: Response, code: LaunchFailureCode): void => {
    const lang = language(req);
    const shown = SHOWN[code];
    const target = HESI_LABEL[lang];
    if ("failure" in shown) {
      send(res, shown.status, renderFailure({ language: lang, code: shown.failure, sourceLabel: target }));
      return;
    }
    const t = translator(lang);
    const page = renderNotice({
      language: lang,
      title: t("launch.title", { target }),
      text: t(`launch.${shown.launch}`, { target }),
    });
    send(res, shown.status, page);
  };

  router.get("/:targetId", async (req, res) => {
    const parsed = launch.parse(req.params.targetId, { page: req.query.page, flowId: req.query.flowId });
    if (!parsed.ok) return stop(req, res, parsed.code);
    const personId = await firstParty.currentPersonId(req, res);
    if (personId === null) {
      firstParty.beginFirstPartySignIn(res, launchPath(parsed.request, single(req.query.lang)));
      return;
    }
    const userAgent = req.get("user-agent") ?? "";
    const result = await launch.launch(personId, parsed.request, {
      ip: req.ip ?? "",
      userAgent,
      applet: MOBILE.test(userAgent),
    });
    if (!result.ok) return stop(req, res, result.code);
    // The link is a bearer token: not cached, not sent on as a Referer, never logged.
    res
      .status(302)
      .set({ Location: result.url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer" })
      .end();
  });

  router.use((err: unknown, req: Request, res: Response, _next: express.NextFunction) => {
    logger.error({ err }, "launch failed");
    send(res, 500, renderFailure({ language: language(req), code: "INTERNAL" }));
  });
  return router;
}
