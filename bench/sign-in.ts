/**
 * Sign-in benchmark, side by side in one run:
 *
 * (a) code-for-token exchanges per second at the token endpoint: a bare `oidc-provider` with its in-memory
 *     adapter (the floor), and idbridge's provider on SQLite and on PostgreSQL (real StorePersonDirectory,
 *     claims with 合思 roles from the policy). Codes are minted first through each provider's own flow
 *     (a signed-in session, then silent authorization requests), then redeemed by N keep-alive HTTP
 *     clients in a worker thread for a fixed time.
 * (b) full sign-in round trips at U concurrent users, each with its own cookie jar: authorize → /login →
 *     DingTalk simulator QR page (pick a user) → callback → code → token.
 *
 *   npm run bench:sign-in
 *   npm run bench:sign-in -- --duration 5 --stores sqlite --parts tokens
 *   node --cpu-prof --import tsx bench/sign-in.ts --stores sqlite --parts tokens   # profile the server side
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { exportJWK, generateKeyPair } from "jose";
import Provider, { type Adapter, type Configuration } from "oidc-provider";
import { stringify } from "yaml";
import { AuditLog } from "../src/audit/log.js";
import { SCOPE_CLAIMS } from "../src/broker/provider.js";
import type { RunningService } from "../src/cli/serve.js";
import { generateKeys, TOKEN_KEY_BITS } from "../src/keys/keys.js";
import { startDingTalkSimulator, type RunningDingTalkSimulator } from "../src/simulators/dingtalk/index.js";
import { openStore } from "../src/store/index.js";
import { SyncService } from "../src/sync/service.js";
import { hesiPolicy } from "../test/fixtures/sync/policies.js";
import { CookieJar, start, writeConfig } from "../test/helpers/broker-env.js";
import { DINGTALK_ID } from "../test/helpers/sync-env.js";
import { freePort } from "../test/peers/process.js";
import { startPostgres, type PostgresPeer } from "../test/peers/postgres.js";

const CLIENT_ID = "portal";
const SECRET = "bench-portal-secret-0123456789abcdef";
const REDIRECT = "https://portal.example.test/cb";
const SCOPE = "openid profile email roles";
const BASIC = `Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString("base64")}`;

// ------------------------------------------------------------------------------------ shared helpers

/** One request with the jar; returns the status, the Location (resolved) and the body when no redirect. */
async function hop(
  jar: CookieJar,
  url: URL,
  headers: Record<string, string> = {},
): Promise<{ status: number; location: URL | null; body: string }> {
  const response = await fetch(url, {
    redirect: "manual",
    headers: { cookie: jar.header(), "accept-language": "zh-CN", ...headers },
  });
  jar.take(response);
  const location = response.headers.get("location");
  const body = await response.text();
  return { status: response.status, location: location === null ? null : new URL(location, url), body };
}

/** Follows redirects from `url` while they stay on `origins`; returns where it stopped. */
async function follow(
  jar: CookieJar,
  url: URL,
  origins: readonly string[],
  headers: Record<string, string> = {},
): Promise<{ url: URL; status: number; body: string; away: boolean }> {
  let next = url;
  for (let i = 0; i < 20; i++) {
    if (!origins.includes(next.origin)) return { url: next, status: 0, body: "", away: true };
    const r = await hop(jar, next, headers);
    if (r.status >= 300 && r.status < 400 && r.location !== null) {
      next = r.location;
      continue;
    }
    return { url: next, status: r.status, body: r.body, away: false };
  }
  throw new Error(`too many redirects from ${url.pathname}`);
}

/** A PKCE pair (RFC 7636 §4.1, §4.2 S256). */
function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** An authorization request URL at `issuer`'s `/auth`. */
function authorizeUrl(issuer: string, challenge: string): URL {
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: "code",
    scope: SCOPE,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: randomBytes(12).toString("base64url"),
    nonce: randomBytes(12).toString("base64url"),
  }).toString();
  return url;
}

/** The code of a redirect back to the client, or an error naming where the flow stopped. */
function codeOf(landing: { url: URL; status: number; body: string; away: boolean }): string {
  const code =
    landing.away && landing.url.origin + landing.url.pathname === REDIRECT
      ? landing.url.searchParams.get("code")
      : null;
  if (code === null)
    throw new Error(
      `no code: stopped at ${landing.url.pathname} (${landing.status}) ${landing.body.slice(0, 200)}`,
    );
  return code;
}

/** Redeems a code (client_secret_basic + PKCE verifier); throws unless an ID token comes back. */
async function redeem(tokenUrl: string, code: string, verifier: string): Promise<void> {
  const response = await fetch(tokenUrl, {
    method: "POST",
    headers: { authorization: BASIC, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }).toString(),
  });
  const body = (await response.json()) as { id_token?: string; error?: string };
  if (response.status !== 200 || typeof body.id_token !== "string")
    throw new Error(`token endpoint: ${response.status} ${body.error ?? ""}`);
}

/**
 * One whole DingTalk sign-in in a fresh browser: authorize at idbridge → login page → the DingTalk
 * source → the simulator's QR page → pick `userid` → callback → back to the client with a code.
 */
async function signInWithDingTalk(
  jar: CookieJar,
  target: { issuer: string; idbridge: string; simulator: string; userid: string },
  challenge: string,
): Promise<string> {
  const origins = [target.idbridge, target.simulator];
  const login = await follow(jar, authorizeUrl(target.issuer, challenge), origins);
  const source = /class="source" href="([^"]+)"/.exec(login.body)?.[1];
  if (source === undefined) throw new Error(`no source on the login page (${login.status})`);
  const qr = await follow(jar, new URL(source.replace(/&amp;/g, "&"), login.url), origins);
  const pick = new RegExp(`data-userid="${target.userid}"[^>]*href="([^"]+)"`).exec(qr.body)?.[1];
  if (pick === undefined) throw new Error(`user ${target.userid} not on the QR page (${qr.status})`);
  // The simulator escapes every & and = as numeric references.
  const href = pick.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)));
  return codeOf(await follow(jar, new URL(href, qr.url), origins));
}

/** `count` browsers, each signed in once by `signIn` (their sessions then mint codes silently). */
async function signedInJars(
  count: number,
  signIn: (jar: CookieJar, index: number) => Promise<unknown>,
): Promise<CookieJar[]> {
  const jars: CookieJar[] = [];
  for (let i = 0; i < count; i++) {
    const jar = new CookieJar();
    await signIn(jar, i);
    jars.push(jar);
  }
  return jars;
}

/** p-th percentile of sorted milliseconds. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** What a timed phase of the worker reports. */
interface Timed {
  done: number;
  errors: number;
  firstError?: string;
  seconds: number;
  p50: number;
  p99: number;
}

function summarise(latencies: number[], errors: number, firstError: string | undefined, ms: number): Timed {
  const sorted = Float64Array.from(latencies).sort();
  return {
    done: latencies.length,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    seconds: ms / 1000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

// ------------------------------------------------------------------------------------ worker side

type Job =
  | {
      kind: "redeem";
      tokenUrl: string;
      codes: { code: string; verifier: string }[];
      concurrency: number;
      durationMs: number;
    }
  | {
      kind: "round-trips";
      issuer: string;
      idbridge: string;
      simulator: string;
      userids: string[];
      users: number;
      durationMs: number;
    };

/** The load generator runs on its own thread, so it does not take the server's event loop. */
async function runJob(job: Job): Promise<Timed> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + job.durationMs;
  const failed = (err: unknown): void => {
    errors++;
    firstError ??= err instanceof Error ? err.message : String(err);
  };
  if (job.kind === "redeem") {
    let next = 0;
    const client = async (): Promise<void> => {
      while (performance.now() < deadline && next < job.codes.length) {
        const { code, verifier } = job.codes[next++]!;
        const at = performance.now();
        try {
          await redeem(job.tokenUrl, code, verifier);
          latencies.push(performance.now() - at);
        } catch (err) {
          failed(err);
        }
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, client));
  } else {
    const user = async (index: number): Promise<void> => {
      const userid = job.userids[index % job.userids.length]!;
      while (performance.now() < deadline) {
        const at = performance.now();
        try {
          const { verifier, challenge } = pkce();
          const code = await signInWithDingTalk(new CookieJar(), { ...job, userid }, challenge);
          await redeem(`${job.issuer}/token`, code, verifier);
          latencies.push(performance.now() - at);
        } catch (err) {
          failed(err);
        }
      }
    };
    await Promise.all(Array.from({ length: job.users }, (_v, i) => user(i)));
  }
  return summarise(latencies, errors, firstError, performance.now() - started);
}

if (!isMainThread) {
  const result = await runJob(workerData as Job);
  parentPort!.postMessage(result);
}

function inWorker(job: Job): Promise<Timed> {
  return new Promise((resolve, reject) => {
    // Workers do not inherit tsx's loader hooks (Node 20): the worker registers tsx, then loads this file.
    const worker = new Worker(
      `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`,
      { eval: true, workerData: job },
    );
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (code !== 0) reject(new Error(`load worker exited with ${code}`));
    });
  });
}

// ------------------------------------------------------------------------------------ main side

/** Mints `count` codes by silent authorization requests over `sessions` signed-in browsers. */
async function mintCodes(
  issuer: string,
  sessions: readonly CookieJar[],
  count: number,
  origins: readonly string[],
): Promise<{ codes: { code: string; verifier: string }[]; seconds: number }> {
  const codes: { code: string; verifier: string }[] = [];
  const started = performance.now();
  let asked = 0;
  const minter = async (i: number): Promise<void> => {
    const jar = sessions[i % sessions.length]!;
    while (asked < count) {
      asked++;
      const { verifier, challenge } = pkce();
      codes.push({ code: codeOf(await follow(jar, authorizeUrl(issuer, challenge), origins)), verifier });
    }
  };
  await Promise.all(Array.from({ length: Math.max(8, sessions.length) }, (_v, i) => minter(i)));
  return { codes, seconds: (performance.now() - started) / 1000 };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

/** The storage interface oidc-provider's MemoryAdapter uses (its LRU's), without a size bound. */
class UnboundedStorage {
  private readonly entries = new Map<string, { value: unknown; expiry: number | undefined }>();
  get(key: string): unknown {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiry !== undefined && entry.expiry <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key: string, value: unknown, options?: { maxAge?: number }): void {
    this.entries.set(key, {
      value,
      expiry: options?.maxAge === undefined ? undefined : Date.now() + options.maxAge,
    });
  }
  delete(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * The floor: oidc-provider with its in-memory adapter and the same client, PKCE, scope/claims, refresh
 * and key settings as ours (RS256 with src/keys' TOKEN_KEY_BITS); a login that takes the user from
 * a header and claims that cost nothing.
 */
async function startBare(): Promise<{ issuer: string; close: () => void }> {
  // oidc-provider's own MemoryAdapter, on a Map: its default storage is an LRU of 1,000 entries, which
  // would evict pre-minted codes before they are redeemed.
  const modulePath: string = "oidc-provider/lib/adapters/memory_adapter.js";
  const { default: MemoryAdapter } = (await import(modulePath)) as {
    default: new (model: string, storage: UnboundedStorage) => Adapter;
  };
  const storage = new UnboundedStorage();
  const { privateKey } = await generateKeyPair("RS256", { modulusLength: TOKEN_KEY_BITS, extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "bare", alg: "RS256", use: "sig" };
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const configuration: Configuration = {
    adapter: (model) => new MemoryAdapter(model, storage),
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: SECRET,
        redirect_uris: [REDIRECT],
        response_types: ["code"],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([s, c]) => [s, [...c]])),
    scopes: ["openid", "offline_access", "profile", "email", "roles"],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 86_400,
      Grant: 86_400,
      Interaction: 600,
      Session: 3600,
    },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    loadExistingGrant: async (ctx) => {
      const { client, session } = ctx.oidc;
      if (client === undefined || session?.accountId === undefined) return undefined;
      const grantId = session.grantIdFor(client.clientId);
      let grant = grantId === undefined ? undefined : await ctx.oidc.provider.Grant.find(grantId);
      grant ??= new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(SCOPE);
      await grant.save();
      return grant;
    },
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => ({
        sub,
        name: "张伟",
        email: "zhang.wei@example.test",
        employee_no: "E001",
        departments: ["财务部"],
        roles: ["报销提交人"],
      }),
    }),
  };
  const provider = new Provider(issuer, configuration);
  const handle = provider.callback();
  server.on("request", (req, res) => {
    if (req.url?.startsWith("/interaction/")) {
      const accountId = String(req.headers["x-bench-user"] ?? "bench-user");
      provider
        .interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false })
        .catch((err: unknown) => res.writeHead(500).end(String(err)));
      return;
    }
    void handle(req, res);
  });
  return { issuer, close: () => server.close() };
}

/** idbridge with a DingTalk source on the simulator, the company synced and linked, a 合思 policy. */
async function startOurs(
  storeKind: "sqlite" | "postgres",
  pg: PostgresPeer | null,
  people: number,
): Promise<{
  service: RunningService;
  sim: RunningDingTalkSimulator;
  issuer: string;
  userids: string[];
  close: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(os.tmpdir(), "idbridge-bench-signin-"));
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const sim = await startDingTalkSimulator({
    people,
    seed: 7,
    qps: 10_000,
    redirectUrls: [`${publicUrl}/login/callback/${DINGTALK_ID}`],
  });
  mkdirSync(join(dir, "policies"));
  writeFileSync(join(dir, "policies", "hesi-main.yaml"), hesiPolicy());
  const keysDir = join(dir, "keys");
  const keys = await generateKeys(keysDir);
  const storeUrl = storeKind === "sqlite" ? `sqlite:${join(dir, "idbridge.db")}` : pg!.url;
  const config = writeConfig(
    dir,
    stringify({
      server: { host: "127.0.0.1", port },
      store: { url: storeUrl },
      keys: { dir: keysDir },
      log: { level: "silent" },
      policiesDir: join(dir, "policies"),
      sources: [{ id: DINGTALK_ID, type: "dingtalk", config: sim.sourceConfig() }],
      identity: { primarySource: DINGTALK_ID },
      signIn: {
        clients: [
          { clientId: CLIENT_ID, clientSecret: SECRET, redirectUris: [REDIRECT], target: "hesi-main" },
        ],
      },
      targets: [
        {
          id: "hesi-main",
          type: "hesi",
          config: { baseUrl: "https://hesi.example.test", appKey: "k", appSecurity: "s-0123456789abcdef" },
        },
      ],
      sync: { fullEveryMinutes: 0, incrementalEveryMinutes: 0 },
    }),
  );
  // What a first sync leaves behind: the kept snapshot and the people linked from it.
  const store = await openStore({ url: storeUrl });
  const audit = new AuditLog(store, keys.audit, { checkpointEvery: 100_000, checkpointIntervalMs: 0 });
  const sync = new SyncService({ config, store, audit, holder: "bench" });
  await sync.linkAccounts(await sync.gatherSnapshots({ fresh: "all", incremental: false }));
  await audit.close();
  await store.close();

  const service = await start(config);
  const userids = sim.org.people.filter((p) => p.status === "active").map((p) => p.userid);
  return {
    service,
    sim,
    issuer: `${publicUrl}/oidc`,
    userids,
    async close() {
      await service.stop();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One row of the token table. */
interface TokenRow {
  provider: string;
  minted: number;
  mintPerSecond: number;
  timed: Timed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: "string", default: "10" },
      concurrency: { type: "string", default: "16" },
      // Codes live 60 s (ttl.AuthorizationCode): minting many more than ~60 s of minting allows expires them.
      codes: { type: "string", default: "5000" },
      users: { type: "string", default: "50" },
      "round-trip-duration": { type: "string", default: "20" },
      people: { type: "string", default: "200" },
      sessions: { type: "string", default: "20" },
      stores: { type: "string", default: "sqlite,postgres" },
      parts: { type: "string", default: "tokens,round-trips" },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const concurrency = Number(values.concurrency);
  const codeCount = Number(values.codes);
  const users = Number(values.users);
  const roundTripMs = Number(values["round-trip-duration"]) * 1000;
  const people = Number(values.people);
  const sessionCount = Number(values.sessions);
  const stores = values.stores.split(",").map((s) => s.trim());
  const parts = values.parts.split(",").map((s) => s.trim());
  for (const s of stores)
    if (s !== "sqlite" && s !== "postgres") throw new Error(`--stores: unknown store ${s}`);

  const load = os.loadavg().map((l) => l.toFixed(2));
  process.stdout.write(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `Node ${process.version}; load at start ${load.join(" ")}\n` +
      `tokens: ${concurrency} keep-alive clients in a worker thread, ${durationMs / 1000} s or until ${codeCount} codes are used; ` +
      `round trips: ${users} users for ${roundTripMs / 1000} s\n\n`,
  );

  let pg: PostgresPeer | null = null;
  if (stores.includes("postgres")) {
    try {
      pg = await startPostgres({ durable: true });
    } catch (err) {
      process.stdout.write(`!! PostgreSQL SKIPPED: ${err instanceof Error ? err.message : String(err)}\n\n`);
    }
  }

  const tokenRows: TokenRow[] = [];
  const tripRows: { provider: string; timed: Timed }[] = [];
  const peakRss = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
  try {
    if (parts.includes("tokens")) {
      const bare = await startBare();
      try {
        const sessions = await signedInJars(sessionCount, async (jar, i) =>
          codeOf(
            await follow(jar, authorizeUrl(bare.issuer, pkce().challenge), [bare.issuer], {
              "x-bench-user": `user-${i}`,
            }),
          ),
        );
        const minted = await mintCodes(bare.issuer, sessions, codeCount, [bare.issuer]);
        const timed = await inWorker({
          kind: "redeem",
          tokenUrl: `${bare.issuer}/token`,
          codes: minted.codes,
          concurrency,
          durationMs,
        });
        tokenRows.push({
          provider: "bare oidc-provider (memory adapter)",
          minted: minted.codes.length,
          mintPerSecond: minted.codes.length / minted.seconds,
          timed,
        });
        process.stderr.write(`bare: ${JSON.stringify(tokenRows.at(-1))}\n`);
      } finally {
        bare.close();
      }
    }
    for (const kind of stores) {
      if (kind === "postgres" && pg === null) continue;
      const ours = await startOurs(kind as "sqlite" | "postgres", pg, people);
      const origins = [new URL(ours.issuer).origin, ours.sim.url];
      const target = { issuer: ours.issuer, idbridge: origins[0]!, simulator: ours.sim.url };
      try {
        if (parts.includes("tokens")) {
          const sessions = await signedInJars(sessionCount, (jar, i) =>
            signInWithDingTalk(
              jar,
              { ...target, userid: ours.userids[i % ours.userids.length]! },
              pkce().challenge,
            ),
          );
          const minted = await mintCodes(ours.issuer, sessions, codeCount, origins);
          const timed = await inWorker({
            kind: "redeem",
            tokenUrl: `${ours.issuer}/token`,
            codes: minted.codes,
            concurrency,
            durationMs,
          });
          tokenRows.push({
            provider: `idbridge on ${kind}`,
            minted: minted.codes.length,
            mintPerSecond: minted.codes.length / minted.seconds,
            timed,
          });
          process.stderr.write(`${kind}: ${JSON.stringify(tokenRows.at(-1))}\n`);
        }
        if (parts.includes("round-trips")) {
          const timed = await inWorker({
            kind: "round-trips",
            ...target,
            userids: ours.userids,
            users,
            durationMs: roundTripMs,
          });
          tripRows.push({ provider: `idbridge on ${kind}`, timed });
          process.stderr.write(`${kind} round trips: ${JSON.stringify(timed)}\n`);
        }
      } finally {
        await ours.close();
      }
    }
  } finally {
    await pg?.stop();
  }

  const fmt = (n: number, digits = 0): string =>
    Number.isFinite(n)
      ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
      : "—";
  const bareRate = tokenRows.find((r) => r.provider.startsWith("bare"))?.timed;
  const rate = (t: Timed): number => t.done / t.seconds;
  let out = "";
  if (tokenRows.length > 0) {
    out +=
      "| token endpoint | codes minted (per s) | exchanges | errors | time (s) | exchanges/s | p50 (ms) | p99 (ms) | × bare |\n" +
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for (const r of tokenRows)
      out += `| ${r.provider} | ${fmt(r.minted)} (${fmt(r.mintPerSecond)}) | ${fmt(r.timed.done)} | ${r.timed.errors} | ${fmt(r.timed.seconds, 1)} | **${fmt(rate(r.timed))}** | ${fmt(r.timed.p50, 1)} | ${fmt(r.timed.p99, 1)} | ${bareRate ? fmt(rate(r.timed) / rate(bareRate), 2) : "—"} |\n`;
    out += "\n";
  }
  if (tripRows.length > 0) {
    out +=
      `| full sign-in round trips, ${users} users | round trips | errors | time (s) | round trips/s | p50 (ms) | p99 (ms) |\n` +
      "| --- | --- | --- | --- | --- | --- | --- |\n";
    for (const r of tripRows)
      out += `| ${r.provider} | ${fmt(r.timed.done)} | ${r.timed.errors} | ${fmt(r.timed.seconds, 1)} | **${fmt(rate(r.timed), 1)}** | ${fmt(r.timed.p50, 1)} | ${fmt(r.timed.p99, 1)} |\n`;
    out += "\n";
  }
  const errors = [...tokenRows.map((r) => r.timed), ...tripRows.map((r) => r.timed)]
    .map((t) => t.firstError)
    .filter((e) => e !== undefined);
  out += `peak RSS of the server process: ${peakRss()} MB; load at end ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}\n`;
  if (errors.length > 0) out += `first errors: ${errors.join(" | ")}\n`;
  process.stdout.write(out);
}

if (isMainThread) await main();
