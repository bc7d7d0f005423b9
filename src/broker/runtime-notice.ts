/**
 * oidc-provider 9 prints "Unsupported runtime. Use Node.js v22.x LTS…" with console.warn when it is
 * loaded on Node 20. idbridge runs on Node 20.19+ and 22/24 (DESIGN) and its tests run on Node 20, so that
 * line would only be an unstructured stray on stderr — breaking the CLI's one-line errors and the JSON log.
 * This module, imported before oidc-provider, drops exactly that line; `startSignIn` logs the fact once,
 * as a structured warning (see {@link runtimeNotice}).
 */
const UNSUPPORTED = "oidc-provider WARNING: Unsupported runtime.";

const original = console.warn.bind(console);
console.warn = (...args: unknown[]): void => {
  if (typeof args[0] === "string" && args[0].includes(UNSUPPORTED)) return;
  original(...args);
};

/** A sentence for the log when this Node is older than what oidc-provider supports, else null. */
export function runtimeNotice(): string | null {
  const major = Number(process.versions.node.split(".")[0]);
  return major < 22
    ? `running on Node ${process.versions.node}; oidc-provider 9 is supported on Node 22 LTS and later — plan the upgrade`
    : null;
}
