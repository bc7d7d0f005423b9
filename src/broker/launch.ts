/**
 * One-click sign-in into a finance platform that is no OpenID Connect client (`/launch/<targetId>`; 合思):
 * a person with an idbridge session is sent through a single-use, short-lived link the platform issues for
 * their record there (the target's {@link LaunchLinks}, src/targets/registry.ts). Input checks, the
 * person's state now, the record id from the sync's link table, the link, and the audit entry of every
 * launch live here; the HTTP layer (src/http/launch.ts) only moves requests in and out.
 */
import type { AuditEvent } from "../audit/chain.js";
import type { Config } from "../config/load.js";
import type { Store } from "../store/store.js";
import { openLaunchLinks } from "../targets/registry.js";
import { LAUNCH_PAGES, type LaunchLinks, type LaunchPage } from "../targets/target.js";
import type { PersonDirectory, ResolveFailureCode } from "./contracts.js";
import type { RequestMeta } from "./login.js";
import { LiveChecks } from "./people.js";

export { LAUNCH_PAGES, type LaunchPage };

/** Bill ids are short ASCII ids (合思's `ID01…`); anything else is refused before the platform is asked. */
const FLOW_ID = /^[A-Za-z0-9][A-Za-z0-9_:.-]{0,63}$/;

/** Why a launch ends on a page instead of in the platform. */
export type LaunchFailureCode =
  /** No target with this id, or its type has no launch. */
  | "TARGET_UNKNOWN"
  /** `page` is not one of {@link LAUNCH_PAGES}. */
  | "PAGE_INVALID"
  /** `flowId` missing for `form`, given for another page, or not a bill id. */
  | "FLOW_ID_INVALID"
  /** The person has no staff in this target yet (the sync has not created or matched one). */
  | "NOT_LINKED"
  /** The person is no longer active now (see the ResolveFailureCode). */
  | ResolveFailureCode
  /** The platform refused the link (its user is disabled or unknown there, or another refusal). */
  | "LINK_REFUSED"
  /** The platform did not answer, or answered with an error. */
  | "TARGET_UNAVAILABLE";

/** A launch request that passed its checks. */
export interface LaunchRequest {
  /** The target id from the path. */
  readonly targetId: string;
  /** The page to open. */
  readonly page: LaunchPage;
  /** The bill, for `form`. */
  readonly flowId?: string;
}

/** A checked request, or why it is refused (before anyone is signed in). */
export type ParsedLaunch =
  | { readonly ok: true; readonly request: LaunchRequest }
  | { readonly ok: false; readonly code: "TARGET_UNKNOWN" | "PAGE_INVALID" | "FLOW_ID_INVALID" };

/** Where a launch ends: the link to 302 to (never logged), or a failure code for the page. */
export type LaunchResult =
  { readonly ok: true; readonly url: string } | { readonly ok: false; readonly code: LaunchFailureCode };

/** A target people can be launched into. */
export interface LaunchTarget {
  /** The target id from the config. */
  readonly id: string;
  /** The links it issues. */
  readonly links: LaunchLinks;
}

/** What the launch service works with. */
export interface LaunchServiceOptions {
  /** Targets with a launch, by id. */
  readonly targets: ReadonlyMap<string, LaunchTarget>;
  /** The link table (person → staff id). */
  readonly store: Pick<Store, "getTargetLink" | "getPerson">;
  /** People: claims from the last reads, and their state now (see LiveChecks). */
  readonly people: PersonDirectory;
  /** Appends to the audit log. */
  readonly audit: (event: AuditEvent) => Promise<unknown>;
}

/** Launches into the platforms; one per process. */
export class LaunchService {
  /** Whether the person is active now; asked at every launch (no cache). */
  private readonly live: LiveChecks;

  /** A launch service on `options`. */
  constructor(private readonly options: LaunchServiceOptions) {
    this.live = new LiveChecks(options.people, options.store, { cacheSeconds: 0 });
  }

  /** Checks the path and query of a launch URL. */
  parse(targetId: string, query: { readonly page?: unknown; readonly flowId?: unknown }): ParsedLaunch {
    if (!this.options.targets.has(targetId)) return { ok: false, code: "TARGET_UNKNOWN" };
    const page = query.page ?? "home";
    if (typeof page !== "string" || !(LAUNCH_PAGES as readonly string[]).includes(page))
      return { ok: false, code: "PAGE_INVALID" };
    const flowId = query.flowId;
    if (page === "form") {
      if (typeof flowId !== "string" || !FLOW_ID.test(flowId)) return { ok: false, code: "FLOW_ID_INVALID" };
      return { ok: true, request: { targetId, page, flowId } };
    }
    // A flowId on another page would be dropped silently (合思 does): refuse it so the wrong URL is noticed.
    if (flowId !== undefined) return { ok: false, code: "FLOW_ID_INVALID" };
    return { ok: true, request: { targetId, page: page as LaunchPage } };
  }

  /**
   * The link for a signed-in person: active now, linked to a record in the target, and the platform agreeing.
   * Every outcome is audited; the link and the staff id never are.
   */
  async launch(
    personId: string,
    request: LaunchRequest,
    meta: RequestMeta & { readonly applet?: boolean },
  ): Promise<LaunchResult> {
    const target = this.options.targets.get(request.targetId);
    if (target === undefined) return this.failed(personId, request, meta, "TARGET_UNKNOWN", "no such target");

    // Lenient, as at sign-in: a source that cannot be asked now is judged by its kept snapshot.
    const state = await this.live.check(personId, { strict: false });
    if (!state.ok) return this.failed(personId, request, meta, state.code, state.reason);

    const link = await this.options.store.getTargetLink(target.id, "user", personId);
    if (link === null)
      return this.failed(personId, request, meta, "NOT_LINKED", "the person has no staff in this target yet");

    const result = await target.links.link({
      recordId: link.targetRecordId,
      page: request.page,
      ...(request.flowId === undefined ? {} : { flowId: request.flowId }),
      applet: meta.applet === true,
    });
    if (!result.ok) {
      const { failure } = result;
      // bad-data is the platform's answer about this request; anything else means it is not usable now.
      const code = failure.class === "bad-data" ? "LINK_REFUSED" : "TARGET_UNAVAILABLE";
      return this.failed(personId, request, meta, code, `${failure.code}: ${failure.message}`);
    }
    await this.options.audit({
      actor: personId,
      action: "launch.succeeded",
      subject: personId,
      target: request.targetId,
      details: { ...this.details(personId, request, meta), linkSeconds: target.links.linkSeconds },
    });
    return { ok: true, url: result.url };
  }

  private details(
    personId: string,
    request: LaunchRequest,
    meta: RequestMeta,
  ): Record<string, string | number | boolean> {
    return {
      personId,
      target: request.targetId,
      page: request.page,
      ...(request.flowId === undefined ? {} : { flowId: request.flowId }),
      ip: meta.ip,
      userAgent: meta.userAgent.slice(0, 512),
    };
  }

  private async failed(
    personId: string,
    request: LaunchRequest,
    meta: RequestMeta,
    code: LaunchFailureCode,
    reason: string,
  ): Promise<LaunchResult> {
    await this.options.audit({
      actor: personId,
      action: "launch.failed",
      subject: personId,
      target: request.targetId,
      details: { ...this.details(personId, request, meta), code, reason: reason.slice(0, 1024) },
    });
    return { ok: false, code };
  }
}

/** The launch targets of the config: every target that issues launch links (not those signing in by OIDC). */
export async function openLaunchTargets(config: Config): Promise<Map<string, LaunchTarget>> {
  const targets = new Map<string, LaunchTarget>();
  for (const entry of config.targets) {
    const links = await openLaunchLinks(entry);
    if (links !== null) targets.set(entry.id, { id: entry.id, links });
  }
  return targets;
}
