import express, { type Router } from "express";
import type { HesiSimState } from "../state.js";
import { escapeHtml } from "../../common/html.js";
import { formatTime } from "../present.js";

/** Staff rows shown at most (a benchmark tenant has 100,000). */
const PAGE_STAFF_MAX = 2000;

export { escapeHtml };

/**
 * `GET /`: a read-only page of the tenant — departments, staff and role members — so a person can see what
 * a sync did. Server-rendered; every value is escaped (names come from the directories).
 */
export function pageRouter(state: HesiSimState): Router {
  const router = express.Router();
  router.get("/", (_req, res) => {
    const { tenant } = state;
    const e = escapeHtml;
    const path = (id: string): string => tenant.departmentPath(id, "name").join(" / ");
    const staffName = (id: string): string => tenant.staff.get(id)?.name ?? id;
    const departments = [...tenant.departments.values()]
      .map((d) => ({ d, p: path(d.id) }))
      .sort((a, b) => a.p.localeCompare(b.p, "zh"))
      .map(
        ({ d, p }) =>
          `<tr${d.active ? "" : ' class="off"'}><td>${e(p)}</td><td><code>${e(d.id)}</code></td><td>${e(d.code)}</td><td>${d.active ? "启用" : "停用"}</td></tr>`,
      )
      .join("\n");
    const allStaff = [...tenant.staff.values()];
    const staff = allStaff
      .slice(0, PAGE_STAFF_MAX)
      .map(
        (s) =>
          `<tr${s.active ? "" : ' class="off"'}><td>${e(s.name)}</td><td><code>${e(s.id)}</code></td><td>${e(s.code)}</td><td>${e(s.cellphone)}</td><td>${e(s.showEmail)}</td><td>${s.departments.map((d) => e(path(d))).join("<br>")}</td><td>${s.active ? "在职" : "已离职"}</td><td>${s.authState ? "是" : "否"}</td><td>${e(formatTime(s.updateTime))}</td></tr>`,
      )
      .join("\n");
    const roles = [...tenant.roles.values()]
      .map((r) => {
        const rows =
          r.rows.length === 0
            ? "<li><em>无成员</em></li>"
            : r.rows
                .map(
                  (row) =>
                    `<li>${row.departmentId === null ? "" : `${e(path(row.departmentId))}: `}${row.staffs.map((s) => e(staffName(s))).join("、")}</li>`,
                )
                .join("");
        return `<section><h3>${e(r.name)} <small>${e(r.scope)} · ${e(r.sourceChannel)} · <code>${e(r.id)}</code></small></h3><ul>${rows}</ul></section>`;
      })
      .join("\n");
    res
      .status(200)
      .type("html")
      .set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'").send(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>合思模拟器 · ${e(tenant.departments.get(tenant.corpId)!.name)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}tr.off{color:#999}</style></head>
<body><h1>合思模拟器 <small>(只读)</small></h1><p>企业 <code>${e(tenant.corpId)}</code> · ${tenant.staff.size} 名员工 · ${tenant.departments.size} 个部门 · ${tenant.roles.size} 个角色</p>
<h2>部门</h2><table><thead><tr><th>路径</th><th>ID</th><th>编码</th><th>状态</th></tr></thead><tbody>
${departments}
</tbody></table>
<h2>员工</h2><table><thead><tr><th>姓名</th><th>ID</th><th>工号</th><th>手机号</th><th>邮箱</th><th>部门</th><th>状态</th><th>已授权</th><th>更新时间</th></tr></thead><tbody>
${staff}
</tbody></table>${allStaff.length > PAGE_STAFF_MAX ? `<p>…另有 ${allStaff.length - PAGE_STAFF_MAX} 名员工未显示</p>` : ""}
<h2>角色</h2>
${roles}
</body></html>`);
  });
  return router;
}
