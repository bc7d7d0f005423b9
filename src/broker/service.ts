/**
 * Sign-in assembled: connectors, people, the OpenID Connect provider, the login service and their HTTP
 * routes (`/oidc`, `/login`, `/saml`), built once the public URL is known and closed at shutdown.
 */
import { runtimeNotice } from "./runtime-notice.js";
import express, { type Router } from "express";
import type Provider from "oidc-provider";
import type { JWK } from "oidc-provider";
import type { Logger } from "pino";
import type { AuditEvent } from "../audit/chain.js";
import type { AuditLog } from "../audit/log.js";
import type { Config } from "../config/load.js";
import { loginRouter, samlRouter, type PasswordLimits } from "../http/login.js";
import type { Store } from "../store/store.js";
import { startOidcArtifactSweep } from "./adapter.js";
import { createBinder } from "./binding.js";
import { openSignInSources } from "./connectors.js";
import type { PersonDirectory } from "./contracts.js";
import { createFirstParty, type FirstParty } from "./first-party.js";
import { LoginService } from "./login.js";
import { createPersonDirectory } from "./people.js";
import { createProvider, PROVIDER_PATH } from "./provider.js";

/** Sweep of expired provider artefacts and flow records. */
const SWEEP_INTERVAL_MS = 10 * 60_000;

/** What sign-in is built from. */
export interface SignInOptions {
  /** The whole configuration. */
  readonly config: Config;
  /** The store. */
  readonly store: Store;
  /** The audit log. */
  readonly audit: Pick<AuditLog, "record">;
  /** idbridge's public base URL, no trailing slash. */
  readonly publicUrl: string;
  /** Private token signing JWKs: current first, then retired ones within the grace period. */
  readonly signingKeys: readonly JWK[];
  /** Cookie secrets, newest first. */
  readonly cookieSecrets: readonly string[];
  /** Server log. */
  readonly logger: Logger;
  /** People; by default the Store-backed directory asking the connectors for live account states. */
  readonly people?: PersonDirectory;
  /** Password form limits (tests lower them). */
  readonly passwordLimits?: PasswordLimits;
}

/** Sign-in, running. */
export interface SignIn {
  /** Mount at `/`: it answers `/oidc`, `/login` and `/saml`. */
  readonly router: Router;
  /** Session helpers for idbridge's own pages (launch). */
  readonly firstParty: FirstParty;
  /** The people sign-in resolves to (launch checks a person's state with it). */
  readonly people: PersonDirectory;
  /** The OpenID Connect provider (the admin API looks its client-credentials tokens up with it). */
  readonly provider: Provider;
  /** Closes connectors and stops the sweep. */
  close(): Promise<void>;
}

/** Opens the connectors and builds the provider and the routes. */
export async function startSignIn(options: SignInOptions): Promise<SignIn> {
  const { config, store, logger, publicUrl } = options;
  const log = logger.child({ component: "sign-in" });
  const notice = runtimeNotice();
  if (notice !== null) log.warn(notice);
  const sources = await openSignInSources({ config, store, publicUrl, logger: log });
  try {
    const record = async (event: AuditEvent): Promise<void> => {
      await options.audit.record(event);
    };
    const people =
      options.people ??
      createPersonDirectory({
        config,
        store,
        audit: options.audit,
        liveStatus: (sourceId, subject) => sources.liveStatus(sourceId, subject),
      });
    const provider = createProvider({
      publicUrl,
      signIn: config.signIn,
      store,
      people,
      signingKeys: options.signingKeys,
      cookieSecrets: options.cookieSecrets,
      trustProxy: config.server.trustProxy,
      logger: log,
      audit: record,
      apiClients: config.console.apiClients,
      onLogout: (event) => {
        record({
          actor: event.personId,
          action: "logout.succeeded",
          subject: event.personId,
          details: {
            personId: event.personId,
            ...(event.clientId === undefined ? {} : { clientId: event.clientId }),
            ip: event.ip,
            userAgent: event.userAgent.slice(0, 512),
          },
        }).catch((err: unknown) => log.error({ err }, "audit of a logout failed"));
      },
    });
    const firstParty = createFirstParty(provider, people, publicUrl);
    const login = new LoginService({
      provider,
      store,
      people,
      sources,
      publicUrl,
      clientNames: new Map(
        config.signIn.clients.flatMap((c) => (c.name === undefined ? [] : [[c.clientId, c.name] as const])),
      ),
      audit: record,
      logger: log,
    });
    const router = express.Router();
    router.use(PROVIDER_PATH, provider.callback());
    router.use(
      "/login",
      loginRouter({
        login,
        provider,
        sources,
        firstParty,
        binder: createBinder(options.cookieSecrets),
        secureCookies: publicUrl.startsWith("https:"),
        logger: log,
        ...(options.passwordLimits === undefined ? {} : { passwordLimits: options.passwordLimits }),
      }),
    );
    router.use("/saml", samlRouter({ sources, publicUrl }));
    const stopSweep = startOidcArtifactSweep(store, {
      intervalMs: SWEEP_INTERVAL_MS,
      onError: (err) => log.warn({ err }, "sweep of expired sign-in artefacts failed"),
    });
    return {
      router,
      firstParty,
      people,
      provider,
      async close() {
        stopSweep();
        await sources.close();
      },
    };
  } catch (err) {
    await sources.close();
    throw err;
  }
}
