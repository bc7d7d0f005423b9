import { describe, expect, it } from "vitest";
import {
  can,
  permissionsOf,
  requirePermission,
  type AdminRole,
  type Caller,
} from "../../src/admin/access.js";
import { accessPolicy, clientCaller, consoleRolesOf } from "../../src/admin/callers.js";
import { consoleConfigSchema } from "../../src/admin/config.js";
import { buildDirectoryFacts, buildPersonFacts } from "../../src/policy/facts.js";
import { AD, DINGTALK, FINANCE_CASHIERS, linked } from "../fixtures/policy/directory.js";

const caller = (...roles: AdminRole[]): Caller => ({
  actor: "person:p_1",
  name: "王芳",
  roles: new Set(roles),
});

describe("admin access", () => {
  it("lets a security admin decide but not export, an auditor export but not decide, a viewer only read", () => {
    expect(can(caller("security-admin"), "sync.decide")).toBe(true);
    expect(can(caller("security-admin"), "audit.export")).toBe(false);
    expect(can(caller("auditor"), "audit.export")).toBe(true);
    expect(can(caller("auditor"), "sync.decide")).toBe(false);
    expect([...permissionsOf(caller("viewer"))].sort()).toEqual(["audit.read", "sync.read"]);
    expect(can(caller(), "sync.read")).toBe(false);
  });

  it("adds up the permissions of several roles", () => {
    const both = caller("security-admin", "auditor");
    expect(can(both, "sync.decide") && can(both, "audit.export")).toBe(true);
  });

  it("refuses with ACCESS_DENIED naming the role that would allow it", () => {
    expect(() => requirePermission(caller("auditor"), "sync.decide")).toThrow(
      expect.objectContaining({ code: "ACCESS_DENIED", message: expect.stringMatching(/security-admin/) }),
    );
    expect(() => requirePermission(caller(), "audit.read")).toThrow(/no console role/);
  });

  it("refuses an access rule that names nobody and a short API client secret", () => {
    const result = consoleConfigSchema.safeParse({
      access: [{ role: "auditor" }],
      apiClients: [{ clientId: "reports", clientSecret: "short", roles: ["auditor"] }],
    });
    expect(result.success).toBe(false);
    const messages = result.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`) ?? [];
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^access\.0: give people, when, or both/),
        expect.stringMatching(/^apiClients\.0\.clientSecret: must be at least 32/),
      ]),
    );
  });
});

describe("console roles of a person", () => {
  const directories = buildDirectoryFacts([DINGTALK, AD]);
  const access = consoleConfigSchema.parse({
    access: [
      { role: "viewer", people: ["dingtalk-hq:lina"] },
      { role: "auditor", when: { group: `ad-hq:${FINANCE_CASHIERS}` } },
      { role: "security-admin", when: { leaderOf: "any" } },
    ],
  }).access;
  const policy = accessPolicy(access);
  const rolesOf = (userid: string, guid?: string): string[] => {
    const person = linked(userid, guid);
    return [...consoleRolesOf(person, buildPersonFacts(person, directories), access, policy)].sort();
  };

  it("gives roles by a named account and by conditions, judged like policy rules", () => {
    // A Finance Cashier in AD and the leader of 财务部.
    expect(rolesOf("zhangwei", "guid-zhangwei")).toEqual(["auditor", "security-admin"]);
    // A leader through the department's leader list only.
    expect(rolesOf("zhaolei")).toEqual(["security-admin"]);
  });

  it("gives nothing by a condition met only by a disabled account, and nothing to whom no rule names", () => {
    // lina is a Finance Cashier in AD, but that account is disabled: only the rule naming her counts.
    expect(rolesOf("lina", "guid-lina")).toEqual(["viewer"]);
    // A Retail Cashier (same cn, another OU) and no leader.
    expect(rolesOf("chenjie", "guid-chenjie")).toEqual([]);
  });

  it("names API clients by their configured roles, and nobody else", () => {
    const clients = consoleConfigSchema.parse({
      apiClients: [{ clientId: "reports", clientSecret: "x".repeat(32), roles: ["auditor"] }],
    }).apiClients;
    expect(clientCaller("reports", clients)).toEqual({
      actor: "client:reports",
      name: "reports",
      roles: new Set(["auditor"]),
    });
    expect(clientCaller("finance-app", clients)).toBeNull();
  });
});
