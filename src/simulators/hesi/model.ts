/**
 * The records a 合思 (Hesi) tenant holds, as its open API shows them (reference finance-targets.md §1.3–§1.6;
 * vendor docs `ekuaibao/open-platform-docs`, `docs/open-api/contacts/*.md` and `corporation/*.md`).
 */

/** A staff member (员工). `id` is `<corpId>:<userId>`. */
export interface HesiStaff {
  /** `<corpId>:<userId>`. */
  id: string;
  name: string;
  /** 工号; may be empty and is not unique in Hesi. */
  code: string;
  /** Department ids; the first is not necessarily the default. */
  departments: string[];
  defaultDepartment: string;
  /** Login phone; "" when the staff signs in by email only. */
  cellphone: string;
  /** false = 已离职 (disabled, "removed from the company"); there is no delete. */
  active: boolean;
  /** Third-party id (DingTalk/WeCom userid or ours); the part after `corpId:` unless `useNewAccount`. */
  userId: string;
  /** Login email, lower-cased; "" when none. */
  email: string;
  /** Email as given (case kept). */
  showEmail: string;
  external: boolean;
  /** Licensed (授权); a re-enabled staff must be re-activated through charge/powers/authStaff. */
  authState: boolean;
  note: string;
  staffCustomForm: Record<string, unknown>;
  /** Epoch ms. */
  createTime: number;
  /** Epoch ms. */
  updateTime: number;
}

/** A department (部门). The root's id is the corpId and its parentId is "". */
export interface HesiDepartment {
  id: string;
  name: string;
  parentId: string;
  active: boolean;
  code: string;
  form: Record<string, unknown>;
  order: number;
  /** Epoch ms. */
  createTime: number;
  /** Epoch ms. */
  updateTime: number;
}

/** Where a role definition's rows point: nothing (普通角色), departments (部门角色) or dimension items. */
export type HesiRoleScope = string;

/** One row of a role: a department (or nothing, for a plain role) and its members. */
export interface HesiRoleRow {
  /** Leaf department id; null for a plain role's single row. */
  departmentId: string | null;
  /** Staff ids. */
  staffs: string[];
}

/** A role definition (角色). */
export interface HesiRoleDef {
  id: string;
  name: string;
  /** `普通角色`, `部门角色` or `<档案名>角色`. */
  scope: HesiRoleScope;
  roleGroupId: string;
  /** `API` roles can be written through v1 and v1.1; `MANUAL` ones only through v1.1. */
  sourceChannel: "MANUAL" | "API";
  rows: HesiRoleRow[];
}

/** A role group (角色组). */
export interface HesiRoleGroup {
  id: string;
  name: string;
}

export const PLAIN_ROLE = "普通角色";
export const DEPARTMENT_ROLE = "部门角色";

/**
 * A refusal as Hesi answers it: an HTTP status and a message. The body shape is not documented for every
 * endpoint (reference §1.7); the contacts pages show `{errorCode, errorMessage, errorDetails, code, data}`.
 */
export class HesiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HesiFailure";
  }
}

/** Throws a {@link HesiFailure}. */
export function fail(status: number, message: string): never {
  throw new HesiFailure(status, message);
}
