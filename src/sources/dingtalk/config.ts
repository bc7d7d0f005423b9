import { z } from "zod";

/** Settings of a `dingtalk` source (`sources[].config`). PLACEHOLDER: filled in by the dingtalk reader. */
export const dingtalkConfigSchema = z.strictObject({});

export type DingTalkConfig = z.infer<typeof dingtalkConfigSchema>;
