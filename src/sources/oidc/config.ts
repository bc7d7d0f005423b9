import { z } from "zod";

/** Settings of an `oidc` sign-in source (filled in by the sign-in work). */
export const oidcConfigSchema = z.record(z.string(), z.unknown());

export type OidcConfig = z.infer<typeof oidcConfigSchema>;
