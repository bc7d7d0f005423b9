import { describe, expect, it } from "vitest";
import {
  can,
  permissionsOf,
  requirePermission,
  type AdminRole,
  type Caller,
} from "../../src/admin/access.js";
import { consoleConfigSchema } from "../../src/admin/config.js";

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
