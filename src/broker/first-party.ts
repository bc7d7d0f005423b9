/**
 * idbridge's own pages (launch, later the console) sign people in through the provider as the
 * first-party client `idbridge` with response_type=none: the browser comes back with an idbridge session
 * and no tokens, and these helpers read that session.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type Provider from "oidc-provider";
import { AppError } from "../domain/errors.js";
import type { PersonDirectory } from "./contracts.js";
import { FIRST_PARTY_CLIENT_ID, PROVIDER_PATH } from "./provider.js";

/** Session helpers for idbridge's own pages. */
export interface FirstParty {
  /** The person signed in in this browser's idbridge session, or null (none, expired, or no longer active). */
  currentPersonId(req: IncomingMessage, res: ServerResponse): Promise<string | null>;
  /**
   * Sends the browser to sign in and then back to `returnTo`, a path on idbridge (`/launch/hesi?page=home`).
   * Throws INPUT_INVALID for anything else (another site, `//host`, a scheme), so no page can be made an
   * open redirect.
   */
  beginFirstPartySignIn(res: ServerResponse, returnTo: string): void;
  /** The path to go back to from the `state` of `/login/return`, or null when it is not one of ours. */
  returnPath(state: unknown): string | null;
}

/** True for a same-origin relative path: `/x`, never `//host`, `/\host`, a scheme or control characters. */
export function isLocalPath(value: unknown, publicUrl: string): value is string {
  if (typeof value !== "string" || value.length === 0 || value.length > 2048) return false;
  if (!value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return false;
  const base = new URL(publicUrl);
  try {
    return new URL(value, base).origin === base.origin;
  } catch {
    return false;
  }
}

/** The first-party helpers on `provider`. */
export function createFirstParty(provider: Provider, people: PersonDirectory, publicUrl: string): FirstParty {
  return {
    async currentPersonId(req, res) {
      const ctx = provider.createContext(req, res);
      const session = await provider.Session.get(ctx);
      const personId = session.accountId;
      if (personId === undefined) return null;
      return (await people.claims(personId, undefined)) === null ? null : personId;
    },
    beginFirstPartySignIn(res, returnTo) {
      if (!isLocalPath(returnTo, publicUrl))
        throw new AppError("INPUT_INVALID", "returnTo must be a path on idbridge", { expose: true });
      const url = new URL(`${publicUrl}${PROVIDER_PATH}/auth`);
      url.searchParams.set("client_id", FIRST_PARTY_CLIENT_ID);
      url.searchParams.set("response_type", "none");
      url.searchParams.set("scope", "openid");
      url.searchParams.set("redirect_uri", `${publicUrl}/login/return`);
      // The state carries the path back; /login/return checks it again, so a forged state goes nowhere.
      url.searchParams.set("state", returnTo);
      res.statusCode = 303;
      res.setHeader("Location", url.href);
      res.setHeader("Cache-Control", "no-store");
      res.end();
    },
    returnPath: (state) => (isLocalPath(state, publicUrl) ? state : null),
  };
}
