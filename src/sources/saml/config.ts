import { z } from "zod";

/** Settings of an `saml` sign-in source (filled in by the sign-in work). */
export const samlConfigSchema = z.record(z.string(), z.unknown());

export type SamlConfig = z.infer<typeof samlConfigSchema>;
