/**
 * The demo company: the simulators' generated org (src/simulators/common/org.ts) with one deterministic
 * tweak, and the people the demo signs in as, chosen from it by role. Pure: the same seed and size give the
 * same company and accounts on every start, so the DingTalk and WeCom simulators need no saved state.
 */
import { generateOrg, type SimOrg, type SimPerson } from "../simulators/common/org.js";
import type { AdminRole } from "../admin/access.js";

/** Size of the demo company (people, those who left included). */
export const DEMO_PEOPLE = 300;
/** Seed of the demo company. */
export const DEMO_SEED = 1;

/** The DingTalk role that makes cashiers and the one that makes accountants (policies/hesi-main.yaml). */
const CASHIER_ROLE = "出纳";
const ACCOUNTANT_ROLE = "会计";

/** A person the start-up banner offers to sign in as. */
export interface DemoAccount {
  /** Console role, or `employee` for a person without one. */
  readonly role: AdminRole | "employee";
  /** What the banner calls them ("security admin"). */
  readonly label: string;
  readonly person: SimPerson;
  /** Sign in through this source: `dingtalk` or `wecom`. */
  readonly via: "dingtalk" | "wecom";
  /** Why this person (their title or what the demo shows with them). */
  readonly note: string;
}

/** The demo company and its accounts. */
export interface DemoCompany {
  readonly org: SimOrg;
  readonly accounts: readonly DemoAccount[];
  /** The accountant who also holds 出纳: the plan's one separation-of-duties conflict. */
  readonly conflicted: SimPerson;
}

/**
 * Generates the demo company. The generator gives every person one title, so nobody holds both 出纳 and
 * 会计; the demo gives the first active accountant of 财务部 the DingTalk role 出纳 as well, which makes the
 * policy's `cashier-is-not-accountant` constraint fire for exactly that person.
 */
export function demoCompany(options: { people?: number; seed?: number } = {}): DemoCompany {
  const generated = generateOrg({ people: options.people ?? DEMO_PEOPLE, seed: options.seed ?? DEMO_SEED });
  const finance = subtreeOf(generated, topDepartment(generated, "财务部").id);
  const accountants = new Set(roleNamed(generated, ACCOUNTANT_ROLE).members);
  const conflicted = generated.people.find(
    (p) =>
      p.status === "active" &&
      accountants.has(p.userid) &&
      p.leaderOf.length === 0 &&
      p.departments.some((d) => finance.has(d)),
  );
  if (conflicted === undefined) throw new Error("the demo company has no active accountant in 财务部");
  const org: SimOrg = {
    ...generated,
    roles: generated.roles.map((r) =>
      r.name === CASHIER_ROLE ? { ...r, members: [...r.members, conflicted.userid] } : r,
    ),
  };
  return { org, accounts: demoAccounts(org, conflicted), conflicted };
}

/** The people the banner lists, picked by role so a different seed still finds them. */
function demoAccounts(org: SimOrg, conflicted: SimPerson): DemoAccount[] {
  const active = org.people.filter((p) => p.status === "active");
  const leaderOf = (name: string): SimPerson => {
    const dept = topDepartment(org, name);
    const found = active.find((p) => p.leaderOf.includes(dept.id));
    if (found === undefined) throw new Error(`the demo company's ${name} has no leader`);
    return found;
  };
  const titled = (title: string, fallback: () => SimPerson): SimPerson =>
    active.find((p) => p.title === title && p.leaderOf.length === 0) ?? fallback();
  const financeManager = leaderOf("财务部");
  const auditor = titled("合规经理", () => leaderOf("法务部"));
  const viewer = titled("财务分析师", () => leaderOf("人力资源部"));
  const employee = titled("销售代表", () => leaderOf("销售部"));
  return [
    {
      role: "security-admin",
      label: "security admin",
      person: financeManager,
      via: "dingtalk",
      note: `${financeManager.title}, approves plans`,
    },
    { role: "auditor", label: "auditor", person: auditor, via: "dingtalk", note: auditor.title },
    { role: "viewer", label: "viewer", person: viewer, via: "dingtalk", note: viewer.title },
    {
      role: "employee",
      label: "employee",
      person: conflicted,
      via: "dingtalk",
      note: "会计 who also holds 出纳: the plan's separation-of-duties conflict",
    },
    { role: "employee", label: "employee", person: employee, via: "wecom", note: employee.title },
  ];
}

function topDepartment(org: SimOrg, name: string): SimOrg["departments"][number] {
  const found = org.departments.find((d) => d.parentId === 1 && d.name === name);
  if (found === undefined) throw new Error(`the demo company has no department ${name}`);
  return found;
}

function roleNamed(org: SimOrg, name: string): SimOrg["roles"][number] {
  const found = org.roles.find((r) => r.name === name);
  if (found === undefined) throw new Error(`the demo company has no role ${name}`);
  return found;
}

function subtreeOf(org: SimOrg, root: number): Set<number> {
  const ids = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const d of org.departments)
      if (ids.has(d.parentId) && !ids.has(d.id)) {
        ids.add(d.id);
        grew = true;
      }
  }
  return ids;
}
