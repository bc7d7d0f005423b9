import type { SimOrg, SimPerson, SimRole } from "../common/org.js";
import { OrgIndex, pushTo } from "../common/org-index.js";

/**
 * The demo org as DingTalk shows it, indexed so every page is served without scanning the org: direct
 * members per department (in `dept_order` order), children per department, people by userid and unionid,
 * roles by id and by member.
 *
 * Who is visible: `left` people are gone from every list (DingTalk deletes them from the org). DingTalk has
 * no "disabled" member state — an admin stops someone by removing them — so `disabled` people are absent
 * too. `not-activated` people are listed with `active: false`.
 */
export class DingTalkOrgIndex extends OrgIndex {
  readonly byUnionid = new Map<string, SimPerson>();
  /** Roles with only the members DingTalk still lists. */
  readonly roles = new Map<number, SimRole>();
  readonly roleGroups = new Map<number, { id: number; name: string; roles: SimRole[] }>();
  readonly rolesOf = new Map<string, SimRole[]>();
  /** userid of the org's boss (the root department's leader). */
  readonly boss: string | undefined;

  constructor(org: SimOrg) {
    super(org, isVisible);
    for (const person of this.people.values()) this.byUnionid.set(person.unionid, person);
    for (const role of org.roles) {
      const visible: SimRole = { ...role, members: role.members.filter((id) => this.people.has(id)) };
      this.roles.set(role.id, visible);
      let group = this.roleGroups.get(role.group.id);
      if (group === undefined) {
        group = { id: role.group.id, name: role.group.name, roles: [] };
        this.roleGroups.set(role.group.id, group);
      }
      group.roles.push(visible);
      for (const userid of visible.members) pushTo(this.rolesOf, userid, visible);
    }
    this.boss = this.departments.get(1)?.leaders.find((id) => this.people.has(id));
  }

  /** True when the person is a leader (主管) of the department. */
  leads(person: SimPerson, deptId: number): boolean {
    return person.leaderOf.includes(deptId);
  }
}

function isVisible(person: SimPerson): boolean {
  return person.status === "active" || person.status === "not-activated";
}
