import { createHash } from "node:crypto";
import express, { type Request, type Response, type Router } from "express";
import type { SimDepartment } from "../../common/org.js";
import { sendError, sendOk } from "../errors.js";
import { guardApi, principal } from "../guard.js";
import { canSeeDepartment, type Principal, type WeComSimState } from "../state.js";
import { canSeePerson, renderSimpleUser, renderUser } from "../users.js";

/** user/list_id: `limit` 1..10000 (WX-DOC 96067). */
const LIST_ID_MAX = 10_000;

/**
 * The contact APIs under /cgi-bin (WX-DOC B4 of the reference): departments, users, user/list_id, tags.
 * Every route runs behind {@link guardApi}.
 */
export function directoryRouter(state: WeComSimState): Router {
  const router = express.Router();
  router.use(guardApi(state));
  router.use(express.json());
  const { index } = state;

  const departmentParam = (
    req: Request,
    res: Response,
    name: string,
    required: boolean,
  ): SimDepartment | null | undefined => {
    const raw = req.query[name];
    if (raw === undefined || raw === "") {
      if (required) sendError(state, req, res, 60123);
      return required ? undefined : null;
    }
    const id = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(id)) {
      sendError(state, req, res, 60123);
      return undefined;
    }
    const dept = index.departments.get(id);
    if (dept === undefined) {
      sendError(state, req, res, 60003);
      return undefined;
    }
    if (!canSeeDepartment(state, principal(res), id)) {
      sendError(state, req, res, 60011);
      return undefined;
    }
    return dept;
  };

  const visibleTree = (who: Principal, from: SimDepartment | null): SimDepartment[] => {
    const roots = from !== null ? [from.id] : who.kind === "contact-sync" ? [1] : who.app.visibleRoots;
    const seen = new Set<number>();
    const out: SimDepartment[] = [];
    for (const root of roots) {
      if (!index.departments.has(root)) continue;
      for (const id of index.subtree(root)) {
        if (seen.has(id)) continue;
        seen.add(id);
        out.push(index.departments.get(id)!);
      }
    }
    return out;
  };

  const renderDepartment = (d: SimDepartment): Record<string, unknown> => ({
    id: d.id,
    name: d.name,
    name_en: d.nameEn,
    department_leader: d.leaders,
    parentid: d.parentId,
    order: d.order,
  });

  // WX-DOC 90208: `id` optional; the department and its whole subtree, or the whole visible tree.
  router.get("/department/list", (req, res) => {
    const from = departmentParam(req, res, "id", false);
    if (from === undefined) return;
    sendOk(res, { department: visibleTree(principal(res), from).map(renderDepartment) });
  });

  // WX-DOC 95350: ids only, same scope as department/list.
  router.get("/department/simplelist", (req, res) => {
    const from = departmentParam(req, res, "id", false);
    if (from === undefined) return;
    sendOk(res, {
      department_id: visibleTree(principal(res), from).map((d) => ({
        id: d.id,
        parentid: d.parentId,
        order: d.order,
      })),
    });
  });

  router.get("/department/get", (req, res) => {
    const dept = departmentParam(req, res, "id", true);
    if (dept === undefined || dept === null) return;
    sendOk(res, { department: renderDepartment(dept) });
  });

  router.get("/user/get", (req, res) => {
    const userid = typeof req.query.userid === "string" ? req.query.userid : "";
    if (userid === "") return sendError(state, req, res, 41009);
    const person = index.people.get(userid);
    if (person === undefined) return sendError(state, req, res, 60111);
    if (!canSeePerson(state, principal(res), person)) return sendError(state, req, res, 60011);
    sendOk(res, renderUser(state, principal(res), person));
  });

  // WX-DOC 96259 / 96260: direct members only (`fetch_child` is gone from the current docs).
  router.get("/user/simplelist", (req, res) => {
    const dept = departmentParam(req, res, "department_id", true);
    if (dept === undefined || dept === null) return;
    const who = principal(res);
    sendOk(res, { userlist: (index.members.get(dept.id) ?? []).map((p) => renderSimpleUser(state, who, p)) });
  });

  router.get("/user/list", (req, res) => {
    const dept = departmentParam(req, res, "department_id", true);
    if (dept === undefined || dept === null) return;
    const who = principal(res);
    sendOk(res, {
      userlist: (index.members.get(dept.id) ?? []).map((p) =>
        renderUser(state, who, p, { english_name: p.pinyin }),
      ),
    });
  });

  // WX-DOC 96067: only with the 通讯录同步 secret; string cursor; limit 1..10000; empty next_cursor = end.
  router.post("/user/list_id", (req, res) => {
    if (principal(res).kind !== "contact-sync") return sendError(state, req, res, 48002);
    const body = (req.body ?? {}) as { cursor?: unknown; limit?: unknown };
    const limit = body.limit === undefined ? LIST_ID_MAX : body.limit;
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > LIST_ID_MAX) {
      return sendError(state, req, res, 40058);
    }
    const rows = index.listIdRows();
    let offset = 0;
    if (body.cursor !== undefined && body.cursor !== "") {
      const decoded = typeof body.cursor === "string" ? decodeCursor(state.corpId, body.cursor) : null;
      if (decoded === null || decoded > rows.length) return sendError(state, req, res, 50100);
      offset = decoded;
    }
    const end = Math.min(rows.length, offset + limit);
    sendOk(res, {
      ...(end < rows.length ? { next_cursor: encodeCursor(state.corpId, end) } : {}),
      dept_user: rows.slice(offset, end),
    });
  });

  router.get("/tag/list", (_req, res) => {
    sendOk(res, { taglist: state.index.org.roles.map((r) => ({ tagid: r.id, tagname: r.name })) });
  });

  // WX-DOC 90213: only members and departments the caller can see.
  router.get("/tag/get", (req, res) => {
    const raw = typeof req.query.tagid === "string" ? req.query.tagid : "";
    const tag = /^\d+$/.test(raw) ? index.tags.get(Number(raw)) : undefined;
    if (tag === undefined) return sendError(state, req, res, 40068);
    const who = principal(res);
    const userlist: { userid: string; name: string }[] = [];
    for (const userid of tag.members) {
      const p = index.people.get(userid);
      if (p !== undefined && canSeePerson(state, who, p)) userlist.push({ userid: p.userid, name: p.name });
    }
    sendOk(res, {
      tagname: tag.name,
      userlist,
      partylist: tag.departments.filter((d) => canSeeDepartment(state, who, d)),
    });
  });
  return router;
}

// The cursor is opaque to clients: an offset with a check, so edited or foreign cursors get 50100. It is
// not bound to the access token, so a client may repeat it after refreshing the token.
function cursorCheck(corpId: string, offset: number): string {
  return createHash("sha256").update(`${corpId}:${offset}`).digest("hex").slice(0, 12);
}

function encodeCursor(corpId: string, offset: number): string {
  return Buffer.from(`${offset}:${cursorCheck(corpId, offset)}`).toString("base64url");
}

function decodeCursor(corpId: string, cursor: string): number | null {
  const match = /^(\d+):([0-9a-f]{12})$/.exec(Buffer.from(cursor, "base64url").toString());
  if (match === null) return null;
  const offset = Number(match[1]);
  return match[2] === cursorCheck(corpId, offset) ? offset : null;
}
