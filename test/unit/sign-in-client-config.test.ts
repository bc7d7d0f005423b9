/** signIn.clients: the broker's own client id is reserved, and a client id names one platform only. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { isAppError } from "../../src/domain/errors.js";

function problemsOf(clientIds: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
  const file = join(dir, "idbridge.yaml");
  const clients = clientIds
    .map((id) => `    - clientId: ${id}\n      redirectUris: ["https://${id.toLowerCase()}.example.test/cb"]`)
    .join("\n");
  writeFileSync(file, `signIn:\n  clients:\n${clients}\n`);
  try {
    loadConfig({ file, env: {}, cwd: dir });
  } catch (err) {
    if (isAppError(err, "CONFIG_INVALID")) return [...err.details];
    throw err;
  }
  return [];
}

describe("config: signIn client ids", () => {
  it("accepts distinct client ids", () => {
    expect(problemsOf(["portal", "erp"])).toStrictEqual([]);
  });

  it("refuses the broker's own client id idbridge, naming the path and the fix", () => {
    const problems = problemsOf(["portal", "idbridge"]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("signIn.clients[1].clientId");
    expect(problems[0]).toMatch(/reserved for idbridge's own sign-in/);
    expect(problems[0]).toMatch(/give the platform another clientId/);
  });

  it("refuses a differently cased idbridge too", () => {
    expect(problemsOf(["IdBridge"]).join("\n")).toMatch(/reserved/);
  });

  it("refuses a duplicate client id, naming the first use", () => {
    const problems = problemsOf(["portal", "portal"]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /signIn\.clients\[1\]\.clientId.*duplicate clientId "portal".*signIn\.clients\[0\]/,
    );
  });
});
