import type { z } from "zod";
import { AppError } from "../domain/errors.js";
import { dingtalkConfigSchema } from "./dingtalk/config.js";
import { ldapConfigSchema } from "./ldap/config.js";
import { oidcConfigSchema } from "./oidc/config.js";
import { abortableSleep } from "./http/abortable-sleep.js";
import { samlConfigSchema } from "./saml/config.js";
import type { SignInConnector, SignInContext } from "./sign-in.js";
import type { DirectoryReader, SourceContext } from "./source.js";
import { wecomConfigSchema } from "./wecom/config.js";

/** Source types idbridge knows. */
export const SOURCE_TYPES = ["ldap", "dingtalk", "wecom", "oidc", "saml"] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Each type's config schema. Only these light zod modules are loaded with the config. */
export const SOURCE_CONFIG_SCHEMAS = {
  ldap: ldapConfigSchema,
  dingtalk: dingtalkConfigSchema,
  wecom: wecomConfigSchema,
  oidc: oidcConfigSchema,
  saml: samlConfigSchema,
} as const satisfies Record<SourceType, z.ZodType>;

/** A source entry of the config after its type's schema filled defaults. */
export type SourceConfigEntry = {
  [T in SourceType]: {
    readonly id: string;
    readonly type: T;
    readonly config: z.infer<(typeof SOURCE_CONFIG_SCHEMAS)[T]>;
  };
}[SourceType];

// The readers (ldapts, HTTP clients) load only when a source is opened.
interface LoadedModule {
  readonly openDirectory?: (context: SourceContext, config: never) => DirectoryReader;
  readonly openSignIn?: (context: SignInContext, config: never) => SignInConnector;
}
const MODULES: Record<SourceType, () => Promise<LoadedModule>> = {
  ldap: async () => (await import("./ldap/index.js")).ldapSource,
  dingtalk: async () => (await import("./dingtalk/index.js")).dingtalkSource,
  wecom: async () => (await import("./wecom/index.js")).wecomSource,
  oidc: async () => (await import("./oidc/index.js")).oidcSource,
  saml: async () => (await import("./saml/index.js")).samlSource,
};

/** Default context: the real clock and timers. */
export function defaultSourceContext(sourceId: string): SourceContext {
  return {
    sourceId,
    now: () => new Date(),
    sleep: abortableSleep,
  };
}

/** Opens the directory reader of a configured source; INPUT_INVALID when its type has no directory. */
export async function openDirectory(
  entry: SourceConfigEntry,
  context: SourceContext = defaultSourceContext(entry.id),
): Promise<DirectoryReader> {
  const module = await MODULES[entry.type]();
  if (module.openDirectory === undefined) {
    throw new AppError(
      "INPUT_INVALID",
      `source ${entry.id} is of type ${entry.type}, which is a sign-in source without a directory to read`,
      { expose: true },
    );
  }
  return module.openDirectory(context, entry.config as never);
}

/** Opens the sign-in connector of a configured source; INPUT_INVALID when its type cannot sign people in. */
export async function openSignIn(entry: SourceConfigEntry, context: SignInContext): Promise<SignInConnector> {
  const module = await MODULES[entry.type]();
  if (module.openSignIn === undefined) {
    throw new AppError(
      "INPUT_INVALID",
      `source ${entry.id} is of type ${entry.type}, which people cannot sign in with`,
      { expose: true },
    );
  }
  return module.openSignIn(context, entry.config as never);
}
