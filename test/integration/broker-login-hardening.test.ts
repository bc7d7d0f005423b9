/**
 * The login pages under abuse, against AD password sign-in on the run's Samba AD DC: posts refused
 * before the password is checked never lock an account, wrong passwords count per login name however
 * it is spelled, a refusal is audited once per window, and junk at the callback and the forms is
 * refused with an audit entry but no stash.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../src/cli/serve.js";
import {
  adSourceYaml,
  Browser,
  createAdUsers,
  errorSentence,
  FakePeople,
  openPasswordForm,
  PORTAL,
  recentAudit,
  relyingParty,
  serviceYaml,
  start,
  tempDir,
  writeConfig,
  type AdUsers,
  type RelyingParty,
} from "../helpers/broker-env.js";
import { sambaOrSkip } from "../peers/index.js";

const samba = sambaOrSkip();

describe.skipIf(samba === null)("sign-in broker: login hardening", () => {
  const info = samba!;
  const tmp = tempDir();
  let users: AdUsers;
  let service: RunningService;
  let rp: RelyingParty;
  let storeUrl: string;

  beforeAll(async () => {
    users = await createAdUsers(info, "lh", ["alice", "bob", "carol"]);
    storeUrl = `sqlite:${tmp.dir}/idbridge.db`;
    const config = writeConfig(
      tmp.dir,
      `${serviceYaml(tmp.dir, { storeUrl })}${adSourceYaml(info, users.ou)}
signIn:
  clients:
    - clientId: portal
      redirectUris: ["https://portal.example.test/cb"]
`,
    );
    service = await start(config, {
      people: new FakePeople(),
      passwordLimits: { perIp: 1000, perLogin: 3, windowMs: 60_000 },
    });
    rp = await relyingParty(`${service.url}/oidc`, PORTAL);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await users?.remove();
    tmp.remove();
  });

  const failures = async (code: string) =>
    (await recentAudit(storeUrl)).filter((e) => e.action === "login.failed" && e.details.code === code);

  it("lets alice sign in after many posts with her name and a wrong CSRF token, auditing them as FORM_INVALID", async () => {
    const attacker = new Browser(service.url, undefined, "en");
    const { form } = await openPasswordForm(attacker, rp);
    const before = (await failures("FORM_INVALID")).length;
    for (let i = 0; i < 6; i++) {
      const done = await attacker.go(form.action, {
        form: { csrf: "forged", login: "lh-alice", password: `junk-${i}` },
      });
      expect(done.kind === "page" && done.status).toBe(403);
    }
    expect((await failures("FORM_INVALID")).length - before).toBe(6);
    const browser = new Browser(service.url);
    const real = await openPasswordForm(browser, rp);
    const done = await browser.go(real.form.action, {
      form: { csrf: real.form.csrf, login: "lh-alice", password: users.password.alice! },
    });
    expect(done.kind).toBe("away");
  });

  it("counts wrong passwords per login however spelled, stops the next one generically and audits the refusal once", async () => {
    const browser = new Browser(service.url, undefined, "en");
    const { form } = await openPasswordForm(browser, rp);
    const spellings = ["CORP\\LH-Bob", "lh-bob@corp.example.test", "  lh-bob "];
    for (const [i, login] of spellings.entries()) {
      const done = await browser.go(form.action, {
        form: { csrf: form.csrf, login, password: `wrong-${i}` },
      });
      expect(done.kind === "page" && done.status).toBe(401);
    }
    const statuses: number[] = [];
    let last = "";
    // Even the right password is refused now, and the page says no more than for a name that does not exist.
    for (const password of ["wrong-3", users.password.bob!, "wrong-4"]) {
      const done = await browser.go(form.action, { form: { csrf: form.csrf, login: "LH-BOB", password } });
      if (done.kind !== "page") throw new Error("expected a page");
      statuses.push(done.status);
      last = done.html;
    }
    expect(statuses).toStrictEqual([429, 429, 429]);
    expect(errorSentence(last)).toBe("Too many attempts. Try again later.");
    const limited = await failures("RATE_LIMITED");
    expect(limited).toHaveLength(1);
    expect(limited[0]!.details.sourceSubject).toBe("LH-BOB");
    expect(JSON.stringify(await recentAudit(storeUrl))).not.toContain(users.password.bob!);
  });

  it("does not count another login's wrong passwords against carol", async () => {
    const browser = new Browser(service.url);
    const { form } = await openPasswordForm(browser, rp);
    for (let i = 0; i < 4; i++)
      await browser.go(form.action, { form: { csrf: form.csrf, login: "lh-nobody", password: `x-${i}` } });
    const real = await openPasswordForm(browser, rp);
    const done = await browser.go(real.form.action, {
      form: { csrf: real.form.csrf, login: "lh-carol", password: users.password.carol! },
    });
    expect(done.kind).toBe("away");
  });

  it("audits a password post to a source that does not exist as SOURCE_UNKNOWN", async () => {
    const browser = new Browser(service.url);
    const { form } = await openPasswordForm(browser, rp);
    const action = form.action.replace("/password/corp-ad", "/password/no-such-source");
    expect(action).not.toBe(form.action);
    await browser.go(action, { form: { csrf: form.csrf, login: "lh-alice", password: "irrelevant" } });
    const entries = await failures("SOURCE_UNKNOWN");
    expect(entries.map((e) => e.details.source)).toContain("no-such-source");
    expect(JSON.stringify(entries)).not.toContain("irrelevant");
  });

  it("refuses a POST callback for a source that takes none, or without a live RelayState, with no stash", async () => {
    const before = (await failures("FLOW_INVALID")).length;
    for (const [path, body] of [
      ["/login/callback/corp-ad", `SAMLResponse=abc&RelayState=${"a".repeat(64)}`],
      ["/login/callback/nowhere", "SAMLResponse=abc"],
    ] as const) {
      const res = await fetch(`${service.url}${path}`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
    }
    expect((await failures("FLOW_INVALID")).length - before).toBe(2);
  });

  it("refuses a callback body over 64 KB with 413", async () => {
    const res = await fetch(`${service.url}/login/callback/corp-ad`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `SAMLResponse=${"A".repeat(70 * 1024)}`,
    });
    expect(res.status).toBe(413);
  });

  it("audits a callback naming an unknown posted stash as FLOW_INVALID", async () => {
    const before = (await failures("FLOW_INVALID")).length;
    const landing = await new Browser(service.url).go(`/login/callback/corp-ad?posted=${"b".repeat(64)}`);
    expect(landing.kind === "page" && landing.status).toBe(400);
    expect((await failures("FLOW_INVALID")).length - before).toBe(1);
  });
});
