/**
 * People (`/people`, `/people/:id`): search by name, employee number, email or account, then one person —
 * their source accounts and how each was linked, their roles in every target (held now, desired by the
 * policy, sensitive, and why), the `policy explain` text per target and any open identity review.
 */
import { defineTemplate, pagingLinks } from "../layout.js";
import type { PageGroup } from "../router.js";
import { shortTime } from "./audit.js";

defineTemplate(
  "people",
  `<section>
<form class="filters" method="get" action="<%= it.base %>/people" data-testid="people-search">
<label><%= it.t("sync.people.search") %><input type="search" name="text" maxlength="200" value="<%= it.form.text || "" %>"></label>
<button type="submit"><%= it.t("form.search") %></button>
<a class="button secondary" href="<%= it.base %>/people"><%= it.t("form.reset") %></a>
</form>
</section>
<section>
<% if (it.people.length === 0) { %><p class="muted"><%= it.t("paging.none") %></p><% } else { %>
<p class="muted"><%= it.t("sync.people.count", { count: it.people.length }) %></p>
<div class="table"><table data-testid="people-table">
<thead><tr><th><%= it.t("sync.people.name") %></th><th><%= it.t("sync.people.employeeNo") %></th><th><%= it.t("sync.people.email") %></th><th><%= it.t("sync.status") %></th><th><%= it.t("sync.people.accounts") %></th></tr></thead>
<tbody><% it.people.forEach(function (p) { %><tr data-testid="person-row" data-person="<%= p.id %>">
<td><a href="<%= it.base %>/people/<%= encodeURIComponent(p.id) %>"><%= p.name %></a></td>
<td class="mono"><%= p.employeeNo || "" %></td>
<td class="mono"><%= p.email || "" %></td>
<td><span class="badge <%= p.status === "active" ? "ok" : "" %>"><%= it.t("sync.people.statuses." + p.status, { defaultValue: p.status }) %></span></td>
<td class="mono"><%= p.accounts.join(", ") %></td>
</tr><% }) %></tbody></table></div><% } %>
<%~ include("@paging", it) %>
</section>`,
);

defineTemplate(
  "person",
  `<section data-testid="person-facts">
<h2><%= it.t("sync.person.facts") %></h2>
<dl class="facts">
<dt><%= it.t("sync.person.id") %></dt><dd class="mono"><%= it.person.id %></dd>
<dt><%= it.t("sync.people.employeeNo") %></dt><dd class="mono"><%= it.person.employeeNo || "" %></dd>
<dt><%= it.t("sync.people.email") %></dt><dd class="mono"><%= it.person.email || "" %></dd>
<dt><%= it.t("sync.status") %></dt><dd><%= it.t("sync.people.statuses." + it.person.status, { defaultValue: it.person.status }) %></dd>
</dl>
</section>
<section data-testid="person-accounts">
<h2><%= it.t("sync.person.accounts") %></h2>
<% if (it.accounts.length === 0) { %><p class="muted"><%= it.t("sync.person.noAccounts") %></p><% } else { %>
<div class="table"><table>
<thead><tr><th><%= it.t("sync.person.source") %></th><th><%= it.t("sync.person.subject") %></th><th><%= it.t("sync.people.name") %></th><th><%= it.t("sync.status") %></th><th><%= it.t("sync.person.departments") %></th><th><%= it.t("sync.person.groups") %></th><th><%= it.t("sync.person.rule") %></th><th><%= it.t("sync.person.linkedAt") %></th></tr></thead>
<tbody><% it.accounts.forEach(function (a) { %><tr data-testid="account-row" data-account="<%= a.sourceId %>:<%= a.subject %>">
<td class="mono"><%= a.sourceId %></td>
<td class="mono"><%= a.subject %></td>
<td><%= a.name || "" %></td>
<td><%= a.status || "" %></td>
<td><%= (a.departments || []).join("、") %></td>
<td><%= (a.groups || []).join("、") %></td>
<td class="mono"><%= a.rule %></td>
<td class="mono"><%= a.linkedAt %></td>
</tr><% }) %></tbody></table></div><% } %>
</section>
<section data-testid="person-roles">
<h2><%= it.t("sync.person.roles") %></h2>
<% if (it.roles.length === 0) { %><p class="muted"><%= it.t("sync.person.noRoles") %></p><% } else { %>
<div class="table"><table>
<thead><tr><th><%= it.t("sync.target") %></th><th><%= it.t("sync.plan.role") %></th><th><%= it.t("sync.plan.scope") %></th><th><%= it.t("sync.plan.flags") %></th><th><%= it.t("sync.plan.why") %></th></tr></thead>
<tbody><% it.roles.forEach(function (r) { %><tr data-testid="role-row" data-role="<%= r.role %>" data-held="<%= r.held %>" data-desired="<%= r.desired %>">
<td class="mono"><%= r.target %></td>
<td><span class="mono"><%= r.role %></span><br><span class="muted"><%= r.targetRole %></span></td>
<td><%= r.scope || "" %></td>
<td><% if (r.held) { %><span class="badge ok"><%= it.t("sync.person.held") %></span> <% } %><% if (r.desired) { %><span class="badge"><%= it.t("sync.person.desired") %></span> <% } %><% if (r.desired && !r.held) { %><span class="badge warn"><%= it.t("sync.person.toGrant") %></span> <% } %><% if (r.held && !r.desired) { %><span class="badge danger"><%= it.t("sync.person.toRevoke") %></span> <% } %><% if (r.sensitive) { %><span class="badge warn"><%= it.t("sync.plan.sensitiveBadge") %></span><% } %></td>
<td><% if (r.why.length > 0) { %><ul class="why"><% r.why.forEach(function (w) { %><li><%= w %></li><% }) %></ul><% } %></td>
</tr><% }) %></tbody></table></div><% } %>
</section>
<section data-testid="person-explain">
<h2><%= it.t("sync.person.explain") %></h2>
<% it.explain.forEach(function (e) { %><h3 class="mono"><%= e.target %></h3><pre class="mono" data-target="<%= e.target %>"><%= e.text %></pre><% }) %>
</section>
<% if (it.reviews.length > 0) { %><section data-testid="person-reviews">
<h2><%= it.t("sync.person.reviews") %></h2>
<ul><% it.reviews.forEach(function (r) { %><li><span class="mono"><%= r.id %></span>: <%= r.reasons.map(function (x) { return x.message; }).join("; ") %></li><% }) %></ul>
<p><a href="<%= it.base %>/review"><%= it.t("sync.person.openReview") %></a></p>
</section><% } %>`,
);

export const peoplePages: PageGroup = (routes) => {
  routes.get("/people", async (_req, ctx) => {
    const form = { text: ctx.query("text") };
    const cursor = ctx.query("cursor", 1000);
    const found = await ctx.service.searchPeople(ctx.caller, {
      ...(form.text !== undefined ? { text: form.text } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    ctx.render({
      title: ctx.t("sync.people.title"),
      nav: "people",
      body: ctx.view("people", {
        form,
        people: found.items,
        paging: pagingLinks("/people", form, cursor, found.next),
      }),
    });
  });

  routes.get("/people/:id", async (req, ctx) => {
    const view = await ctx.service.getPerson(ctx.caller, String(req.params.id));
    ctx.render({
      title: view.person.name,
      nav: "people",
      body: ctx.view("person", {
        person: view.person,
        accounts: view.accounts.map((a) => ({ ...a, linkedAt: shortTime(a.linkedAt) })),
        roles: view.roles,
        explain: Object.entries(view.explain).map(([target, text]) => ({ target, text })),
        reviews: view.reviews,
      }),
    });
  });
};
