/**
 * The access review (`/access-review`): everyone who holds a sensitive role now, per target or for all,
 * and the same report as CSV for those who may export (the download is audited by the service).
 */
import { isAppError } from "../../domain/errors.js";
import { CONSOLE_PATH, defineTemplate, queryString, type Notice } from "../layout.js";
import type { PageGroup } from "../router.js";
import { invalidNotice } from "./audit.js";
import { holderRows, type HolderRow } from "./holders.js";

defineTemplate(
  "access-review",
  `<section>
<p><%= it.t("audit.review.intro") %></p>
<form class="filters" method="get" action="<%= it.base %>/access-review" data-testid="access-review-form">
<label><%= it.t("audit.target") %><input type="text" name="target" maxlength="200" placeholder="<%= it.t("audit.review.targetHint") %>" value="<%= it.target || "" %>"></label>
<button type="submit"><%= it.t("form.apply") %></button>
</form>
<% if (it.can("audit.export") && it.rows) { %><div class="actions">
<a class="button secondary" href="<%= it.csvHref %>" data-testid="access-review-csv"><%= it.t("audit.review.csv") %></a>
</div><p class="muted"><%= it.t("audit.review.csvNote") %></p><% } %>
</section>
<% if (it.rows) { %><section data-testid="access-review-results">
<% if (it.rows.length === 0) { %><p class="muted"><%= it.t("audit.review.none") %></p><% } else { %>
<p class="muted"><%= it.t("audit.review.count", { count: it.rows.length }) %> <%= it.t("audit.utc") %></p>
<%~ it.table %><% } %>
</section><% } %>`,
);

export const accessReviewPages: PageGroup = (routes) => {
  routes.get("/access-review", async (_req, ctx) => {
    let target: string | undefined;
    let rows: readonly HolderRow[] | null = null;
    let notice: Notice | undefined;
    try {
      target = ctx.query("target");
      rows = holderRows(await ctx.service.accessReview(ctx.caller, target));
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      notice = invalidNotice(ctx, err);
    }
    ctx.render(
      {
        title: ctx.t("audit.review.title"),
        nav: "accessReview",
        ...(notice !== undefined ? { notice } : {}),
        body: ctx.view("access-review", {
          target,
          rows,
          table:
            rows === null || rows.length === 0
              ? ""
              : ctx.view("holder-table", { rows, testid: "access-review-table" }),
          csvHref: `${CONSOLE_PATH}/access-review.csv${queryString({ target })}`,
        }),
      },
      notice === undefined ? 200 : 400,
    );
  });

  routes.get("/access-review.csv", async (_req, ctx) => {
    await ctx.download(await ctx.service.accessReviewCsv(ctx.caller, ctx.query("target")));
  });
};
