/**
 * The identity review queue (`/review`): accounts the link rules could not place, each item with its
 * reasons, the accounts and the candidate people side by side (what the accounts' sources say: name,
 * status, departments, email, employee number, title; what the people's records say: name, employee
 * number, email, departments, accounts — all in the service's one answer), the matches the rules found,
 * and a form to link, unlink or ignore — recorded by the service with the caller as actor. A decision
 * takes effect at the next sync's linking, which takes the item off the queue.
 */
import { requirePermission } from "../../admin/access.js";
import { isAppError } from "../../domain/errors.js";
import { defineTemplate, type Notice } from "../layout.js";
import type { ConsoleContext, PageGroup } from "../router.js";

defineTemplate(
  "review",
  `<p class="muted"><%= it.t("sync.review.intro") %></p>
<% if (it.items.length === 0) { %><section data-testid="review-empty"><p><%= it.t("sync.review.empty") %></p></section><% } %>
<% it.items.forEach(function (item) { %><section class="card" data-testid="review-item" data-item="<%= item.id %>">
<h2 class="mono"><%= it.t("sync.review.item", { id: item.id }) %></h2>
<h3><%= it.t("sync.review.reasons") %></h3>
<ul><% item.reasons.forEach(function (r) { %><li><span class="badge warn mono"><%= r.code %></span> <%= r.message %></li><% }) %></ul>
<div class="grid">
<div data-testid="review-accounts">
<h3><%= it.t("sync.review.accounts") %></h3>
<% item.accounts.forEach(function (a) { %><div class="card" data-testid="review-account" data-account="<%= a.text %>">
<p class="mono"><%= a.text %></p>
<% if (a.listed) { %><dl class="facts">
<dt><%= it.t("sync.people.name") %></dt><dd data-fact="name"><%= a.name %></dd>
<dt><%= it.t("sync.review.status") %></dt><dd data-fact="status"><%= a.status ? it.t("sync.review.accountStatuses." + a.status) : "" %></dd>
<dt><%= it.t("sync.person.departments") %></dt><dd data-fact="departments"><%= a.departments %></dd>
<dt><%= it.t("sync.people.email") %></dt><dd class="mono" data-fact="email"><%= a.email %></dd>
<dt><%= it.t("sync.people.employeeNo") %></dt><dd class="mono" data-fact="employeeNo"><%= a.employeeNo %></dd>
<% if (a.title) { %><dt><%= it.t("sync.review.jobTitle") %></dt><dd data-fact="title"><%= a.title %></dd><% } %>
<% if (a.username) { %><dt><%= it.t("sync.review.username") %></dt><dd class="mono" data-fact="username"><%= a.username %></dd><% } %>
</dl><% } else { %><p class="muted"><%= it.t("sync.review.notListed") %></p><% } %>
</div><% }) %>
<% if (item.evidence.length > 0) { %><h3><%= it.t("sync.review.evidence") %></h3>
<ul class="why"><% item.evidence.forEach(function (e) { %><li><%= it.t("sync.review.evidenceLine", e) %></li><% }) %></ul><% } %>
</div>
<div data-testid="review-candidates">
<h3><%= it.t("sync.review.candidates") %></h3>
<% if (item.candidates.length === 0) { %><p class="muted"><%= it.t("sync.review.noCandidates") %></p><% } %>
<% item.candidates.forEach(function (c) { %><div class="card" data-testid="review-candidate" data-person="<%= c.id %>">
<% if (c.found) { %><p><a href="<%= it.base %>/people/<%= encodeURIComponent(c.id) %>"><%= c.name %></a> <span class="mono muted"><%= c.id %></span></p>
<dl class="facts">
<dt><%= it.t("sync.people.employeeNo") %></dt><dd class="mono"><%= c.employeeNo %></dd>
<dt><%= it.t("sync.people.email") %></dt><dd class="mono"><%= c.email %></dd>
<dt><%= it.t("sync.person.departments") %></dt><dd><%= c.departments %></dd>
<dt><%= it.t("sync.people.accounts") %></dt><dd class="mono"><%= c.accounts %></dd>
</dl><% } else { %><p class="muted"><%= it.t("sync.review.unknownCandidate", { id: c.id }) %></p><% } %>
</div><% }) %>
</div>
</div>
<% if (it.can("sync.decide")) { %><form method="post" action="<%= it.base %>/review/decision" data-testid="review-decision">
<input type="hidden" name="_csrf" value="<%= it.csrf %>">
<div class="filters">
<label><%= it.t("sync.review.account") %><select name="account"><% item.accounts.forEach(function (a) { %><option value="<%= a.text %>"<% if (it.form.account === a.text) { %> selected<% } %>><%= a.text %></option><% }) %></select></label>
<label><%= it.t("sync.review.person") %><select name="personId"><option value=""></option><% item.candidates.forEach(function (c) { %><option value="<%= c.id %>"<% if (it.form.personId === c.id) { %> selected<% } %>><%= c.found ? c.name + " (" + c.id + ")" : c.id %></option><% }) %></select></label>
<label><%= it.t("sync.review.otherPerson") %><input type="text" name="otherPerson" maxlength="200"></label>
</div>
<label><%= it.t("sync.review.comment") %><textarea name="comment" required maxlength="2000"></textarea></label>
<div class="actions">
<button type="submit" name="kind" value="link" data-testid="review-link"><%= it.t("sync.review.link") %></button>
<button type="submit" name="kind" value="unlink" class="secondary" data-testid="review-unlink"><%= it.t("sync.review.unlink") %></button>
<button type="submit" name="kind" value="ignore" class="danger" data-testid="review-ignore"><%= it.t("sync.review.ignore") %></button>
</div>
</form><% } %>
</section><% }) %>`,
);

const accountText = (a: { sourceId: string; subject: string }): string => `${a.sourceId}:${a.subject}`;

async function showQueue(
  ctx: ConsoleContext,
  options: { status?: number; notice?: Notice; form?: { account?: string; personId?: string } } = {},
): Promise<void> {
  const queue = await ctx.service.reviewQueue(ctx.caller);
  const items = queue.map((item) => {
    const people = new Map(item.candidatePeople.map((p) => [p.id, p]));
    return {
      id: item.id,
      reasons: item.reasons,
      accounts: item.accounts.map((a) => ({
        ...a,
        text: accountText(a),
        departments: (a.departments ?? []).join("、"),
      })),
      evidence: item.evidence.map((e) => ({
        rule: e.rule,
        account: accountText(e.account),
        matched: accountText(e.matched),
        value: e.value,
      })),
      candidates: item.candidates.map((id) => {
        const person = people.get(id);
        if (person === undefined) return { id, found: false };
        return {
          id,
          found: true,
          name: person.name,
          employeeNo: person.employeeNo ?? "",
          email: person.email ?? "",
          departments: person.departments.join("、"),
          accounts: person.accounts.join(", "),
        };
      }),
    };
  });
  ctx.render(
    {
      title: ctx.t("sync.review.title"),
      nav: "review",
      ...(options.notice !== undefined ? { notice: options.notice } : {}),
      body: ctx.view("review", { items, form: options.form ?? {} }),
    },
    options.status,
  );
}

const DONE = { link: "sync.done.linked", unlink: "sync.done.unlinked", ignore: "sync.done.ignored" } as const;

export const reviewPages: PageGroup = (routes) => {
  routes.get("/review", async (_req, ctx) => {
    await showQueue(ctx);
  });

  routes.post("/review/decision", async (_req, ctx) => {
    // Before reading the form: someone who may not decide hears that, not what their form lacked.
    requirePermission(ctx.caller, "sync.decide");
    const refuse = (text: string, form: { account?: string; personId?: string } = {}) =>
      showQueue(ctx, { status: 400, notice: { kind: "error", text }, form });
    let input;
    try {
      input = {
        kind: ctx.field("kind", 10),
        account: ctx.field("account", 400),
        personId: ctx.field("otherPerson", 200) ?? ctx.field("personId", 200),
        comment: ctx.field("comment", 2000),
      };
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      await refuse(ctx.t("sync.invalid", { detail: err.message }));
      return;
    }
    const { kind, account, personId, comment } = input;
    const kept = {
      ...(account !== undefined ? { account } : {}),
      ...(personId !== undefined ? { personId } : {}),
    };
    if (kind !== "link" && kind !== "unlink" && kind !== "ignore") {
      await refuse(ctx.t("sync.invalid", { detail: "kind must be link, unlink or ignore" }), kept);
      return;
    }
    if (comment === undefined) {
      await refuse(ctx.t("sync.review.commentRequired"), kept);
      return;
    }
    const queue = await ctx.service.reviewQueue(ctx.caller);
    if (account === undefined || !queue.some((i) => i.accounts.some((a) => accountText(a) === account))) {
      await refuse(ctx.t("sync.review.notInItem"), kept);
      return;
    }
    if (kind !== "ignore" && personId === undefined) {
      await refuse(ctx.t("sync.review.personRequired"), kept);
      return;
    }
    try {
      await ctx.service.decideLink(
        ctx.caller,
        kind === "ignore" ? { kind, account, comment } : { kind, account, personId: personId ?? "", comment },
      );
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      await refuse(ctx.t("sync.invalid", { detail: err.message }), kept);
      return;
    }
    ctx.redirect("/review", DONE[kind]);
  });
};
