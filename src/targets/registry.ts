import type { z } from "zod";
import { hesiConfigSchema } from "./hesi/config.js";
import { scimConfigSchema } from "./scim/config.js";
import type { LaunchLinks, TargetConnector } from "./target.js";

/** Target types idbridge knows. */
export const TARGET_TYPES = ["hesi", "scim"] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

/** Each type's config schema. Only these light zod modules are loaded with the config. */
export const TARGET_CONFIG_SCHEMAS = {
  hesi: hesiConfigSchema,
  scim: scimConfigSchema,
} as const satisfies Record<TargetType, z.ZodType>;

/** A target entry of the config after its type's schema filled defaults. */
export type TargetConfigEntry = {
  [T in TargetType]: {
    readonly id: string;
    readonly type: T;
    readonly config: z.infer<(typeof TARGET_CONFIG_SCHEMAS)[T]>;
  };
}[TargetType];

/** Opens the connector of a configured target; its HTTP client loads only now. */
export async function openTarget(entry: TargetConfigEntry): Promise<TargetConnector> {
  switch (entry.type) {
    case "hesi":
      return (await import("./hesi/index.js")).openHesiTarget(entry.id, entry.config);
    case "scim":
      return (await import("./scim/index.js")).openScimTarget(entry.id, entry.config);
  }
}

/**
 * The launch links of a configured target, or null when its people sign in to it through OpenID Connect
 * instead (SCIM platforms). The HTTP client loads only now.
 */
export async function openLaunchLinks(entry: TargetConfigEntry): Promise<LaunchLinks | null> {
  switch (entry.type) {
    case "hesi":
      return (await import("./hesi/provisional.js")).openHesiLaunchLinks(entry.config);
    case "scim":
      return null;
  }
}
