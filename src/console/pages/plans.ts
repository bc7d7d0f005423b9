/**
 * Plans (`/plans`, `/plans/:id`): the list, and one plan for review — its summary (counts by kind, the
 * guardrails it hit, SoD conflicts, sensitive grants, held-back removals, problems), its changes one page
 * at a time (per person or per role, filtered, searched, each with its lineage), the decision form and,
 * once approved, the apply button and the outcome.
 *
 * A decision goes through the service with the plan's hash as shown, so a plan that changed since the
 * page was read is refused (PLAN_STALE); a decision on a plan that has moved on (a second click, a
 * colleague faster) comes back to the page with a notice instead of an error page.
 */
import { requirePermission } from "../../admin/access.js";
import type { ChangeQuery, ChangeView, PlanView } from "../../admin/contracts.js";
import { AppError, isAppError } from "../../domain/errors.js";
import { formatLineage } from "../../policy/explain.js";
import type { PlanStatus } from "../../store/store.js";
import { APPLY_ORDER, type PlanChange, type PlanChangeKind } from "../../sync/plan.js";
import { CONSOLE_PATH, defineTemplate, queryString, type Notice, pagingLinks } from "../layout.js";
import type { ConsoleContext, PageGroup } from "../router.js";
import { shortTime } from "./audit.js";

const PLAN_STATUSES: readonly PlanStatus[] = [
  "pending",
  "approved",
  "applying",
  "applied",
  "partial",
  "rejected",
  "superseded",
  "empty",
];

/** Badge class of a plan status: what needs someone is a warning, what failed or was refused is danger. */
export function statusBadge(status: string): string {
  if (status === "pending" || status === "needs-approval" || status === "applying" || status === "running")
    return "warn";
  if (status === "partial" || status === "failed" || status === "rejected") return "danger";
  if (status === "applied" || status === "approved") return "ok";
  return "";
}

/** Changes per page of the plan view. */
const CHANGES_PER_PAGE = 50;
/** The longest comment a decision takes (the service checks it too). */
const MAX_COMMENT = 2000;

const planHref = (id: string, query: Record<string, string | undefined> = {}): string =>
  `${CONSOLE_PATH}/plans/${encodeURIComponent(id)}${queryString(query)}`;

defineTemplate(
  "plans",
  `<p class="muted"><%= it.t("sync.plans.intro") %></p>
<section>
<form class="filters" method="get" action="<%= it.base %>/plans" data-testid="plans-filters">
<label><%= it.t("sync.status") %><select name="status">
<option value=""><%= it.t("sync.plans.anyStatus") %></option>
<% it.statuses.forEach(function (s) { %><option value="<%= s %>"<% if (s === it.form.status) { %> selected<% } %>><%= it.t("sync.planStatus." + s) %></option><% }) %>
</select></label>
<label><%= it.t("sync.target") %><input type="text" name="target" maxlength="200" value="<%= it.form.target || "" %>"></label>
<button type="submit"><%= it.t("form.apply") %></button>
<a class="button secondary" href="<%= it.base %>/plans"><%= it.t("form.reset") %></a>
</form>
</section>
<section>
<% if (it.plans.length === 0) { %><p class="muted"><%= it.t("paging.none") %></p><% } else { %>
<div class="table"><table data-testid="plans-table">
<thead><tr><th><%= it.t("sync.plans.id") %></th><th><%= it.t("sync.status") %></th><th><%= it.t("sync.target") %></th><th><%= it.t("sync.created") %></th><th><%= it.t("sync.plans.needsApproval") %></th><th class="num"><%= it.t("sync.plans.changes") %></th><th class="num"><%= it.t("sync.plans.sensitive") %></th><th class="num"><%= it.t("sync.plans.sod") %></th><th><%= it.t("sync.plans.decidedBy") %></th></tr></thead>
<tbody><% it.plans.forEach(function (p) { %><tr data-testid="plan-row" data-plan="<%= p.id %>" data-status="<%= p.status %>">
<td><a class="mono" href="<%= p.href %>"><%= p.id %></a></td>
<td><span class="badge <%= p.badge %>"><%= it.t("sync.planStatus." + p.status) %></span></td>
<td class="mono"><%= p.target %></td>
<td class="mono"><%= p.created %></td>
<td><%= p.needsApproval ? it.t("sync.yes") : it.t("sync.no") %></td>
<td class="num"><%= p.changes %></td>
<td class="num"><%= p.sensitive %></td>
<td class="num"><%= p.sod %></td>
<td><%= p.decidedBy %></td>
</tr><% }) %></tbody></table></div><% } %>
<%~ include("@paging", it) %>
</section>`,
);

defineTemplate(
  "plan",
  `<section data-testid="plan-summary" data-status="<%= it.plan.status %>">
<h2><%= it.t("sync.plan.summary") %></h2>
<dl class="facts">
<dt><%= it.t("sync.status") %></dt><dd><span class="badge <%= it.badge %>" data-testid="plan-status"><%= it.t("sync.planStatus." + it.plan.status) %></span></dd>
<dt><%= it.t("sync.target") %></dt><dd class="mono"><%= it.plan.target %></dd>
<dt><%= it.t("sync.created") %></dt><dd class="mono"><%= it.created %></dd>
<dt><%= it.t("sync.plan.updated") %></dt><dd class="mono"><%= it.updated %></dd>
<dt><%= it.t("sync.plan.hash") %></dt><dd class="mono" title="<%= it.plan.hash %>"><%= it.plan.hash.slice(0, 12) %>…</dd>
<dt><%= it.t("sync.plans.needsApproval") %></dt><dd><%= it.plan.needsApproval ? it.t("sync.yes") : it.t("sync.no") %></dd>
<dt><%= it.t("sync.plan.policy") %></dt><dd class="mono"><%= it.content.policy %></dd>
</dl>
<h2><%= it.t("sync.plan.counts") %></h2>
<ul class="stats" data-testid="plan-counts">
<li><b><%= it.total %></b><%= it.t("sync.plan.total") %></li>
<% it.counts.forEach(function (c) { %><li data-kind="<%= c.kind %>"><b><%= c.count %></b><%= it.t("sync.kind." + c.kind) %></li><% }) %>
</ul>
<ul class="stats">
<li data-testid="plan-sensitive"><b><%= it.sensitive %></b><%= it.t("sync.plan.sensitiveGrants") %></li>
<li data-testid="plan-flagged"><b><%= it.flagged %></b><%= it.t("sync.plan.flaggedChanges") %></li>
</ul>
<% if (it.flagged > 0) { %><p><a href="<%= it.flaggedHref %>"><%= it.t("sync.plan.showFlagged") %></a></p><% } %>
<h2><%= it.t("sync.plan.risk") %></h2>
<% if (it.content.risk.length === 0) { %><p class="muted"><%= it.t("sync.plan.noRisk") %></p><% } else { %>
<ul data-testid="plan-risk"><% it.content.risk.forEach(function (r) { %><li><span class="badge warn mono"><%= r.code %></span> <%= r.message %></li><% }) %></ul><% } %>
<h2><%= it.t("sync.plan.sources") %></h2>
<ul data-testid="plan-sources"><% it.content.sources.forEach(function (s) { %><li><span class="mono"><%= s.id %></span> · <%= s.mode %> · <span class="badge <%= s.complete ? "ok" : "danger" %>"><%= s.complete ? it.t("sync.plan.complete") : it.t("sync.plan.incomplete") %></span> · <%= it.t("sync.plan.people", { count: s.people }) %> · <span class="mono muted"><%= s.readAt %></span>
<% if (s.reasons.length > 0) { %><ul class="why"><% s.reasons.forEach(function (r) { %><li><%= r %></li><% }) %></ul><% } %></li><% }) %></ul>
<% if (it.content.heldPeople.length > 0) { %><p class="notice"><%= it.t("sync.plan.heldPeople", { count: it.content.heldPeople.length }) %></p><% } %>
</section>

<section data-testid="plan-sod">
<h2><%= it.t("sync.plan.sodTitle") %></h2>
<% if (it.content.sod.length === 0) { %><p class="muted"><%= it.t("sync.plan.noSod") %></p><% } else { %>
<div class="table"><table>
<thead><tr><th><%= it.t("sync.plan.constraint") %></th><th><%= it.t("sync.plan.person") %></th><th><%= it.t("sync.plan.roles") %></th><th><%= it.t("sync.plan.effect") %></th><th><%= it.t("sync.plan.withheld") %></th></tr></thead>
<tbody><% it.content.sod.forEach(function (s) { %><tr data-testid="sod-row" data-constraint="<%= s.constraint %>">
<td class="mono"><%= s.constraint %></td>
<td><a href="<%= it.base %>/people/<%= encodeURIComponent(s.person) %>"><%= s.name %></a></td>
<td class="mono"><%= s.roles.join(", ") %></td>
<td><span class="badge <%= s.effect === "block" ? "danger" : "warn" %>"><%= s.effect === "block" ? it.t("sync.plan.effectBlock") : it.t("sync.plan.effectFlag") %></span></td>
<td class="mono"><%= s.withheld || "" %></td>
</tr><% }) %></tbody></table></div><% } %>
</section>

<% if (it.content.blocked.length > 0) { %><section data-testid="plan-blocked">
<h2><%= it.t("sync.plan.blockedTitle") %></h2>
<p class="muted"><%= it.t("sync.plan.blockedIntro") %></p>
<ul><% it.blocked.forEach(function (b) { %><li><span class="badge"><%= it.t("sync.kind." + b.kind) %></span> <%= b.label %> — <%= b.reason %> <span class="mono muted">(<%= b.sources %>)</span></li><% }) %></ul>
</section><% } %>

<% if (it.content.problems.length > 0) { %><section data-testid="plan-problems">
<h2><%= it.t("sync.plan.problemsTitle") %></h2>
<ul><% it.content.problems.forEach(function (p) { %><li><span class="badge warn mono"><%= p.code %></span> <%= p.message %></li><% }) %></ul>
</section><% } %>

<% if (it.plan.decision) { %><section data-testid="plan-decision-record" data-kind="<%= it.plan.decision.kind %>">
<h2><%= it.t("sync.plan.decisionRecord") %></h2>
<dl class="facts">
<dt><%= it.t("sync.plan.decisionRecord") %></dt><dd><span class="badge <%= it.plan.decision.kind === "rejected" ? "danger" : "ok" %>"><%= it.t("sync.plan.decisionKind." + it.plan.decision.kind) %></span></dd>
<dt><%= it.t("sync.plan.decidedBy") %></dt><dd data-testid="decided-by"><%= it.plan.decision.by %></dd>
<dt><%= it.t("sync.plan.decidedAt") %></dt><dd class="mono"><%= it.decidedAt %></dd>
<% if (it.plan.decision.comment) { %><dt><%= it.t("sync.plan.decisionComment") %></dt><dd data-testid="decision-comment"><%= it.plan.decision.comment %></dd><% } %>
</dl>
</section><% } %>

<% if (it.outcome) { %><section data-testid="plan-outcome">
<h2><%= it.t("sync.plan.outcomeTitle") %></h2>
<ul class="stats">
<li data-outcome="applied"><b><%= it.outcome.counts.applied %></b><%= it.t("sync.plan.outcomeApplied") %></li>
<li data-outcome="noop"><b><%= it.outcome.counts.noop %></b><%= it.t("sync.plan.outcomeNoop") %></li>
<li data-outcome="failed"><b><%= it.outcome.counts.failed %></b><%= it.t("sync.plan.outcomeFailed") %></li>
<% if (it.outcome.counts.notAttempted > 0) { %><li data-outcome="not-attempted"><b><%= it.outcome.counts.notAttempted %></b><%= it.t("sync.plan.outcomeNotAttempted") %></li><% } %>
</ul>
<p class="muted"><%= it.t("sync.plan.outcomeBy", { at: it.outcome.at }) %></p>
<% if (it.outcome.failures.length > 0) { %><details><summary><%= it.t("sync.plan.failures") %></summary><ul class="why"><% it.outcome.failures.forEach(function (f) { %><li><span class="mono"><%= f.key %></span> <span class="badge danger mono"><%= f.code %></span> <%= f.message %></li><% }) %></ul></details><% } %>
</section><% } %>

<% if (it.decide) { %><section data-testid="plan-decision-section">
<h2><%= it.t("sync.plan.decisionTitle") %></h2>
<p><%= it.t("sync.plan.decisionIntro") %></p>
<form method="post" action="<%= it.actionHref %>/decision" data-testid="plan-decision">
<input type="hidden" name="_csrf" value="<%= it.csrf %>">
<input type="hidden" name="hash" value="<%= it.plan.hash %>">
<label><%= it.t("sync.plan.comment") %><textarea name="comment" required maxlength="2000" data-testid="comment"><%= it.comment %></textarea></label>
<div class="actions">
<button type="submit" name="decision" value="approve" data-testid="approve"><%= it.t("sync.plan.approve") %></button>
<button type="submit" name="decision" value="reject" class="danger" data-testid="reject"><%= it.t("sync.plan.reject") %></button>
</div>
</form>
</section><% } %>

<% if (it.apply) { %><section data-testid="plan-apply">
<h2><%= it.t("sync.plan.applyTitle") %></h2>
<p><%= it.plan.status === "approved" ? it.t("sync.plan.applyIntro", { target: it.plan.target }) : it.t("sync.plan.applyRetry") %></p>
<form method="post" action="<%= it.actionHref %>/apply" data-testid="apply">
<input type="hidden" name="_csrf" value="<%= it.csrf %>">
<button type="submit" data-testid="apply-now"><%= it.t("sync.plan.applyNow") %></button>
</form>
</section><% } %>

<section data-testid="plan-changes">
<h2><%= it.t("sync.plan.changesTitle") %></h2>
<form class="filters" method="get" action="<%= it.actionHref %>" data-testid="change-filters">
<label><%= it.t("sync.plan.groupBy") %><select name="group">
<option value=""><%= it.t("sync.plan.groupNone") %></option>
<option value="person"<% if (it.form.group === "person") { %> selected<% } %>><%= it.t("sync.plan.groupPerson") %></option>
<option value="role"<% if (it.form.group === "role") { %> selected<% } %>><%= it.t("sync.plan.groupRole") %></option>
</select></label>
<label><%= it.t("sync.plan.kindFilter") %><select name="kind">
<option value=""><%= it.t("sync.plan.anyKind") %></option>
<% it.kinds.forEach(function (k) { %><option value="<%= k %>"<% if (k === it.form.kind) { %> selected<% } %>><%= it.t("sync.kind." + k) %></option><% }) %>
</select></label>
<label><%= it.t("sync.plan.text") %><input type="search" name="text" maxlength="200" value="<%= it.form.text || "" %>" data-testid="change-search"></label>
<label><span><input type="checkbox" name="flagged" value="1"<% if (it.form.flagged) { %> checked<% } %>> <%= it.t("sync.plan.flaggedOnly") %></span></label>
<button type="submit"><%= it.t("form.apply") %></button>
<a class="button secondary" href="<%= it.actionHref %>"><%= it.t("form.reset") %></a>
</form>
<p class="muted" data-testid="change-count" data-count="<%= it.matching %>"><%= it.t("sync.plan.matching", { count: it.matching }) %></p>
<% if (it.rows.length === 0) { %><p class="muted"><%= it.t("sync.plan.noChanges") %></p><% } else { %>
<div class="table"><table data-testid="changes-table">
<thead><tr><th><%= it.t("sync.plan.person") %></th><th><%= it.t("sync.plan.change") %></th><th><%= it.t("sync.plan.role") %></th><th><%= it.t("sync.plan.scope") %></th><th><%= it.t("sync.plan.flags") %></th><th><%= it.t("sync.plan.outcome") %></th><th><%= it.t("sync.plan.why") %></th></tr></thead>
<tbody><% it.rows.forEach(function (r) { %><% if (r.group !== null) { %><tr data-testid="change-group"><th colspan="7"><%= r.group %></th></tr><% } %><tr data-testid="change-row" data-kind="<%= r.kind %>" data-key="<%= r.key %>">
<td><% if (r.person) { %><a href="<%= it.base %>/people/<%= encodeURIComponent(r.person) %>"><%= r.name %></a><% } else { %><%= r.label %><% } %></td>
<td><span class="badge"><%= it.t("sync.kind." + r.kind) %></span></td>
<td><% if (r.role) { %><span class="mono"><%= r.role %></span><br><span class="muted"><%= r.targetRole %></span><% } %></td>
<td><%= r.scope %></td>
<td><% if (r.sensitive) { %><span class="badge warn" data-testid="flag-sensitive"><%= it.t("sync.plan.sensitiveBadge") %></span> <% } %><% if (r.sod) { %><span class="badge danger" data-testid="flag-sod"><%= it.t("sync.plan.sodBadge") %></span><% } %></td>
<td><% if (r.outcome) { %><span class="badge <%= r.outcome.status === "failed" ? "danger" : "ok" %>" data-testid="change-outcome"><%= it.t("sync.outcome." + r.outcome.status) %></span><% if (r.outcome.failure) { %><br><span class="muted"><%= r.outcome.failure %></span><% } %><% } %></td>
<td><% if (r.why.length > 0) { %><details><summary><%= it.t("sync.plan.whyShow") %></summary><ul class="why"><% r.why.forEach(function (w) { %><li><%= w %></li><% }) %></ul></details><% } %></td>
</tr><% }) %></tbody></table></div><% } %>
<%~ include("@paging", it) %>
</section>`,
);

/** The change filter as the form gives it (text, for the links that keep it). */
interface ChangeForm {
  readonly group?: string | undefined;
  readonly kind?: string | undefined;
  readonly text?: string | undefined;
  readonly flagged?: string | undefined;
}

function readChangeForm(ctx: ConsoleContext): ChangeForm {
  return {
    group: ctx.query("group", 10),
    kind: ctx.query("kind", 40),
    text: ctx.query("text"),
    flagged: ctx.query("flagged", 5) === undefined ? undefined : "1",
  };
}

/** The service's change query of the form; unknown values are left for the service to refuse. */
function changeQuery(form: ChangeForm, cursor: string | undefined): ChangeQuery {
  return {
    limit: CHANGES_PER_PAGE,
    ...(cursor !== undefined ? { cursor } : {}),
    ...(form.kind !== undefined ? { kinds: [form.kind as PlanChangeKind] } : {}),
    ...(form.text !== undefined ? { text: form.text } : {}),
    ...(form.flagged !== undefined ? { flagged: true } : {}),
    ...(form.group !== undefined ? { groupBy: form.group as "person" | "role" } : {}),
  };
}

/** One change as the table shows it. */
interface ChangeRow {
  readonly key: string;
  readonly kind: PlanChangeKind;
  /** A group heading before this row (per person or per role), or null. */
  readonly group: string | null;
  readonly person: string | undefined;
  readonly name: string | undefined;
  /** What the change is about when no person is (a department path, a role). */
  readonly label: string;
  readonly role: string | undefined;
  readonly targetRole: string | undefined;
  readonly scope: string;
  readonly sensitive: boolean;
  readonly sod: boolean;
  readonly outcome: { readonly status: string; readonly failure: string | undefined } | null;
  readonly why: readonly string[];
}

/** Why a change is planned, as lines: the lineage of a grant, the reason of a removal, what differs. */
function whyLines(ctx: ConsoleContext, change: PlanChange): string[] {
  switch (change.kind) {
    case "grant":
      return change.lineage.map((step) => formatLineage([step]));
    case "revoke":
    case "disable-user":
    case "disable-department":
      return [change.reason];
    case "enable-user":
      return change.revives ? [change.reason, ctx.t("sync.plan.revives")] : [change.reason];
    case "update-user":
      return [ctx.t("sync.plan.changed", { fields: change.changed.join(", ") })];
    case "link-user":
      return [ctx.t("sync.plan.matchedBy", { how: change.matchedBy })];
    case "update-department":
      return [`${change.before.name} → ${change.fields.name}`];
    default:
      return [];
  }
}

function failureText(failure: unknown): string | undefined {
  if (typeof failure !== "object" || failure === null) return undefined;
  const { code, message } = failure as { code?: unknown; message?: unknown };
  return [code, message].filter((v) => typeof v === "string").join(": ") || undefined;
}

function changeRows(
  ctx: ConsoleContext,
  views: readonly ChangeView[],
  sodPeople: ReadonlySet<string>,
  groupBy: string | undefined,
): ChangeRow[] {
  let previous: string | undefined;
  return views.map(({ change, outcome }) => {
    const person = "person" in change ? change.person : undefined;
    const role = "role" in change ? change.role : undefined;
    const groupKey = groupBy === "person" ? (person ?? "") : groupBy === "role" ? (role ?? "") : undefined;
    const groupLabel =
      groupBy === "person"
        ? "name" in change
          ? `${change.name} (${change.person})`
          : ctx.t("sync.plan.noPerson")
        : groupBy === "role" && "targetRole" in change
          ? `${change.role} · ${change.targetRole}`
          : "—";
    const group = groupKey !== undefined && groupKey !== previous ? groupLabel : null;
    previous = groupKey;
    return {
      key: change.key,
      kind: change.kind,
      group,
      person,
      name: "name" in change ? change.name : undefined,
      label: "path" in change ? change.path : "",
      role,
      targetRole: "targetRole" in change ? change.targetRole : undefined,
      scope: "scopeLabel" in change ? change.scopeLabel : "",
      sensitive: change.kind === "grant" && change.sensitive,
      sod: person !== undefined && sodPeople.has(person),
      outcome: outcome === null ? null : { status: outcome.status, failure: failureText(outcome.failure) },
      why: whyLines(ctx, change),
    };
  });
}

/** How the plan's changes came out, once an apply has started: the counts over the whole plan. */
function applyOutcome(view: PlanView) {
  const { plan, outcomes } = view;
  if (!["applied", "partial", "applying"].includes(plan.status)) return undefined;
  return { at: shortTime(plan.updatedAt), counts: outcomes, failures: outcomes.failures };
}

/** Renders one plan: the filter from the query, or the default view (after a refused form). */
async function showPlan(
  ctx: ConsoleContext,
  id: string,
  options: { form?: ChangeForm; cursor?: string; status?: number; notice?: Notice; comment?: string } = {},
): Promise<void> {
  const form = options.form ?? {};
  const view: PlanView = await ctx.service.getPlan(ctx.caller, id, changeQuery(form, options.cursor));
  const { plan, content } = view;
  const flagged =
    form.flagged !== undefined && form.kind === undefined && form.text === undefined
      ? view.counts.matching
      : (await ctx.service.getPlan(ctx.caller, id, { flagged: true, limit: 1 })).counts.matching;
  const sensitive = typeof plan.summary.sensitiveGrants === "number" ? plan.summary.sensitiveGrants : 0;
  const total = Object.values(view.counts.all).reduce((a, b) => a + (b ?? 0), 0);
  const kept = { group: form.group, kind: form.kind, text: form.text, flagged: form.flagged };
  const decide = ctx.can("sync.decide") && plan.status === "pending";
  const apply = ctx.can("sync.decide") && (plan.status === "approved" || plan.status === "partial");
  ctx.render(
    {
      title: `${ctx.t("sync.plans.id")} ${plan.id}`,
      nav: "plans",
      ...(options.notice !== undefined ? { notice: options.notice } : {}),
      body: ctx.view("plan", {
        plan,
        content,
        badge: statusBadge(plan.status),
        created: shortTime(plan.createdAt),
        updated: shortTime(plan.updatedAt),
        decidedAt: plan.decision === null ? "" : shortTime(plan.decision.at),
        total,
        counts: APPLY_ORDER.filter((k) => (view.counts.all[k] ?? 0) > 0).map((kind) => ({
          kind,
          count: view.counts.all[kind],
        })),
        sensitive,
        flagged,
        flaggedHref: planHref(plan.id, { flagged: "1" }),
        blocked: content.blocked.map((b) => ({
          kind: b.change.kind,
          label: "name" in b.change ? b.change.name : "path" in b.change ? b.change.path : b.change.key,
          reason: b.reason,
          sources: b.sources.join(", "),
        })),
        outcome: applyOutcome(view),
        decide,
        apply,
        comment: options.comment ?? "",
        actionHref: planHref(plan.id),
        form: kept,
        kinds: APPLY_ORDER,
        matching: view.counts.matching,
        rows: changeRows(ctx, view.changes.items, new Set(content.sod.map((s) => s.person)), form.group),
        paging: pagingLinks(`/plans/${encodeURIComponent(plan.id)}`, kept, options.cursor, view.changes.next),
      }),
    },
    options.status,
  );
}

/** Where a refused or accepted decision comes back to. */
const planPath = (id: string): string => `/plans/${encodeURIComponent(id)}`;

export const planPages: PageGroup = (routes) => {
  routes.get("/plans", async (_req, ctx) => {
    const form = { status: ctx.query("status", 20), target: ctx.query("target") };
    const cursor = ctx.query("cursor", 1000);
    const found = await ctx.service.listPlans(ctx.caller, {
      ...(form.status !== undefined ? { status: form.status as PlanStatus } : {}),
      ...(form.target !== undefined ? { target: form.target } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    const num = (value: unknown): number => (typeof value === "number" ? value : 0);
    ctx.render({
      title: ctx.t("sync.plans.title"),
      nav: "plans",
      body: ctx.view("plans", {
        form,
        statuses: PLAN_STATUSES,
        plans: found.items.map((p) => ({
          id: p.id,
          href: planHref(p.id),
          status: p.status,
          badge: statusBadge(p.status),
          target: p.target,
          created: shortTime(p.createdAt),
          needsApproval: p.needsApproval,
          changes: num(p.summary.changes),
          sensitive: num(p.summary.sensitiveGrants),
          sod: num(p.summary.sod),
          decidedBy: p.decision?.by ?? "",
        })),
        paging: pagingLinks("/plans", form, cursor, found.next),
      }),
    });
  });

  routes.get("/plans/:id", async (req, ctx) => {
    const id = String(req.params.id);
    const cursor = ctx.query("cursor", 1000);
    await showPlan(ctx, id, { form: readChangeForm(ctx), ...(cursor !== undefined ? { cursor } : {}) });
  });

  routes.post("/plans/:id/decision", async (req, ctx) => {
    const id = String(req.params.id);
    // Before reading the form: someone who may not decide hears that, not what their form lacked.
    requirePermission(ctx.caller, "sync.decide");
    let comment: string | undefined;
    let decision: string | undefined;
    let hash: string | undefined;
    try {
      comment = ctx.field("comment", MAX_COMMENT);
      decision = ctx.field("decision", 10);
      hash = ctx.field("hash", 100);
    } catch (err) {
      if (!isAppError(err, "INPUT_INVALID")) throw err;
      await showPlan(ctx, id, {
        status: 400,
        notice: { kind: "error", text: ctx.t("sync.invalid", { detail: err.message }) },
      });
      return;
    }
    if (comment === undefined) {
      await showPlan(ctx, id, {
        status: 400,
        notice: { kind: "error", text: ctx.t("sync.plan.commentRequired") },
      });
      return;
    }
    if (decision !== "approve" && decision !== "reject")
      throw new AppError("INPUT_INVALID", "decision must be approve or reject", { expose: true });
    try {
      await ctx.service.decidePlan(ctx.caller, id, { decision, comment, hash: hash ?? "" });
    } catch (err) {
      if (isAppError(err, "PLAN_STATE", "PLAN_STALE")) {
        ctx.redirect(planPath(id), `error.${err.code}`);
        return;
      }
      if (isAppError(err, "INPUT_INVALID")) {
        await showPlan(ctx, id, {
          status: 400,
          comment,
          notice: { kind: "error", text: ctx.t("sync.invalid", { detail: err.message }) },
        });
        return;
      }
      throw err;
    }
    ctx.redirect(planPath(id), decision === "approve" ? "sync.done.approved" : "sync.done.rejected");
  });

  routes.post("/plans/:id/apply", async (req, ctx) => {
    const id = String(req.params.id);
    try {
      await ctx.service.applyPlan(ctx.caller, id);
    } catch (err) {
      if (isAppError(err, "PLAN_STATE", "PLAN_STALE")) {
        ctx.redirect(planPath(id), `error.${err.code}`);
        return;
      }
      throw err;
    }
    ctx.redirect(planPath(id), "sync.done.applied");
  });
};
