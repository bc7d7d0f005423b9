export { hesiConfigSchema, type HesiConfig, type HesiConfigInput } from "./config.js";
export { openHesiTarget } from "./connector.js";
export type { HesiClock } from "./client.js";
