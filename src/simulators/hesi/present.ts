import type { HesiDepartment, HesiStaff } from "./model.js";
import type { HesiTenant } from "./tenant.js";

const CHINA_OFFSET_MS = 8 * 3_600_000;

/** Epoch ms as Hesi prints times: `2022-08-05 14:59:19`, China time. */
export function formatTime(ms: number): string {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace("T", " ");
}

/** A `startDate`/`endDate` query value: epoch ms, or `YYYY-MM-DD[ HH:mm:ss]` in China time; undefined when absent or unreadable. */
export function parseTime(value: unknown): number | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value);
  if (m === null) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0"] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - CHINA_OFFSET_MS;
}

/** A staff as the API shows it. */
export function presentStaff(s: HesiStaff, tenant?: HesiTenant): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    nickName: s.name,
    code: s.code,
    departments: [...s.departments],
    defaultDepartment: s.defaultDepartment,
    cellphone: s.cellphone,
    active: s.active,
    userId: s.userId,
    email: s.email,
    showEmail: s.showEmail,
    external: s.external,
    authState: s.authState,
    note: s.note,
    staffCustomForm: { ...s.staffCustomForm },
    ...(tenant === undefined ? {} : { roles: tenant.rolesOf(s.id) }),
    updateTime: formatTime(s.updateTime),
    createTime: formatTime(s.createTime),
  };
}

/** A department as the API shows it. */
export function presentDepartment(d: HesiDepartment): Record<string, unknown> {
  return {
    id: d.id,
    name: d.name,
    parentId: d.parentId,
    active: d.active,
    code: d.code,
    form: { ...d.form },
    order: d.order,
  };
}
