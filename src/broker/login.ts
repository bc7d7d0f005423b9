/**
 * The sign-in orchestration behind the login pages: which sources to offer (and the silent in-app flow
 * inside DingTalk and WeCom), redirect flows with their state kept in the Store and taken once, password
 * and DingTalk JSAPI sign-ins, resolution of the proven identity to a person, the audit entry of every
 * attempt, and the end of the oidc-provider interaction. The HTTP layer (src/http/login.ts) only moves
 * requests and cookies in and out.
 */
import { randomBytes } from "node:crypto";
import type Provider from "oidc-provider";
import type { Logger } from "pino";
import type { AuditEvent } from "../audit/chain.js";
import type { JsapiPage, SignInIdentity, SignInOutcome } from "../sources/sign-in.js";
import type { Store } from "../store/store.js";
import type { SignInSource, SignInSources } from "./connectors.js";
import type { PersonDirectory } from "./contracts.js";
import type { FailureCode } from "./messages.js";
import { acrOf } from "./provider.js";
import type { SourceChoice } from "./pages.js";

/** How long a redirect flow may take, from leaving for the source to coming back (seconds). */
export const FLOW_TTL_SECONDS = 600;

/** Who is at the browser, for the audit log. */
export interface RequestMeta {
  /** Client IP (behind a trusted proxy: the forwarded one). */
  readonly ip: string;
  /** User-Agent header. */
  readonly userAgent: string;
}

/** The oidc-provider interaction the login page belongs to. */
export interface InteractionInfo {
  /** Interaction uid. */
  readonly uid: string;
  /** The platform's client_id. */
  readonly clientId: string;
  /** `ui_locales` of the authorization request, if any. */
  readonly uiLocales?: string;
}

/** What the login page shows. */
export type LoginView =
  | {
      readonly kind: "choose";
      /** The platform's name. */
      readonly clientName?: string;
      /** Sources signed in with by a redirect. */
      readonly redirects: readonly SourceChoice[];
      /** Sources signed in with by password. */
      readonly passwords: readonly SourceChoice[];
    }
  | {
      readonly kind: "jsapi-in-app";
      /** The source whose app we are in. */
      readonly sourceId: string;
      /** What the JSAPI page needs. */
      readonly page: JsapiPage;
    }
  | { readonly kind: "redirect"; readonly url: string };

/** The end of a sign-in step: back to the provider, or a sentence. */
export type LoginResult =
  | { readonly ok: true; readonly returnTo: string }
  | {
      readonly ok: false;
      readonly code: FailureCode;
      /** The interaction to offer a retry in, when it is still known. */
      readonly uid?: string;
      /** The source that failed, for the sentence (SOURCE_UNAVAILABLE names it). */
      readonly sourceId?: string;
    };

interface FlowRecord {
  readonly uid: string;
  readonly clientId: string;
  readonly sourceId: string;
  readonly mode: "web" | "in-app";
  readonly callbackUrl: string;
  readonly keep: Readonly<Record<string, string>>;
  /** When the flow ends (ms since epoch), to put it back unchanged after a look (older records: absent). */
  readonly expiresAt?: number;
}

/** What the login service works with. */
export interface LoginServiceOptions {
  /** The OpenID Connect provider whose interactions we finish. */
  readonly provider: Provider;
  /** Flow records live here. */
  readonly store: Store;
  /** Resolves identities to people. */
  readonly people: PersonDirectory;
  /** The opened sign-in connectors. */
  readonly sources: SignInSources;
  /** idbridge's public base URL, no trailing slash. */
  readonly publicUrl: string;
  /** Names of the platforms by client_id, for the page. */
  readonly clientNames: ReadonlyMap<string, string>;
  /** Appends to the audit log. */
  readonly audit: (event: AuditEvent) => Promise<unknown>;
  /** Server log. */
  readonly logger: Logger;
  /** Clock, epoch ms. */
  readonly now?: () => number;
}

/** Sign-in orchestration; one per process. */
export class LoginService {
  private readonly now: () => number;

  /** A login service on `options`. */
  constructor(private readonly options: LoginServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The callback URL of a source (`redirect_uri`, SAML ACS). */
  callbackUrl(sourceId: string): string {
    return `${this.options.publicUrl}/login/callback/${encodeURIComponent(sourceId)}`;
  }

  /**
   * What to show for an interaction: inside DingTalk the JSAPI page, inside WeCom a redirect into the
   * silent OAuth; everywhere else the list of sources.
   */
  async view(interaction: InteractionInfo, userAgent: string): Promise<LoginView> {
    // Each connector with an in-app flow knows its app's browser; the first that recognises it leads.
    const source = this.options.sources.list.find(
      (s) => s.connector.inApp !== undefined && s.connector.inAppUserAgent?.test(userAgent) === true,
    );
    const inApp = source?.connector.inApp;
    if (source !== undefined && inApp !== undefined) {
      if (inApp.kind === "jsapi-code") return { kind: "jsapi-in-app", sourceId: source.id, page: inApp.page };
      const started = await this.begin(interaction, source.id, "in-app");
      if (started.ok) return { kind: "redirect", url: started.url };
    }
    const clientName = this.options.clientNames.get(interaction.clientId);
    return {
      kind: "choose",
      ...(clientName === undefined ? {} : { clientName }),
      redirects: this.options.sources.list.filter((s) => s.connector.web !== undefined).map(choice),
      passwords: this.options.sources.list.filter((s) => s.connector.password !== undefined).map(choice),
    };
  }

  /** Starts a redirect flow: a fresh state, its record in the Store, the URL to send the browser to. */
  async begin(
    interaction: InteractionInfo,
    sourceId: string,
    mode: "web" | "in-app",
  ): Promise<{ ok: true; url: string } | { ok: false; code: FailureCode; sourceId?: string }> {
    const source = this.options.sources.get(sourceId);
    const flow = mode === "web" ? source?.connector.web : source?.connector.inApp;
    if (source === undefined || flow === undefined || flow.kind !== "redirect")
      return { ok: false, code: "SOURCE_UNKNOWN" };
    // 32 random bytes as hex: unguessable, and only [0-9a-f], which WeCom's state ([a-zA-Z0-9]) accepts.
    const state = randomBytes(32).toString("hex");
    const callbackUrl = this.callbackUrl(sourceId);
    let start;
    try {
      start = await flow.begin({ callbackUrl, state });
    } catch (err) {
      this.options.logger.error({ err, sourceId }, "sign-in flow could not start");
      return { ok: false, code: "SOURCE_UNAVAILABLE", sourceId };
    }
    const record: FlowRecord = {
      uid: interaction.uid,
      clientId: interaction.clientId,
      sourceId,
      mode,
      callbackUrl,
      keep: start.keep,
      expiresAt: this.now() + FLOW_TTL_SECONDS * 1000,
    };
    await this.options.store.putSignInFlow(state, JSON.stringify(record), record.expiresAt as number);
    return { ok: true, url: start.url };
  }

  /**
   * A source's callback: the flow record of its state, taken once; it must be this source's and this
   * browser's (`boundUid`: the interaction the browser's signed binding cookie names).
   */
  async callback(
    sourceId: string,
    params: Readonly<Record<string, string>>,
    boundUid: string | null,
    meta: RequestMeta,
  ): Promise<LoginResult> {
    // OAuth2/OIDC send `state`; SAML sends it back as RelayState.
    const state = params.state ?? params.RelayState;
    const raw =
      state === undefined || !/^[0-9a-f]{64}$/.test(state)
        ? null
        : await this.options.store.takeSignInFlow(state, this.now());
    const record = raw === null ? null : (JSON.parse(raw) as FlowRecord);
    if (record === null || record.sourceId !== sourceId || record.uid !== boundUid) {
      const why =
        record === null
          ? "unknown, used or expired state"
          : record.sourceId !== sourceId
            ? "state of another source"
            : "state of another browser";
      await this.failed(meta, { sourceId, code: "FLOW_INVALID", reason: why, clientId: record?.clientId });
      return { ok: false, code: "FLOW_INVALID", ...(boundUid === null ? {} : { uid: boundUid }) };
    }
    const source = this.options.sources.get(sourceId);
    const flow = record.mode === "web" ? source?.connector.web : source?.connector.inApp;
    if (source === undefined || flow === undefined || flow.kind !== "redirect") {
      await this.failed(meta, {
        sourceId,
        code: "SOURCE_UNKNOWN",
        reason: "no redirect flow for this source (configuration changed during the sign-in?)",
        clientId: record.clientId,
      });
      return { ok: false, code: "SOURCE_UNKNOWN", uid: record.uid };
    }
    const outcome = await this.guard(sourceId, () =>
      flow.complete({ callbackUrl: record.callbackUrl, state: state as string, params, keep: record.keep }),
    );
    return this.finish({ uid: record.uid, clientId: record.clientId }, source, outcome, meta);
  }

  /** An AD/LDAP user name and password posted to the login page. */
  async password(
    interaction: InteractionInfo,
    sourceId: string,
    credentials: { readonly login: string; readonly password: string },
    meta: RequestMeta,
  ): Promise<LoginResult> {
    const source = this.options.sources.get(sourceId);
    const password = source?.connector.password;
    if (source === undefined || password === undefined) {
      await this.failed(meta, {
        sourceId,
        code: "SOURCE_UNKNOWN",
        reason: "no password sign-in source with this id",
        clientId: interaction.clientId,
      });
      return { ok: false, code: "SOURCE_UNKNOWN", uid: interaction.uid };
    }
    const outcome = await this.guard(sourceId, () => password.verify(credentials));
    return this.finish(interaction, source, outcome, meta, credentials.login);
  }

  /** The code DingTalk's JSAPI gave the in-app page. */
  async jsapiCode(
    interaction: InteractionInfo,
    sourceId: string,
    code: string,
    meta: RequestMeta,
  ): Promise<LoginResult> {
    const source = this.options.sources.get(sourceId);
    const inApp = source?.connector.inApp;
    if (source === undefined || inApp === undefined || inApp.kind !== "jsapi-code") {
      await this.failed(meta, {
        sourceId,
        code: "SOURCE_UNKNOWN",
        reason: "no DingTalk in-app source with this id",
        clientId: interaction.clientId,
      });
      return { ok: false, code: "SOURCE_UNKNOWN", uid: interaction.uid };
    }
    const outcome = await this.guard(sourceId, () => inApp.complete(code));
    return this.finish(interaction, source, outcome, meta);
  }

  /**
   * Keeps the fields of a cross-site POST callback (SAML) for one GET hop: browsers do not send
   * SameSite=Lax cookies with a cross-site POST, so the binding is checked on the GET that follows.
   * Only for a source that takes POST callbacks and a RelayState naming a live flow of that source:
   * anything else is refused (null) without a write, so strangers cannot fill the Store.
   */
  async stashPost(
    sourceId: string,
    params: Readonly<Record<string, string>>,
    meta: RequestMeta,
  ): Promise<string | null> {
    const refuse = async (reason: string): Promise<null> => {
      await this.failed(meta, { sourceId, code: "FLOW_INVALID", reason });
      return null;
    };
    // SAML sources are the ones with SP metadata, and SAML is the one that posts its response.
    if (this.options.sources.get(sourceId)?.connector.metadata === undefined)
      return refuse("POST callback to a source that takes none");
    const state = params.RelayState;
    if (state === undefined || !/^[0-9a-f]{64}$/.test(state))
      return refuse("POST callback without a valid RelayState");
    // The Store can only take a flow: take it, look, and put it back as it was.
    const raw = await this.options.store.takeSignInFlow(state, this.now());
    if (raw === null) return refuse("POST callback for an unknown, used or expired flow");
    const record = JSON.parse(raw) as FlowRecord;
    const expiresAt = record.expiresAt ?? this.now() + 60_000;
    await this.options.store.putSignInFlow(state, raw, expiresAt);
    if (record.sourceId !== sourceId) return refuse("POST callback with the state of another source");
    const ref = randomBytes(32).toString("hex");
    await this.options.store.putSignInFlow(
      `post:${ref}`,
      JSON.stringify(params),
      Math.min(expiresAt, this.now() + 60_000),
    );
    return ref;
  }

  /** The fields stashed by {@link stashPost}, once. */
  async takePosted(ref: string): Promise<Record<string, string> | null> {
    if (!/^[0-9a-f]{64}$/.test(ref)) return null;
    const raw = await this.options.store.takeSignInFlow(`post:${ref}`, this.now());
    return raw === null ? null : (JSON.parse(raw) as Record<string, string>);
  }

  /** Records a failure that happened before a source was asked (bad form, rate limit). */
  async refused(
    meta: RequestMeta,
    input: { sourceId: string; code: FailureCode; reason: string; clientId?: string; subject?: string },
  ): Promise<void> {
    await this.failed(meta, input);
  }

  // A connector that throws broke its contract; the person still gets a sentence, the log the detail.
  private async guard(sourceId: string, fn: () => Promise<SignInOutcome>): Promise<SignInOutcome> {
    try {
      return await fn();
    } catch (err) {
      this.options.logger.error({ err, sourceId }, "sign-in connector threw");
      return { ok: false, code: "SOURCE_UNAVAILABLE", reason: "connector error (details in the server log)" };
    }
  }

  private async finish(
    interaction: { uid: string; clientId: string },
    source: SignInSource,
    outcome: SignInOutcome,
    meta: RequestMeta,
    login?: string,
  ): Promise<LoginResult> {
    const base = { sourceId: source.id, clientId: interaction.clientId };
    if (!outcome.ok) {
      await this.failed(meta, {
        ...base,
        code: outcome.code,
        reason: outcome.reason,
        ...(login ? { login } : {}),
      });
      return { ok: false, code: outcome.code, uid: interaction.uid, sourceId: source.id };
    }
    const identity: SignInIdentity = outcome.identity;
    let resolved;
    try {
      resolved = await this.options.people.resolve(identity);
    } catch (err) {
      // A broken policy file or an unreachable store: the attempt is still audited, the person told plainly.
      this.options.logger.error({ err, sourceId: source.id }, "resolving a sign-in identity failed");
      await this.failed(meta, {
        ...base,
        code: "INTERNAL",
        reason: "resolving the identity failed (details in the server log)",
        subject: identity.subject,
      });
      return { ok: false, code: "INTERNAL", uid: interaction.uid, sourceId: source.id };
    }
    if (!resolved.ok) {
      await this.failed(meta, {
        ...base,
        code: resolved.code,
        reason: resolved.reason,
        subject: identity.subject,
        ...(resolved.personId === undefined ? {} : { personId: resolved.personId }),
      });
      return { ok: false, code: resolved.code, uid: interaction.uid, sourceId: source.id };
    }
    const found = await this.options.provider.Interaction.find(interaction.uid);
    if (found === undefined) {
      await this.failed(meta, {
        ...base,
        code: "INTERACTION_EXPIRED",
        reason: "the interaction expired while signing in at the source",
        subject: identity.subject,
        personId: resolved.personId,
      });
      return { ok: false, code: "INTERACTION_EXPIRED" };
    }
    // What provider.interactionFinished does, by uid: the source's callback path does not carry the
    // provider's interaction cookie (its path is /login/<uid>), so the binding cookie vouched instead.
    found.result = {
      ...found.lastSubmission,
      login: {
        accountId: resolved.personId,
        amr: [source.type === "ldap" ? "pwd" : source.type],
        acr: acrOf(source.type),
      },
    };
    await found.save(Math.max(1, found.exp - Math.floor(this.now() / 1000)));
    await this.options.audit({
      actor: resolved.personId,
      action: "login.succeeded",
      subject: resolved.personId,
      details: {
        source: source.id,
        sourceSubject: identity.subject,
        personId: resolved.personId,
        via: resolved.via,
        clientId: interaction.clientId,
        ip: meta.ip,
        userAgent: meta.userAgent,
      },
    });
    return { ok: true, returnTo: found.returnTo };
  }

  private async failed(
    meta: RequestMeta,
    input: {
      sourceId: string;
      code: FailureCode;
      reason: string;
      clientId?: string | undefined;
      subject?: string;
      personId?: string;
      login?: string;
    },
  ): Promise<void> {
    await this.options.audit({
      actor: input.personId ?? `source:${input.sourceId}`,
      action: "login.failed",
      subject: input.personId ?? null,
      details: {
        source: input.sourceId,
        code: input.code,
        reason: input.reason,
        ...(input.subject === undefined ? {} : { sourceSubject: input.subject }),
        ...(input.personId === undefined ? {} : { personId: input.personId }),
        // The login name typed (never the password): who was tried is what an investigation needs.
        ...(input.login === undefined ? {} : { login: input.login.slice(0, 256) }),
        ...(input.clientId === undefined ? {} : { clientId: input.clientId }),
        ip: meta.ip,
        userAgent: meta.userAgent.slice(0, 512),
      },
    });
  }
}

function choice(source: SignInSource): SourceChoice {
  return { id: source.id, type: source.type };
}
