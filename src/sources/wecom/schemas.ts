import { z } from "zod";

// Shapes of the WeCom replies idbridge relies on (WX-DOC 90196, 90208, 96067, 90213, 91039). Unknown
// fields are allowed; a missing or mistyped field that the reader needs makes the reply MALFORMED_RESPONSE.

const optionalText = z.string().optional();

export const tokenReply = z.looseObject({
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
});

export const departmentSchema = z.looseObject({
  id: z.number().int().nonnegative(),
  name: z.string(),
  parentid: z.number().int().nonnegative(),
  order: z.number().nonnegative().optional(),
  department_leader: z.array(z.string()).optional(),
});
export type WeComDepartment = z.infer<typeof departmentSchema>;

export const departmentListReply = z.looseObject({ department: z.array(departmentSchema) });

export const userSchema = z.looseObject({
  userid: z.string().min(1),
  name: z.string(),
  department: z.array(z.number().int()),
  main_department: z.number().int().optional(),
  is_leader_in_dept: z.array(z.number().int()).optional(),
  direct_leader: z.array(z.string()).optional(),
  position: optionalText,
  mobile: optionalText,
  email: optionalText,
  biz_mail: optionalText,
  gender: optionalText,
  alias: optionalText,
  telephone: optionalText,
  open_userid: optionalText,
  english_name: optionalText,
  // WX-DOC 90196: 1 active, 2 disabled, 4 not activated, 5 left the corp.
  status: z.union([z.literal(1), z.literal(2), z.literal(4), z.literal(5)], {
    error: "must be 1, 2, 4 or 5",
  }),
  extattr: z
    .looseObject({
      attrs: z
        .array(
          z.looseObject({
            name: z.string(),
            text: z.looseObject({ value: z.string() }).optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});
export type WeComUser = z.infer<typeof userSchema>;

export const userListReply = z.looseObject({ userlist: z.array(userSchema) });

export const listIdReply = z.looseObject({
  next_cursor: z.string().optional(),
  dept_user: z.array(z.looseObject({ userid: z.string().min(1), department: z.number().int() })),
});

export const tagListReply = z.looseObject({
  taglist: z.array(z.looseObject({ tagid: z.number().int(), tagname: z.string() })),
});

export const tagGetReply = z.looseObject({
  tagname: z.string().optional(),
  userlist: z.array(z.looseObject({ userid: z.string().min(1) })).default([]),
  partylist: z.array(z.number().int()).default([]),
});

/** `userlist[3].userid: expected string` — the first problem of a failed parse, for messages. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "unexpected shape";
  let path = "";
  for (const part of issue.path)
    path += typeof part === "number" ? `[${part}]` : path === "" ? String(part) : `.${String(part)}`;
  return `${path === "" ? "reply" : path}: ${issue.message}`;
}
