/** The `dingtalk` source: the directory of one DingTalk org, read through an internal app, and sign-in. */
import type { SourceModule } from "../source.js";
import { dingtalkConfigSchema, type DingTalkConfig } from "./config.js";
import { DINGTALK_SOURCE_TYPE, openDingTalkDirectory } from "./reader.js";
import { openDingTalkSignIn } from "./sign-in.js";

export type { DingTalkConfig } from "./config.js";

/** The `dingtalk` source module. */
export const dingtalkSource: SourceModule<DingTalkConfig> = {
  type: DINGTALK_SOURCE_TYPE,
  configSchema: dingtalkConfigSchema,
  openDirectory: openDingTalkDirectory,
  openSignIn: openDingTalkSignIn,
};
