/**
 * Writes an LDIF of a generated organisation for slapadd: OUs (divisions and teams), N people with the
 * usual attributes and a manager, and groups — one per team, one per division containing its team
 * groups, `everyone` containing the divisions, and 50 role groups across teams — with the memberOf values
 * the memberof overlay would have computed, written by us because slapadd runs no overlays.
 * Deterministic: the same N gives the same file.
 */
import { createWriteStream } from "node:fs";
import { once } from "node:events";

export const BENCH_BASE = "dc=bench,dc=test";
export const BENCH_PEOPLE = `ou=people,${BENCH_BASE}`;
export const BENCH_GROUPS = `ou=groups,${BENCH_BASE}`;

const TEAM_SIZE = 100;
const DIVISIONS = 10;
const ROLES = 50;

const SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳"];

/** What the generated directory holds, for checking a read against it. */
export interface GeneratedCounts {
  readonly people: number;
  readonly groups: number;
  readonly ous: number;
}

export async function writeBenchLdif(file: string, people: number): Promise<GeneratedCounts> {
  const out = createWriteStream(file, { encoding: "utf8" });
  let pending = "";
  const write = async (text: string) => {
    pending += text;
    if (pending.length > 1 << 20) {
      if (!out.write(pending)) await once(out, "drain");
      pending = "";
    }
  };
  const entry = async (dn: string, attributes: Array<[string, string]>) => {
    // Values outside printable ASCII go base64 (RFC 2849 `::`).
    const line = ([name, value]: [string, string]) =>
      /^[\x20-\x7e]*$/.test(value) &&
      !value.startsWith(" ") &&
      !value.startsWith(":") &&
      !value.startsWith("<")
        ? `${name}: ${value}`
        : `${name}:: ${Buffer.from(value, "utf8").toString("base64")}`;
    await write(`dn: ${dn}\n${attributes.map(line).join("\n")}\n\n`);
  };

  const teams = Math.ceil(people / TEAM_SIZE);
  const division = (team: number) => team % DIVISIONS;
  const divisionOu = (d: number) => `ou=div${d},${BENCH_PEOPLE}`;
  const teamOu = (t: number) => `ou=team${t},${divisionOu(division(t))}`;
  const personDn = (i: number) => `uid=u${String(i).padStart(6, "0")},${teamOu(Math.floor(i / TEAM_SIZE))}`;
  const teamGroup = (t: number) => `cn=team-${t},${BENCH_GROUPS}`;
  const divisionGroup = (d: number) => `cn=div-${d},${BENCH_GROUPS}`;
  const roleGroup = (r: number) => `cn=role-${r},${BENCH_GROUPS}`;
  const everyone = `cn=everyone,${BENCH_GROUPS}`;

  await entry(BENCH_BASE, [
    ["objectClass", "dcObject"],
    ["objectClass", "organization"],
    ["o", "Bench"],
    ["dc", "bench"],
  ]);
  await entry(BENCH_PEOPLE, [
    ["objectClass", "organizationalUnit"],
    ["ou", "people"],
  ]);
  await entry(BENCH_GROUPS, [
    ["objectClass", "organizationalUnit"],
    ["ou", "groups"],
  ]);
  const divisions = Math.min(DIVISIONS, teams);
  for (let d = 0; d < divisions; d++) {
    await entry(divisionOu(d), [
      ["objectClass", "organizationalUnit"],
      ["ou", `div${d}`],
    ]);
  }
  for (let t = 0; t < teams; t++) {
    await entry(teamOu(t), [
      ["objectClass", "organizationalUnit"],
      ["ou", `team${t}`],
    ]);
  }
  for (let i = 0; i < people; i++) {
    const team = Math.floor(i / TEAM_SIZE);
    const lead = team * TEAM_SIZE;
    const attributes: Array<[string, string]> = [
      ["objectClass", "inetOrgPerson"],
      ["uid", `u${String(i).padStart(6, "0")}`],
      ["cn", `${SURNAMES[i % SURNAMES.length]}${GIVEN[(i >> 3) % GIVEN.length]}${i}`],
      ["sn", SURNAMES[i % SURNAMES.length]!],
      ["mail", `u${i}@bench.test`],
      ["mobile", `+86 139 ${String(i).padStart(8, "0")}`],
      ["employeeNumber", `E${i}`],
      ["title", i === lead ? "Team lead" : "Engineer"],
      ["memberOf", teamGroup(team)],
      ["memberOf", roleGroup(i % ROLES)],
    ];
    if (i !== lead) attributes.push(["manager", personDn(lead)]);
    await entry(personDn(i), attributes);
  }
  for (let t = 0; t < teams; t++) {
    const members: Array<[string, string]> = [];
    for (let i = t * TEAM_SIZE; i < Math.min(people, (t + 1) * TEAM_SIZE); i++)
      members.push(["member", personDn(i)]);
    await entry(teamGroup(t), [
      ["objectClass", "groupOfNames"],
      ["cn", `team-${t}`],
      ...members,
      ["memberOf", divisionGroup(division(t))],
    ]);
  }
  for (let d = 0; d < divisions; d++) {
    const members: Array<[string, string]> = [];
    for (let t = d; t < teams; t += DIVISIONS) members.push(["member", teamGroup(t)]);
    await entry(divisionGroup(d), [
      ["objectClass", "groupOfNames"],
      ["cn", `div-${d}`],
      ...members,
      ["memberOf", everyone],
    ]);
  }
  const roles = Math.min(ROLES, people);
  for (let r = 0; r < roles; r++) {
    const members: Array<[string, string]> = [];
    for (let i = r; i < people; i += ROLES) members.push(["member", personDn(i)]);
    await entry(roleGroup(r), [["objectClass", "groupOfNames"], ["cn", `role-${r}`], ...members]);
  }
  const divisionMembers: Array<[string, string]> = [];
  for (let d = 0; d < divisions; d++) divisionMembers.push(["member", divisionGroup(d)]);
  await entry(everyone, [["objectClass", "groupOfNames"], ["cn", "everyone"], ...divisionMembers]);

  out.end(pending);
  await once(out, "finish");
  return { people, groups: teams + divisions + roles + 1, ous: 1 + divisions + teams };
}
