import type { DirectorySnapshot, SourcePerson } from "../../sources/snapshot.js";
import type { SimOrg, SimPerson } from "./org.js";

/**
 * The demo company as a DirectorySnapshot without running a simulator, shaped the way the DingTalk reader
 * shapes it: people who left are not listed, everyone listed is active with `activated` as an attribute,
 * roles are groups whose path is their role group's name. For tests and benchmarks of the pure sync parts.
 */
export function orgSnapshot(org: SimOrg, sourceId: string, at: string): DirectorySnapshot {
  return {
    ...orgSnapshotBase(sourceId, "dingtalk", at),
    departments: orgDepartments(org),
    people: org.people.filter((p) => p.status !== "left").map((p) => orgPerson(p, p.userid, "active")),
    groups: org.roles.map((r) => ({
      id: String(r.id),
      name: r.name,
      path: r.group.name,
      kind: "role" as const,
      members: r.members,
      directMembers: r.members,
    })),
  };
}

/** A complete full snapshot's envelope, read at `at`. */
export function orgSnapshotBase(
  sourceId: string,
  sourceType: string,
  at: string,
): Omit<DirectorySnapshot, "people" | "departments" | "groups"> {
  return {
    sourceId,
    sourceType,
    mode: "full",
    startedAt: at,
    finishedAt: at,
    unavailableFields: [],
    completeness: { complete: true },
    warnings: [],
  };
}

/** One simulated employee as a source person with the given subject and status. */
export function orgPerson(p: SimPerson, subject: string, status: SourcePerson["status"]): SourcePerson {
  return {
    subject,
    username: p.userid,
    name: p.name,
    email: p.email,
    mobile: p.mobile,
    employeeNo: p.jobNumber,
    title: p.title,
    departments: p.departments.map((id, i) => ({
      departmentId: String(id),
      main: i === 0,
      leader: p.leaderOf.includes(id),
    })),
    managers: p.manager === undefined ? [] : [p.manager],
    status,
    attributes: { activated: String(p.status !== "not-activated") },
  };
}

/** The org's department tree. */
export function orgDepartments(org: SimOrg): DirectorySnapshot["departments"] {
  return org.departments.map((d) => ({
    id: String(d.id),
    parentId: d.parentId === 0 ? null : String(d.parentId),
    name: d.name,
    order: d.order,
    leaders: d.leaders,
  }));
}
