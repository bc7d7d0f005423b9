import { z } from "zod";

/**
 * What the reader expects from DingTalk (reference A2, A6). Objects are not strict: DingTalk adds fields
 * over time. Every field the reader uses is checked, so a changed API shows up as MALFORMED_RESPONSE
 * naming the field, not as people with missing data.
 */

/** `GET /gettoken`. */
export const legacyTokenSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
});

/** `POST /v1.0/oauth2/accessToken`. */
export const apiTokenSchema = z.object({
  accessToken: z.string().min(1),
  expireIn: z.number().int().positive(),
});

const deptId = z.number().int().nonnegative();

/** `POST /topapi/v2/department/listsubid`. */
export const subDepartmentsSchema = z.object({
  result: z.object({ dept_id_list: z.array(deptId) }),
});

/** `POST /topapi/v2/department/get`. */
export const departmentSchema = z.object({
  result: z.object({
    dept_id: deptId,
    name: z.string(),
    parent_id: deptId.optional(),
    order: z.number().optional(),
    dept_manager_userid_list: z.array(z.string()).optional(),
  }),
});

/** One person of `user/list` (the fields the reader maps; mobile/email only with their permissions). */
const listedUser = z.object({
  userid: z.string().min(1),
  unionid: z.string().optional(),
  name: z.string(),
  mobile: z.string().optional(),
  state_code: z.string().optional(),
  email: z.string().optional(),
  org_email: z.string().optional(),
  job_number: z.string().optional(),
  title: z.string().optional(),
  dept_id_list: z.array(deptId).min(1),
  active: z.boolean().optional(),
  admin: z.boolean().optional(),
  boss: z.boolean().optional(),
  leader: z.boolean().optional(),
});
export type ListedUser = z.infer<typeof listedUser>;

/** `POST /topapi/v2/user/list`: has_more, and next_cursor whenever there is more. */
export const userPageSchema = z.object({
  result: z
    .object({
      has_more: z.boolean(),
      next_cursor: z.number().int().nonnegative().optional(),
      list: z.array(listedUser),
    })
    .refine((page) => !page.has_more || page.next_cursor !== undefined, {
      message: "missing while has_more is true",
      path: ["next_cursor"],
    }),
});

/** `POST /topapi/v2/user/get`: the list fields plus manager and per-department leader flags. */
export const userDetailSchema = z.object({
  result: listedUser.extend({
    manager_userid: z.string().optional(),
    leader_in_dept: z.array(z.object({ dept_id: deptId, leader: z.boolean() })).optional(),
  }),
});
export type UserDetail = z.infer<typeof userDetailSchema>["result"];

/** `POST /topapi/role/list`: role groups with their roles, offset paging with camelCase hasMore. */
export const roleGroupPageSchema = z.object({
  result: z.object({
    hasMore: z.boolean(),
    list: z.array(
      z.object({
        groupId: z.number().int(),
        name: z.string(),
        roles: z.array(z.object({ id: z.number().int(), name: z.string() })).default([]),
      }),
    ),
  }),
});

/** `POST /topapi/role/simplelist`. */
export const roleMemberPageSchema = z.object({
  result: z.object({
    hasMore: z.boolean(),
    list: z.array(z.object({ userid: z.string().min(1) })),
  }),
});

/** `POST /v1.0/oauth2/userAccessToken` (reference A3): `corpId` comes with scope `openid corpid`. */
export const userAccessTokenSchema = z.object({
  accessToken: z.string().min(1),
  corpId: z.string().optional(),
});

/** `GET /v1.0/contact/users/me`: only the unionId is used; the self-set email and mobile never are. */
export const contactMeSchema = z.object({ unionId: z.string().min(1) });

// The legacy errcodes sign-in takes as answers (replies.ts `Endpoint.answers`).
const answered = (codes: readonly number[]) =>
  z.object({ errcode: z.number().refine((code) => codes.includes(code)), errmsg: z.string() });

/** `POST /topapi/user/getbyunionid`: contact_type 0 employee, 1 external contact; 60121 not in the org. */
export const byUnionIdSchema = z.union([
  z.object({
    errcode: z.literal(0),
    result: z.object({ contact_type: z.number().int().optional(), userid: z.string().min(1) }),
  }),
  answered([60121]),
]);

/** `POST /topapi/v2/user/getuserinfo` (reference A5): 40078 for an unknown, used or expired code. */
export const userInfoSchema = z.union([
  z.object({ errcode: z.literal(0), result: z.object({ userid: z.string().min(1) }) }),
  answered([40078]),
]);

/** `POST /topapi/v2/user/get` at sign-in: the person, or 60121 / 33012 when no longer in the org. */
export const userDetailOrGoneSchema = z.union([
  userDetailSchema.extend({ errcode: z.literal(0) }),
  answered([60121, 33012]),
]);
