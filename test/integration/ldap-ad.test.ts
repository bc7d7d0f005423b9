/**
 * The ldap source against a real Samba AD DC (started and seeded once per run by test/peers/global-setup.ts
 * from test/fixtures/ldap/ad-directory.ts). Small page and range sizes make the paged and ranged paths run.
 */
import { readFile } from "node:fs/promises";
import { Attribute, Change, Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LdapConfig } from "../../src/sources/ldap/config.js";
import { openLdapDirectory } from "../../src/sources/ldap/reader.js";
import type { DirectorySnapshot, SourceGroup, SourcePerson } from "../../src/sources/snapshot.js";
import type { ReadOptions } from "../../src/sources/source.js";
import {
  AD_PROBE_USER,
  AD_USERS,
  BIG,
  BIG_USERS,
  ENG,
  ENG_GROUPS,
  GROUPS,
  ODD_GROUP_CN,
  SALES,
  SALES_GROUPS,
} from "../fixtures/ldap/ad-directory.js";
import { adTestConfig, ldapTestContext, readLdap } from "../helpers/ldap.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();
const context = ldapTestContext("corp-ad");
const config = adTestConfig;
const read = (cfg: LdapConfig, options?: ReadOptions): Promise<DirectorySnapshot> =>
  readLdap(context, cfg, options);

function byUsername(snapshot: DirectorySnapshot, username: string): SourcePerson {
  const person = snapshot.people.find((p) => p.username === username);
  if (person === undefined) throw new Error(`no person ${username} in the snapshot`);
  return person;
}

function groupAt(snapshot: DirectorySnapshot, dn: string): SourceGroup {
  const group = snapshot.groups.find((g) => g.path?.toLowerCase() === dn.toLowerCase());
  if (group === undefined) throw new Error(`no group ${dn} in the snapshot`);
  return group;
}

describe.skipIf(samba === null)("ldap source on a real Samba AD DC", () => {
  const info = samba!;
  let admin: Client;
  let full: DirectorySnapshot;
  const subject = (username: string) => byUsername(full, username).subject;
  const subjects = (...usernames: string[]) => usernames.map(subject).sort();

  beforeAll(async () => {
    // strictDN off: the tests look entries up by <GUID=…>, an AD extended DN.
    admin = new Client({ url: info.url, tlsOptions: { ca: await readFile(info.caFile) }, strictDN: false });
    await admin.bind(info.bindDn, info.bindPassword);
    full = await read(config(info));
  });

  afterAll(async () => {
    await admin?.unbind();
  });

  it("reads a complete snapshot of every seeded person, once each, across pages of 50", () => {
    expect(full.completeness).toEqual({ complete: true });
    expect(full.mode).toBe("full");
    expect(full.people.map((p) => p.username).sort()).toEqual(AD_USERS.map((u) => u.sAMAccountName).sort());
    expect(full.people.filter((p) => p.attributes.dn?.toString().endsWith(BIG))).toHaveLength(BIG_USERS);
  });

  it("uses the objectGUID as subject: the DC finds each person by <GUID=subject>", async () => {
    for (const username of ["alice", "carol", "big042"]) {
      const person = byUsername(full, username);
      expect(person.subject).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const found = await admin.search(`<GUID=${person.subject}>`, {
        scope: "base",
        attributes: ["sAMAccountName"],
      });
      expect(found.searchEntries.map((e) => e.sAMAccountName)).toEqual([username]);
    }
  });

  it("derives status from userAccountControl, the computed lockout flag and accountExpires", () => {
    const statuses = Object.fromEntries(
      ["alice", "bob", "carol", "dave", "erin", "locky", "big000"].map((u) => [
        u,
        byUsername(full, u).status,
      ]),
    );
    expect(statuses).toEqual({
      alice: "active",
      bob: "disabled",
      carol: "active",
      dave: "expired",
      erin: "active",
      locky: "locked",
      big000: "active",
    });
    expect(
      full.people
        .filter((p) => p.status !== "active")
        .map((p) => p.username)
        .sort(),
    ).toEqual(["bob", "dave", "locky"]);
  });

  it("maps names (Chinese kept as is), email, mobile, employee number, title and the manager's subject", () => {
    expect(byUsername(full, "carol").name).toBe("张三");
    const alice = byUsername(full, "alice");
    expect(alice).toMatchObject({
      name: "Alice Anders",
      email: "alice@corp.example.test",
      mobile: "+86 138 0000 0001",
      employeeNo: "E0001",
      title: "Engineer",
      managers: [subject("erin")],
      attributes: { dn: `CN=alice,${ENG}` },
    });
    expect(byUsername(full, "erin").managers).toEqual([]);
  });

  it("builds departments from the OU tree and places each person in their OU", () => {
    const names = Object.fromEntries(full.departments.map((d) => [d.id, d.name]));
    const staff = full.departments.find((d) => d.name === "Staff")!;
    expect(
      full.departments.map((d) => [d.name, d.parentId === null ? null : names[d.parentId]]).sort(),
    ).toEqual([
      ["Big", "Staff"],
      ["Eng", "Staff"],
      ["Sales", "Staff"],
      ["Staff", null],
    ]);
    expect(staff.parentId).toBeNull();
    const departmentOf = (u: string) => byUsername(full, u).departments.map((d) => names[d.departmentId]);
    expect(departmentOf("alice")).toEqual(["Eng"]);
    expect(departmentOf("carol")).toEqual(["Sales"]);
    expect(departmentOf("big199")).toEqual(["Big"]);
  });

  it("resolves nested groups three levels deep through the in-chain rule, direct members apart", () => {
    const allStaff = groupAt(full, `CN=AllStaff,${GROUPS}`);
    expect(allStaff.kind).toBe("security-group");
    expect(allStaff.members).toEqual(subjects("alice", "bob", "erin", "carol"));
    expect(allStaff.directMembers).toEqual(subjects("carol"));
    expect(groupAt(full, `CN=Engineering,${GROUPS}`).members).toEqual(subjects("alice", "bob", "erin"));
    expect(groupAt(full, `CN=Engineering,${GROUPS}`).directMembers).toEqual(subjects("erin"));
    expect(groupAt(full, `CN=Backend,${GROUPS}`).members).toEqual(subjects("alice", "bob"));
  });

  it("keeps same-named groups of two OUs apart: alice is an admin in Eng only", () => {
    const admins = full.groups.filter((g) => g.name === "admins");
    expect(admins.map((g) => g.path).sort()).toEqual([
      `CN=admins,${ENG_GROUPS}`,
      `CN=admins,${SALES_GROUPS}`,
    ]);
    expect(groupAt(full, `CN=admins,${ENG_GROUPS}`).members).toEqual(subjects("alice"));
    expect(groupAt(full, `CN=admins,${SALES_GROUPS}`).members).toEqual(subjects("carol"));
    expect(groupAt(full, `CN=admins,${SALES_GROUPS}`).members).not.toContain(subject("alice"));
    expect(new Set(admins.map((g) => g.id)).size).toBe(2);
  });

  it("reads all 240 members of a group through member;range=… pages of 100", async () => {
    const big = groupAt(full, `CN=big,${GROUPS}`);
    const expected = full.people
      .filter((p) => p.username?.startsWith("big"))
      .map((p) => p.subject)
      .sort();
    expect(expected).toHaveLength(BIG_USERS);
    expect(big.directMembers).toEqual(expected);
    expect(big.members).toEqual(expected);
    // The server really answers in ranges of 100 when asked (so the ranged path above did run).
    const ranged = await admin.search(`CN=big,${GROUPS}`, {
      scope: "base",
      attributes: ["member;range=0-99"],
    });
    expect(Object.keys(ranged.searchEntries[0]!)).toContain("member;range=0-99");
  });

  it("escapes filter metacharacters of a group DN in the in-chain filter", () => {
    const odd = full.groups.find((g) => g.name === ODD_GROUP_CN);
    expect(odd?.members).toEqual(subjects("alice"));
  });

  it("gives the same snapshot with a page size of 7 and without ranges small enough to matter", async () => {
    const other = await read(config(info, { pageSize: 7, rangeSize: 1500 }));
    const shape = (s: DirectorySnapshot) => ({
      people: s.people.map((p) => [p.subject, p.status, p.departments]),
      groups: s.groups.map((g) => [g.id, g.members, g.directMembers]),
      departments: s.departments,
    });
    expect(other.completeness).toEqual({ complete: true });
    expect(shape(other)).toEqual(shape(full));
  });

  it("takes departments from the department attribute when configured so", async () => {
    const snapshot = await read(
      config(info, { departments: { from: "attribute" }, groups: { baseDns: [] } }),
    );
    expect(snapshot.departments).toEqual([
      { id: "Sales", parentId: null, name: "Sales", order: 0, leaders: [] },
      { id: "研发部", parentId: null, name: "研发部", order: 0, leaders: [] },
    ]);
    const placed = snapshot.people
      .filter((p) => p.departments.length > 0)
      .map((p) => [p.username, p.departments.map((d) => d.departmentId)])
      .sort();
    expect(placed).toEqual([
      ["alice", ["研发部"]],
      ["carol", ["Sales"]],
      ["erin", ["研发部"]],
    ]);
  });

  it("ignores the referral to CN=Configuration when reading from the domain root, warning once", async () => {
    // Users from the root: the people search and every group's in-chain search meet the same reference.
    const rooted = await read(config(info, { users: { baseDns: [info.baseDn] } }));
    expect(rooted.completeness).toEqual({ complete: true });
    const referrals = rooted.warnings.filter((w) => w.includes("search reference"));
    expect(referrals).toHaveLength(1);
    expect(referrals[0]).toMatch(/ignored 1 search reference.*CN=Configuration/);
    expect(rooted.people.map((p) => p.username)).toContain("probe");
    expect(groupAt(rooted, `CN=AllStaff,${GROUPS}`).members).toEqual(
      subjects("alice", "bob", "erin", "carol"),
    );
  });

  it("connects with StartTLS on port 389 and verifies the certificate against caFile", async () => {
    const snapshot = await read(
      config(info, { url: info.plainUrl, startTls: true, groups: { baseDns: [] } }),
    );
    expect(snapshot.completeness).toEqual({ complete: true });
    expect(snapshot.people).toHaveLength(AD_USERS.length);
  });

  it("reads the same people, statuses and groups as a plain domain user (the recommended service account)", async () => {
    const plain = await read(
      config(info, { bindDn: AD_PROBE_USER.dn, bindPassword: AD_PROBE_USER.password }),
    );
    expect(plain.completeness).toEqual({ complete: true });
    expect(plain.cursor).toBeDefined();
    const shape = (s: DirectorySnapshot) => ({
      people: s.people.map((p) => [p.subject, p.status, p.managers, p.departments]),
      groups: s.groups.map((g) => [g.id, g.members]),
    });
    expect(shape(plain)).toEqual(shape(full));
  });

  it("test() binds, reads one page and reports what it saw", async () => {
    const reader = openLdapDirectory(context, config(info));
    const report = await reader.test();
    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.found.join("\n")).toMatch(/people under OU=Staff.*: 50 on the first page/);
    expect(report.found.join("\n")).toMatch(/groups under OU=Groups.*: \d+ on the first page/);
  });

  it("continues a full read when the cursor comes from another DC or a restored database, and says so", async () => {
    const cursor = full.cursor!;
    const otherDc = await read(config(info), {
      mode: "incremental",
      cursor: { ...cursor, state: { ...cursor.state, invocationId: "00000000-0000-0000-0000-000000000001" } },
    });
    expect(otherDc.mode).toBe("full");
    expect(otherDc.people).toHaveLength(AD_USERS.length);
    expect(otherDc.warnings.join("\n")).toMatch(/invocationId changed/);
    const restored = await read(config(info), {
      mode: "incremental",
      cursor: { ...cursor, state: { ...cursor.state, usn: String(BigInt(cursor.state.usn!) + 1_000_000n) } },
    });
    expect(restored.mode).toBe("full");
    expect(restored.warnings.join("\n")).toMatch(/highestCommittedUSN went back/);
  });

  // The tests below change the directory; they run last, in order, and undo what they did.

  it("reads a group without members as empty instead of asking for further ranges forever (regression)", async () => {
    const empty = `CN=Empty,${GROUPS}`;
    await admin.add(empty, { objectClass: ["top", "group"], cn: "Empty", sAMAccountName: "Empty" });
    try {
      const snapshot = await read(config(info));
      expect(snapshot.completeness).toEqual({ complete: true });
      expect(groupAt(snapshot, empty)).toMatchObject({ members: [], directMembers: [] });
    } finally {
      await admin.del(empty);
    }
  });

  /** Makes CN=Contractors the primary group of `temp` while `check` runs (AD wants the membership first). */
  async function withContractorsAsPrimaryGroup(check: () => Promise<void>): Promise<void> {
    const token = await admin.search(`CN=Contractors,${GROUPS}`, {
      scope: "base",
      attributes: ["primaryGroupToken"],
    });
    const setPrimaryGroup = (id: string) =>
      admin.modify(
        `CN=temp,${SALES}`,
        new Change({
          operation: "replace",
          modification: new Attribute({ type: "primaryGroupID", values: [id] }),
        }),
      );
    await setPrimaryGroup(String(token.searchEntries[0]!.primaryGroupToken));
    try {
      await check();
    } finally {
      // 513: Domain Users, every user's primary group by default.
      await setPrimaryGroup("513");
    }
  }

  it("counts a person whose primary group it is (primaryGroupID, not in member) as a direct member", async () => {
    const contractors = `CN=Contractors,${GROUPS}`;
    await withContractorsAsPrimaryGroup(async () => {
      // AD moves the membership from `member` to primaryGroupID: the in-chain rule no longer finds it.
      const member = await admin.search(contractors, { scope: "base", attributes: ["member"] });
      expect(member.searchEntries[0]!.member).toEqual([]);
      const snapshot = await read(config(info));
      expect(snapshot.completeness).toEqual({ complete: true });
      expect(groupAt(snapshot, contractors).members).toEqual(subjects("temp"));
      expect(groupAt(snapshot, contractors).directMembers).toEqual(subjects("temp"));
      expect(snapshot.warnings.filter((w) => w.includes("primary group"))).toEqual([]);
    });
  });

  it("warns that members by primary group are not counted in the groups that contain the primary group", async () => {
    const contractors = `CN=Contractors,${GROUPS}`;
    const admins = `CN=admins,${SALES_GROUPS}`;
    const nest = (operation: "add" | "delete") =>
      admin.modify(
        admins,
        new Change({ operation, modification: new Attribute({ type: "member", values: [contractors] }) }),
      );
    await withContractorsAsPrimaryGroup(async () => {
      await nest("add");
      try {
        const snapshot = await read(config(info));
        expect(groupAt(snapshot, contractors).members).toEqual(subjects("temp"));
        // Documented limitation: AD's in-chain rule does not follow primaryGroupID into admins.
        expect(groupAt(snapshot, admins).members).toEqual(subjects("carol"));
        const warnings = snapshot.warnings.filter((w) => w.includes("primary group"));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/Contractors.*primary group of 1 person.*CN=admins,OU=Sales/);
      } finally {
        await nest("delete");
      }
    });
  });

  it("keeps the subject when a person moves to another OU, and updates DN and department", async () => {
    const before = byUsername(full, "mover");
    const salesId = full.departments.find((d) => d.name === "Sales")!.id;
    await admin.modifyDN(`CN=mover,${ENG}`, `CN=mover,${SALES}`);
    try {
      const after = byUsername(await read(config(info)), "mover");
      expect(after.subject).toBe(before.subject);
      expect(after.attributes.dn).toBe(`CN=mover,${SALES}`);
      expect(after.departments).toEqual([{ departmentId: salesId, main: true, leader: false }]);
      expect(before.departments[0]!.departmentId).not.toBe(salesId);
    } finally {
      await admin.modifyDN(`CN=mover,${SALES}`, `CN=mover,${ENG}`);
    }
  });

  it("reads incrementally exactly what changed since the cursor: a person, then a group and its parents", async () => {
    const start = await read(config(info));
    expect(start.cursor).toBeDefined();

    await admin.modify(
      `CN=changer,${SALES}`,
      new Change({
        operation: "replace",
        modification: new Attribute({ type: "title", values: ["Changed"] }),
      }),
    );
    const first = await read(config(info), { mode: "incremental", cursor: start.cursor! });
    expect(first.mode).toBe("incremental");
    expect(first.completeness).toEqual({ complete: true });
    expect(first.people.map((p) => [p.username, p.title])).toEqual([["changer", "Changed"]]);
    expect(first.people[0]!.departments).toEqual(byUsername(full, "changer").departments);
    expect(first.groups).toEqual([]);

    const changerDn = `CN=changer,${SALES}`;
    await admin.modify(
      `CN=Backend,${GROUPS}`,
      new Change({ operation: "add", modification: new Attribute({ type: "member", values: [changerDn] }) }),
    );
    try {
      const second = await read(config(info), { mode: "incremental", cursor: first.cursor! });
      expect(second.completeness).toEqual({ complete: true });
      expect(second.people).toEqual([]);
      // Backend changed; Engineering and AllStaff contain it, so their transitive members changed too.
      expect(second.groups.map((g) => g.name).sort()).toEqual(["AllStaff", "Backend", "Engineering"]);
      expect(groupAt(second, `CN=Backend,${GROUPS}`).directMembers).toEqual(
        subjects("alice", "bob", "changer"),
      );
      expect(groupAt(second, `CN=AllStaff,${GROUPS}`).members).toEqual(
        subjects("alice", "bob", "erin", "carol", "changer"),
      );

      const quiet = await read(config(info), { mode: "incremental", cursor: second.cursor! });
      expect(quiet.people).toEqual([]);
      expect(quiet.groups).toEqual([]);
    } finally {
      await admin.modify(
        `CN=Backend,${GROUPS}`,
        new Change({
          operation: "delete",
          modification: new Attribute({ type: "member", values: [changerDn] }),
        }),
      );
    }
  });
});
