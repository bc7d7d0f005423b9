export { hesiConfigSchema, type HesiConfig, type HesiConfigInput } from "./config.js";
export { openHesiTarget } from "./connector.js";
export {
  openHesiProvisionalLinks,
  type HesiLinkPage,
  type HesiLinkRequest,
  type HesiLinkResult,
  type HesiProvisionalLinks,
} from "./provisional.js";
export type { HesiClock } from "./client.js";
