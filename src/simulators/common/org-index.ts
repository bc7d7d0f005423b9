import type { SimDepartment, SimOrg, SimPerson } from "./org.js";

/**
 * The demo org indexed so a simulator serves each page without scanning the whole org (100,000 people):
 * departments by id, children and direct members per department, people by userid. `isListed` decides who
 * the vendor lists at all (DingTalk drops people who left; WeCom lists them with status 5).
 */
export class OrgIndex {
  readonly departments = new Map<number, SimDepartment>();
  /** Child department ids per department, ascending. */
  readonly children = new Map<number, number[]>();
  /** Direct members per department, in their order within the department. */
  readonly members = new Map<number, SimPerson[]>();
  /** Listed people by userid. */
  readonly people = new Map<string, SimPerson>();

  constructor(
    readonly org: SimOrg,
    isListed: (person: SimPerson) => boolean = () => true,
  ) {
    for (const dept of org.departments) {
      this.departments.set(dept.id, dept);
      this.members.set(dept.id, []);
      if (dept.parentId !== 0) pushTo(this.children, dept.parentId, dept.id);
    }
    for (const person of org.people) {
      if (!isListed(person)) continue;
      this.people.set(person.userid, person);
      for (const deptId of person.departments) this.members.get(deptId)?.push(person);
    }
    for (const list of this.members.values()) list.sort((a, b) => a.order - b.order);
    for (const list of this.children.values()) list.sort((a, b) => a - b);
  }

  /** `id` and every department below it, parents before children. */
  subtree(id: number): number[] {
    const out: number[] = [];
    const stack = [id];
    while (stack.length > 0) {
      const next = stack.pop()!;
      out.push(next);
      const kids = this.children.get(next);
      if (kids !== undefined) for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
    }
    return out;
  }
}

/** Appends to the list under `key`, creating it. */
export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
