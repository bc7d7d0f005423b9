import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReviewItem } from "../../src/identity/link.js";
import type { Person } from "../../src/identity/person.js";
import { generateKeys } from "../../src/keys/keys.js";
import { openStore, type Store } from "../../src/store/index.js";
import { runCli } from "../helpers/cli.js";

const root = mkdtempSync(join(tmpdir(), "idbridge-identities-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const TIME = "2026-03-01T08:00:00.000Z";
let cases = 0;

const people: Person[] = [
  { id: "p_1", accounts: [{ sourceId: "ad-hq", subject: "guid-1", rule: "created", linkedAt: TIME }] },
  { id: "p_2", accounts: [{ sourceId: "ad-hq", subject: "guid-2", rule: "created", linkedAt: TIME }] },
];

const item: ReviewItem = {
  id: "r_8f3a",
  accounts: [{ sourceId: "wecom-hq", subject: "zhangwei" }],
  candidates: ["p_1", "p_2"],
  reasons: [{ code: "several-candidates", message: "rule username matches 2 people: p_1, p_2" }],
  evidence: [
    {
      rule: "username",
      account: { sourceId: "wecom-hq", subject: "zhangwei" },
      matched: { sourceId: "ad-hq", subject: "guid-1" },
      value: "zhangwei",
    },
  ],
};

let keysDir: string;
beforeAll(async () => {
  keysDir = join(root, "keys");
  await generateKeys(keysDir);
});

/** A fresh SQLite store with two people (accounts of ad-hq) and a config pointing at it. */
async function setup(queue: readonly ReviewItem[] = [item]) {
  const dir = join(root, `case-${++cases}`);
  const url = `sqlite:${join(dir, "idbridge.db")}`;
  const store = await openStore({ url });
  await store.savePeople(people);
  await store.setReviewQueue(queue);
  await store.close();
  const config = join(root, `idbridge-${cases}.yaml`);
  writeFileSync(config, `store: { url: '${url}' }\nkeys: { dir: '${keysDir}' }\n`);
  const cli = (...args: string[]) => runCli([...args, "-c", config]);
  const inspect = async <T>(fn: (s: Store) => Promise<T>): Promise<T> => {
    const s = await openStore({ url });
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  };
  return { cli, inspect };
}

describe("idbridge identities", () => {
  it("review prints each item's id, accounts, candidates, reasons and evidence", async () => {
    const { cli } = await setup();
    const text = await cli("identities", "review");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("1 item(s) waiting for review");
    expect(text.stdout).toMatch(/^r_8f3a$/m);
    expect(text.stdout).toMatch(/accounts: +wecom-hq:zhangwei$/m);
    expect(text.stdout).toMatch(/candidates: +p_1, p_2$/m);
    expect(text.stdout).toMatch(/reason: +several-candidates: rule username matches 2 people: p_1, p_2$/m);
    expect(text.stdout).toMatch(/evidence: +username: wecom-hq:zhangwei = ad-hq:guid-1 \("zhangwei"\)$/m);

    const json = await cli("identities", "review", "--format", "json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([item]);
  });

  it("review says so when the queue is empty", async () => {
    const { cli } = await setup([]);
    const result = await cli("identities", "review");
    expect(result).toMatchObject({ code: 0, stdout: "the review queue is empty\n" });
  });

  it("link appends the decision and one audit entry, and says it takes effect at the next sync", async () => {
    const { cli, inspect } = await setup();
    const result = await cli(
      "identities",
      "link",
      "ad-hq:guid-9",
      "--to",
      "p_2",
      "--by",
      "alice",
      "--comment",
      "同一人, HR confirmed",
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("ad-hq:guid-9 belongs to p_2");
    expect(result.stdout).toContain("next sync");
    const { decisions, audit, checkpoint } = await inspect(async (s) => ({
      decisions: await s.listLinkDecisions(),
      audit: await s.readAudit(0, 100, 100),
      checkpoint: await s.latestCheckpoint(),
    }));
    expect(decisions).toEqual([
      {
        kind: "link",
        account: { sourceId: "ad-hq", subject: "guid-9" },
        personId: "p_2",
        by: "alice",
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        comment: "同一人, HR confirmed",
      },
    ]);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: "cli:alice",
      action: "identity.linked",
      subject: "p_2",
      target: null,
      details: { account: "ad-hq:guid-9", personId: "p_2", comment: "同一人, HR confirmed" },
      time: decisions[0]?.at,
    });
    // The entry is pinned by a signed checkpoint, as the server does when it stops.
    expect(checkpoint).toMatchObject({ seq: 1, hash: audit[0]?.hash });
  });

  it("unlink and ignore append their decisions and audit entries in order", async () => {
    const { cli, inspect } = await setup();
    expect((await cli("identities", "unlink", "ad-hq:guid-1", "--from", "p_1", "--by", "bob")).code).toBe(0);
    const ignored = await cli("identities", "ignore", "ad-hq:test-account", "--by", "bob");
    expect(ignored.code).toBe(0);
    expect(ignored.stdout).toContain("ad-hq:test-account is ignored");
    const { decisions, audit } = await inspect(async (s) => ({
      decisions: await s.listLinkDecisions(),
      audit: await s.readAudit(0, 100, 100),
    }));
    expect(decisions.map((d) => [d.kind, d.account.subject, "personId" in d ? d.personId : null])).toEqual([
      ["unlink", "guid-1", "p_1"],
      ["ignore", "test-account", null],
    ]);
    expect(audit.map((r) => [r.actor, r.action, r.subject])).toEqual([
      ["cli:bob", "identity.unlinked", "p_1"],
      ["cli:bob", "identity.ignored", "ad-hq:test-account"],
    ]);
  });

  it("refuses an unknown person id with exit 2 naming it, and records nothing", async () => {
    const { cli, inspect } = await setup();
    const result = await cli("identities", "link", "ad-hq:guid-9", "--to", "p_404", "--by", "alice");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no person "p_404"');
    const unlink = await cli("identities", "unlink", "ad-hq:guid-1", "--from", "p_404", "--by", "alice");
    expect(unlink.code).toBe(2);
    expect(await inspect(async (s) => [await s.listLinkDecisions(), await s.readAudit(0, 100, 100)])).toEqual(
      [[], []],
    );
  });

  it("refuses a malformed account or an unknown source with exit 2 and the expected form", async () => {
    const { cli, inspect } = await setup();
    for (const account of ["zhangwei", ":zhangwei", "ad-hq:"]) {
      const result = await cli("identities", "ignore", account, "--by", "alice");
      expect(result.code, account).toBe(2);
      expect(result.stderr).toContain("SOURCE:SUBJECT");
    }
    const unknown = await cli("identities", "ignore", "dingtalk-xx:zhangwei", "--by", "alice");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no source "dingtalk-xx"');
    expect(await inspect((s) => s.listLinkDecisions())).toEqual([]);
  });

  it("requires --by (exit 2)", async () => {
    const { cli, inspect } = await setup();
    const result = await cli("identities", "link", "ad-hq:guid-9", "--to", "p_1");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--by");
    const blank = await cli("identities", "ignore", "ad-hq:guid-9", "--by", "  ");
    expect(blank.code).toBe(2);
    expect(await inspect((s) => s.listLinkDecisions())).toEqual([]);
  });
});
