import { z } from "zod";

/** Settings of a `wecom` source (`sources[].config`). PLACEHOLDER: filled in by the wecom reader. */
export const wecomConfigSchema = z.strictObject({});

export type WeComConfig = z.infer<typeof wecomConfigSchema>;
