/**
 * The home page: what waits for the caller — plans waiting for a decision, the latest sync runs, the size
 * of the identity review queue — and, for auditors, where the audit pages are.
 */
import { defineTemplate } from "../layout.js";
import type { PageGroup } from "../router.js";

defineTemplate(
  "home",
  `<p><%= it.t("home.welcome", { name: it.name }) %></p>
<% if (it.can("sync.read")) { %>
<section data-testid="home-pending">
<h2><%= it.t("home.pending") %></h2>
<% if (it.pending.length === 0) { %><p class="muted"><%= it.t("home.noPending") %></p><% } else { %>
<div class="table"><table>
<thead><tr><th>ID</th><th><%= it.t("home.target") %></th><th><%= it.t("home.created") %></th></tr></thead>
<tbody><% it.pending.forEach(function (p) { %><tr>
<td><a class="mono" href="<%= it.base %>/plans/<%= encodeURIComponent(p.id) %>" data-testid="pending-plan"><%= p.id %></a></td>
<td><%= p.target %></td><td><%= p.createdAt %></td>
</tr><% }) %></tbody></table></div><% } %>
</section>
<section data-testid="home-runs">
<h2><%= it.t("home.runs") %></h2>
<% if (it.runs.length === 0) { %><p class="muted"><%= it.t("home.noRuns") %></p><% } else { %>
<ul><% it.runs.forEach(function (r) { %><li><span class="mono"><%= r.startedAt %></span> · <%= r.target %> · <%= r.status %></li><% }) %></ul>
<p><a href="<%= it.base %>/runs"><%= it.t("nav.runs") %></a></p><% } %>
</section>
<section data-testid="home-review">
<p><% if (it.reviews === 0) { %><%= it.t("home.reviewNone") %><% } else { %><a href="<%= it.base %>/review"><%= it.t("home.review", { count: it.reviews }) %></a><% } %></p>
</section>
<% } %>
<% if (it.can("audit.read")) { %>
<section data-testid="home-audit"><p><a href="<%= it.base %>/audit"><%= it.t("home.audit") %></a></p></section>
<% } %>`,
);

export const homePages: PageGroup = (routes) => {
  routes.get("/", async (_req, ctx) => {
    const { service, caller } = ctx;
    const readsSync = ctx.can("sync.read");
    const [pending, runs, reviews] = readsSync
      ? await Promise.all([
          service.listPlans(caller, { status: "pending", limit: 20 }),
          service.listSyncRuns(caller, { limit: 5 }),
          service.reviewQueue(caller),
        ])
      : [{ items: [] }, { items: [] }, []];
    ctx.render({
      title: ctx.t("home.title"),
      nav: "home",
      body: ctx.view("home", {
        name: caller.name,
        pending: pending.items,
        runs: runs.items,
        reviews: reviews.length,
      }),
    });
  });
};
