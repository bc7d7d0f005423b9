/**
 * A private SimpleSAMLphp 1.19 IdP for tests: its own config directory under the system temp directory
 * (never Debian's /etc/simplesamlphp), a signing key made at start, the exampleauth users alice and bob,
 * served by `php -S` on a free port of 127.0.0.1. SPs are registered at run time with `registerSp`, since
 * their ports are only known then. Start one per test file: it is ready in well under a second.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { peerMissing } from "./availability.js";
import { ensureDebianPackages } from "./packages.js";
import { exited, freePort, sleep, stopChild, tailOf } from "./process.js";

const run = promisify(execFile);

/** NameID formats the test IdP can send. */
export const PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
export const EMAIL_ADDRESS = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/** A person of the test IdP. */
export interface SamlTestUser {
  readonly username: string;
  readonly password: string;
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

/** The IdP's users: alice (two groups, an employee number) and bob (one group). */
export const SAML_TEST_USERS: readonly SamlTestUser[] = [
  {
    username: "alice",
    password: "alice-pw",
    attributes: {
      uid: ["alice"],
      email: ["alice@example.test"],
      displayName: ["Alice Anders"],
      employeeNumber: ["E1001"],
      groups: ["engineering", "backend"],
    },
  },
  {
    username: "bob",
    password: "bob-pw",
    attributes: { uid: ["bob"], email: ["bob@example.test"], displayName: ["Bob Berg"], groups: ["sales"] },
  },
];

/** An SP the IdP will answer. */
export interface SpRegistration {
  /** The SP's entity id (the Issuer of its AuthnRequests, the Audience of the assertions). */
  readonly entityId: string;
  /** The AssertionConsumerService URL the IdP posts to. */
  readonly acsUrl: string;
  /** Default persistent (NameID = uid); emailAddress sends the email. */
  readonly nameIdFormat?: string;
}

/** A running SimpleSAMLphp IdP. */
export interface SimpleSamlPhpPeer {
  /** `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  /** The IdP's entity id, which is also its metadata URL. */
  readonly entityId: string;
  /** The IdP's metadata URL. */
  readonly metadataUrl: string;
  /** The HTTP-Redirect SingleSignOnService URL. */
  readonly ssoUrl: string;
  /** The IdP's signing certificate, PEM. */
  readonly certPem: string;
  /** The work directory (config, metadata, keys, logs). */
  readonly dir: string;
  /** Registers (or replaces, by entity id) an SP; every SP registered so far stays known. */
  registerSp(sp: SpRegistration): Promise<void>;
  /** Stops php (waiting for it to exit) and removes the work directory. */
  stop(): Promise<void>;
}

/** A PHP single-quoted string literal. */
function php(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function phpList(values: readonly string[]): string {
  return `[${values.map(php).join(", ")}]`;
}

/** Starts SimpleSAMLphp; throws with the reason when it cannot (packages missing, php failing). */
export async function startSimpleSamlPhp(): Promise<SimpleSamlPhpPeer> {
  const problem = await ensureDebianPackages(
    ["simplesamlphp", "php-cli", "php-xml", "php-mbstring"],
    "SAML integration tests",
  );
  if (problem !== null) throw new Error(problem);
  const dir = await mkdtemp(join(tmpdir(), "idbridge-ssp-"));
  let child: ChildProcess | undefined;
  try {
    for (const sub of ["config", "metadata", "cert", "log", "tmp", "data", "sessions", "docroot"]) {
      await mkdir(join(dir, sub));
    }
    // The usual /simplesaml/ URLs; php -S resolves module.php/… PATH_INFO without a router script.
    await symlink("/usr/share/simplesamlphp/www", join(dir, "docroot", "simplesaml"));
    // A test-only key, made now and removed with the directory.
    await run("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
      ...[
        "-subj",
        "/CN=ssp-idp.test",
        "-keyout",
        join(dir, "cert", "idp.key"),
        "-out",
        join(dir, "cert", "idp.crt"),
      ],
    ]);
    const certPem = await readFile(join(dir, "cert", "idp.crt"), "utf8");
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const entityId = `${baseUrl}/simplesaml/saml2/idp/metadata.php`;
    const secret = randomBytes(16).toString("hex");

    await writeFile(
      join(dir, "config", "config.php"),
      `<?php
$config = [
    'baseurlpath' => ${php(`${baseUrl}/simplesaml/`)},
    'certdir' => ${php(`${dir}/cert/`)}, 'loggingdir' => ${php(`${dir}/log/`)}, 'datadir' => ${php(`${dir}/data/`)},
    'tempdir' => ${php(`${dir}/tmp`)}, 'metadatadir' => ${php(`${dir}/metadata/`)},
    'secretsalt' => ${php(secret)}, 'auth.adminpassword' => ${php(secret)},
    'technicalcontact_name' => 'Test', 'technicalcontact_email' => 'test@example.test',
    'timezone' => 'UTC', 'language.default' => 'en',
    'logging.level' => SimpleSAML\\Logger::INFO, 'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log', 'showerrors' => true, 'errorreporting' => false,
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true, 'admin' => true],
    'session.cookie.secure' => false, 'store.type' => 'phpsession',
];
`,
    );
    const users = SAML_TEST_USERS.map(
      (u) =>
        `        ${php(`${u.username}:${u.password}`)} => [${Object.entries(u.attributes)
          .map(([k, v]) => `${php(k)} => ${phpList(v)}`)
          .join(", ")}],`,
    ).join("\n");
    await writeFile(
      join(dir, "config", "authsources.php"),
      `<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'example-userpass' => [
        'exampleauth:UserPass',
${users}
    ],
];
`,
    );
    await writeFile(
      join(dir, "metadata", "saml20-idp-hosted.php"),
      `<?php
$metadata[${php(entityId)}] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'idp.key', 'certificate' => 'idp.crt',
    'auth' => 'example-userpass',
    'userid.attribute' => 'uid',
    'saml20.sign.response' => true, 'saml20.sign.assertion' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
];
`,
    );
    const sps = new Map<string, SpRegistration>();
    const writeSps = async (): Promise<void> => {
      const entries = [...sps.values()].map((sp) => {
        const format = sp.nameIdFormat ?? PERSISTENT;
        return `$metadata[${php(sp.entityId)}] = [
    'AssertionConsumerService' => ${php(sp.acsUrl)},
    'NameIDFormat' => ${php(format)},
    'simplesaml.nameidattribute' => ${php(format === EMAIL_ADDRESS ? "email" : "uid")},
];`;
      });
      await writeFile(join(dir, "metadata", "saml20-sp-remote.php"), `<?php\n${entries.join("\n")}\n`);
    };
    await writeSps();

    const log = join(dir, "log", "php-server.log");
    const logFile = await open(log, "a");
    // No PHP_CLI_SERVER_WORKERS: workers outlive a SIGTERM to the parent; one request at a time is enough.
    child = spawn(
      "php",
      [
        // OPcache is on for php -S and checks files by whole-second mtimes: a saml20-sp-remote.php rewritten
        // by registerSp would be served stale.
        ...["-d", "opcache.enable=0"],
        ...["-d", `session.save_path=${dir}/sessions`, "-d", "log_errors=1"],
        ...[
          "-d",
          `error_log=${dir}/log/php-error.log`,
          "-S",
          `127.0.0.1:${port}`,
          "-t",
          join(dir, "docroot"),
        ],
      ],
      {
        stdio: ["ignore", logFile.fd, logFile.fd],
        env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: join(dir, "config") },
      },
    );
    await logFile.close();
    const metadataUrl = entityId;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited(child)) throw new Error(`php -S exited during start-up:\n${await tailOf(log)}`);
      const res = await fetch(metadataUrl).catch(() => null);
      if (res?.ok) {
        await res.arrayBuffer();
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`SimpleSAMLphp did not answer within 15 s:\n${await tailOf(log)}`);
      await sleep(50);
    }
    const started = child;
    let stopping: Promise<void> | undefined;
    return {
      baseUrl,
      entityId,
      metadataUrl,
      ssoUrl: `${baseUrl}/simplesaml/saml2/idp/SSOService.php`,
      certPem,
      dir,
      async registerSp(sp) {
        sps.set(sp.entityId, sp);
        await writeSps();
      },
      stop: () =>
        (stopping ??= (async () => {
          await stopChild(started);
          await rm(dir, { recursive: true, force: true });
        })()),
    };
  } catch (err) {
    if (child) await stopChild(child, 5_000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Starts SimpleSAMLphp for a test file, or returns null (then skip) when it cannot be had; under CI=true
 * that throws instead.
 */
export async function simplesamlphpOrSkip(): Promise<SimpleSamlPhpPeer | null> {
  try {
    return await startSimpleSamlPhp();
  } catch (err) {
    peerMissing("SimpleSAMLphp IdP", err instanceof Error ? err.message : String(err));
    return null;
  }
}

/** What the IdP's auto-submit form posts to the SP's ACS. */
export interface IdpPost {
  /** The form's action: the ACS URL the IdP posts to. */
  readonly action: string;
  /** The form fields (SAMLResponse, RelayState). */
  readonly fields: Readonly<Record<string, string>>;
}

/**
 * Plays the browser: follows `authorizeUrl` to the IdP's login form, posts the user name and password,
 * and returns the auto-submit form the IdP answers with. Throws when the IdP shows no such form (wrong
 * password: the form again).
 */
export async function signInAtIdp(
  authorizeUrl: string,
  username: string,
  password: string,
): Promise<IdpPost> {
  const jar = new Map<string, string>();
  async function go(url: string, init: RequestInit = {}): Promise<{ url: string; body: string }> {
    for (let hop = 0; hop < 10; hop++) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
      const res = await fetch(url, {
        ...init,
        redirect: "manual",
        headers: { ...(init.headers as Record<string, string> | undefined), cookie },
        signal: AbortSignal.timeout(10_000),
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair = ""] = c.split(";");
        const i = pair.indexOf("=");
        jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
      }
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.arrayBuffer();
        url = new URL(location, url).toString();
        init = {};
        continue;
      }
      return { url, body: await res.text() };
    }
    throw new Error("too many redirects");
  }
  const login = await go(authorizeUrl);
  const authState = hiddenField(login.body, "AuthState");
  if (authState === undefined) throw new Error(`no login form at ${login.url}: ${pageText(login.body)}`);
  const formUrl = new URL(login.url);
  formUrl.search = ""; // the form's action is "?"
  const posted = await go(formUrl.toString(), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username, password, AuthState: authState }).toString(),
  });
  const action = /<form[^>]*action="([^"]*)"/i.exec(posted.body)?.[1];
  const SAMLResponse = hiddenField(posted.body, "SAMLResponse");
  if (action === undefined || SAMLResponse === undefined) {
    throw new Error(
      `the IdP sent no SAMLResponse: ${/Incorrect[^<]*/.exec(posted.body)?.[0] ?? posted.body.slice(0, 300)}`,
    );
  }
  const RelayState = hiddenField(posted.body, "RelayState");
  return {
    action: unescapeHtml(action),
    fields: { SAMLResponse, ...(RelayState === undefined ? {} : { RelayState }) },
  };
}

/** The visible text of an error page, short. */
function pageText(html: string): string {
  const body = /<body[\s\S]*<\/body>/i.exec(html)?.[0] ?? html;
  return body
    .replace(/<script[\s\S]*?<\/script>/gi, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 600);
}

function hiddenField(html: string, name: string): string | undefined {
  const match = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`, "i").exec(html);
  return match?.[1] === undefined ? undefined : unescapeHtml(match[1]);
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&#x2F;/gi, "/")
    .replace(/&#0*58;/g, ":")
    .replace(/&amp;/g, "&");
}
