/**
 * The OpenAPI 3.1 document of the admin API, as data, served at `/api/v1/openapi.json`. The routes
 * (src/http/api/routes.ts) and this document are compared both ways by a test, so neither can gain a
 * path the other lacks.
 */
import { ADMIN_ROLES } from "../../admin/access.js";
import { ADMIN_API_PATH, PROVIDER_PATH } from "../../broker/provider.js";
import { APPLY_ORDER } from "../../sync/plan.js";

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({
  description,
  content: { "application/json": { schema } },
});
const query = (name: string, description: string, schema: Json = { type: "string" }): Json => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const path = (name: string, description: string): Json => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string", maxLength: 200 },
});
const err = (description: string): Json => json(ref("Error"), description);
const pageOf = (item: Json): Json => ({
  type: "object",
  required: ["items", "next"],
  properties: {
    items: { type: "array", items: item },
    next: { type: ["string", "null"], description: "Cursor of the next page; null on the last page." },
  },
});
const listOf = (item: Json): Json => ({
  type: "object",
  required: ["items"],
  properties: { items: { type: "array", items: item } },
});

const paging = [
  query("limit", "Items per page, 1..200 (default 50).", { type: "string", pattern: "^\\d{1,4}$" }),
  query("cursor", "The `next` of the previous page."),
];
const auditFilter = [
  query("from", "ISO 8601 time with a zone (or a date), inclusive."),
  query("to", "ISO 8601 time with a zone (or a date), exclusive."),
  query("actor", "Exact actor (`person:<id>`, `client:<id>`, `system`)."),
  query("action", "Exact action, or a prefix ending in `*` (`role.*`)."),
  query("subject", "Exact subject."),
];
const atParam = query("at", "ISO 8601 time with a zone; default now.");

/** Errors every authenticated operation can answer. */
const common: Json = {
  "400": err("Invalid input: unknown or malformed parameters, named in the message (INPUT_INVALID)."),
  "401": err("No credential, or a bad, expired or foreign bearer token (`WWW-Authenticate: Bearer`)."),
  "403": err(
    "The caller's roles do not allow this, or a signed-in request lacks its CSRF token (ACCESS_DENIED).",
  ),
  "414": err("The query string is longer than 4096 characters."),
};

function operation(
  summary: string,
  permission: string,
  ok: Json,
  extra: { parameters?: Json[]; requestBody?: Json; responses?: Json } = {},
): Json {
  return {
    summary,
    description: permission.includes(".")
      ? `Needs the permission \`${permission}\`.`
      : `Needs ${permission}.`,
    ...(extra.parameters === undefined ? {} : { parameters: extra.parameters }),
    ...(extra.requestBody === undefined ? {} : { requestBody: extra.requestBody }),
    responses: { ...ok, ...common, ...extra.responses },
  };
}

const download = (description: string, types: readonly string[]): Json => ({
  "200": {
    description,
    headers: {
      "Content-Disposition": { description: "attachment; filename=…", schema: { type: "string" } },
    },
    content: Object.fromEntries(types.map((t) => [t, { schema: { type: "string" } }])),
  },
});

const loose = (description: string, properties: Json = {}): Json => ({
  type: "object",
  description,
  properties,
  additionalProperties: true,
});

const schemas: Json = {
  Error: {
    type: "object",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: {
            type: "string",
            description:
              "Stable: INPUT_INVALID, NOT_FOUND, ACCESS_DENIED, PLAN_STATE, PLAN_STALE, SYNC_BUSY, UNAUTHENTICATED, TOKEN_INVALID, INTERNAL, …",
          },
          message: { type: "string", description: "For people; may change." },
        },
      },
    },
  },
  Me: {
    type: "object",
    required: ["actor", "name", "kind", "roles", "permissions"],
    properties: {
      actor: { type: "string", description: "Audit actor: `person:<id>` or `client:<clientId>`." },
      name: { type: "string" },
      kind: { type: "string", enum: ["bearer", "session"] },
      roles: { type: "array", items: { type: "string", enum: [...ADMIN_ROLES] } },
      permissions: {
        type: "array",
        items: { type: "string", enum: ["sync.read", "sync.decide", "audit.read", "audit.export"] },
      },
      csrfToken: { type: "string", description: "Signed-in sessions only: send as X-CSRF-Token on POST." },
    },
  },
  PlanListing: loose("A plan without its changes.", {
    id: { type: "string" },
    target: { type: "string" },
    status: { type: "string" },
    hash: { type: "string", description: "Content hash: send it back with a decision." },
    createdAt: { type: "string" },
  }),
  PlanView: loose("A plan for review.", {
    plan: ref("PlanListing"),
    content: loose("The plan's content without its changes (sources, risk, sod, blocked, problems)."),
    counts: loose("Changes by kind, all and matching."),
    changes: pageOf(loose("A change and its outcome once applied.")),
    outcomes: {
      type: "object",
      description:
        "How the plan's changes came out, over the whole plan (all not attempted before an apply).",
      required: ["applied", "noop", "failed", "notAttempted", "failures"],
      properties: {
        applied: { type: "integer", description: "Took effect." },
        noop: { type: "integer", description: "Needed no write: the target already matched." },
        failed: { type: "integer", description: "Did not take." },
        notAttempted: { type: "integer", description: "No outcome recorded (yet)." },
        failures: {
          type: "array",
          description: "The first 20 failed changes with their causes.",
          items: {
            type: "object",
            required: ["key", "code", "message"],
            properties: { key: { type: "string" }, code: { type: "string" }, message: { type: "string" } },
          },
        },
      },
    },
  }),
  ApplyResult: loose("What an apply did.", {
    plan: ref("PlanListing"),
    run: ref("SyncRun"),
    applied: { type: "integer" },
    noop: { type: "integer" },
    failed: { type: "integer" },
  }),
  SyncRun: loose("One sync run: source completeness, duration, counts, failures."),
  ReviewItem: loose(
    "An ambiguous or conflicting link: the accounts with what their sources say, and the candidates' summaries.",
    {
      id: { type: "string" },
      accounts: {
        type: "array",
        items: loose("An account left unlinked, with the facts of the latest kept read of its source.", {
          sourceId: { type: "string" },
          subject: { type: "string" },
          listed: { type: "boolean", description: "Whether that read lists the account; facts only then." },
          name: { type: "string" },
          username: { type: "string" },
          status: { type: "string", description: "active, disabled or left." },
          departments: { type: "array", items: { type: "string" } },
          email: { type: "string" },
          employeeNo: { type: "string" },
          title: { type: "string" },
        }),
      },
      candidates: { type: "array", items: { type: "string" }, description: "Person ids." },
      candidatePeople: {
        type: "array",
        description: "The candidates that exist, in the order of `candidates`.",
        items: loose("A candidate: a person summary and their accounts' departments.", {
          id: { type: "string" },
          name: { type: "string" },
          status: { type: "string" },
          accounts: { type: "array", items: { type: "string" } },
          departments: { type: "array", items: { type: "string" } },
        }),
      },
      reasons: { type: "array", items: loose("Why: a stable code and a message.") },
      evidence: { type: "array", items: loose("A match a rule found.") },
    },
  ),
  PersonSummary: loose("A person in a search result.", {
    id: { type: "string" },
    name: { type: "string" },
    status: { type: "string" },
    accounts: { type: "array", items: { type: "string" } },
  }),
  PersonView: loose("A person: accounts, roles held and desired with lineage, explain, open reviews."),
  AuditRecord: loose("One audit entry.", {
    seq: { type: "integer" },
    at: { type: "string" },
    actor: { type: "string" },
    action: { type: "string" },
    subject: { type: ["string", "null"] },
  }),
  RoleHolder: loose("A person holding a role at a time, per the audit log.", {
    personId: { type: "string" },
    name: { type: "string" },
    target: { type: "string" },
    role: { type: "string" },
    since: { type: "string" },
    sensitive: { type: "boolean" },
  }),
  RoleExplanation: loose("Why a person holds a role: the entries, lineage and approval."),
  Jwks: loose("A JSON Web Key Set (RFC 7517)", { keys: { type: "array", items: { type: "object" } } }),
};

/** The admin API's OpenAPI 3.1 document for an idbridge at `publicUrl`. */
export function openApiDocument(publicUrl: string): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "idbridge admin API",
      version: "1",
      description:
        "What the console does, as JSON: plans and their decisions, sync runs, the identity review queue, " +
        "people, the audit log and its exports. Authenticate with a client-credentials bearer token from " +
        `${PROVIDER_PATH}/token (console.apiClients) or the idbridge browser session (console.access). ` +
        "Errors are `{ error: { code, message } }`. See docs/api.md.",
    },
    servers: [{ url: `${publicUrl}${ADMIN_API_PATH}` }],
    security: [{ bearer: [] }, { session: [] }],
    components: {
      securitySchemes: {
        bearer: {
          type: "oauth2",
          description: "Client-credentials grant at idbridge's own provider; opaque access tokens.",
          flows: {
            clientCredentials: {
              tokenUrl: `${publicUrl}${PROVIDER_PATH}/token`,
              scopes: { admin: "The admin API" },
            },
          },
        },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "idb_session",
          description:
            "The idbridge browser session; POSTs also need the X-CSRF-Token header (GET /me gives it).",
        },
      },
      schemas,
    },
    paths: {
      "/openapi.json": {
        get: {
          summary: "This document.",
          security: [],
          responses: { "200": json({ type: "object" }, "The OpenAPI document.") },
        },
      },
      "/me": {
        get: operation("Who is calling: roles and permissions.", "any console role", {
          "200": json(ref("Me"), "The caller."),
        }),
      },
      "/plans": {
        get: operation(
          "Plans, newest first.",
          "sync.read",
          { "200": json(pageOf(ref("PlanListing")), "A page of plans.") },
          {
            parameters: [
              ...paging,
              query(
                "status",
                "pending, approved, rejected, applying, applied, partial, superseded or empty.",
              ),
              query("target", "A target id."),
            ],
          },
        ),
      },
      "/plans/{id}": {
        get: operation(
          "A plan with one page of its changes.",
          "sync.read",
          { "200": json(ref("PlanView"), "The plan.") },
          {
            parameters: [
              path("id", "Plan id."),
              ...paging,
              query("kinds", `Comma-separated change kinds: ${APPLY_ORDER.join(", ")}.`),
              query("person", "Only changes of this person id."),
              query("role", "Only changes of this role key."),
              query("text", "Free text in names, roles, departments and lineage (≤ 200 characters)."),
              query("flagged", "Only sensitive grants and SoD changes.", {
                type: "string",
                enum: ["true", "false"],
              }),
              query("groupBy", "Order per person or per role.", { type: "string", enum: ["person", "role"] }),
            ],
            responses: { "404": err("Unknown plan.") },
          },
        ),
      },
      "/plans/{id}/decision": {
        post: operation(
          "Approve or reject a plan (audited with the caller as actor).",
          "sync.decide",
          { "200": json(ref("PlanListing"), "The plan after the decision.") },
          {
            parameters: [path("id", "Plan id.")],
            requestBody: {
              required: true,
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    additionalProperties: false,
                    required: ["decision", "comment", "hash"],
                    properties: {
                      decision: { type: "string", enum: ["approve", "reject"] },
                      comment: { type: "string", minLength: 1, maxLength: 2000 },
                      hash: { type: "string", description: "The plan's hash as the reviewer saw it." },
                    },
                  },
                },
              },
            },
            responses: {
              "404": err("Unknown plan."),
              "409": err("The plan was decided already or changed (PLAN_STATE, PLAN_STALE)."),
            },
          },
        ),
      },
      "/plans/{id}/apply": {
        post: operation(
          "Apply an approved plan to its target.",
          "sync.decide",
          { "200": json(ref("ApplyResult"), "What the apply did.") },
          {
            parameters: [path("id", "Plan id.")],
            responses: {
              "404": err("Unknown plan."),
              "409": err(
                "Not approved, already applied, the target moved (PLAN_STALE), or a sync is running.",
              ),
            },
          },
        ),
      },
      "/sync/runs": {
        get: operation(
          "Sync runs, newest first.",
          "sync.read",
          { "200": json(pageOf(ref("SyncRun")), "A page of runs.") },
          {
            parameters: [...paging, query("target", "A target id.")],
          },
        ),
      },
      "/identities/review": {
        get: operation("The identity review queue.", "sync.read", {
          "200": json(listOf(ref("ReviewItem")), "Open review items."),
        }),
      },
      "/identities/decisions": {
        post: operation(
          "Link, unlink or ignore an account (audited).",
          "sync.decide",
          { "204": { description: "Recorded." } },
          {
            requestBody: {
              required: true,
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    required: ["kind", "account", "comment"],
                    properties: {
                      kind: { type: "string", enum: ["link", "unlink", "ignore"] },
                      account: { type: "string", description: "SOURCE:SUBJECT" },
                      personId: { type: "string", description: "For link and unlink." },
                      comment: { type: "string", minLength: 1, maxLength: 2000 },
                    },
                  },
                },
              },
            },
          },
        ),
      },
      "/people": {
        get: operation(
          "Search people.",
          "sync.read",
          { "200": json(pageOf(ref("PersonSummary")), "A page of people.") },
          {
            parameters: [
              ...paging,
              query("text", "Name, employee number, email or account (≤ 200 characters)."),
            ],
          },
        ),
      },
      "/people/{id}": {
        get: operation(
          "One person.",
          "sync.read",
          { "200": json(ref("PersonView"), "The person.") },
          {
            parameters: [path("id", "Person id.")],
            responses: { "404": err("Unknown person.") },
          },
        ),
      },
      "/people/{id}/roles/{target}/{role}/why": {
        get: operation(
          "Why a person holds (or held) a role.",
          "audit.read",
          { "200": json(ref("RoleExplanation"), "The story.") },
          {
            parameters: [
              path("id", "Person id."),
              path("target", "Target id."),
              path("role", "Role key."),
              atParam,
            ],
          },
        ),
      },
      "/audit/entries": {
        get: operation(
          "Search the audit log, newest first.",
          "audit.read",
          { "200": json(pageOf(ref("AuditRecord")), "A page of entries.") },
          {
            parameters: [...paging, ...auditFilter, query("target", "A target id.")],
          },
        ),
      },
      "/audit/export": {
        get: operation(
          "Export the selection with its proof (JSONL: checkpoints and signed head), streamed; audited.",
          "audit.export",
          download("The export file; verify with `idbridge audit verify`.", [
            "application/x-ndjson",
            "text/csv",
          ]),
          {
            parameters: [
              ...auditFilter,
              query("format", "jsonl (default) or csv.", { type: "string", enum: ["jsonl", "csv"] }),
            ],
          },
        ),
      },
      "/audit/jwks": {
        get: operation("The public keys exports verify with.", "audit.read", {
          "200": json(ref("Jwks"), "The JWKS."),
        }),
      },
      "/roles/{target}/{role}/holders": {
        get: operation(
          "Who holds a role at a time.",
          "audit.read",
          { "200": json(listOf(ref("RoleHolder")), "The holders.") },
          {
            parameters: [path("target", "Target id."), path("role", "Role key."), atParam],
          },
        ),
      },
      "/reports/access-review": {
        get: operation(
          "Every holder of a sensitive role now (CSV audited as an export).",
          "audit.read (json), audit.export (csv)",
          {
            "200": {
              description: "The holders: JSON (format=json) or an attachment (format=csv).",
              content: {
                "application/json": { schema: listOf(ref("RoleHolder")) },
                "text/csv": { schema: { type: "string" } },
              },
            },
          },
          {
            parameters: [
              query("target", "A target id; all targets when absent."),
              query("format", "json (default) or csv.", { type: "string", enum: ["json", "csv"] }),
            ],
          },
        ),
      },
    },
  };
}
