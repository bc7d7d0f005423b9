import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { isAppError } from "../../src/domain/errors.js";
import { wecomConfigSchema } from "../../src/sources/wecom/config.js";

function problemsOf(config: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-wecom-config-"));
  const file = join(dir, "idbridge.yaml");
  writeFileSync(file, `sources:\n  - id: wecom-hq\n    type: wecom\n    config:\n${config}`);
  try {
    loadConfig({ file, env: { WECOM_SECRET: "s3cret" }, cwd: dir });
  } catch (err) {
    if (isAppError(err, "CONFIG_INVALID")) return [...err.details];
    throw err;
  }
  return [];
}

describe("wecom config", () => {
  it("fills every default for a 通讯录同步 secret", () => {
    expect(wecomConfigSchema.parse({ corpId: "ww1", contactSecret: "s" })).toEqual({
      corpId: "ww1",
      contactSecret: "s",
      baseUrl: "https://qyapi.weixin.qq.com",
      loginBaseUrl: "https://login.work.weixin.qq.com",
      oauthBaseUrl: "https://open.weixin.qq.com",
      listing: "department",
      pageSize: 10_000,
      requestsPerMinute: 8_000,
      concurrency: 4,
      timeoutMs: 15_000,
      readTags: true,
      employeeNoAttribute: "工号",
    });
  });

  it("accepts an app secret with its agentId", () => {
    expect(problemsOf("      corpId: ww1\n      secret: ${WECOM_SECRET}\n      agentId: 1000002\n")).toEqual(
      [],
    );
  });

  it("asks for a secret when neither kind is set", () => {
    expect(problemsOf("      corpId: ww1\n")).toEqual([
      expect.stringMatching(
        /^sources\[0\]\.config\.contactSecret: required: set contactSecret \(the 通讯录同步 secret\) or secret \+ agentId/,
      ),
    ]);
  });

  it("accepts both kinds of secret at once: the directory is read with contactSecret, people sign in with the app", () => {
    expect(
      problemsOf("      corpId: ww1\n      contactSecret: a\n      secret: b\n      agentId: 1\n"),
    ).toEqual([]);
  });

  it("asks for agentId with an app secret", () => {
    expect(problemsOf("      corpId: ww1\n      secret: b\n")).toEqual([
      expect.stringMatching(/^sources\[0\]\.config\.agentId: required with secret/),
    ]);
  });

  it("refuses listing list-id with an app secret, because only the 通讯录同步 secret may call user/list_id", () => {
    expect(
      problemsOf("      corpId: ww1\n      secret: b\n      agentId: 7\n      listing: list-id\n"),
    ).toEqual([
      expect.stringMatching(
        /^sources\[0\]\.config\.listing: list-id calls user\/list_id, which only the 通讯录同步 secret may call \(WeCom answers 48002/,
      ),
    ]);
  });

  it("keeps requestsPerMinute within WeCom's documented 10,000 per minute and pageSize within 1..10000", () => {
    const problems = problemsOf(
      "      corpId: ww1\n      contactSecret: a\n      requestsPerMinute: 20000\n      pageSize: 0\n",
    );
    expect(problems).toHaveLength(2);
    expect(problems.some((p) => p.startsWith("sources[0].config.requestsPerMinute: "))).toBe(true);
    expect(problems.some((p) => p.startsWith("sources[0].config.pageSize: "))).toBe(true);
  });
});
