/**
 * Sign-in connectors: how a source proves who is at the browser. Each source folder that can sign people
 * in (`dingtalk`, `wecom`, `ldap`, `oidc`, `saml`) implements {@link SignInConnector}; the broker
 * (`src/broker/`) drives them, keeps their flow state in the store, resolves the identity to a Person and
 * finishes the OpenID Connect interaction. Nothing here knows about sessions, cookies or tokens.
 *
 * Failures at the source (wrong password, a code used twice, a bad signature, an upstream that is down)
 * are results with a stable code, never exceptions; only caller mistakes throw.
 */
import type { PersonStatus, SourcePerson } from "./snapshot.js";

/** Who signed in, as the source proved it. */
export interface SignInIdentity {
  /** Source id from the config. */
  readonly sourceId: string;
  /**
   * The account's stable subject: the same subject the source's directory reader gives this person
   * (AD objectGUID, OpenLDAP entryUUID, DingTalk/WeCom userid), or for sources without a directory the
   * IdP's stable id (OIDC `sub`, SAML NameID).
   */
  readonly subject: string;
  /**
   * What the source told us, in the directory shape, so that link rules compare sign-in identities the
   * same way they compare directory people. Only values the organisation vouches for belong here: never
   * a self-set or unverified email or mobile (DingTalk's `contact/users/me` email, an OIDC email without
   * `email_verified`), never an attribute of another organisation.
   */
  readonly person: SourcePerson;
}

/** Stable reasons a sign-in at the source failed; the broker maps each to a sentence in the user's language. */
export type SignInFailureCode =
  /** Wrong user name or password (also: unknown user — never revealed). */
  | "INVALID_CREDENTIALS"
  | "ACCOUNT_LOCKED"
  | "PASSWORD_EXPIRED"
  | "MUST_CHANGE_PASSWORD"
  | "ACCOUNT_DISABLED"
  | "ACCOUNT_EXPIRED"
  /** The person has left the organisation (departed in DingTalk/WeCom). */
  | "ACCOUNT_LEFT"
  | "LOGON_HOURS"
  | "LOGON_WORKSTATION"
  /** The account belongs to another organisation (DingTalk corpId, WeCom linked corp). */
  | "FOREIGN_ORGANISATION"
  /** Not a member of the organisation (WeCom openid without userid, DingTalk 60121 / external contact). */
  | "NOT_A_MEMBER"
  /** The user declined or cancelled at the source. */
  | "CANCELLED"
  /**
   * The response cannot be trusted: a tampered, expired or reused code, assertion or token, a bad
   * signature, a wrong issuer, audience, destination or InResponseTo, a state that does not match.
   */
  | "INVALID_RESPONSE"
  /** The source is down, slow (timeout) or refuses our own credentials (a misconfigured app secret). */
  | "SOURCE_UNAVAILABLE";

/** The result of a sign-in step. `reason` is for the audit log and the server log: English, no secrets. */
export type SignInOutcome =
  | { readonly ok: true; readonly identity: SignInIdentity }
  | { readonly ok: false; readonly code: SignInFailureCode; readonly reason: string };

/**
 * What a redirect flow keeps between `begin` and `complete` (PKCE verifier, nonce, SAML request id). The
 * broker stores it server-side, bound to the browser and to `state`, and hands it back exactly once.
 */
export type FlowState = Readonly<Record<string, string>>;

/** Where the browser goes to sign in at the source, and what to keep until it comes back. */
export interface RedirectStart {
  /** The source's authorization / login URL. */
  readonly url: string;
  /** Kept by the broker and given back to `complete`. */
  readonly keep: FlowState;
}

/** Context of one redirect flow. */
export interface FlowInput {
  /**
   * Our callback URL for this source (`<publicUrl>/login/callback/<sourceId>`): the OAuth redirect_uri,
   * the SAML AssertionConsumerService URL. GET for OAuth/OIDC, POST (form) for SAML.
   */
  readonly callbackUrl: string;
  /** Opaque, unguessable value the broker made for this attempt (OAuth `state`, SAML `RelayState`). */
  readonly state: string;
}

/** A browser redirect flow: OAuth2 / OIDC / SAML / vendor QR login, or a vendor's silent in-app OAuth. */
export interface RedirectSignIn {
  readonly kind: "redirect";
  /** Builds the URL to send the browser to. */
  begin(input: FlowInput): Promise<RedirectStart>;
  /**
   * Checks what came back to the callback and finds out who it is. `params` are the callback's query
   * (GET) or form fields (POST), as sent; the broker has already matched `state` to this attempt.
   * `keep` is null for an unsolicited response (SAML IdP-initiated), which a connector refuses unless
   * its config allows it.
   */
  complete(
    input: FlowInput & { readonly params: Readonly<Record<string, string>>; readonly keep: FlowState | null },
  ): Promise<SignInOutcome>;
}

/**
 * In-app sign-in through the vendor app's JavaScript API (DingTalk's JSAPI): a page inside the app loads
 * the vendor's script and runs the connector's `script`, which asks the app for a one-time code without
 * a click; the page posts it back and `complete` turns it into the person.
 */
export interface JsapiCodeSignIn {
  readonly kind: "jsapi-code";
  /** What the page needs. */
  readonly page: JsapiPage;
  /** Turns the code into the person. */
  complete(code: string): Promise<SignInOutcome>;
}

/** The in-app page of a {@link JsapiCodeSignIn}. */
export interface JsapiPage {
  /** The vendor's JSAPI script, loaded before `script` (its origin is allowed by the page's CSP). */
  readonly scriptUrl: string;
  /**
   * The body of a function the page runs once: it calls `send("code", code)` with the app's one-time
   * code, or `send("error", reason)` when the API is missing or refuses. Values put into it must go
   * through {@link scriptLiteral}.
   */
  readonly script: string;
}

/** `value` as a JavaScript literal that is safe inside an HTML `<script>` element. */
export function scriptLiteral(value: string): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** A user name and password checked by the source itself (AD / LDAP bind). */
export interface PasswordSignIn {
  /** Empty passwords are refused before anything is sent; unknown users look like wrong passwords. */
  verify(input: { readonly login: string; readonly password: string }): Promise<SignInOutcome>;
}

/** A person's state in the source right now, for the sign-in time check of linked accounts. */
export type LiveStatus = PersonStatus | "not-found" | "unavailable";

/** What one source offers for sign-in. */
export interface SignInConnector {
  /** Source id from the config. */
  readonly sourceId: string;
  /** Sign-in at a desktop browser: QR code / redirect to the IdP. */
  readonly web?: RedirectSignIn;
  /** Silent sign-in inside the vendor's app (DingTalk, WeCom). */
  readonly inApp?: RedirectSignIn | JsapiCodeSignIn;
  /** With `inApp`: recognises the vendor app's in-app browser by its user agent. */
  readonly inAppUserAgent?: RegExp;
  /** Password sign-in (AD / LDAP). */
  readonly password?: PasswordSignIn;
  /**
   * The state of an account of this source now, asked of the source itself (DingTalk user/get, WeCom
   * user/get, an LDAP search). Sources without a directory (OIDC, SAML) leave it out.
   */
  accountStatus?(subject: string): Promise<LiveStatus>;
  /** SAML only: the SP metadata XML served at `/saml/<sourceId>/metadata`. */
  metadata?(input: { readonly callbackUrl: string }): string;
  /** Releases connections. */
  close(): Promise<void>;
}

/** What a sign-in connector gets besides its config. */
export interface SignInContext {
  /** Source id from the config, used in every message. */
  readonly sourceId: string;
  /** Wall clock; tests pin it. */
  readonly now: () => Date;
  /** Bound on every call to the source: a slow upstream fails with SOURCE_UNAVAILABLE after this long. */
  readonly timeoutMs: number;
  /** idbridge's public base URL (no trailing slash): SAML entity ids and metadata are derived from it. */
  readonly publicUrl: string;
  /**
   * Marks `key` as used, across every instance on the store: true the first time, false ever after
   * (until `ttlSeconds` pass). For replay checks on what a source cannot make single-use itself (SAML
   * assertion ids).
   */
  readonly once: (key: string, ttlSeconds: number) => Promise<boolean>;
}
