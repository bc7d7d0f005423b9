import { z } from "zod";
import { checkIdentitySources, identityConfigSchema } from "../identity/config.js";
import {
  SOURCE_CONFIG_SCHEMAS,
  SOURCE_TYPES,
  type SourceConfigEntry,
  type SourceType,
} from "../sources/registry.js";

// Node timers overflow above 2^31-1 ms and then fire after 1 ms.
const MAX_TIMER_SECONDS = 2_147_483;
const TIMER_LIMIT = `must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days)`;

const kebabId = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case (lowercase letters, digits and single dashes)");

const storeUrl = z
  .string()
  .refine((url) => /^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(url), "must start with sqlite: or postgres://");

const sourceSchema = z
  .strictObject({
    id: kebabId.describe(
      "Stable id of this source, used in links, policies and audit entries (e.g. dingtalk-hq).",
    ),
    type: z
      .string()
      .refine((t) => (SOURCE_TYPES as readonly string[]).includes(t), {
        error: (issue) =>
          `unknown source type ${JSON.stringify(issue.input)} (known: ${SOURCE_TYPES.join(", ")})`,
      })
      .describe(`Kind of source: ${SOURCE_TYPES.join(" | ")}.`),
    config: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        "Settings of this source; each type has its own (see the per-type sections below). " +
          "Keys ending in File are paths, resolved against the config file's directory.",
      ),
  })
  // Each type validates its own settings; problems keep their full path (sources[1].config.appSecret).
  .transform((source, ctx): SourceConfigEntry => {
    const type = source.type as SourceType;
    const result = SOURCE_CONFIG_SCHEMAS[type].safeParse(source.config);
    if (!result.success) {
      for (const issue of result.error.issues) {
        ctx.issues.push({ ...issue, path: ["config", ...issue.path], input: undefined });
      }
      return z.NEVER;
    }
    return { id: source.id, type, config: result.data } as SourceConfigEntry;
  });

/**
 * The whole configuration file: every option with its default and its documentation.
 * Relative paths are resolved against the directory of the config file (or the working directory when
 * idbridge runs on built-in defaults).
 */
export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z
          .string()
          .default("127.0.0.1")
          .describe("Address to listen on. Keep 127.0.0.1 behind a reverse proxy."),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(8080)
          .describe("TCP port to listen on (0 = any free port)."),
        publicUrl: z
          .url()
          .optional()
          .describe(
            "External base URL as users reach it (https://sso.example.com). Default: http://host:port.",
          ),
        trustProxy: z
          .boolean()
          .default(false)
          .describe("Trust X-Forwarded-* from a reverse proxy in front of idbridge (client IP, https)."),
        shutdownTimeoutSeconds: z
          .number()
          .positive()
          .max(MAX_TIMER_SECONDS, TIMER_LIMIT)
          .default(10)
          .describe("On SIGTERM, how long open requests may take to finish before the process exits."),
      })
      .prefault({})
      .describe("The HTTP server."),
    dataDir: z
      .string()
      .default("./data")
      .describe("Directory for the embedded SQLite database and generated keys."),
    policiesDir: z
      .string()
      .default("./policies")
      .describe("Directory of the policy files (*.yaml) that decide which finance roles people hold."),
    store: z
      .strictObject({
        url: storeUrl
          .optional()
          .describe(
            "Where state lives: sqlite:PATH (one instance) or postgres://user:pass@host:5432/db (several instances). " +
              "Default: sqlite:<dataDir>/idbridge.db.",
          ),
        poolSize: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(10)
          .describe("PostgreSQL: connections per instance."),
      })
      .prefault({})
      .describe("Durable state: sessions, plans, links, the audit log."),
    keys: z
      .strictObject({
        dir: z
          .string()
          .optional()
          .describe("Directory of signing keys (see certs.example/README.md). Default: <dataDir>/keys."),
        generateIfMissing: z
          .boolean()
          .default(true)
          .describe("Generate signing keys on first start when the directory has none."),
      })
      .prefault({})
      .describe("Signing keys for tokens and audit checkpoints."),
    audit: z
      .strictObject({
        checkpointEvery: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe("Sign a checkpoint after this many new audit entries."),
        checkpointIntervalSeconds: z
          .number()
          .positive()
          .max(MAX_TIMER_SECONDS, TIMER_LIMIT)
          .default(60)
          .describe("Sign a checkpoint at least this often while new entries arrive."),
      })
      .prefault({})
      .describe("The tamper-evident audit log."),
    log: z
      .strictObject({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
          .default("info")
          .describe("Minimum level written to the JSON log on stdout."),
      })
      .prefault({})
      .describe("Logging."),
    sources: z
      .array(sourceSchema)
      .superRefine(
        (sources, ctx) => {
          const seen = new Map<unknown, number>();
          sources.forEach((source, index) => {
            const id: unknown = (source as { id?: unknown } | null)?.id;
            if (typeof id !== "string") return;
            const first = seen.get(id);
            if (first === undefined) seen.set(id, index);
            else
              ctx.addIssue({
                code: "custom",
                path: [index, "id"],
                message: `duplicate source id "${id}" (also used by sources[${first}])`,
              });
          });
        },
        // Check ids even when other fields of the list are wrong: every problem is reported at once.
        { when: () => true },
      )
      .default([])
      .describe("Upstream directories and sign-in sources."),
    identity: identityConfigSchema
      .prefault({})
      .describe("How accounts of different sources are linked to one person."),
  })
  // Link rules may only name configured sources.
  .superRefine((config, ctx) => {
    for (const problem of checkIdentitySources(
      config.identity,
      config.sources.map((s) => s.id),
    )) {
      ctx.addIssue({ code: "custom", path: ["identity", ...problem.path], message: problem.message });
    }
  });

/** The configuration as written (after defaults), before paths are resolved. */
export type ParsedConfig = z.infer<typeof configSchema>;
