/**
 * The sign-in connectors of the configured sources, opened once per process and closed at shutdown.
 */
import type { Logger } from "pino";
import type { Config } from "../config/load.js";
import { isAppError } from "../domain/errors.js";
import { openSignIn, type SourceConfigEntry } from "../sources/registry.js";
import type { LiveStatus, SignInConnector } from "../sources/sign-in.js";
import type { Store } from "../store/store.js";

/** A source people can sign in with, as the login page offers it. */
export interface SignInSource {
  /** Source id. */
  readonly id: string;
  /** Source type (`ldap`, `dingtalk`, …). */
  readonly type: SourceConfigEntry["type"];
  /** Its connector. */
  readonly connector: SignInConnector;
}

/** The opened connectors, in the order the page offers them. */
export interface SignInSources {
  /** Offered sources in order. */
  readonly list: readonly SignInSource[];
  /** A source by id. */
  get(sourceId: string): SignInSource | undefined;
  /** A person's state in a source right now (`unavailable` when the source cannot tell). */
  liveStatus(sourceId: string, subject: string): Promise<LiveStatus>;
  /** Closes every connector. */
  close(): Promise<void>;
}

/**
 * Opens the connectors of `signIn.sources`, or of every configured source whose type can sign people
 * in when that list is not given (a type without sign-in is then skipped with a warning; one named in
 * the list fails the start).
 */
export async function openSignInSources(input: {
  readonly config: Config;
  readonly store: Store;
  readonly publicUrl: string;
  readonly logger: Logger;
  readonly now?: () => Date;
}): Promise<SignInSources> {
  const { config, store, logger } = input;
  const now = input.now ?? (() => new Date());
  const explicit = config.signIn.sources;
  const entries: SourceConfigEntry[] =
    explicit === undefined
      ? [...config.sources]
      : explicit.map((id) => config.sources.find((s) => s.id === id)).filter((s) => s !== undefined);
  const list: SignInSource[] = [];
  const openedSources = new Map<string, SignInSource>();
  try {
    for (const entry of entries) {
      let connector: SignInConnector;
      try {
        connector = await openSignIn(entry, {
          sourceId: entry.id,
          now,
          timeoutMs: config.signIn.upstreamTimeoutSeconds * 1000,
          publicUrl: input.publicUrl,
          once: (key, ttlSeconds) => {
            const at = now().getTime();
            return store.claimOnce(`${entry.id}:${key}`, at + ttlSeconds * 1000, at);
          },
        });
      } catch (err) {
        if (explicit === undefined && isAppError(err, "INPUT_INVALID")) {
          logger.warn({ sourceId: entry.id }, `source ${entry.id} cannot sign people in; not offered`);
          continue;
        }
        throw err;
      }
      const source = { id: entry.id, type: entry.type, connector };
      list.push(source);
      openedSources.set(entry.id, source);
    }
  } catch (err) {
    await Promise.allSettled(list.map((s) => s.connector.close()));
    throw err;
  }
  return {
    list,
    get: (sourceId) => openedSources.get(sourceId),
    async liveStatus(sourceId, subject) {
      const connector = openedSources.get(sourceId)?.connector;
      if (connector?.accountStatus === undefined) return "unavailable";
      try {
        return await connector.accountStatus(subject);
      } catch (err) {
        logger.warn({ err, sourceId }, "account status check failed");
        return "unavailable";
      }
    },
    async close() {
      const results = await Promise.allSettled(list.map((s) => s.connector.close()));
      for (const r of results)
        if (r.status === "rejected")
          logger.warn({ err: r.reason as unknown }, "closing a sign-in connector failed");
    },
  };
}
