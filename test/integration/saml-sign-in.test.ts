import { createServer, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/errors.js";
import { samlConfigSchema } from "../../src/sources/saml/config.js";
import { samlSource } from "../../src/sources/saml/index.js";
import type { FlowState, SignInConnector, SignInContext, SignInOutcome } from "../../src/sources/sign-in.js";
import { freePort } from "../peers/process.js";
import {
  EMAIL_ADDRESS,
  signInAtIdp,
  simplesamlphpOrSkip,
  type IdpPost,
  type SimpleSamlPhpPeer,
} from "../peers/simplesamlphp.js";

const idp = await simplesamlphpOrSkip();

const PUBLIC_URL = "http://127.0.0.1:18443";
const CALLBACK = `${PUBLIC_URL}/login/callback/corp`;
const SP_ENTITY = `${PUBLIC_URL}/saml/corp/metadata`;

/** A context with an in-memory `once` (the broker's is store-backed) and a clock the test can move. */
function testContext(overrides: Partial<SignInContext> = {}): SignInContext & { readonly used: Set<string> } {
  const used = new Set<string>();
  return {
    sourceId: "corp",
    now: () => new Date(),
    timeoutMs: 2_000,
    publicUrl: PUBLIC_URL,
    once: async (key) => {
      if (used.has(key)) return false;
      used.add(key);
      return true;
    },
    used,
    ...overrides,
  };
}

/** The SimpleSAMLphp peer and the stand-ins here speak http on 127.0.0.1, hence allowInsecureHttp. */
function open(config: Record<string, unknown>, context: SignInContext = testContext()): SignInConnector {
  return samlSource.openSignIn!(context, samlConfigSchema.parse({ allowInsecureHttp: true, ...config }));
}

/** Serves `answer` on 127.0.0.1 until the returned close is called. */
async function serve(
  answer: (res: ServerResponse) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => answer(res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/metadata`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function decode(post: IdpPost): string {
  return Buffer.from(post.fields.SAMLResponse!, "base64").toString("utf8");
}

function withXml(post: IdpPost, xml: string): Record<string, string> {
  return { ...post.fields, SAMLResponse: Buffer.from(xml, "utf8").toString("base64") };
}

function expectRefused(outcome: SignInOutcome, reason: RegExp): void {
  expect(outcome).toMatchObject({ ok: false, code: "INVALID_RESPONSE" });
  if (!outcome.ok) expect(outcome.reason).toMatch(reason);
}

describe("SAML source config", () => {
  const problems = (config: unknown): string[] => {
    const result = samlConfigSchema.safeParse(config);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("needs the metadata URL or the IdP's entity id, SSO URL and one certificate", () => {
    expect(problems({})).toEqual([
      expect.stringMatching(/^idpEntityId: required/),
      expect.stringMatching(/^idpSsoUrl: required/),
      expect.stringMatching(/^idpCert: set exactly one/),
    ]);
    expect(problems({ idpMetadataUrl: "https://idp.example.test/md", idpCert: "MIIB" })).toEqual([
      expect.stringMatching(/^idpCert: comes from idpMetadataUrl/),
    ]);
    expect(
      problems({ idpEntityId: "x", idpSsoUrl: "https://idp.example.test/sso", idpCertFile: "/c.pem" }),
    ).toEqual([]);
  });

  it("refuses http IdP URLs unless allowInsecureHttp is set for a loopback IdP", () => {
    const manual = { idpEntityId: "x", idpCert: "MIIB" };
    expect(problems({ idpMetadataUrl: "http://idp.example.test/md" })).toEqual([
      expect.stringMatching(/^idpMetadataUrl: must be https/),
    ]);
    expect(problems({ ...manual, idpSsoUrl: "http://127.0.0.1:8080/sso" })).toEqual([
      expect.stringMatching(/^idpSsoUrl: must be https/),
    ]);
    expect(problems({ idpMetadataUrl: "http://idp.example.test/md", allowInsecureHttp: true })).toEqual([
      expect.stringMatching(/^allowInsecureHttp: only allowed for URLs on a loopback address/),
    ]);
    expect(problems({ idpMetadataUrl: "ftp://idp.example.test/md" })).toHaveLength(1);
    for (const host of ["127.0.0.1:8080", "localhost", "[::1]:8443"]) {
      expect(problems({ idpMetadataUrl: `http://${host}/md`, allowInsecureHttp: true })).toEqual([]);
      expect(problems({ ...manual, idpSsoUrl: `http://${host}/sso`, allowInsecureHttp: true })).toEqual([]);
    }
    expect(samlConfigSchema.parse({ idpMetadataUrl: "https://idp.example.test/md" }).allowInsecureHttp).toBe(
      false,
    );
  });

  it("offers no way to turn off signed responses or assertions", () => {
    for (const key of ["wantAssertionsSigned", "wantAuthnResponseSigned"]) {
      expect(problems({ idpMetadataUrl: "https://idp.example.test/md", [key]: false })).toEqual([
        expect.stringMatching(/unrecognized key/i),
      ]);
    }
  });

  it("defaults to persistent NameIDs, no unsolicited responses and 60 s skew, at most 300 s", () => {
    const config = samlConfigSchema.parse({ idpMetadataUrl: "https://idp.example.test/md" });
    expect(config).toMatchObject({
      nameIdFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
      allowUnsolicited: false,
      clockSkewSeconds: 60,
      attributes: { username: "uid", name: "displayName", email: "email", groups: "groups" },
    });
    expect(problems({ idpMetadataUrl: "https://idp.example.test/md", clockSkewSeconds: 301 })).toHaveLength(
      1,
    );
    expect(
      problems({
        idpMetadataUrl: "https://idp.example.test/md",
        nameIdFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
      }),
    ).toHaveLength(1);
  });
});

describe.skipIf(idp === null)("SAML sign-in against a real SimpleSAMLphp IdP", () => {
  const peer = idp as SimpleSamlPhpPeer;
  let corp: SignInConnector;
  let context: ReturnType<typeof testContext>;

  /** Runs an SP-initiated sign-in up to the IdP's POST back; `via` makes the AuthnRequest. */
  async function signIn(
    user = "alice",
    via: SignInConnector = corp,
    state = `state-${Math.random()}`,
  ): Promise<{ post: IdpPost; keep: FlowState; state: string }> {
    const start = await via.web!.begin({ callbackUrl: CALLBACK, state });
    const post = await signInAtIdp(start.url, user, `${user}-pw`);
    return { post, keep: start.keep, state };
  }

  beforeAll(async () => {
    await peer.registerSp({ entityId: SP_ENTITY, acsUrl: CALLBACK });
    context = testContext();
    corp = open({ idpMetadataUrl: peer.metadataUrl }, context);
  });
  afterAll(async () => {
    await peer.stop();
  });

  it("signs alice in end to end: NameID as subject, mapped attributes, groups, active", async () => {
    const { post, keep, state } = await signIn("alice");
    expect(post.action).toBe(CALLBACK);
    expect(post.fields.RelayState).toBe(state);
    expect(keep.requestId).toMatch(/^_/);

    const outcome = await corp.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep });

    expect(outcome).toEqual({
      ok: true,
      identity: {
        sourceId: "corp",
        subject: "alice",
        person: {
          subject: "alice",
          username: "alice",
          name: "Alice Anders",
          email: "alice@example.test",
          departments: [],
          managers: [],
          status: "active",
          attributes: { groups: ["engineering", "backend"] },
        },
      },
    });
  });

  it("keeps a single group as a list and maps the employee number when configured", async () => {
    const mapped = open({ idpMetadataUrl: peer.metadataUrl, attributes: { employeeNo: "employeeNumber" } });
    const bob = await signIn("bob", mapped);
    const bobOutcome = await mapped.web!.complete({
      callbackUrl: CALLBACK,
      state: bob.state,
      params: bob.post.fields,
      keep: bob.keep,
    });
    expect(bobOutcome.ok && bobOutcome.identity.person.attributes).toEqual({ groups: ["sales"] });

    const alice = await signIn("alice", mapped);
    const aliceOutcome = await mapped.web!.complete({
      callbackUrl: CALLBACK,
      state: alice.state,
      params: alice.post.fields,
      keep: alice.keep,
    });
    expect(aliceOutcome.ok && aliceOutcome.identity.person.employeeNo).toBe("E1001");
  });

  it("takes the IdP's settings from the config without metadata, and refuses a signature by another certificate", async () => {
    const manual = { idpEntityId: peer.entityId, idpSsoUrl: peer.ssoUrl };
    const good = open({ ...manual, idpCert: peer.certPem });
    const run1 = await signIn("alice", good);
    const ok = await good.web!.complete({
      callbackUrl: CALLBACK,
      state: run1.state,
      params: run1.post.fields,
      keep: run1.keep,
    });
    expect(ok.ok).toBe(true);

    // Any other certificate: the metadata's certificate of a second IdP is not at hand, so use a valid
    // certificate that did not sign this response (the peer's own, re-encoded, would still match).
    const { execFileSync } = await import("node:child_process");
    const otherCert = execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other"],
        ...["-keyout", "/dev/null"],
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    ).toString();
    const other = open({ ...manual, idpCert: otherCert });
    const run2 = await signIn("alice", other);
    expectRefused(
      await other.web!.complete({
        callbackUrl: CALLBACK,
        state: run2.state,
        params: run2.post.fields,
        keep: run2.keep,
      }),
      /signature/i,
    );
  });

  it("serves SP metadata with our entity id, the callback as ACS and signed assertions wanted", () => {
    const xml = corp.metadata!({ callbackUrl: CALLBACK });
    expect(xml).toContain(`entityID="${SP_ENTITY}"`);
    expect(xml).toMatch(new RegExp(`AssertionConsumerService[^>]*Location="${CALLBACK}"`));
    expect(xml).toContain('WantAssertionsSigned="true"');
    expect(xml).toContain("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
  });

  it("uses the email as subject when the NameID format is emailAddress", async () => {
    const entityId = `${PUBLIC_URL}/saml/mail/metadata`;
    await peer.registerSp({ entityId, acsUrl: CALLBACK, nameIdFormat: EMAIL_ADDRESS });
    const mail = open({
      idpMetadataUrl: peer.metadataUrl,
      spEntityId: entityId,
      nameIdFormat: EMAIL_ADDRESS,
    });
    const run = await signIn("bob", mail);
    const outcome = await mail.web!.complete({
      callbackUrl: CALLBACK,
      state: run.state,
      params: run.post.fields,
      keep: run.keep,
    });
    expect(outcome.ok && outcome.identity.subject).toBe("bob@example.test");
  });

  describe("refuses responses that cannot be trusted", () => {
    it("refuses a response whose signatures were stripped", async () => {
      const { post, keep, state } = await signIn();
      const unsigned = decode(post).replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, "");
      expect(unsigned).not.toContain("Signature");
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: withXml(post, unsigned), keep }),
        /signature/i,
      );
    });

    it("refuses a response modified after signing", async () => {
      const { post, keep, state } = await signIn("bob");
      const xml = decode(post);
      expect(xml).toContain(">bob<");
      const tampered = xml.replaceAll(">bob<", ">alice<");
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: withXml(post, tampered), keep }),
        /signature/i,
      );
    });

    it("refuses the same response a second time (assertion id replay)", async () => {
      const { post, keep, state } = await signIn();
      const first = await corp.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep });
      expect(first.ok).toBe(true);
      const assertionId = /<saml:Assertion[^>]* ID="([^"]+)"/.exec(decode(post))?.[1];
      expect([...context.used]).toContain(`saml:${peer.entityId}:${assertionId}`);

      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep }),
        /used before \(replay\)/,
      );
    });

    it("refuses an assertion for another audience", async () => {
      const otherEntity = "urn:example:another-sp";
      await peer.registerSp({ entityId: otherEntity, acsUrl: CALLBACK });
      const other = open({ idpMetadataUrl: peer.metadataUrl, spEntityId: otherEntity });
      const { post, keep, state } = await signIn("alice", other);
      expect(decode(post)).toContain(`<saml:Audience>${otherEntity}</saml:Audience>`);
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep }),
        /audience/i,
      );
    });

    it("refuses an expired assertion and one not yet valid, by the pinned clock and the configured skew", async () => {
      let pinned: Date | undefined;
      const clocked = open(
        { idpMetadataUrl: peer.metadataUrl, clockSkewSeconds: 30 },
        testContext({ now: () => pinned ?? new Date() }),
      );
      const { post, keep, state } = await signIn("alice", clocked);
      const xml = decode(post);
      const notOnOrAfter = Date.parse(/SubjectConfirmationData[^>]*NotOnOrAfter="([^"]+)"/.exec(xml)![1]!);
      const notBefore = Date.parse(/<saml:Conditions[^>]*NotBefore="([^"]+)"/.exec(xml)![1]!);

      pinned = new Date(notOnOrAfter + 30_000);
      expectRefused(
        await clocked.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep }),
        /expired/,
      );
      pinned = new Date(notBefore - 31_000);
      expectRefused(
        await clocked.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep }),
        /not valid before/,
      );
      // Within the skew the same response passes: the two refusals above were the clock's doing.
      pinned = new Date(notOnOrAfter + 29_000);
      expect(
        (await clocked.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep })).ok,
      ).toBe(true);
    });

    it("refuses a response with a second assertion (wrapping), wherever it is put", async () => {
      const { post, keep, state } = await signIn("alice");
      const xml = decode(post);
      const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)![0];
      const evil = assertion
        .replace(/ ID="[^"]+"/, ' ID="_evil"')
        .replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, "")
        .replaceAll(">alice<", ">bob<");
      // The signed Response covers every child, so the added assertion breaks its signature first.
      const sibling = xml.replace("</samlp:Response>", `${evil}</samlp:Response>`);
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: withXml(post, sibling), keep }),
        /signature|assertion/i,
      );
      const hidden = xml.replace(
        "<samlp:Status>",
        `<samlp:Extensions>${evil}</samlp:Extensions><samlp:Status>`,
      );
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: withXml(post, hidden), keep }),
        /signature|assertion/i,
      );
    });

    it("refuses a response to another sign-in's request (wrong InResponseTo)", async () => {
      const mine = await signIn("alice");
      const another = await corp.web!.begin({ callbackUrl: CALLBACK, state: mine.state });
      expect(another.keep.requestId).not.toBe(mine.keep.requestId);
      expectRefused(
        await corp.web!.complete({
          callbackUrl: CALLBACK,
          state: mine.state,
          params: mine.post.fields,
          keep: another.keep,
        }),
        /InResponseTo/,
      );
    });

    it("refuses unsolicited responses by default, and solicited ones passed off as unsolicited when allowed", async () => {
      const { post, state } = await signIn("alice");
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep: null }),
        /unsolicited/,
      );
      const lenient = open({ idpMetadataUrl: peer.metadataUrl, allowUnsolicited: true });
      expectRefused(
        await lenient.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep: null }),
        /InResponseTo/,
      );
    });

    it("accepts an IdP-initiated sign-in only when allowUnsolicited is on", async () => {
      const start = `${peer.ssoUrl}?spentityid=${encodeURIComponent(SP_ENTITY)}&RelayState=idp-initiated`;
      const post = await signInAtIdp(start, "bob", "bob-pw");
      expect(decode(post)).not.toContain("InResponseTo");
      const lenient = open({ idpMetadataUrl: peer.metadataUrl, allowUnsolicited: true });
      const outcome = await lenient.web!.complete({
        callbackUrl: CALLBACK,
        state: "idp-initiated",
        params: post.fields,
        keep: null,
      });
      expect(outcome.ok && outcome.identity.subject).toBe("bob");

      const post2 = await signInAtIdp(start, "bob", "bob-pw");
      expectRefused(
        await corp.web!.complete({
          callbackUrl: CALLBACK,
          state: "idp-initiated",
          params: post2.fields,
          keep: null,
        }),
        /unsolicited/,
      );
    });

    it("refuses a NameID of another format than configured", async () => {
      // IdP-initiated, so the IdP picks the format from its SP entry rather than from our NameIDPolicy.
      const entityId = `${PUBLIC_URL}/saml/formats/metadata`;
      await peer.registerSp({ entityId, acsUrl: CALLBACK, nameIdFormat: EMAIL_ADDRESS });
      const persistent = open({
        idpMetadataUrl: peer.metadataUrl,
        spEntityId: entityId,
        allowUnsolicited: true,
      });
      const post = await signInAtIdp(
        `${peer.ssoUrl}?spentityid=${encodeURIComponent(entityId)}`,
        "bob",
        "bob-pw",
      );
      expectRefused(
        await persistent.web!.complete({
          callbackUrl: CALLBACK,
          state: "s",
          params: post.fields,
          keep: null,
        }),
        /NameID format is urn:oasis:names:tc:SAML:1\.1:nameid-format:emailAddress/,
      );
    });

    it("refuses a response meant for another callback (Destination and Recipient)", async () => {
      const { post, keep, state } = await signIn();
      expectRefused(
        await corp.web!.complete({
          callbackUrl: `${PUBLIC_URL}/login/callback/other`,
          state,
          params: post.fields,
          keep,
        }),
        /Destination/,
      );
    });

    it("refuses a response whose Issuer is not the configured IdP", async () => {
      const impostor = open({
        idpEntityId: "https://idp.example.test/adfs",
        idpSsoUrl: peer.ssoUrl,
        idpCert: peer.certPem,
      });
      const { post, keep, state } = await signIn("alice", impostor);
      expectRefused(
        await impostor.web!.complete({ callbackUrl: CALLBACK, state, params: post.fields, keep }),
        /Issuer/,
      );
    });

    it("refuses a RelayState that is not this attempt's and a callback without SAMLResponse", async () => {
      const { post, keep, state } = await signIn();
      expectRefused(
        await corp.web!.complete({
          callbackUrl: CALLBACK,
          state,
          params: { ...post.fields, RelayState: "other" },
          keep,
        }),
        /RelayState/,
      );
      expectRefused(
        await corp.web!.complete({ callbackUrl: CALLBACK, state, params: { RelayState: state }, keep }),
        /no SAMLResponse/,
      );
    });
  });

  describe("an IdP whose metadata cannot be had", () => {
    let silent: Server;
    let silentUrl: string;
    beforeAll(async () => {
      // Accepts connections and never answers: the timeout must end the wait.
      silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = silent.address();
      silentUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/metadata`;
    });
    afterAll(async () => {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    });

    it("is SOURCE_UNAVAILABLE when nothing listens at the metadata URL", async () => {
      const down = open({ idpMetadataUrl: `http://127.0.0.1:${await freePort()}/metadata` });
      const begun = down.web!.begin({ callbackUrl: CALLBACK, state: "s" });
      await expect(begun).rejects.toBeInstanceOf(AppError);
      await expect(begun).rejects.toMatchObject({ code: "SOURCE_UNAVAILABLE" });
      const outcome = await down.web!.complete({
        callbackUrl: CALLBACK,
        state: "s",
        params: { SAMLResponse: "PHg+", RelayState: "s" },
        keep: { requestId: "_x", requestedAt: new Date().toISOString() },
      });
      expect(outcome).toMatchObject({
        ok: false,
        code: "SOURCE_UNAVAILABLE",
        reason: expect.stringMatching(/not reachable/),
      });
    });

    it("does not follow a redirect from the metadata URL, even to the real metadata", async () => {
      const moved = await serve((res) => res.writeHead(302, { location: peer.metadataUrl }).end());
      try {
        const redirected = open({ idpMetadataUrl: moved.url });
        await expect(redirected.web!.begin({ callbackUrl: CALLBACK, state: "s" })).rejects.toMatchObject({
          code: "SOURCE_UNAVAILABLE",
          message: expect.stringMatching(/redirect/),
        });
      } finally {
        await moved.close();
      }
    });

    it("refuses metadata naming an http SingleSignOnService off the loopback interface", async () => {
      const xml = (await (await fetch(peer.metadataUrl)).text()).replaceAll(
        peer.ssoUrl,
        "http://idp.example.test/sso",
      );
      expect(xml).toContain("http://idp.example.test/sso");
      const tampered = await serve((res) => res.writeHead(200, { "content-type": "text/xml" }).end(xml));
      try {
        const misled = open({ idpMetadataUrl: tampered.url });
        await expect(misled.web!.begin({ callbackUrl: CALLBACK, state: "s" })).rejects.toMatchObject({
          code: "SOURCE_UNAVAILABLE",
          message: expect.stringMatching(
            /SingleSignOnService http:\/\/idp\.example\.test\/sso: only allowed/,
          ),
        });
      } finally {
        await tampered.close();
      }
    });

    it("is SOURCE_UNAVAILABLE within the context's timeout when the metadata URL does not answer", async () => {
      const slow = open({ idpMetadataUrl: silentUrl }, testContext({ timeoutMs: 300 }));
      const started = Date.now();
      await expect(slow.web!.begin({ callbackUrl: CALLBACK, state: "s" })).rejects.toMatchObject({
        code: "SOURCE_UNAVAILABLE",
        message: expect.stringMatching(/within 300 ms/),
      });
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });
});
