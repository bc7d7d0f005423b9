/**
 * The admin API (`/api/v1`) end to end: idbridge started in-process on SQLite with the DingTalk simulator
 * as its directory and sign-in source and the 合思 simulator as its target, a pending plan made by a real
 * sync, API clients authenticating with client-credentials tokens from idbridge's own provider, and people
 * signed in through the DingTalk simulator's web flow (a browser made of fetch and a cookie jar).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express, { type RequestHandler } from "express";
import type { JSONWebKeySet } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { AuditLog } from "../../src/audit/log.js";
import { startService, type RunningService } from "../../src/cli/serve.js";
import { loadConfig, type Config } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import { openApiDocument } from "../../src/http/api/openapi.js";
import { adminApiRouter } from "../../src/http/api/routes.js";
import type { AdminAuth } from "../../src/http/admin-auth.js";
import type { AdminService } from "../../src/admin/contracts.js";
import { generateOrg, type SimOrg, type SimPerson } from "../../src/simulators/common/org.js";
import {
  startDingTalkSimulator,
  type RunningDingTalkSimulator,
} from "../../src/simulators/dingtalk/index.js";
import { startHesiSimulator, type RunningHesiSimulator } from "../../src/simulators/hesi/index.js";
import { openStore } from "../../src/store/index.js";
import { SyncService } from "../../src/sync/service.js";
import { hesiPolicy } from "../fixtures/sync/policies.js";
import { verifyText } from "../helpers/audit.js";
import { Browser } from "../helpers/broker-env.js";
import { DINGTALK_ID, prepareIdbridgeFiles } from "../helpers/sync-env.js";
import { freePort } from "../peers/process.js";

const HESI_ID = "hesi-main";
const secret = (): string => randomBytes(32).toString("base64url");
const CLIENTS = {
  admin: { clientId: "ci-admin", clientSecret: secret(), roles: ["security-admin"] },
  auditor: { clientId: "ci-auditor", clientSecret: secret(), roles: ["auditor"] },
  viewer: { clientId: "ci-viewer", clientSecret: secret(), roles: ["viewer"] },
} as const;

interface Env {
  url: string;
  api: string;
  dir: string;
  config: Config;
  org: SimOrg;
  dingtalk: RunningDingTalkSimulator;
  hesi: RunningHesiSimulator;
  service: RunningService;
  planId: string;
  /** DingTalk people with the console role auditor / security-admin / none. */
  auditor: SimPerson;
  admin: SimPerson;
  nobody: SimPerson;
}

let env: Env;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "idbridge-admin-api-"));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const org = generateOrg({ people: 40, seed: 5 });
  const active = org.people.filter((p) => p.status === "active");
  const [auditor, admin, nobody] = [active[1]!, active[2]!, active[3]!];
  const dingtalk = await startDingTalkSimulator({
    org,
    qps: 500,
    redirectUrls: [`${url}/login/callback/${DINGTALK_ID}`],
  });
  closers.push(() => dingtalk.close());
  const hesi = await startHesiSimulator({ timeoutMs: 50 });
  closers.push(() => hesi.close());
  const { keys, storeUrl, configFile, fileConfig } = await prepareIdbridgeFiles(dir, {
    [`${HESI_ID}.yaml`]: hesiPolicy(),
  });
  writeFileSync(
    configFile,
    stringify({
      server: { host: "127.0.0.1", port },
      ...fileConfig,
      sources: [
        { id: DINGTALK_ID, type: "dingtalk", config: { ...dingtalk.sourceConfig(), requestsPerSecond: 500 } },
      ],
      targets: [
        {
          id: HESI_ID,
          type: "hesi",
          config: { ...hesi.targetConfig(), requestsPerSecond: 100, timeoutMs: 5000 },
        },
      ],
      identity: { primarySource: DINGTALK_ID },
      sync: { orgChartSource: DINGTALK_ID, fullEveryMinutes: 0, incrementalEveryMinutes: 0 },
      console: {
        access: [
          { role: "auditor", people: [`${DINGTALK_ID}:${auditor.userid}`] },
          { role: "security-admin", people: [`${DINGTALK_ID}:${admin.userid}`] },
        ],
        apiClients: Object.values(CLIENTS),
      },
    }),
  );
  const config = loadConfig({ file: configFile, env: {}, cwd: dir });

  // A pending plan (the policy's 出纳 is sensitive), made as the CLI would, before the service opens the file.
  const store = await openStore({ url: storeUrl });
  let planId: string;
  try {
    const audit = new AuditLog(store, keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
    try {
      const sync = new SyncService({ config, store, audit, holder: "test", note: () => undefined });
      const planned = await sync.plan(HESI_ID);
      if (planned.status !== "pending") throw new Error(`expected a pending plan, got ${planned.status}`);
      planId = planned.id;
    } finally {
      await audit.close();
    }
  } finally {
    await store.close();
  }
  const service = await startService(config, pino({ level: "silent" }));
  closers.push(() => service.stop());
  env = {
    url,
    api: `${url}/api/v1`,
    dir,
    config,
    org,
    dingtalk,
    hesi,
    service,
    planId,
    auditor,
    admin,
    nobody,
  };
}, 120_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

// ------------------------------------------------------------------------------------------ helpers

async function tokenOf(client: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await fetch(`${env.url}/oidc/token`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
  const body = (await res.json()) as { access_token?: string; token_type?: string; expires_in?: number };
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.token_type).toBe("Bearer");
  expect(body.expires_in).toBeLessThanOrEqual(env.config.signIn.tokens.accessTokenSeconds);
  return body.access_token!;
}

interface Call {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
}

async function call(
  path: string,
  init: {
    token?: string;
    method?: string;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Call> {
  const res = await fetch(`${env.api}${path}`, {
    method: init.method ?? (init.body !== undefined || init.raw !== undefined ? "POST" : "GET"),
    headers: {
      ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
      ...(init.body !== undefined || init.raw !== undefined ? { "content-type": "application/json" } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    ...(init.raw !== undefined ? { body: init.raw } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === "" ? {} : (JSON.parse(text) as Call["body"]),
  };
}

/** Signs `who` in to idbridge through the DingTalk simulator's web flow; returns the browser. */
async function signInWithDingTalk(who: SimPerson): Promise<Browser> {
  const browser = new Browser(env.url);
  const auth = new URL(`${env.url}/oidc/auth`);
  auth.searchParams.set("client_id", "idbridge");
  auth.searchParams.set("response_type", "none");
  auth.searchParams.set("scope", "openid");
  auth.searchParams.set("redirect_uri", `${env.url}/login/return`);
  auth.searchParams.set("state", "/api/v1/me");
  const login = await browser.go(auth);
  if (login.kind !== "page") throw new Error("expected the login page");
  const away = await browser.go(`${login.url.pathname}/source/${DINGTALK_ID}`);
  if (away.kind !== "away") throw new Error("expected a redirect to DingTalk");
  const page = await (await fetch(away.url)).text();
  const corpId = String(env.dingtalk.sourceConfig().corpId);
  const href = new RegExp(`data-userid="${who.userid}" data-corpid="${corpId}"[^>]*href="([^"]+)"`).exec(
    page,
  )?.[1];
  if (href === undefined) throw new Error(`${who.userid} is not on the DingTalk page`);
  const picked = await fetch(new URL(href.replaceAll("&#38;", "&"), away.url), { redirect: "manual" });
  const back = await browser.go(picked.headers.get("location")!);
  if (back.kind !== "page" || new URL(back.url).pathname !== "/api/v1/me")
    throw new Error(
      `the sign-in did not come back to /api/v1/me: ${JSON.stringify(back.kind === "page" ? back.html.slice(0, 300) : back.url)}`,
    );
  return browser;
}

/** A request of a signed-in browser. */
async function sessionCall(
  browser: Browser,
  path: string,
  init: { body?: unknown; csrf?: string } = {},
): Promise<Call> {
  return call(path, {
    ...(init.body === undefined ? {} : { body: init.body }),
    headers: {
      cookie: browser.jar.header(),
      ...(init.csrf === undefined ? {} : { "x-csrf-token": init.csrf }),
    },
  });
}

async function planHash(token: string): Promise<string> {
  const view = await call(`/plans/${env.planId}`, { token });
  expect(view.status).toBe(200);
  return (view.body.plan as { hash: string }).hash;
}

async function auditEntries(token: string, query: string): Promise<Array<{ actor: string; action: string }>> {
  const res = await call(`/audit/entries?${query}`, { token });
  expect(res.status).toBe(200);
  return res.body.items as Array<{ actor: string; action: string }>;
}

// ------------------------------------------------------------------------------------------ tests

describe("admin API: authentication", () => {
  it("serves its OpenAPI 3.1 document without a credential", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe("3.1.0");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("answers 401 with a Bearer challenge when no credential is sent", async () => {
    const res = await call("/plans");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body.error?.code).toBe("UNAUTHENTICATED");
  });

  it("lists plans for a client-credentials token of an API client", async () => {
    const token = await tokenOf(CLIENTS.viewer);
    const res = await call("/plans", { token });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const items = res.body.items as Array<{ id: string; status: string }>;
    expect(items.find((p) => p.id === env.planId)?.status).toBe("pending");
    const me = await call("/me", { token });
    expect(me.body).toMatchObject({
      actor: `client:${CLIENTS.viewer.clientId}`,
      kind: "bearer",
      roles: ["viewer"],
      permissions: ["sync.read", "audit.read"],
    });
    expect(me.body.csrfToken).toBeUndefined();
  });

  it("refuses forged, expired, foreign-client and wrong-audience tokens with 401 invalid_token", async () => {
    const forged = await call("/plans", { token: randomBytes(32).toString("base64url") });
    expect(forged.status).toBe(401);
    expect(forged.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(forged.body.error?.code).toBe("TOKEN_INVALID");
    expect((await call("/plans", { headers: { authorization: "Basic abc" } })).status).toBe(401);

    // Real tokens, their stored records changed as time or the config would change them.
    const store = await openStore({ url: env.config.store.url });
    try {
      const rewrite = async (change: (payload: Record<string, unknown>) => void): Promise<string> => {
        const token = await tokenOf(CLIENTS.viewer);
        expect((await call("/me", { token })).status).toBe(200);
        const stored = await store.findOidcArtifact("ClientCredentials", token, Date.now());
        expect(stored).not.toBeNull();
        const payload = JSON.parse(stored!.payload) as Record<string, unknown>;
        change(payload);
        await store.upsertOidcArtifact(
          "ClientCredentials",
          token,
          JSON.stringify(payload),
          Date.now() + 60_000,
          {},
        );
        return token;
      };
      const expired = await rewrite((p) => {
        p.exp = Math.floor(Date.now() / 1000) - 5;
      });
      expect((await call("/me", { token: expired })).status).toBe(401);
      // A client no longer listed in console.apiClients (here: a platform's id) has no access.
      const foreign = await rewrite((p) => {
        p.clientId = "finance-a";
      });
      expect((await call("/me", { token: foreign })).status).toBe(401);
      const elsewhere = await rewrite((p) => {
        p.aud = "https://other.example.test/api";
      });
      expect((await call("/me", { token: elsewhere })).status).toBe(401);
    } finally {
      await store.close();
    }
  });

  it("gives no token to a wrong client secret", async () => {
    const res = await fetch(`${env.url}/oidc/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENTS.admin.clientId}:${secret()}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(401);
  });
});

describe("admin API: roles and decisions", () => {
  it("refuses an auditor client's decision with 403 ACCESS_DENIED and records no approval", async () => {
    const token = await tokenOf(CLIENTS.auditor);
    const hash = await planHash(token);
    const res = await call(`/plans/${env.planId}/decision`, {
      token,
      body: { decision: "approve", comment: "looks fine", hash },
    });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe("ACCESS_DENIED");
    expect(await auditEntries(token, "action=plan.approved")).toEqual([]);
  });

  it("refuses a session POST without the session's CSRF token, or with another session's", async () => {
    const auditor = await signInWithDingTalk(env.auditor);
    const admin = await signInWithDingTalk(env.admin);
    const me = await sessionCall(admin, "/me");
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: "session", roles: ["security-admin"] });
    const adminCsrf = me.body.csrfToken as string;
    const body = { decision: "approve", comment: "ok", hash: "0".repeat(64) };

    const without = await sessionCall(admin, `/plans/${env.planId}/decision`, { body });
    expect(without.status).toBe(403);
    expect(without.body.error?.message).toMatch(/CSRF/);
    const auditorsToken = (await sessionCall(auditor, "/me")).body.csrfToken as string;
    const crossed = await sessionCall(admin, `/plans/${env.planId}/decision`, { body, csrf: auditorsToken });
    expect(crossed.status).toBe(403);
    expect(crossed.body.error?.message).toMatch(/CSRF/);
    // The admin's own token passes the CSRF check and reaches the plan (whose hash this is not).
    const own = await sessionCall(admin, `/plans/${env.planId}/decision`, { body, csrf: adminCsrf });
    expect(own.status).toBe(409);
    expect(own.body.error?.code).toBe("PLAN_STALE");
  });

  it("refuses a DingTalk-signed-in auditor's decision with a valid CSRF token: 403 ACCESS_DENIED", async () => {
    const browser = await signInWithDingTalk(env.auditor);
    const me = await sessionCall(browser, "/me");
    expect(me.body).toMatchObject({ actor: expect.stringMatching(/^person:/), roles: ["auditor"] });
    const token = await tokenOf(CLIENTS.viewer);
    const res = await sessionCall(browser, `/plans/${env.planId}/decision`, {
      body: { decision: "approve", comment: "ok", hash: await planHash(token) },
      csrf: me.body.csrfToken as string,
    });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe("ACCESS_DENIED");
    expect(res.body.error?.message).toMatch(/sync\.decide/);
  });

  it("refuses a signed-in person who holds no console role with 403", async () => {
    const browser = await signInWithDingTalk(env.nobody);
    const res = await sessionCall(browser, "/me");
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe("ACCESS_DENIED");
  });

  it("lets a security-admin client approve once: comment required, wrong hash 409, a second POST 409", async () => {
    const token = await tokenOf(CLIENTS.admin);
    const hash = await planHash(token);
    const path = `/plans/${env.planId}/decision`;
    const noComment = await call(path, { token, body: { decision: "approve", comment: "  ", hash } });
    expect(noComment.status).toBe(400);
    expect(noComment.body.error?.message).toMatch(/body\.comment/);
    const wrongHash = await call(path, {
      token,
      body: { decision: "approve", comment: "ok", hash: "a".repeat(64) },
    });
    expect(wrongHash.status).toBe(409);

    const first = await call(path, {
      token,
      body: { decision: "approve", comment: "checked the SoD list", hash },
    });
    expect(first.status).toBe(200);
    expect(first.body.status).toBe("approved");
    const again = await call(path, { token, body: { decision: "approve", comment: "again", hash } });
    expect(again.status).toBe(409);
    const auditorToken = await tokenOf(CLIENTS.auditor);
    const approvals = await auditEntries(auditorToken, "action=plan.approved");
    expect(approvals).toHaveLength(1);
    expect(approvals[0]!.actor).toBe(`client:${CLIENTS.admin.clientId}`);
  });
});

describe("admin API: reads and identity decisions", () => {
  it("answers every read with JSON for an auditor: runs, review queue, people, person, holders, why, access review", async () => {
    const token = await tokenOf(CLIENTS.auditor);
    expect((await call("/sync/runs", { token })).status).toBe(200);
    expect((await call("/identities/review", { token })).body).toHaveProperty("items");
    const people = await call(`/people?text=${encodeURIComponent(env.admin.name)}`, { token });
    expect(people.status).toBe(200);
    const found = (people.body.items as Array<{ id: string; name: string }>).find(
      (p) => p.name === env.admin.name,
    );
    expect(found).toBeDefined();
    const person = await call(`/people/${found!.id}`, { token });
    expect(person.status).toBe(200);
    expect((person.body.person as { id: string }).id).toBe(found!.id);
    const holders = await call(`/roles/${HESI_ID}/submitter/holders?at=2026-01-01T00:00:00Z`, { token });
    expect(holders.status).toBe(200);
    expect(holders.body.items).toEqual([]);
    const why = await call(`/people/${found!.id}/roles/${HESI_ID}/submitter/why`, { token });
    expect(why.status).toBe(200);
    expect(why.body).toHaveProperty("holder", null);
    expect((await call(`/reports/access-review?target=${HESI_ID}`, { token })).body).toHaveProperty("items");
    const csv = await fetch(`${env.api}/reports/access-review?format=csv`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect((await csv.text()).split("\n")[0]).toContain("personId");
  });

  it("checks identity decisions: a viewer is refused, an unknown kind is named", async () => {
    const body = { kind: "ignore", account: `${DINGTALK_ID}:nobody`, comment: "not ours" };
    const viewer = await call("/identities/decisions", { token: await tokenOf(CLIENTS.viewer), body });
    expect(viewer.status).toBe(403);
    expect(viewer.body.error?.code).toBe("ACCESS_DENIED");
    const admin = await tokenOf(CLIENTS.admin);
    const merge = await call("/identities/decisions", { token: admin, body: { ...body, kind: "merge" } });
    expect(merge.status).toBe(400);
    expect(merge.body.error?.message).toMatch(/body\.kind/);
  });
});

describe("admin API: exports", () => {
  it("streams a JSONL export with its proof that verifies with the audit JWKS", async () => {
    const token = await tokenOf(CLIENTS.auditor);
    const res = await fetch(`${env.api}/audit/export?format=jsonl`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="[\w.-]+"$/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const text = await res.text();
    const jwks = (await call("/audit/jwks", { token })).body as unknown as JSONWebKeySet;
    expect(await verifyText(text, jwks)).toMatchObject({ ok: true });
  });

  it("refuses the export to a security-admin (they do not export evidence of their own decisions)", async () => {
    const res = await call("/audit/export?format=csv", { token: await tokenOf(CLIENTS.admin) });
    expect(res.status).toBe(403);
    expect(res.body.error?.code).toBe("ACCESS_DENIED");
  });
});

describe("admin API: bad input", () => {
  let token: string;
  beforeAll(async () => {
    token = await tokenOf(CLIENTS.viewer);
  });

  it("refuses a query string over 4 KB with 414", async () => {
    const res = await call(`/people?text=${"x".repeat(5000)}`, { token });
    expect(res.status).toBe(414);
    expect(res.body.error?.message).toMatch(/4096/);
  });

  it("names unknown query keys and malformed values", async () => {
    const unknown = await call("/plans?status=pending&sort=desc&evil=1", { token });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error?.code).toBe("INPUT_INVALID");
    expect(unknown.body.error?.message).toContain("sort, evil");
    const limit = await call("/plans?limit=ten", { token });
    expect(limit.status).toBe(400);
    expect(limit.body.error?.message).toMatch(/query\.limit/);
    const twice = await call("/people?text=a&text=b", { token });
    expect(twice.status).toBe(400);
    expect(twice.body.error?.message).toMatch(/query\.text: give it once/);
    const kinds = await call(`/plans/${env.planId}?kinds=grant,explode`, { token });
    expect(kinds.status).toBe(400);
  });

  it("refuses bodies that are too large, not JSON, or have unknown keys", async () => {
    const admin = await tokenOf(CLIENTS.admin);
    const path = `/plans/${env.planId}/decision`;
    const huge = await call(path, {
      token: admin,
      body: { decision: "approve", comment: "x".repeat(20_000), hash: "a" },
    });
    expect(huge.status).toBe(413);
    expect(huge.body.error?.message).toMatch(/16384 bytes/);
    const broken = await call(path, { token: admin, raw: "{not json" });
    expect(broken.status).toBe(400);
    expect(broken.body.error?.code).toBe("INPUT_INVALID");
    const extra = await call(path, {
      token: admin,
      body: { decision: "approve", comment: "c", hash: "a", force: true },
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error?.message).toMatch(/unknown key force/);
  });

  it("answers unknown plans and routes with a JSON 404, never a stack", async () => {
    const plan = await call("/plans/no-such-plan", { token });
    expect(plan.status).toBe(404);
    expect(plan.body.error?.code).toBe("NOT_FOUND");
    const route = await call("/nothing-here", { token });
    expect(route.status).toBe(404);
    expect(JSON.stringify(route.body)).not.toMatch(/at .*\.ts:\d+/);
  });

  it("shows search text with markup as data, unchanged", async () => {
    const res = await call(`/people?text=${encodeURIComponent("<script>alert(1)</script>")}`, { token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("admin API: rate limit", () => {
  it("answers 429 RATE_LIMITED with RateLimit headers past the per-IP limit, before authenticating", async () => {
    let authenticated = 0;
    const app = express();
    app.use((req, _res, next) => {
      req.log = pino({ level: "silent" });
      next();
    });
    app.use(
      "/api/v1",
      adminApiRouter({
        service: {} as AdminService,
        auth: {
          requireCaller: (): RequestHandler => (_req, res) => {
            authenticated++;
            res.status(401).json({ error: { code: "UNAUTHENTICATED", message: "no" } });
          },
        } as unknown as AdminAuth,
        publicUrl: "http://127.0.0.1",
        requestsPerMinute: 3,
      }),
    );
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const { port } = server.address() as { port: number };
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await fetch(`http://127.0.0.1:${port}/api/v1/plans`);
        statuses.push(last.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      expect(authenticated).toBe(3);
      expect(await last!.json()).toMatchObject({ error: { code: "RATE_LIMITED" } });
      expect(last!.headers.get("ratelimit-policy")).toContain("q=3");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("admin API: the OpenAPI document", () => {
  /** `METHOD /path` of each route registered on the router, in the document's `{param}` spelling. */
  function registeredRoutes(): Set<string> {
    const router = adminApiRouter({
      service: {} as AdminService,
      auth: { requireCaller: () => (_req, _res, next) => next() } as AdminAuth,
      publicUrl: "http://127.0.0.1:8080",
    }) as unknown as { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
    const routes = new Set<string>();
    for (const layer of router.stack) {
      if (layer.route === undefined) continue;
      const path = layer.route.path.replace(/:(\w+)/g, "{$1}");
      for (const [method, on] of Object.entries(layer.route.methods))
        if (on && method !== "_all") routes.add(`${method.toUpperCase()} ${path}`);
    }
    return routes;
  }

  it("documents exactly the routes the router registers, both ways", () => {
    const document = openApiDocument("http://127.0.0.1:8080") as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
      ),
    );
    const registered = registeredRoutes();
    expect(registered.size).toBeGreaterThan(15);
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !registered.has(r))).toEqual([]);
  });

  it("is a well-formed OpenAPI 3.1 document", () => {
    const document = openApiDocument("http://127.0.0.1:8080") as Record<string, unknown> & {
      paths: Record<
        string,
        Record<
          string,
          { responses?: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> }
        >
      >;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(["bearer", "session"]);
    const text = JSON.stringify(document);
    for (const [, name] of text.matchAll(/"#\/components\/schemas\/(\w+)"/g))
      expect(document.components.schemas, `schema ${name}`).toHaveProperty(name!);
    for (const [path, item] of Object.entries(document.paths)) {
      expect(path).toMatch(/^\/[\w./{}-]*$/);
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(item)) {
        expect(["get", "post", "put", "patch", "delete"]).toContain(method);
        expect(Object.keys(op.responses ?? {}).length, `${method} ${path} responses`).toBeGreaterThan(0);
        const inPath = (op.parameters ?? [])
          .filter((p) => p.in === "path")
          .map((p) => p.name)
          .sort();
        expect(inPath, `${method} ${path} path parameters`).toEqual(templated);
      }
    }
  });
});

describe("config: console.apiClients", () => {
  const base = {
    signIn: {
      clients: [{ clientId: "finance-a", redirectUris: ["https://finance.example.test/cb"] }],
    },
  };
  const problems = (apiClients: unknown[]): string[] => {
    const result = configSchema.safeParse({ ...base, console: { apiClients } });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("refuses an API client id that a platform, idbridge itself or another API client already uses", () => {
    const client = (clientId: string) => ({ clientId, clientSecret: secret(), roles: ["viewer"] });
    expect(problems([client("ci-ok")])).toEqual([]);
    expect(problems([client("finance-a")])).toEqual([
      expect.stringMatching(/^console\.apiClients\.0\.clientId: .*signIn\.clients\[0\]/),
    ]);
    expect(problems([client("IDBridge")])).toEqual([expect.stringMatching(/reserved/)]);
    expect(problems([client("ci"), client("ci")])).toEqual([
      expect.stringMatching(/^console\.apiClients\.1\.clientId: duplicate/),
    ]);
  });
});
