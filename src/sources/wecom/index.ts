import type { SourceModule } from "../source.js";
import { wecomConfigSchema, type WeComConfig } from "./config.js";
import { WeComReader } from "./reader.js";
import { openWeComSignIn } from "./sign-in.js";

export type { WeComConfig } from "./config.js";

/** The `wecom` source: a WeCom (企业微信) corp's departments, people and tags, and sign-in with its app. */
export const wecomSource: SourceModule<WeComConfig> = {
  type: "wecom",
  configSchema: wecomConfigSchema,
  openDirectory: (context, config) => new WeComReader(context, config),
  openSignIn: openWeComSignIn,
};
