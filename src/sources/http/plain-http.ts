// No imports: config schemas use this, and the config loader loads them eagerly.

/** True for a host on the loopback interface (127.0.0.0/8, ::1, localhost), as `URL.hostname` spells it. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** What is wrong with a URL under the https rule: the URL itself, or the flag that let it through. */
export interface PlainHttpProblem {
  /** The key to report: the URL's own, or `allowInsecureHttp`. */
  readonly at: "url" | "allowInsecureHttp";
  /** The complaint, for the config error. */
  readonly message: string;
}

/**
 * Checks the rule for URLs at an IdP: `https:` always; `http:` only with `allowInsecureHttp` and only on
 * a loopback host (a test or local IdP), since anything in between could read or change what travels.
 */
export function plainHttpProblem(url: string, allowInsecureHttp: boolean): PlainHttpProblem | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null; // the schema's own url check reports it
  }
  if (parsed.protocol !== "http:") return null;
  if (!allowInsecureHttp)
    return {
      at: "url",
      message: "must be https (http only with allowInsecureHttp, for a loopback test IdP)",
    };
  if (!isLoopbackHost(parsed.hostname))
    return {
      at: "allowInsecureHttp",
      message: "only allowed for URLs on a loopback address (127.0.0.1, ::1, localhost)",
    };
  return null;
}
