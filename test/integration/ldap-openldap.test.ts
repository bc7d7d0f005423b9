/**
 * The ldap source against a real OpenLDAP slapd (memberof, refint and syncprov overlays), seeded once per
 * run from test/fixtures/ldap/openldap-directory.ts.
 */
import { Attribute, Change, Client, Control } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LdapConfig } from "../../src/sources/ldap/config.js";
import type { DirectorySnapshot, SourceGroup, SourcePerson } from "../../src/sources/snapshot.js";
import type { ReadOptions } from "../../src/sources/source.js";
import {
  OL_DANGLING,
  OL_ELSEWHERE,
  OL_ENG,
  OL_GROUPS,
  OL_ODD_CN,
  OL_ONCALL_CN,
  OL_OUTSIDER,
  OL_PEOPLE,
  OL_SALES,
  OL_UNIQUE_CN,
} from "../fixtures/ldap/openldap-directory.js";
import { ldapTestContext, openldapTestConfig, readLdap } from "../helpers/ldap.js";
import { slapdOrSkip } from "../peers/index.js";

const slapd = slapdOrSkip();
const context = ldapTestContext("ol-test");
const config = openldapTestConfig;
const read = (cfg: LdapConfig, options?: ReadOptions): Promise<DirectorySnapshot> =>
  readLdap(context, cfg, options);

describe.skipIf(slapd === null)("ldap source on a real OpenLDAP slapd", () => {
  const info = slapd!;
  let admin: Client;
  let full: DirectorySnapshot;
  const person = (uid: string): SourcePerson => {
    const found = full.people.find((p) => p.username === uid);
    if (!found) throw new Error(`no person ${uid}`);
    return found;
  };
  const subjects = (...uids: string[]) => uids.map((u) => person(u).subject).sort();
  const group = (snapshot: DirectorySnapshot, cn: string): SourceGroup => {
    const found = snapshot.groups.find((g) => g.name === cn);
    if (!found) throw new Error(`no group ${cn}`);
    return found;
  };

  beforeAll(async () => {
    admin = new Client({ url: info.url });
    await admin.bind(info.adminDn, info.adminPassword);
    full = await read(config(info));
  });
  afterAll(async () => {
    await admin?.unbind();
  });

  it("reads every person across pages of 2, with entryUUID as subject", async () => {
    expect(full.completeness).toEqual({ complete: true });
    expect(full.people.map((p) => p.username).sort()).toEqual([
      "alice",
      "bob",
      "carol",
      "changer",
      "dave",
      "erin",
    ]);
    for (const p of full.people) {
      const found = await admin.search(OL_PEOPLE, {
        filter: `(entryUUID=${p.subject})`,
        attributes: ["uid"],
      });
      expect(found.searchEntries.map((e) => e.uid)).toEqual([p.username]);
    }
  });

  it("maps fields, the manager, statuses (shadowExpire in the past = expired) and departments from OUs", () => {
    expect(person("alice")).toMatchObject({
      name: "Alice Anders",
      email: "alice@example.test",
      mobile: "+86 138 0000 0001",
      employeeNo: "E1",
      title: "Engineer",
      managers: [person("erin").subject],
      status: "active",
    });
    expect(person("carol").name).toBe("张三");
    expect(full.people.filter((p) => p.status !== "active").map((p) => [p.username, p.status])).toEqual([
      ["dave", "expired"],
    ]);
    const names = Object.fromEntries(full.departments.map((d) => [d.id, d.name]));
    expect(
      full.departments.map((d) => [d.name, d.parentId === null ? null : names[d.parentId]]).sort(),
    ).toEqual([
      ["eng", "people"],
      ["people", null],
      ["sales", "people"],
    ]);
    expect(person("alice").departments.map((d) => names[d.departmentId])).toEqual(["eng"]);
    expect(person("carol").departments.map((d) => names[d.departmentId])).toEqual(["sales"]);
  });

  it("walks nested groups three levels deep and stops at a membership cycle", () => {
    expect(group(full, "allstaff").kind).toBe("group");
    expect(group(full, "allstaff").members).toEqual(subjects("alice", "bob", "erin", "carol"));
    expect(group(full, "allstaff").directMembers).toEqual(subjects("carol"));
    expect(group(full, "engineering").members).toEqual(subjects("alice", "bob", "erin"));
    // cycle-a ∋ dave, cycle-b; cycle-b ∋ cycle-a, changer.
    expect(group(full, "cycle-a").members).toEqual(subjects("dave", "changer"));
    expect(group(full, "cycle-b").members).toEqual(subjects("dave", "changer"));
    expect(group(full, OL_ODD_CN).members).toEqual(subjects("alice"));
  });

  it("reads the uniqueMember values of a groupOfUniqueNames, without their optional UID, and nested groups in it", () => {
    const reviewers = group(full, OL_UNIQUE_CN);
    expect(reviewers.directMembers).toEqual(subjects("carol", "erin"));
    expect(reviewers.members).toEqual(subjects("alice", "bob", "carol", "erin"));
  });

  it("expands a nested group outside the group base, leaving out (and warning about) members that are not people read", () => {
    expect(full.completeness).toEqual({ complete: true });
    const oncall = group(full, OL_ONCALL_CN);
    expect(oncall.members).toEqual(subjects("carol", "dave"));
    expect(oncall.directMembers).toEqual(subjects("carol"));
    // The nested group itself is not a group of the snapshot: it lies outside groups.baseDns.
    expect(full.groups.map((g) => g.name)).not.toContain("ops");
    const outside = full.warnings.filter((w) => w.includes("neither people read from this source"));
    expect(outside).toHaveLength(1);
    expect(outside[0]).toContain(`1 group member(s)`);
    expect(outside[0]).toContain(OL_OUTSIDER.toLowerCase());
    const dangling = full.warnings.filter((w) => w.includes("dangling references"));
    expect(dangling).toHaveLength(1);
    expect(dangling[0]).toContain(OL_DANGLING.toLowerCase());
  });

  it("fails the read when the server refers part of a configured base DN to another server", async () => {
    // A referral object (RFC 3296): slapd answers a subtree search over it with a search reference.
    const remote = `ou=remote,${OL_ELSEWHERE}`;
    const manageDsaIt = new Control("2.16.840.1.113730.3.4.2", { critical: true });
    await admin.add(
      remote,
      {
        objectClass: ["referral", "extensibleObject"],
        ou: "remote",
        ref: `ldap://other.example.test/${remote}`,
      },
      manageDsaIt,
    );
    try {
      const snapshot = await read(
        config(info, { users: { baseDns: [OL_ELSEWHERE] }, groups: { baseDns: [] } }),
      );
      expect(snapshot.people.map((p) => p.username)).toEqual(["outsider"]);
      expect(snapshot.completeness.complete).toBe(false);
      const reasons = snapshot.completeness.complete ? [] : snapshot.completeness.reasons;
      expect(reasons.map((r) => [r.code, r.where])).toEqual([["UNREACHABLE", remote]]);
      expect(reasons[0]!.message).toMatch(
        /referred part of a configured base DN to ldap:\/\/other\.example\.test/,
      );
      expect(snapshot.cursor).toBeUndefined();
    } finally {
      await admin.del(remote, manageDsaIt);
    }
  });

  it("agrees with the server's memberOf on every direct membership", () => {
    // The memberof overlay is set up for groupOfNames (member) only.
    const groups = full.groups.filter((g) => g.name !== OL_UNIQUE_CN);
    const byDn = new Map(groups.map((g) => [g.path!.toLowerCase(), g]));
    for (const p of full.people) {
      const memberOf = [p.attributes.memberOf ?? []].flat().map((dn) => dn.toLowerCase());
      const ours = groups
        .filter((g) => g.directMembers.includes(p.subject))
        .map((g) => g.path!.toLowerCase());
      expect(ours.sort()).toEqual(memberOf.filter((dn) => byDn.has(dn)).sort());
    }
  });

  it("reads incrementally exactly the changed person, then the changed group and the groups containing it", async () => {
    const start = await read(config(info));
    expect(start.cursor?.state.csn).toMatch(/^\d{14}\.\d{6}Z#/);
    await admin.modify(
      `uid=changer,${OL_SALES}`,
      new Change({
        operation: "replace",
        modification: new Attribute({ type: "title", values: ["Changed"] }),
      }),
    );
    const first = await read(config(info), { mode: "incremental", cursor: start.cursor! });
    expect(first.mode).toBe("incremental");
    expect(first.completeness).toEqual({ complete: true });
    expect(first.people.map((p) => [p.username, p.title])).toEqual([["changer", "Changed"]]);
    expect(first.groups).toEqual([]);

    const bobDn = `uid=bob,${OL_ENG}`;
    await admin.modify(
      `cn=cycle-b,${OL_GROUPS}`,
      new Change({ operation: "add", modification: new Attribute({ type: "member", values: [bobDn] }) }),
    );
    try {
      const second = await read(config(info), { mode: "incremental", cursor: first.cursor! });
      // memberof adds memberOf to bob without touching his entryCSN: his own entry did not change.
      expect(second.people).toEqual([]);
      expect(second.groups.map((g) => g.name).sort()).toEqual(["cycle-a", "cycle-b"]);
      expect(group(second, "cycle-a").members).toEqual(subjects("bob", "dave", "changer"));
      const quiet = await read(config(info), { mode: "incremental", cursor: second.cursor! });
      expect([quiet.people, quiet.groups]).toEqual([[], []]);
    } finally {
      await admin.modify(
        `cn=cycle-b,${OL_GROUPS}`,
        new Change({ operation: "delete", modification: new Attribute({ type: "member", values: [bobDn] }) }),
      );
    }
  });
});
