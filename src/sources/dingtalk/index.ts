import type { SourceModule } from "../source.js";
import { dingtalkConfigSchema, type DingTalkConfig } from "./config.js";

/** The `dingtalk` source. PLACEHOLDER until its reader lands. */
export const dingtalkSource: SourceModule<DingTalkConfig> = {
  type: "dingtalk",
  configSchema: dingtalkConfigSchema,
};
