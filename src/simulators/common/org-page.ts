import express, { type Router } from "express";
import { escapeHtml } from "./html.js";
import type { SimOrg } from "./org.js";

/** People rows shown at most (a benchmark org has 100,000). */
const PAGE_PEOPLE_MAX = 1000;

const STATUS_LABEL = { active: "在职", disabled: "停用", "not-activated": "未激活", left: "已离职" } as const;

/**
 * `GET /`: a read-only page of the org a DingTalk or WeCom simulator serves — its roles and people with
 * userids, departments and titles — so a person trying the demo can see whom to sign in as. Every value is
 * escaped.
 */
export function orgPageRouter(vendor: string, org: SimOrg): Router {
  const router = express.Router();
  router.get("/", (_req, res) => {
    const e = escapeHtml;
    const departments = new Map(org.departments.map((d) => [d.id, d.name]));
    const roles = org.roles
      .map((r) => `<tr><td>${e(r.group.name)}</td><td>${e(r.name)}</td><td>${r.members.length}</td></tr>`)
      .join("\n");
    const people = org.people
      .slice(0, PAGE_PEOPLE_MAX)
      .map(
        (p) =>
          `<tr><td>${e(p.name)}</td><td><code>${e(p.userid)}</code></td><td>${p.departments.map((d) => e(departments.get(d) ?? String(d))).join("、")}</td><td>${e(p.title)}</td><td>${STATUS_LABEL[p.status]}</td></tr>`,
      )
      .join("\n");
    res
      .status(200)
      .type("html")
      .set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'").send(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>${e(vendor)} simulator · ${e(org.corpName)}</title>
<style>body{font:14px sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head>
<body><h1>${e(vendor)} simulator · ${e(org.corpName)}</h1>
<p>Test data only. ${org.people.length} people, ${org.departments.length} departments.</p>
<h2>Roles</h2><table><tr><th>group</th><th>role</th><th>members</th></tr>
${roles}</table>
<h2>People</h2><table><tr><th>name</th><th>userid</th><th>departments</th><th>title</th><th>status</th></tr>
${people}</table>${org.people.length > PAGE_PEOPLE_MAX ? `<p>… and ${org.people.length - PAGE_PEOPLE_MAX} more.</p>` : ""}
</body></html>`);
  });
  return router;
}
