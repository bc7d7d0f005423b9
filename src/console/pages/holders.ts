/**
 * Who holds a role (`/holders`): the holders of one role of one target at a time (default now), as the
 * audit log's grants and revokes tell it; and why one of them holds it (`/holders/why`): the grant's
 * lineage, the plan and who approved it, and the audit entries of the story.
 */
import { isAppError } from "../../domain/errors.js";
import type { RoleHolder } from "../../admin/contracts.js";
import { CONSOLE_PATH, defineTemplate, queryString, type Notice } from "../layout.js";
import type { ConsoleContext, PageGroup } from "../router.js";
import { entryRows, invalidNotice, personNames, shortTime, utcTime } from "./audit.js";

/** A holder as the tables show it, with the link to why. */
export interface HolderRow {
  readonly name: string;
  readonly personId: string;
  readonly target: string;
  readonly role: string;
  readonly targetRole: string;
  readonly scope: string;
  readonly since: string;
  readonly grantSeq: number;
  readonly sensitive: boolean;
  readonly whyHref: string;
}

/** The rows of `holders`; `at` (as the form gave it) is kept in the link to why. */
export function holderRows(holders: readonly RoleHolder[], at?: string): readonly HolderRow[] {
  return holders.map((h) => ({
    name: h.name,
    personId: h.personId,
    target: h.target,
    role: h.role,
    targetRole: h.targetRole,
    scope: h.scope ?? "",
    since: shortTime(h.since),
    grantSeq: h.grantSeq,
    sensitive: h.sensitive,
    whyHref: `${CONSOLE_PATH}/holders/why${queryString({ person: h.personId, target: h.target, role: h.role, at })}`,
  }));
}

defineTemplate(
  "holders",
  `<section>
<p><%= it.t("audit.holders.intro") %></p>
<form class="filters" method="get" action="<%= it.base %>/holders" data-testid="holders-form">
<label><%= it.t("audit.target") %><input type="text" name="target" maxlength="200" required list="holder-targets" value="<%= it.form.target || "" %>"></label>
<label><%= it.t("audit.holders.role") %><input type="text" name="role" maxlength="200" required placeholder="<%= it.t("audit.holders.roleHint") %>" value="<%= it.form.role || "" %>"></label>
<label><%= it.t("audit.holders.at") %><input type="datetime-local" step="1" name="at" value="<%= it.form.at || "" %>"></label>
<datalist id="holder-targets"><% it.targets.forEach(function (t) { %><option value="<%= t %>"></option><% }) %></datalist>
<button type="submit"><%= it.t("form.search") %></button>
</form>
<p class="muted"><%= it.t("audit.utc") %></p>
</section>
<section data-testid="holders-results">
<% if (!it.rows) { %><p class="muted"><%= it.t("audit.holders.ask") %></p><% } else if (it.rows.length === 0) { %><p class="muted"><%= it.t("audit.holders.none") %></p><% } else { %>
<p class="muted"><%= it.t("audit.holders.count", { count: it.rows.length }) %></p>
<%~ it.table %><% } %>
</section>`,
);

defineTemplate(
  "holder-table",
  `<div class="table"><table data-testid="<%= it.testid %>">
<thead><tr><th><%= it.t("audit.holders.person") %></th><th><%= it.t("audit.target") %></th><th><%= it.t("audit.holders.targetRole") %></th><th><%= it.t("audit.holders.scope") %></th><th><%= it.t("audit.holders.since") %></th><th class="num"><%= it.t("audit.holders.grantSeq") %></th></tr></thead>
<tbody><% it.rows.forEach(function (r) { %><tr data-testid="holder-row">
<td><a href="<%= r.whyHref %>" data-testid="holder-why"><%= r.name %></a><br><span class="mono muted"><%= r.personId %></span></td>
<td class="mono"><%= r.target %></td>
<td><%= r.targetRole %> <span class="mono muted"><%= r.role %></span><% if (r.sensitive) { %> <span class="badge warn"><%= it.t("audit.sensitive") %></span><% } %></td>
<td><%= r.scope %></td>
<td class="mono"><%= r.since %></td>
<td class="num mono"><%= r.grantSeq %></td>
</tr><% }) %></tbody></table></div>`,
);

defineTemplate(
  "holder-why",
  `<section data-testid="why-holder">
<h2><%= it.t("audit.why.holder") %></h2>
<dl class="facts">
<dt><%= it.t("audit.holders.person") %></dt><dd><%= it.name %> <span class="mono muted"><%= it.person %></span></dd>
<dt><%= it.t("audit.target") %></dt><dd class="mono"><%= it.target %></dd>
<dt><%= it.t("audit.holders.targetRole") %></dt><dd><% if (it.holder) { %><%= it.holder.targetRole %> <% } %><span class="mono muted"><%= it.role %></span><% if (it.holder && it.holder.sensitive) { %> <span class="badge warn"><%= it.t("audit.sensitive") %></span><% } %></dd>
<% if (it.holder) { %>
<% if (it.holder.scope) { %><dt><%= it.t("audit.holders.scope") %></dt><dd><%= it.holder.scope %></dd><% } %>
<dt><%= it.t("audit.holders.since") %></dt><dd class="mono"><%= it.holder.since %></dd>
<dt><%= it.t("audit.holders.grantSeq") %></dt><dd class="mono"><%= it.holder.grantSeq %></dd>
<% } %>
<% if (it.at) { %><dt><%= it.t("audit.time") %></dt><dd class="mono"><%= it.at %></dd><% } %>
</dl>
<% if (!it.holder) { %><p class="notice" data-testid="why-not-holding"><%= it.t("audit.why.notHolding") %></p><% } %>
</section>
<section data-testid="why-lineage">
<h2><%= it.t("audit.why.lineage") %></h2>
<% if (it.lineage.length === 0) { %><p class="muted"><%= it.t("audit.why.noLineage") %></p><% } else { %>
<ul class="why"><% it.lineage.forEach(function (line) { %><li><%= line %></li><% }) %></ul><% } %>
</section>
<section data-testid="why-approval">
<h2><%= it.t("audit.why.approval") %></h2>
<% if (!it.approval) { %><p class="muted"><%= it.t("audit.why.noApproval") %></p><% } else { %>
<dl class="facts">
<dt><%= it.t("audit.why.plan") %></dt><dd><a class="mono" href="<%= it.base %>/plans/<%= encodeURIComponent(it.approval.plan) %>" data-testid="why-plan"><%= it.approval.plan %></a></dd>
<dt><%= it.t("audit.why.by") %></dt><dd data-testid="why-approved-by"><% if (it.approval.byName) { %><%= it.approval.byName %> <% } %><span class="mono muted"><%= it.approval.by %></span></dd>
<dt><%= it.t("audit.why.at") %></dt><dd class="mono"><%= it.approval.at %></dd>
<dt><%= it.t("audit.why.comment") %></dt><dd data-testid="why-comment"><%= it.approval.comment || it.t("audit.why.noComment") %></dd>
</dl><% } %>
</section>
<section data-testid="why-entries">
<h2><%= it.t("audit.why.entries") %></h2>
<% if (it.entries === "") { %><p class="muted"><%= it.t("paging.none") %></p><% } else { %><%~ it.entries %><% } %>
</section>`,
);

/** Targets the caller has seen plans for, as suggestions for the target field (the field takes any id). */
async function knownTargets(ctx: ConsoleContext): Promise<readonly string[]> {
  if (!ctx.can("sync.read")) return [];
  const plans = await ctx.service.listPlans(ctx.caller, { limit: 200 });
  return [...new Set(plans.items.map((p) => p.target))].sort();
}

export const holderPages: PageGroup = (routes) => {
  routes.get("/holders", async (_req, ctx) => {
    let form: { target?: string | undefined; role?: string | undefined; at?: string | undefined } = {};
    let rows: readonly HolderRow[] | null = null;
    let notice: Notice | undefined;
    try {
      form = { target: ctx.query("target"), role: ctx.query("role"), at: ctx.query("at", 40) };
      if (form.target !== undefined && form.role !== undefined) {
        const holders = await ctx.service.roleHolders(ctx.caller, form.target, form.role, utcTime(form.at));
        rows = holderRows(holders, form.at);
      }
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      notice = invalidNotice(ctx, err);
    }
    ctx.render(
      {
        title: ctx.t("audit.holders.title"),
        nav: "holders",
        ...(notice !== undefined ? { notice } : {}),
        body: ctx.view("holders", {
          form,
          targets: await knownTargets(ctx),
          rows,
          table: rows === null ? "" : ctx.view("holder-table", { rows, testid: "holders-table" }),
        }),
      },
      notice === undefined ? 200 : 400,
    );
  });

  routes.get("/holders/why", async (_req, ctx) => {
    const person = ctx.query("person") ?? "";
    const target = ctx.query("target") ?? "";
    const role = ctx.query("role") ?? "";
    const at = ctx.query("at", 40);
    const why = await ctx.service.explainHolding(ctx.caller, person, target, role, utcTime(at));
    const names = await personNames(
      ctx,
      [`person:${person}`, why.approval?.by].filter((a): a is string => a !== undefined),
    );
    const rows = await entryRows(ctx, why.entries);
    ctx.render({
      title: ctx.t("audit.why.title"),
      nav: "holders",
      body: ctx.view("holder-why", {
        person,
        name: why.holder?.name ?? names.get(`person:${person}`) ?? person,
        target,
        role,
        at: at === undefined ? undefined : utcTime(at),
        holder:
          why.holder === null
            ? null
            : { ...why.holder, since: shortTime(why.holder.since), scope: why.holder.scope ?? "" },
        lineage: why.lineage,
        approval:
          why.approval === null
            ? null
            : { ...why.approval, at: shortTime(why.approval.at), byName: names.get(why.approval.by) },
        entries: rows.length === 0 ? "" : ctx.view("audit-entries", { rows }),
      }),
    });
  });
};
