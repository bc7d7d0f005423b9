/**
 * A demo company generated deterministically from a seed and a size, served by the DingTalk and WeCom
 * simulators (tests, benchmarks, demo). The same seed gives the same people, ids and numbers every time,
 * so a test can name "the leader of 财务部" and a benchmark can be repeated.
 */

/** Lifecycle of a simulated employee; each simulator maps it to its vendor's fields. */
export type SimStatus = "active" | "disabled" | "not-activated" | "left";

export interface SimDepartment {
  /** Vendor department id; the root is 1 (DingTalk and WeCom both). */
  readonly id: number;
  /** Parent id; 0 for the root (vendors report the root's parent as 0 or omit it). */
  readonly parentId: number;
  readonly name: string;
  readonly nameEn: string;
  /** Sibling order (larger first in WeCom). */
  readonly order: number;
  /** userids of the department's leaders. */
  readonly leaders: readonly string[];
}

export interface SimPerson {
  readonly userid: string;
  /** DingTalk unionid: stable per developer account. */
  readonly unionid: string;
  readonly name: string;
  /** Pinyin of the name ("Zhang Wei"), used as English name and in logins. */
  readonly pinyin: string;
  readonly mobile: string;
  readonly email: string;
  readonly jobNumber: string;
  readonly title: string;
  /** Department ids; the first is the main department. */
  readonly departments: readonly number[];
  /** Departments this person leads (a subset of `departments`). */
  readonly leaderOf: readonly number[];
  /** userid of the direct manager, when there is one. */
  readonly manager?: string;
  readonly status: SimStatus;
  /** Hire date, epoch milliseconds. */
  readonly hiredAt: number;
  /** Order within the main department. */
  readonly order: number;
}

export interface SimRole {
  /** Role id (DingTalk roleId / WeCom tagid). */
  readonly id: number;
  /** Role group (DingTalk role group; WeCom has no groups). */
  readonly group: { readonly id: number; readonly name: string };
  readonly name: string;
  /** userids holding the role. */
  readonly members: readonly string[];
  /** Departments tagged as a whole (WeCom tag `partylist`); DingTalk ignores it. */
  readonly departments: readonly number[];
}

export interface SimOrg {
  readonly corpName: string;
  readonly domain: string;
  readonly departments: readonly SimDepartment[];
  readonly people: readonly SimPerson[];
  readonly roles: readonly SimRole[];
}

export interface OrgOptions {
  /** Number of people, including those who left (default 200). */
  readonly people?: number;
  /** Seed of the generator (default 1). */
  readonly seed?: number;
}

const SURNAMES: readonly (readonly [string, string])[] = [
  ["王", "wang"],
  ["李", "li"],
  ["张", "zhang"],
  ["刘", "liu"],
  ["陈", "chen"],
  ["杨", "yang"],
  ["赵", "zhao"],
  ["黄", "huang"],
  ["周", "zhou"],
  ["吴", "wu"],
  ["徐", "xu"],
  ["孙", "sun"],
  ["胡", "hu"],
  ["朱", "zhu"],
  ["高", "gao"],
  ["林", "lin"],
  ["何", "he"],
  ["郭", "guo"],
  ["马", "ma"],
  ["罗", "luo"],
  ["梁", "liang"],
  ["宋", "song"],
  ["郑", "zheng"],
  ["谢", "xie"],
  ["韩", "han"],
  ["唐", "tang"],
  ["冯", "feng"],
  ["于", "yu"],
  ["董", "dong"],
  ["萧", "xiao"],
  ["程", "cheng"],
  ["曹", "cao"],
  ["袁", "yuan"],
  ["邓", "deng"],
  ["许", "xu"],
  ["欧阳", "ouyang"],
  ["司马", "sima"],
];
const GIVEN: readonly (readonly [string, string])[] = [
  ["伟", "wei"],
  ["芳", "fang"],
  ["娜", "na"],
  ["敏", "min"],
  ["静", "jing"],
  ["丽", "li"],
  ["强", "qiang"],
  ["磊", "lei"],
  ["军", "jun"],
  ["洋", "yang"],
  ["勇", "yong"],
  ["艳", "yan"],
  ["杰", "jie"],
  ["娟", "juan"],
  ["涛", "tao"],
  ["明", "ming"],
  ["超", "chao"],
  ["秀英", "xiuying"],
  ["霞", "xia"],
  ["平", "ping"],
  ["刚", "gang"],
  ["桂英", "guiying"],
  ["建华", "jianhua"],
  ["文", "wen"],
  ["华", "hua"],
  ["红", "hong"],
  ["玉兰", "yulan"],
  ["志强", "zhiqiang"],
  ["晓东", "xiaodong"],
  ["海燕", "haiyan"],
  ["子涵", "zihan"],
  ["雨萱", "yuxuan"],
  ["浩然", "haoran"],
  ["思远", "siyuan"],
  ["欣怡", "xinyi"],
  ["俊杰", "junjie"],
];
const TOP_DEPARTMENTS: readonly (readonly [string, string, readonly string[]])[] = [
  ["财务部", "Finance", ["会计", "出纳", "财务分析师", "税务专员"]],
  ["人力资源部", "Human Resources", ["招聘专员", "薪酬专员", "HRBP"]],
  ["研发中心", "R&D", ["软件工程师", "测试工程师", "架构师", "产品经理"]],
  ["销售部", "Sales", ["销售代表", "客户经理", "销售助理"]],
  ["市场部", "Marketing", ["市场专员", "品牌经理", "设计师"]],
  ["采购部", "Procurement", ["采购专员", "供应商经理"]],
  ["法务部", "Legal", ["法务专员", "合规经理"]],
  ["行政部", "Administration", ["行政专员", "前台"]],
  ["客户服务部", "Customer Service", ["客服专员", "客服主管"]],
  ["运营部", "Operations", ["运营专员", "数据分析师"]],
];
const REGIONS: readonly (readonly [string, string])[] = [
  ["华东区", "East"],
  ["华南区", "South"],
  ["华北区", "North"],
  ["西南区", "Southwest"],
  ["华中区", "Central"],
  ["西北区", "Northwest"],
  ["东北区", "Northeast"],
];
const TEAMS = ["一组", "二组", "三组", "四组", "五组", "六组", "七组", "八组", "九组"];

/** mulberry32: a small, fast, deterministic PRNG; good enough for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Generates the demo company. Costs about one second per 100,000 people. */
export function generateOrg(options: OrgOptions = {}): SimOrg {
  const size = options.people ?? 200;
  if (!Number.isInteger(size) || size < 1)
    throw new TypeError(`people must be a positive integer, got ${size}`);
  const random = prng(options.seed ?? 1);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const domain = "demo-corp.example.cn";

  // Departments: 10 top-level, regions below the big ones, teams below regions; about 25 people each.
  const departments: {
    id: number;
    parentId: number;
    name: string;
    nameEn: string;
    order: number;
    titles: readonly string[];
  }[] = [
    {
      id: 1,
      parentId: 0,
      name: "示例科技有限公司",
      nameEn: "Demo Tech Co., Ltd.",
      order: 0,
      titles: ["总经理", "董事长助理"],
    },
  ];
  const wanted = Math.max(30, Math.ceil(size / 25));
  let nextId = 2;
  const tops = TOP_DEPARTMENTS.map(([name, nameEn, titles], i) => {
    const dept = { id: nextId++, parentId: 1, name, nameEn, order: 10_000 - i, titles };
    departments.push(dept);
    return dept;
  });
  // The four big departments get regions, so even a small company has a tree three levels deep.
  for (let r = 0; departments.length < wanted && r < REGIONS.length; r++) {
    for (const top of tops.slice(0, r < 3 ? 4 : tops.length)) {
      if (departments.length >= wanted) break;
      const [name, nameEn] = REGIONS[r]!;
      departments.push({
        id: nextId++,
        parentId: top.id,
        name,
        nameEn: `${top.nameEn} ${nameEn}`,
        order: 1000 - r,
        titles: top.titles,
      });
      if (r === 2 && top === tops[3]) break;
    }
    if (r === 2) break;
  }
  for (let level = 0; departments.length < wanted; level++) {
    const parents = departments.filter((d) => d.parentId !== 1 && d.id !== 1);
    for (const parent of parents) {
      for (let t = 0; t < TEAMS.length && departments.length < wanted; t++) {
        const suffix = level === 0 ? TEAMS[t]! : `${TEAMS[t]!}${level + 1}`;
        departments.push({
          id: nextId++,
          parentId: parent.id,
          name: suffix,
          nameEn: `${parent.nameEn} team ${t + 1}${level === 0 ? "" : `.${level + 1}`}`,
          order: 100 - t,
          titles: parent.titles,
        });
      }
      if (departments.length >= wanted) break;
    }
  }

  // People: spread over departments; the first person placed in a department leads it.
  const usedIds = new Map<string, number>();
  const usedMobiles = new Set<string>();
  const leaders = new Map<number, string[]>();
  const people: {
    userid: string;
    unionid: string;
    name: string;
    pinyin: string;
    mobile: string;
    email: string;
    jobNumber: string;
    title: string;
    departments: number[];
    leaderOf: number[];
    manager?: string;
    status: SimStatus;
    hiredAt: number;
    order: number;
  }[] = [];
  const perDept = new Map<number, number>();
  for (let i = 0; i < size; i++) {
    const [surname, surnamePy] = pick(SURNAMES);
    const [given, givenPy] = pick(GIVEN);
    const base = `${surnamePy}${givenPy}`;
    const n = (usedIds.get(base) ?? 0) + 1;
    usedIds.set(base, n);
    const userid = n === 1 ? base : `${base}${n}`;
    let unionid = "";
    for (let k = 0; k < 22; k++) unionid += BASE62[Math.floor(random() * 62)];
    let mobile: string;
    do mobile = `1${pick(["3", "5", "7", "8", "9"])}${String(Math.floor(random() * 1e9)).padStart(9, "0")}`;
    while (usedMobiles.has(mobile));
    usedMobiles.add(mobile);
    // Everyone but the first person lands in a non-root department; fill departments round-robin first.
    const dept = i === 0 ? departments[0]! : departments[1 + ((i - 1) % (departments.length - 1))]!;
    const count = (perDept.get(dept.id) ?? 0) + 1;
    perDept.set(dept.id, count);
    const isLeader = count === 1;
    const deptIds = [dept.id];
    if (!isLeader && random() < 0.05) {
      const other = departments[1 + Math.floor(random() * (departments.length - 1))]!;
      if (other.id !== dept.id) deptIds.push(other.id);
    }
    const roll = random();
    const status: SimStatus =
      i === 0 || isLeader
        ? "active"
        : roll < 0.01
          ? "left"
          : roll < 0.02
            ? "disabled"
            : roll < 0.03
              ? "not-activated"
              : "active";
    if (isLeader) leaders.set(dept.id, [...(leaders.get(dept.id) ?? []), userid]);
    people.push({
      userid,
      unionid,
      name: `${surname}${given}`,
      pinyin: `${surnamePy[0]!.toUpperCase()}${surnamePy.slice(1)} ${givenPy[0]!.toUpperCase()}${givenPy.slice(1)}`,
      mobile,
      email: `${userid}@${domain}`,
      jobNumber: `E${String(i + 1).padStart(6, "0")}`,
      title: isLeader ? (dept.id === 1 ? "总经理" : `${dept.name}负责人`) : pick(dept.titles),
      departments: deptIds,
      leaderOf: isLeader ? [dept.id] : [],
      status,
      hiredAt: Date.UTC(2015, 0, 1) + Math.floor(random() * 3650) * 86_400_000,
      order: count,
    });
  }
  const byId = new Map(departments.map((d) => [d.id, d]));
  const leaderOf = (deptId: number): string | undefined => {
    for (let d = byId.get(deptId); d !== undefined; d = byId.get(d.parentId)) {
      const found = leaders.get(d.id)?.[0];
      if (found !== undefined) return found;
    }
    return undefined;
  };
  for (const person of people) {
    const main = person.departments[0]!;
    const dept = byId.get(main)!;
    const manager = person.leaderOf.includes(main) ? leaderOf(dept.parentId) : leaderOf(main);
    if (manager !== undefined && manager !== person.userid) person.manager = manager;
  }

  // Roles, in two role groups; finance roles go to the finance department's people.
  const finance = new Set(departments.filter((d) => isUnder(d.id, tops[0]!.id, byId)).map((d) => d.id));
  const current = people.filter((p) => p.status !== "left");
  const inFinance = new Set(current.filter((p) => p.departments.some((d) => finance.has(d))));
  const roleSpecs: readonly [number, string, (p: (typeof people)[number]) => boolean][] = [
    [1, "财务经理", (p) => inFinance.has(p) && p.leaderOf.length > 0],
    [1, "会计", (p) => inFinance.has(p) && p.title === "会计"],
    [1, "出纳", (p) => inFinance.has(p) && p.title === "出纳"],
    [1, "部门主管", (p) => p.leaderOf.length > 0],
    [2, "预算管理员", (p) => p.leaderOf.some((d) => byId.get(d)!.parentId === 1)],
    [2, "报销审批人", (p) => p.leaderOf.length > 0 || p.title === "财务分析师"],
  ];
  const groups = [
    { id: 1001, name: "职务" },
    { id: 1002, name: "岗位" },
  ];
  const roles: SimRole[] = roleSpecs.map(([group, name, holds], i) => ({
    id: 2001 + i,
    group: groups[group - 1]!,
    name,
    members: current.filter(holds).map((p) => p.userid),
    departments: name === "报销审批人" ? [tops[0]!.id] : [],
  }));

  return {
    corpName: departments[0]!.name,
    domain,
    departments: departments.map(({ titles: _titles, ...d }) => ({ ...d, leaders: leaders.get(d.id) ?? [] })),
    people,
    roles,
  };
}

function isUnder(id: number, ancestor: number, byId: ReadonlyMap<number, { parentId: number }>): boolean {
  for (let d: number | undefined = id; d !== undefined && d !== 0; d = byId.get(d)?.parentId) {
    if (d === ancestor) return true;
  }
  return false;
}
