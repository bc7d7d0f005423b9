import type { SourceModule } from "../source.js";
import { wecomConfigSchema, type WeComConfig } from "./config.js";

/** The `wecom` source. PLACEHOLDER until its reader lands. */
export const wecomSource: SourceModule<WeComConfig> = {
  type: "wecom",
  configSchema: wecomConfigSchema,
};
