export { scimConfigSchema, type ScimConfig, type ScimConfigInput } from "./config.js";
export { openScimTarget } from "./connector.js";
export type { TargetClock as ScimClock } from "../http/retry.js";
