import pLimit from "p-limit";
import { SnapshotBuilder, SourceReadError, isSourceReadError } from "../builder.js";
import type {
  DirectorySnapshot,
  IncompleteCode,
  IncompleteReason,
  SourceGroup,
  UnavailableField,
} from "../snapshot.js";
import type {
  DirectoryReader,
  ReadOptions,
  ReadProgress,
  SourceContext,
  SourceTestReport,
} from "../source.js";
import { WeComClient } from "./client.js";
import type { WeComConfig } from "./config.js";
import { toDepartment, toPerson } from "./map.js";
import {
  departmentListReply,
  listIdReply,
  tagGetReply,
  tagListReply,
  userListReply,
  userSchema,
  type WeComDepartment,
  type WeComUser,
} from "./schemas.js";

/** Failures after which reading on only produces the same failure again. */
const STOPS_THE_READ: ReadonlySet<IncompleteCode> = new Set([
  "AUTH_FAILED",
  "BANNED",
  "RATE_LIMITED",
  "UNREACHABLE",
  "TLS_FAILED",
  "ABORTED",
]);

/** user/list_id answers 50100 to a cursor it no longer accepts: start the listing again (WXJ). */
const CURSOR_REJECTED: ReadonlyMap<number, "cursor-rejected"> = new Map([[50100, "cursor-rejected"]]);

/** Fields WeCom withholds from self-built apps created after 2022-06-20 (WX-DOC 96255, 96260). */
const RESTRICTED_FIELDS = ["mobile", "email"] as const;

/** Reads one WeCom corp: departments, people, tags. */
export class WeComReader implements DirectoryReader {
  private readonly client: WeComClient;

  constructor(
    private readonly context: SourceContext,
    private readonly config: WeComConfig,
  ) {
    this.client = new WeComClient(context, config);
  }

  async test(): Promise<SourceTestReport> {
    const found: string[] = [`corp ${this.config.corpId}, read with ${this.client.describeSecret()}`];
    const problems: IncompleteReason[] = [];
    const unavailable: UnavailableField[] = [];
    const attempt = async (run: () => Promise<void>): Promise<boolean> => {
      try {
        await run();
        return true;
      } catch (error) {
        if (!isSourceReadError(error)) throw error;
        problems.push(error.reason);
        return false;
      }
    };
    if (!(await attempt(() => this.client.token())))
      return { ok: false, found, problems, unavailableFields: [] };
    found.push("access token issued");
    let departments: WeComDepartment[] = [];
    await attempt(async () => {
      departments = await this.listDepartments();
      found.push(`${departments.length} departments visible`);
    });
    let users: WeComUser[] = [];
    if (this.config.listing === "list-id") {
      await attempt(async () => {
        const page = await this.client.call(
          "/cgi-bin/user/list_id",
          { method: "POST", body: { limit: 100 } },
          listIdReply,
          "POST /cgi-bin/user/list_id (first page)",
        );
        found.push(
          `user/list_id: ${page.dept_user.length} rows on the first page${page.next_cursor ? ", more to come" : ""}`,
        );
        const first = page.dept_user[0];
        if (first !== undefined) users = [await this.getUser(first.userid)];
      });
    } else {
      // The top department often holds one or two people; look a little further for a real page.
      for (const dept of departments.slice(0, 5)) {
        const ok = await attempt(async () => {
          const page = (await this.listDepartment(dept.id)).userlist;
          users = [...users, ...page];
          found.push(`department ${dept.id} (${dept.name}): ${page.length} direct members`);
        });
        if (!ok || users.length >= 3) break;
      }
    }
    if (this.config.readTags) {
      await attempt(async () => {
        const tags = await this.listTags();
        found.push(`${tags.length} tags`);
      });
    }
    if (users.length > 0)
      unavailable.push(
        ...this.unavailableFields(users.map((u) => toPerson(u, this.config.employeeNoAttribute))),
      );
    return { ok: problems.length === 0, found, problems, unavailableFields: unavailable };
  }

  async read(options: ReadOptions = { mode: "full" }): Promise<DirectorySnapshot> {
    // WeCom has no change feed to read from here (contact callbacks are a separate feature): every read is full.
    const builder = new SnapshotBuilder(this.context, "wecom", "full");
    if (options.mode === "incremental")
      builder.warn("WeCom offers no incremental read; this was a full read");
    const progress = (p: ReadProgress): void => options.onProgress?.(p);
    let stopped: IncompleteReason | undefined;
    const run = async (step: () => Promise<void>): Promise<void> => {
      if (stopped !== undefined) return;
      if (options.signal?.aborted) {
        stopped = { code: "ABORTED", message: `${this.context.sourceId}: read aborted` };
        builder.fail(stopped);
        return;
      }
      try {
        await step();
      } catch (error) {
        if (!isSourceReadError(error)) throw error;
        // Calls in flight when the read was aborted all end the same way; one reason says it.
        // (`stopped` may have been set by another step while this one awaited.)
        const already = stopped as IncompleteReason | undefined;
        if (error.reason.code === "ABORTED" && already?.code === "ABORTED") return;
        builder.fail(error.reason);
        if (STOPS_THE_READ.has(error.reason.code)) stopped = error.reason;
        else if (builder.giveUpIfFailing()) stopped = error.reason;
      }
    };
    const signal = options.signal;

    await run(() => this.client.token());
    let departments: WeComDepartment[] = [];
    await run(async () => {
      departments = await this.listDepartments(signal);
    });
    if (builder.failed) return builder.finish();
    const known = new Set(departments.map((d) => d.id));
    for (const d of departments) builder.addDepartment(toDepartment(d, known));
    progress({ phase: "departments", done: departments.length, total: departments.length });

    const membersOf = new Map<number, string[]>();
    const people: ReturnType<typeof toPerson>[] = [];
    const add = (user: WeComUser): void => {
      const person = toPerson(user, this.config.employeeNoAttribute);
      if (builder.getPerson(person.subject) === undefined) {
        people.push(person);
        for (const d of user.department) append(membersOf, d, user.userid);
      }
      builder.addPerson(person);
    };
    const limit = pLimit(this.config.concurrency);

    if (this.config.listing === "department") {
      // user/list gives direct members only (WX-DOC 96260), so every department is asked once.
      let done = 0;
      await Promise.all(
        departments.map((d) =>
          limit(() =>
            run(async () => {
              for (const user of (await this.listDepartment(d.id, signal)).userlist) add(user);
              progress({ phase: "people", done: ++done, total: departments.length });
            }),
          ),
        ),
      );
    } else {
      const userids = new Set<string>();
      await run(async () => {
        for (const id of await this.listIds(signal)) userids.add(id);
      });
      let done = 0;
      await Promise.all(
        [...userids].map((userid) =>
          limit(() =>
            run(async () => {
              try {
                add(await this.getUser(userid, signal));
              } catch (error) {
                // Deleted between user/list_id and user/get: gone, and correctly absent.
                if (!isSourceReadError(error) || error.reason.code !== "NOT_FOUND") throw error;
                builder.warn(
                  `${this.context.sourceId}: ${userid} was listed by user/list_id but is gone from user/get`,
                );
              }
              progress({ phase: "people", done: ++done, total: userids.size });
            }),
          ),
        ),
      );
    }
    if (stopped !== undefined)
      builder.warn(`${this.context.sourceId}: the read stopped early: ${stopped.message}`);
    for (const field of people.length > 0 ? this.unavailableFields(people) : [])
      builder.markUnavailable(field.field, field.reason);

    if (this.config.readTags && stopped === undefined) {
      let tags: { tagid: number; tagname: string }[] = [];
      await run(async () => {
        tags = await this.listTags(signal);
      });
      const children = new Map<number, number[]>();
      for (const d of departments) append(children, d.parentid, d.id);
      let done = 0;
      await Promise.all(
        tags.map((tag) =>
          limit(() =>
            run(async () => {
              const reply = await this.client.call(
                "/cgi-bin/tag/get",
                { method: "GET", query: { tagid: String(tag.tagid) } },
                tagGetReply,
                `GET /cgi-bin/tag/get tagid ${tag.tagid}`,
                signal,
              );
              builder.addGroup(tagGroup(tag, reply, children, membersOf));
              progress({ phase: "groups", done: ++done, total: tags.length });
            }),
          ),
        ),
      );
    }
    return builder.finish();
  }

  async close(): Promise<void> {}

  private async listDepartments(signal?: AbortSignal): Promise<WeComDepartment[]> {
    const reply = await this.client.call(
      "/cgi-bin/department/list",
      { method: "GET" },
      departmentListReply,
      "GET /cgi-bin/department/list",
      signal,
    );
    return reply.department;
  }

  private async listTags(signal?: AbortSignal): Promise<{ tagid: number; tagname: string }[]> {
    const reply = await this.client.call(
      "/cgi-bin/tag/list",
      { method: "GET" },
      tagListReply,
      "GET /cgi-bin/tag/list",
      signal,
    );
    return reply.taglist;
  }

  private listDepartment(id: number, signal?: AbortSignal): Promise<{ userlist: WeComUser[] }> {
    return this.client.call(
      "/cgi-bin/user/list",
      { method: "GET", query: { department_id: String(id) } },
      userListReply,
      `GET /cgi-bin/user/list department_id ${id}`,
      signal,
    );
  }

  private getUser(userid: string, signal?: AbortSignal): Promise<WeComUser> {
    return this.client.call(
      "/cgi-bin/user/get",
      { method: "GET", query: { userid } },
      userSchema,
      `GET /cgi-bin/user/get userid ${userid}`,
      signal,
    );
  }

  /**
   * Every userid from user/list_id (one row per user and department). The cursor is not bound to the
   * token, so a refresh repeats the same cursor; an invalid cursor (50100) restarts the listing once.
   */
  private async listIds(signal?: AbortSignal): Promise<Set<string>> {
    for (let restart = 0; ; restart++) {
      const userids = new Set<string>();
      let cursor = "";
      for (let page = 1; ; page++) {
        const where = `POST /cgi-bin/user/list_id page ${page}${cursor === "" ? "" : ` cursor ${cursor}`}`;
        const reply = await this.client.call(
          "/cgi-bin/user/list_id",
          {
            method: "POST",
            body: cursor === "" ? { limit: this.config.pageSize } : { cursor, limit: this.config.pageSize },
          },
          listIdReply,
          where,
          signal,
          CURSOR_REJECTED,
        );
        if (reply === "cursor-rejected") {
          if (restart >= 1) {
            throw new SourceReadError({
              code: "SERVER_ERROR",
              message: `${this.context.sourceId}: WeCom rejected its own user/list_id cursor (errcode 50100) twice, also after starting the listing again; read again later`,
              where,
            });
          }
          break;
        }
        for (const row of reply.dept_user) userids.add(row.userid);
        // WX-DOC 96067: an empty or absent next_cursor ends the listing.
        if (reply.next_cursor === undefined || reply.next_cursor === "") return userids;
        cursor = reply.next_cursor;
      }
    }
  }

  private unavailableFields(people: readonly { mobile?: string; email?: string }[]): UnavailableField[] {
    if (this.client.kind !== "app") return [];
    return RESTRICTED_FIELDS.filter((field) => people.every((p) => p[field] === undefined)).map((field) => ({
      field,
      reason: `WeCom returned no ${field} for anyone to app ${this.config.agentId ?? "?"}: since 2022-06-20 self-built apps no longer get mobile, email, gender or avatar from user/get and user/list; read with the 通讯录同步 secret (contactSecret), or collect them at sign-in (snsapi_privateinfo)`,
    }));
  }
}

/**
 * A tag as a group. Direct members are the tag's users; members add everyone in the tagged departments
 * and, transitively, in their sub-departments — WeCom applies a department tag (partylist) to the whole
 * subtree, as it does for visible ranges.
 */
function tagGroup(
  tag: { tagid: number; tagname: string },
  reply: { tagname?: string | undefined; userlist: { userid: string }[]; partylist: number[] },
  children: ReadonlyMap<number, readonly number[]>,
  membersOf: ReadonlyMap<number, readonly string[]>,
): SourceGroup {
  const direct = [...new Set(reply.userlist.map((u) => u.userid))];
  const members = new Set(direct);
  const seen = new Set<number>();
  const stack = [...reply.partylist];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const userid of membersOf.get(id) ?? []) members.add(userid);
    stack.push(...(children.get(id) ?? []));
  }
  return {
    id: String(tag.tagid),
    name: reply.tagname ?? tag.tagname,
    kind: "tag",
    members: [...members].sort(),
    directMembers: direct.sort(),
  };
}

function append<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
