/**
 * The audit search (`/audit`): the log filtered by time, actor, action, subject and target, newest first,
 * paged by the service's cursor; for callers who may export, the selection as JSONL with its proof or as
 * CSV, the public JWKS, and how to verify an export offline with `idbridge audit verify`.
 *
 * Inputs are read here only as text and handed to the service, which checks them as it does for the
 * admin API; a refused filter shows the page again with a 400 and the service's reason.
 */
import { Readable } from "node:stream";
import type { AuditFilter } from "../../audit/export-format.js";
import { MAX_NAMED_PEOPLE, type Page } from "../../admin/contracts.js";
import { AppError, isAppError } from "../../domain/errors.js";
import type { AuditRecord } from "../../store/store.js";
import { CONSOLE_PATH, defineTemplate, queryString, type Notice, pagingLinks } from "../layout.js";
import type { ConsoleContext, PageGroup } from "../router.js";

/** Actions idbridge records, offered as suggestions (the field takes any action or a `prefix.*`). */
const KNOWN_ACTIONS = [
  "plan.*",
  "plan.created",
  "plan.approved",
  "plan.auto-approved",
  "plan.rejected",
  "plan.refused",
  "plan.applied",
  "role.*",
  "role.granted",
  "role.revoked",
  "target.*",
  "sync.change.failed",
  "identity.*",
  "audit.exported",
  "login.*",
  "login.succeeded",
  "login.failed",
  "logout.succeeded",
  "session.ended",
  "launch.*",
  "callback.refused",
  "keys.generated",
  "service.started",
  "service.stopped",
];

// A datetime-local input sends minutes (or seconds) without a zone.
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/;

/**
 * A time from a form, read as UTC when it has no zone (what a datetime-local input sends); anything else
 * is passed on as it is, for the service to accept or refuse.
 */
export function utcTime(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return LOCAL_TIME.test(value) ? `${value}Z` : value;
}

/** `2026-11-28 10:00:00 UTC` from an ISO time of the store (always UTC). */
export function shortTime(iso: string): string {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(iso)
    ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`
    : iso;
}

/** The notice of a refused form: the service's reason, in a sentence of the reader's language. */
export function invalidNotice(ctx: ConsoleContext, err: AppError): Notice {
  return { kind: "error", text: ctx.t("audit.invalid", { detail: err.message }) };
}

/** The person id an audit actor names: `person:<id>`, or a bare id (sign-in entries); null for others. */
function personIdOf(actor: string): string | null {
  if (actor.startsWith("person:")) return actor.slice("person:".length);
  return actor === "system" || actor.includes(":") ? null : actor;
}

/**
 * Names of the people among `actors` (actor → name), in one call; actors that are not people, or not
 * found (a CLI decider's name), show as they are.
 */
export async function personNames(
  ctx: ConsoleContext,
  actors: Iterable<string>,
): Promise<ReadonlyMap<string, string>> {
  const byId = new Map<string, string[]>();
  for (const actor of actors) {
    const id = personIdOf(actor);
    if (id === null || id === "") continue;
    byId.set(id, [...(byId.get(id) ?? []), actor]);
  }
  const found = await ctx.service.peopleNames(ctx.caller, [...byId.keys()].slice(0, MAX_NAMED_PEOPLE));
  const names = new Map<string, string>();
  for (const [id, name] of found) for (const actor of byId.get(id) ?? []) names.set(actor, name);
  return names;
}

/** An audit entry as the entries table shows it. */
interface EntryRow {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly actorName: string | undefined;
  readonly action: string;
  readonly subject: string | null;
  readonly target: string | null;
  readonly details: string;
  readonly href: { readonly actor: string; readonly action: string; readonly subject: string };
}

/** The rows of `entries`, actors named where we can. */
export async function entryRows(
  ctx: ConsoleContext,
  entries: readonly AuditRecord[],
): Promise<readonly EntryRow[]> {
  const names = await personNames(
    ctx,
    entries.map((e) => e.actor),
  );
  return entries.map((e) => ({
    seq: e.seq,
    time: shortTime(e.time),
    actor: e.actor,
    actorName: names.get(e.actor),
    action: e.action,
    subject: e.subject,
    target: e.target,
    details: JSON.stringify(e.details, null, 2),
    // Each value a link to the entries that share it.
    href: {
      actor: `${CONSOLE_PATH}/audit${queryString({ actor: e.actor })}`,
      action: `${CONSOLE_PATH}/audit${queryString({ action: e.action })}`,
      subject: `${CONSOLE_PATH}/audit${queryString({ subject: e.subject })}`,
    },
  }));
}

defineTemplate(
  "audit-entries",
  `<div class="table"><table data-testid="audit-table">
<thead><tr><th class="num"><%= it.t("audit.seq") %></th><th><%= it.t("audit.time") %></th><th><%= it.t("audit.actor") %></th><th><%= it.t("audit.action") %></th><th><%= it.t("audit.subject") %></th><th><%= it.t("audit.target") %></th><th><%= it.t("audit.details") %></th></tr></thead>
<tbody><% it.rows.forEach(function (r) { %><tr data-testid="audit-row" data-seq="<%= r.seq %>" data-action="<%= r.action %>">
<td class="num mono"><%= r.seq %></td>
<td class="mono"><%= r.time %></td>
<td><% if (r.actorName) { %><%= r.actorName %><br><% } %><a class="mono muted" href="<%= r.href.actor %>"><%= r.actor %></a></td>
<td><a class="mono" href="<%= r.href.action %>"><%= r.action %></a></td>
<td><% if (r.subject !== null) { %><a class="mono" href="<%= r.href.subject %>"><%= r.subject %></a><% } %></td>
<td class="mono"><%= r.target === null ? "" : r.target %></td>
<td><details><summary><%= it.t("audit.search.showDetails") %></summary><pre class="mono"><%= r.details %></pre></details></td>
</tr><% }) %></tbody></table></div>`,
);

defineTemplate(
  "audit-search",
  `<section>
<form class="filters" method="get" action="<%= it.base %>/audit" data-testid="audit-filters">
<label><%= it.t("audit.search.from") %><input type="datetime-local" step="1" name="from" value="<%= it.form.from || "" %>"></label>
<label><%= it.t("audit.search.to") %><input type="datetime-local" step="1" name="to" value="<%= it.form.to || "" %>"></label>
<label><%= it.t("audit.actor") %><input type="text" name="actor" maxlength="200" placeholder="<%= it.t("audit.search.actorHint") %>" value="<%= it.form.actor || "" %>"></label>
<label><%= it.t("audit.action") %><input type="text" name="action" maxlength="200" list="audit-actions" placeholder="<%= it.t("audit.search.actionHint") %>" value="<%= it.form.action || "" %>"></label>
<label><%= it.t("audit.subject") %><input type="text" name="subject" maxlength="200" value="<%= it.form.subject || "" %>"></label>
<label><%= it.t("audit.target") %><input type="text" name="target" maxlength="200" value="<%= it.form.target || "" %>"></label>
<label><%= it.t("audit.search.limit") %><select name="limit"><% it.limits.forEach(function (n) { %><option value="<%= n %>"<% if (String(n) === String(it.limit)) { %> selected<% } %>><%= n %></option><% }) %></select></label>
<datalist id="audit-actions"><% it.actions.forEach(function (a) { %><option value="<%= a %>"></option><% }) %></datalist>
<button type="submit"><%= it.t("form.search") %></button>
<a class="button secondary" href="<%= it.base %>/audit"><%= it.t("form.reset") %></a>
</form>
<p class="muted"><%= it.t("audit.utc") %></p>
</section>
<% if (it.rows) { %><section data-testid="audit-results">
<% if (it.rows.length === 0) { %><p class="muted"><%= it.t("paging.none") %></p><% } else { %>
<p class="muted"><%= it.t("audit.search.count", { count: it.rows.length }) %></p>
<%~ it.entries %><% } %>
<%~ include("@paging", it) %>
</section><% } %>
<% if (it.can("audit.export")) { %><section data-testid="audit-export">
<h2><%= it.t("audit.export.title") %></h2>
<p><%= it.t("audit.export.intro") %></p>
<% if (it.form.target) { %><p class="notice"><%= it.t("audit.export.targetIgnored") %></p><% } %>
<div class="actions">
<a class="button" href="<%= it.exportHref.jsonl %>" data-testid="export-jsonl"><%= it.t("audit.export.jsonl") %></a>
<a class="button secondary" href="<%= it.exportHref.csv %>" data-testid="export-csv"><%= it.t("audit.export.csv") %></a>
<a class="button secondary" href="<%= it.base %>/audit/jwks.json" data-testid="export-jwks"><%= it.t("audit.export.jwks") %></a>
</div>
<p class="muted"><%= it.t("audit.export.csvNote") %></p>
<div data-testid="verify-howto">
<h2><%= it.t("audit.export.howtoTitle") %></h2>
<p><%= it.t("audit.export.howto") %></p>
<pre class="mono">idbridge audit verify export.jsonl --jwks jwks.json</pre>
</div>
</section><% } %>`,
);

/** The search form's fields as given (text; times as the form sent them). */
interface AuditForm {
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  readonly subject?: string | undefined;
  readonly target?: string | undefined;
}

const PAGE_SIZES = [20, 50, 100, 200];
const DEFAULT_PAGE_SIZE = 50;

function readForm(ctx: ConsoleContext): AuditForm {
  return {
    from: ctx.query("from", 40),
    to: ctx.query("to", 40),
    actor: ctx.query("actor"),
    action: ctx.query("action"),
    subject: ctx.query("subject"),
    target: ctx.query("target"),
  };
}

/** The export filter of the form: times read as UTC, empty fields left out. */
function filterOf(form: AuditForm): AuditFilter {
  const filter: AuditFilter = {};
  const from = utcTime(form.from);
  const to = utcTime(form.to);
  if (from !== undefined) filter.from = from;
  if (to !== undefined) filter.to = to;
  if (form.actor !== undefined) filter.actor = form.actor;
  if (form.action !== undefined) filter.action = form.action;
  if (form.subject !== undefined) filter.subject = form.subject;
  return filter;
}

function readLimit(ctx: ConsoleContext): number | undefined {
  const text = ctx.query("limit", 4);
  if (text === undefined) return undefined;
  if (!/^\d{1,4}$/.test(text))
    throw new AppError("INPUT_INVALID", "limit must be a whole number from 1 to 200", { expose: true });
  return Number(text);
}

const jsonDownload = (fileName: string, value: object) => ({
  fileName,
  contentType: "application/json; charset=utf-8",
  body: Readable.from([`${JSON.stringify(value, null, 2)}\n`]),
});

export const auditPages: PageGroup = (routes) => {
  routes.get("/audit", async (_req, ctx) => {
    let form: AuditForm = {};
    let limit: number | undefined;
    let cursor: string | undefined;
    let found: Page<AuditRecord> | null = null;
    let notice: Notice | undefined;
    try {
      form = readForm(ctx);
      limit = readLimit(ctx);
      cursor = ctx.query("cursor", 40);
      found = await ctx.service.searchAudit(ctx.caller, {
        ...filterOf(form),
        ...(form.target !== undefined ? { target: form.target } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      notice = invalidNotice(ctx, err);
    }
    const rows = found === null ? null : await entryRows(ctx, found.items);
    const kept = { ...form, limit };
    const exportHref = (format: "jsonl" | "csv"): string =>
      `${CONSOLE_PATH}/audit/export${queryString({ format, ...form, target: undefined })}`;
    ctx.render(
      {
        title: ctx.t("audit.search.title"),
        nav: "audit",
        ...(notice !== undefined ? { notice } : {}),
        body: ctx.view("audit-search", {
          form,
          limit: limit ?? DEFAULT_PAGE_SIZE,
          limits: PAGE_SIZES,
          actions: KNOWN_ACTIONS,
          rows,
          entries: rows === null || rows.length === 0 ? "" : ctx.view("audit-entries", { rows }),
          paging: pagingLinks("/audit", kept, found === null ? undefined : cursor, found?.next),
          exportHref: { jsonl: exportHref("jsonl"), csv: exportHref("csv") },
        }),
      },
      notice === undefined ? 200 : 400,
    );
  });

  routes.get("/audit/export", async (_req, ctx) => {
    const format = ctx.query("format", 10) ?? "jsonl";
    if (format !== "jsonl" && format !== "csv")
      throw new AppError("INPUT_INVALID", 'format must be "jsonl" or "csv"', { expose: true });
    await ctx.download(await ctx.service.exportAudit(ctx.caller, filterOf(readForm(ctx)), format));
  });

  routes.get("/audit/jwks.json", async (_req, ctx) => {
    await ctx.download(jsonDownload("jwks.json", await ctx.service.auditJwks(ctx.caller)));
  });
};
