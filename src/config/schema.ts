import { z } from "zod";
import { consoleConfigSchema } from "../admin/config.js";
import { checkIdentitySources, identityConfigSchema } from "../identity/config.js";
import { SOURCE_CONFIG_SCHEMAS, type SourceConfigEntry } from "../sources/registry.js";
import { TARGET_CONFIG_SCHEMAS, type TargetConfigEntry } from "../targets/registry.js";

// Node timers overflow above 2^31-1 ms and then fire after 1 ms.
const MAX_TIMER_SECONDS = 2_147_483;
const TIMER_LIMIT = `must be at most ${MAX_TIMER_SECONDS} seconds (about 24 days)`;

const kebabId = z
  .string()
  .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, "must be kebab-case (lowercase letters, digits and single dashes)");

const storeUrl = z
  .string()
  .refine((url) => /^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(url), "must start with sqlite: or postgres://");

/**
 * Client ids the broker registers itself (src/broker/provider.ts FIRST_PARTY_CLIENT_ID), compared
 * lower-case so a look-alike cannot be configured either. Kept here, not imported, so loading a config
 * does not load the provider.
 */
const RESERVED_CLIENT_IDS: ReadonlySet<string> = new Set(["idbridge"]);

/** A finance platform that signs people in through idbridge's OpenID Connect provider. */
const clientSchema = z.strictObject({
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9._~-]{1,128}$/, "must be 1-128 letters, digits or . _ ~ -")
    .describe("OAuth client_id the platform sends."),
  name: z.string().min(1).optional().describe("Name shown to people on the sign-in page."),
  clientSecret: z
    .string()
    .min(32, "must be at least 32 characters (use ${ENV} for secrets)")
    .optional()
    .describe(
      "Secret of a confidential client (use ${ENV}). Without it the client is public; PKCE is required either way.",
    ),
  redirectUris: z
    .array(z.url())
    .min(1)
    .describe(
      "Exact redirect URIs the platform may use; anything else is refused (no prefixes, no wildcards).",
    ),
  postLogoutRedirectUris: z
    .array(z.url())
    .default([])
    .describe("Where the platform may send people after sign-out."),
  backchannelLogoutUri: z
    .url()
    .optional()
    .describe("Back-channel logout endpoint: told when a person's idbridge session ends."),
  target: kebabId
    .optional()
    .describe(
      "The target (targets[].id, and its policy) whose roles the `roles` claim carries for this platform. " +
        "Without it the claim is empty.",
    ),
});

/**
 * A list of `{ id, type, config }` entries (sources, targets): ids kebab-case and unique, each type's own
 * schema validating `config` with full paths (sources[1].config.appSecret).
 */
function connectorList<E>(
  kind: "source" | "target",
  schemas: Readonly<Record<string, z.ZodType>>,
  examples: { id: string; list: string },
): z.ZodType<E[]> {
  const types = Object.keys(schemas);
  const entry = z
    .strictObject({
      id: kebabId.describe(
        `Stable id of this ${kind}, used in links, policies, plans and audit entries (e.g. ${examples.id}).`,
      ),
      type: z
        .string()
        .refine((t) => types.includes(t), {
          error: (issue) =>
            `unknown ${kind} type ${JSON.stringify(issue.input)} (known: ${types.join(", ")})`,
        })
        .describe(`Kind of ${kind}: ${types.join(" | ")}.`),
      config: z
        .record(z.string(), z.unknown())
        .default({})
        .describe(
          `Settings of this ${kind}; each type has its own (see the per-type sections below). ` +
            "Keys ending in File are paths, resolved against the config file's directory.",
        ),
    })
    .transform((raw, ctx) => {
      const result = schemas[raw.type]!.safeParse(raw.config);
      if (!result.success) {
        for (const issue of result.error.issues) {
          ctx.issues.push({ ...issue, path: ["config", ...issue.path], input: undefined });
        }
        return z.NEVER;
      }
      return { id: raw.id, type: raw.type, config: result.data } as E;
    });
  return z
    .array(entry)
    .superRefine(
      (entries, ctx) => {
        const seen = new Map<unknown, number>();
        entries.forEach((item, index) => {
          const id: unknown = (item as { id?: unknown } | null)?.id;
          if (typeof id !== "string") return;
          const first = seen.get(id);
          if (first === undefined) seen.set(id, index);
          else
            ctx.addIssue({
              code: "custom",
              path: [index, "id"],
              message: `duplicate ${kind} id "${id}" (also used by ${examples.list}[${first}])`,
            });
        });
      },
      // Check ids even when other fields of the list are wrong: every problem is reported at once.
      { when: () => true },
    )
    .default([]) as unknown as z.ZodType<E[]>;
}

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
    sources: connectorList<SourceConfigEntry>("source", SOURCE_CONFIG_SCHEMAS, {
      id: "dingtalk-hq",
      list: "sources",
    }).describe("Upstream directories and sign-in sources."),
    targets: connectorList<TargetConfigEntry>("target", TARGET_CONFIG_SCHEMAS, {
      id: "hesi-prod",
      list: "targets",
    }).describe("Finance platforms idbridge writes users, departments and role grants into."),
    identity: identityConfigSchema
      .prefault({})
      .describe("How accounts of different sources are linked to one person."),
    signIn: z
      .strictObject({
        sources: z
          .array(kebabId)
          .optional()
          .describe(
            "Sources offered on the sign-in page, in this order. Default: every configured source people can " +
              "sign in with (ldap, dingtalk, wecom, oidc, saml).",
          ),
        clients: z
          .array(clientSchema)
          .default([])
          .describe(
            "Finance platforms (OpenID Connect relying parties) that sign people in through idbridge.",
          ),
        session: z
          .strictObject({
            idleMinutes: z
              .number()
              .int()
              .min(1)
              .max(MAX_TIMER_SECONDS / 60)
              .default(30)
              .describe("An idbridge sign-in session ends after this long without use."),
            absoluteHours: z
              .number()
              .int()
              .min(1)
              .max(MAX_TIMER_SECONDS / 3600)
              .default(12)
              .describe("An idbridge sign-in session ends this long after sign-in, however much it is used."),
            liveCheckSeconds: z
              .number()
              .int()
              .min(0)
              .max(3600)
              .default(60)
              .describe(
                "A session's silent sign-ins, token refreshes and userinfo ask the person's linked sources " +
                  "whether they are still active; a yes is trusted for this long per person (0: ask every time).",
              ),
          })
          .prefault({})
          .describe("The browser session that makes a second finance platform open without asking."),
        tokens: z
          .strictObject({
            accessTokenSeconds: z
              .number()
              .int()
              .min(60)
              .max(86_400)
              .default(600)
              .describe("Access token lifetime."),
            idTokenSeconds: z.number().int().min(60).max(86_400).default(600).describe("ID token lifetime."),
            refreshTokenDays: z
              .number()
              .int()
              .min(1)
              .max(90)
              .default(14)
              .describe("Refresh token lifetime; each use rotates it (the old one stops working)."),
          })
          .prefault({})
          .describe("Lifetimes of what the OpenID Connect provider issues."),
        justInTime: z
          .boolean()
          .default(false)
          .describe(
            "Create a new person at first sign-in for an account no link rule matches (the link is audited). " +
              "Off: such a person sees a 'not provisioned' page until a sync or an admin links them.",
          ),
        upstreamTimeoutSeconds: z
          .number()
          .positive()
          .max(120)
          .default(10)
          .describe("Bound on every call to a sign-in source (DingTalk, WeCom, LDAP, OIDC, SAML metadata)."),
        signingKeyGraceDays: z
          .number()
          .min(0)
          .max(365)
          .default(7)
          .describe(
            "After `idbridge keys rotate`, tokens signed with the old key still verify for this long.",
          ),
      })
      .prefault({})
      .describe("Sign-in: the OpenID Connect provider for finance platforms, sessions and sign-in sources."),
    console: consoleConfigSchema.describe(
      "The console (/console) and the admin API (/api/v1): who may use them, and automation clients.",
    ),
    sync: z
      .strictObject({
        orgChartSource: kebabId
          .optional()
          .describe(
            "The source whose department tree targets mirror and whose departments users are placed in. " +
              "Default: identity.primarySource; without either, departments are not managed.",
          ),
        autoApprove: z
          .boolean()
          .default(false)
          .describe(
            "Approve low-risk plans automatically (no guardrail threshold hit, no sensitive grant, no revived " +
              "account). Plans that need approval always wait for a person, whatever this says.",
          ),
        maxFailedChanges: z
          .number()
          .int()
          .min(0)
          .default(50)
          .describe(
            "Circuit breaker: an apply stops after more than this many failed changes (an auth failure stops it at once).",
          ),
        fullEveryMinutes: z
          .number()
          .int()
          .min(0)
          .max(MAX_TIMER_SECONDS / 60)
          .default(1440)
          .describe("`idbridge serve`: a full reconcile (every source read fully) this often; 0 = never."),
        incrementalEveryMinutes: z
          .number()
          .int()
          .min(0)
          .max(MAX_TIMER_SECONDS / 60)
          .default(60)
          .describe(
            "`idbridge serve`: between full reconciles, this often read the sources that support incremental " +
              "reads (LDAP) for what changed and plan; 0 = never.",
          ),
        callbackDelaySeconds: z
          .number()
          .min(0)
          .max(3600)
          .default(10)
          .describe(
            "`idbridge serve`: after a DingTalk/WeCom contact-change callback, wait this long for more events, then " +
              "re-read that source and plan.",
          ),
      })
      .prefault({})
      .describe("Permission sync: plans, approvals and the schedule (see docs/sync.md)."),
  })
  // Link rules may only name configured sources.
  .superRefine((config, ctx) => {
    const orgChart = config.sync.orgChartSource;
    if (orgChart !== undefined && !config.sources.some((s) => s.id === orgChart))
      ctx.addIssue({
        code: "custom",
        path: ["sync", "orgChartSource"],
        message: `unknown source "${orgChart}" (configured: ${config.sources.map((s) => s.id).join(", ") || "none"})`,
      });
    const sourceIds = config.sources.map((s) => s.id);
    (config.signIn.sources ?? []).forEach((id, index) => {
      const source = config.sources.find((s) => s.id === id);
      if (source === undefined)
        ctx.addIssue({
          code: "custom",
          path: ["signIn", "sources", index],
          message: `unknown source "${id}" (configured: ${sourceIds.join(", ") || "none"})`,
        });
    });
    const clientIds = new Map<string, number>();
    config.signIn.clients.forEach((client, index) => {
      const first = clientIds.get(client.clientId);
      if (RESERVED_CLIENT_IDS.has(client.clientId.toLowerCase()))
        ctx.addIssue({
          code: "custom",
          path: ["signIn", "clients", index, "clientId"],
          message: `clientId "${client.clientId}" is reserved for idbridge's own sign-in (admin console); give the platform another clientId, e.g. its name`,
        });
      else if (first !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["signIn", "clients", index, "clientId"],
          message: `duplicate clientId "${client.clientId}" (also used by signIn.clients[${first}])`,
        });
      else clientIds.set(client.clientId, index);
      if (client.target !== undefined && !config.targets.some((t) => t.id === client.target))
        ctx.addIssue({
          code: "custom",
          path: ["signIn", "clients", index, "target"],
          message: `unknown target "${client.target}" (configured: ${config.targets.map((t) => t.id).join(", ") || "none"})`,
        });
    });
    // API clients are clients of the same provider: one id space with the platforms and idbridge itself.
    const apiClientIds = new Map<string, number>();
    config.console.apiClients.forEach((client, index) => {
      const path = ["console", "apiClients", index, "clientId"];
      const first = apiClientIds.get(client.clientId);
      if (RESERVED_CLIENT_IDS.has(client.clientId.toLowerCase()))
        ctx.addIssue({
          code: "custom",
          path,
          message: `clientId "${client.clientId}" is reserved for idbridge's own sign-in; give the API client another clientId`,
        });
      else if (clientIds.has(client.clientId))
        ctx.addIssue({
          code: "custom",
          path,
          message: `clientId "${client.clientId}" is already used by signIn.clients[${clientIds.get(client.clientId)}]; an API client needs its own`,
        });
      else if (first !== undefined)
        ctx.addIssue({
          code: "custom",
          path,
          message: `duplicate clientId "${client.clientId}" (also used by console.apiClients[${first}])`,
        });
      else apiClientIds.set(client.clientId, index);
    });
    for (const problem of checkIdentitySources(
      config.identity,
      config.sources.map((s) => s.id),
    )) {
      ctx.addIssue({ code: "custom", path: ["identity", ...problem.path], message: problem.message });
    }
  });

/** The configuration as written (after defaults), before paths are resolved. */
export type ParsedConfig = z.infer<typeof configSchema>;
