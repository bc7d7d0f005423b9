/**
 * Sync history (`/runs`): every run, newest first, with when and how it started, how long it took, its
 * plan, whether each source was read completely, what was applied and what failed and why — read from the
 * run's summary as the sync records it (src/sync/service.ts: `sources`, `apply`, `error`, `waitingFor`,
 * and `actor` for an apply from the console or the API).
 */
import type { SyncRunRecord } from "../../store/store.js";
import { defineTemplate, pagingLinks } from "../layout.js";
import type { PageGroup } from "../router.js";
import { shortTime } from "./audit.js";
import { statusBadge } from "./plans.js";

defineTemplate(
  "runs",
  `<p class="muted"><%= it.t("sync.runs.intro") %></p>
<section>
<form class="filters" method="get" action="<%= it.base %>/runs" data-testid="runs-filters">
<label><%= it.t("sync.target") %><input type="text" name="target" maxlength="200" value="<%= it.form.target || "" %>"></label>
<button type="submit"><%= it.t("form.apply") %></button>
<a class="button secondary" href="<%= it.base %>/runs"><%= it.t("form.reset") %></a>
</form>
</section>
<section>
<% if (it.runs.length === 0) { %><p class="muted" data-testid="runs-empty"><%= it.t("paging.none") %></p><% } else { %>
<div class="table"><table data-testid="runs-table">
<thead><tr><th><%= it.t("sync.runs.started") %></th><th><%= it.t("sync.runs.finished") %></th><th class="num"><%= it.t("sync.runs.duration") %></th><th><%= it.t("sync.runs.trigger") %></th><th><%= it.t("sync.target") %></th><th><%= it.t("sync.status") %></th><th><%= it.t("sync.runs.plan") %></th><th><%= it.t("sync.runs.sources") %></th><th class="num"><%= it.t("sync.runs.applied") %></th><th class="num"><%= it.t("sync.runs.failed") %></th><th><%= it.t("sync.runs.details") %></th></tr></thead>
<tbody><% it.runs.forEach(function (r) { %><tr data-testid="run-row" data-run="<%= r.id %>" data-status="<%= r.status %>">
<td class="mono"><%= r.started %></td>
<td class="mono"><%= r.finished === null ? it.t("sync.runs.running") : r.finished %></td>
<td class="num"><%= r.seconds === null ? "" : it.t("sync.runs.seconds", { value: r.seconds }) %></td>
<td><%= it.t("sync.runs.triggers." + r.trigger) %></td>
<td class="mono"><%= r.target %></td>
<td><span class="badge <%= r.badge %>"><%= it.t("sync.runs.statuses." + r.status) %></span></td>
<td><% if (r.planId) { %><a class="mono" href="<%= it.base %>/plans/<%= encodeURIComponent(r.planId) %>" data-testid="run-plan"><%= r.planId %></a><% } %></td>
<td><% r.sources.forEach(function (s) { %><div><span class="mono"><%= s.id %></span> <span class="badge <%= s.complete ? "ok" : "danger" %>"><%= s.complete ? it.t("sync.plan.complete") : it.t("sync.plan.incomplete") %></span><% if (s.people !== null) { %> <span class="muted"><%= it.t("sync.plan.people", { count: s.people }) %></span><% } %><% if (s.reasons.length > 0) { %><ul class="why"><% s.reasons.forEach(function (m) { %><li><%= m %></li><% }) %></ul><% } %></div><% }) %></td>
<td class="num" data-testid="run-applied"><%= r.applied === null ? "" : r.applied %></td>
<td class="num" data-testid="run-failed"><%= r.failed === null ? "" : r.failed %></td>
<td><% if (r.problems.length > 0) { %><details data-testid="run-failures"><summary><%= it.t("sync.runs.show") %></summary><ul class="why"><% r.problems.forEach(function (p) { %><li><%= p %></li><% }) %></ul></details><% } %><% if (r.waitingFor) { %><span class="muted"><%= it.t("sync.runs.waitingFor", { plan: r.waitingFor }) %></span><% } %><% if (r.actor) { %><span class="muted mono" data-testid="run-actor"><%= it.t("sync.runs.appliedBy", { actor: r.actor }) %></span><% } %></td>
</tr><% }) %></tbody></table></div><% } %>
<%~ include("@paging", it) %>
</section>`,
);

type Json = Record<string, unknown>;

const objectOf = (value: unknown): Json =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
const numberOf = (value: unknown): number | null => (typeof value === "number" ? value : null);
const textOf = (value: unknown): string => (typeof value === "string" ? value : "");

/** A run as the table shows it; summary keys the sync did not write are simply absent. */
function runRow(run: SyncRunRecord, stopped: (reason: string) => string) {
  const summary = objectOf(run.summary);
  const apply = objectOf(summary.apply);
  const duration =
    numberOf(summary.durationMs) ??
    (run.finishedAt === null ? null : Date.parse(run.finishedAt) - Date.parse(run.startedAt));
  const failures = Array.isArray(apply.failures)
    ? apply.failures.map((f) => {
        const o = objectOf(f);
        return `${textOf(o.key)} — ${textOf(o.code)}: ${textOf(o.message)}`;
      })
    : [];
  const problems = [
    ...(typeof summary.error === "string" ? [summary.error] : []),
    ...(typeof apply.stoppedBecause === "string" ? [stopped(apply.stoppedBecause)] : []),
    ...failures,
  ];
  return {
    id: run.id,
    status: run.status,
    badge: statusBadge(run.status),
    trigger: run.trigger,
    target: run.target,
    started: shortTime(run.startedAt),
    finished: run.finishedAt === null ? null : shortTime(run.finishedAt),
    seconds: duration === null || Number.isNaN(duration) ? null : (duration / 1000).toFixed(1),
    planId: run.planId,
    waitingFor: textOf(summary.waitingFor),
    // Who applied, for runs that are an apply from the console or the API.
    actor: textOf(summary.actor),
    sources: (Array.isArray(summary.sources) ? summary.sources : []).map((s) => {
      const o = objectOf(s);
      return {
        id: textOf(o.id),
        complete: o.complete === true,
        people: numberOf(o.people),
        reasons: Array.isArray(o.reasons) ? o.reasons.map(textOf) : [],
      };
    }),
    applied: numberOf(apply.applied),
    failed: numberOf(apply.failed),
    problems,
  };
}

export const runPages: PageGroup = (routes) => {
  routes.get("/runs", async (_req, ctx) => {
    const form = { target: ctx.query("target") };
    const cursor = ctx.query("cursor", 1000);
    const found = await ctx.service.listSyncRuns(ctx.caller, {
      ...(form.target !== undefined ? { target: form.target } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    ctx.render({
      title: ctx.t("sync.runs.title"),
      nav: "runs",
      body: ctx.view("runs", {
        form,
        runs: found.items.map((run) =>
          runRow(run, (reason) => ctx.t("sync.runs.stoppedBecause", { reason })),
        ),
        paging: pagingLinks("/runs", form, cursor, found.next),
      }),
    });
  });
};
