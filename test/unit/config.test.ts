import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { isAppError } from "../../src/domain/errors.js";

function problemsOf(yaml: string, env: Record<string, string> = {}): string[] {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
  const file = join(dir, "idbridge.yaml");
  writeFileSync(file, yaml);
  try {
    loadConfig({ file, env, cwd: dir });
  } catch (err) {
    if (isAppError(err, "CONFIG_INVALID")) return [...err.details];
    throw err;
  }
  return [];
}

describe("config", () => {
  it("falls back to built-in defaults when there is no file", () => {
    const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
    const config = loadConfig({ env: {}, cwd: dir });
    expect(config.file).toBeNull();
    expect(config.server).toMatchObject({ host: "127.0.0.1", port: 8080 });
    expect(config.store.url).toBe(`sqlite:${join(dir, "data", "idbridge.db")}`);
    expect(config.keys.dir).toBe(join(dir, "data", "keys"));
    expect(config.audit).toEqual({ checkpointEvery: 1000, checkpointIntervalSeconds: 60 });
    expect(Object.isFrozen(config.server)).toBe(true);
  });

  it("refuses a missing file given explicitly", () => {
    expect(() => loadConfig({ file: "/nonexistent/idbridge.yaml", env: {}, cwd: "/" })).toThrow(
      /does not exist/,
    );
  });

  it("reports every problem at once as dotted paths, with lines", () => {
    const problems = problemsOf(
      [
        "server:",
        "  prot: 80",
        "store:",
        "  url: mysql://db",
        "sources:",
        "  - id: corp-idp",
        "    type: oidc",
        "    config: { issuer: 'https://idp.example.test', clientId: idbridge, clientSecret: '${OIDC_SECRET}' }",
        "  - id: hq-2",
        "    type: dingding",
      ].join("\n"),
    );
    expect(problems).toEqual([
      "sources[0].config.clientSecret: environment variable OIDC_SECRET is not set (line 8)",
      "server.prot: unknown key (line 2)",
      "store.url: must start with sqlite: or postgres:// (line 4)",
      'sources[1].type: unknown source type "dingding" (known: ldap, dingtalk, wecom, oidc, saml) (line 10)',
    ]);
  });

  it("substitutes ${VAR} inside strings only, and $${ escapes", () => {
    const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
    const file = join(dir, "c.yaml");
    writeFileSync(
      file,
      "store:\n  url: postgres://idb:${PG_PASS}@db:5432/idb\nsources:\n  - { id: a, type: oidc, config: { issuer: 'https://idp.example.test', clientId: idbridge, clientSecret: 'cost $${X} and more than 32 characters' } }\n",
    );
    const config = loadConfig({ file, env: { PG_PASS: "s3cret" }, cwd: "/" });
    expect(config.store.url).toBe("postgres://idb:s3cret@db:5432/idb");
    expect(config.sources[0]?.config).toMatchObject({
      clientSecret: "cost ${X} and more than 32 characters",
    });
  });

  it("resolves source settings ending in File against the config file's directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
    const file = join(dir, "c.yaml");
    writeFileSync(
      file,
      "sources:\n  - { id: a, type: saml, config: { idpEntityId: 'https://idp.example.test', idpSsoUrl: 'https://idp.example.test/sso', idpCertFile: certs/idp.pem } }\n" +
        "  - { id: b, type: saml, config: { idpEntityId: 'https://idp.example.test', idpSsoUrl: 'https://idp.example.test/sso', idpCertFile: /etc/idp.pem } }\n",
    );
    const config = loadConfig({ file, env: {}, cwd: "/" });
    expect(config.sources[0]?.config).toMatchObject({ idpCertFile: join(dir, "certs/idp.pem") });
    expect(config.sources[1]?.config).toMatchObject({ idpCertFile: "/etc/idp.pem" });
  });

  it("names line and column of a YAML syntax error", () => {
    expect(problemsOf("server:\n  port: 8080\n  host: [oops\n")[0]).toMatch(/^line \d+, column \d+: /);
  });

  it("rejects duplicate source ids and wrong types", () => {
    const problems = problemsOf(
      "server: { port: 'eighty' }\nsources:\n  - { id: a, type: oidc, config: { issuer: 'https://idp.example.test', clientId: idbridge } }\n  - { id: a, type: oidc, config: { issuer: 'https://idp2.example.test', clientId: idbridge } }\n",
    );
    expect(problems).toContain('sources[1].id: duplicate source id "a" (also used by sources[0]) (line 4)');
    expect(problems.some((p) => p.startsWith("server.port: "))).toBe(true);
  });

  it("checks that identity link rules name configured sources, with line numbers", () => {
    const problems = problemsOf(
      [
        "sources:",
        "  - { id: corp-idp, type: oidc, config: { issuer: 'https://idp.example.test', clientId: idbridge } }",
        "identity:",
        "  rules:",
        "    - id: same-login",
        "      match:",
        "        - { source: corp-idp, attribute: username }",
        "        - { source: ad-hq, attribute: username }",
      ].join("\n"),
    );
    expect(problems).toEqual([
      'identity.rules[0].match[1].source: unknown source "ad-hq" (configured: corp-idp) (line 8)',
    ]);
  });

  it("refuses timer settings that would overflow Node's timers", () => {
    expect(problemsOf("audit: { checkpointIntervalSeconds: 3000000 }\n")).toEqual([
      "audit.checkpointIntervalSeconds: must be at most 2147483 seconds (about 24 days) (line 1)",
    ]);
  });

  it("resolves relative paths against the config file's directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "idbridge-config-"));
    const file = join(dir, "idbridge.yaml");
    writeFileSync(file, "dataDir: ./state\nstore: { url: 'sqlite:db/x.db' }\n");
    const config = loadConfig({ file, env: {}, cwd: "/" });
    expect(config.dataDir).toBe(join(dir, "state"));
    expect(config.store.url).toBe(`sqlite:${join(dir, "db", "x.db")}`);
    expect(config.keys.dir).toBe(join(dir, "state", "keys"));
  });
});

describe("config reference", () => {
  it("docs/config.md is generated from the current schema (run npm run docs:config)", async () => {
    const { readFileSync } = await import("node:fs");
    const { renderConfigReference } = await import("../../src/config/reference.js");
    const committed = readFileSync(join(import.meta.dirname, "..", "..", "docs", "config.md"), "utf8");
    expect(committed).toBe(renderConfigReference());
    expect(committed).toContain("| `store.url` | string |");
  });
});
