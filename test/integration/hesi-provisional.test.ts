import { afterEach, describe, expect, it } from "vitest";
import { demoExistingData, startHesiSimulator } from "../../src/simulators/hesi/index.js";
import {
  hesiConfigSchema,
  openHesiProvisionalLinks,
  type HesiLinkResult,
  type HesiProvisionalLinks,
} from "../../src/targets/hesi/index.js";

type Running = Awaited<ReturnType<typeof startHesiSimulator>>;

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(): Promise<Running> {
  const sim = await startHesiSimulator({ corpId: "corp1", existing: demoExistingData() });
  running.push(sim);
  return sim;
}

/** The link client on the simulator's clock, with waits shortened. */
function links(sim: Running): HesiProvisionalLinks {
  const config = hesiConfigSchema.parse({ ...sim.targetConfig(), requestsPerSecond: 100, timeoutMs: 2000 });
  return openHesiProvisionalLinks(config, {
    now: () => sim.controls.clock.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5))),
  });
}

function urlOf(result: HesiLinkResult): string {
  if (!result.ok) throw new Error(`expected a link, got ${JSON.stringify(result.failure)}`);
  return result.url;
}

async function open(url: string): Promise<{ status: number; html: string }> {
  const reply = await fetch(url, { redirect: "manual" });
  return { status: reply.status, html: await reply.text() };
}

const EXPIRED = "临时访问地址已过期，请重新获取访问临时授权";

describe("hesi provisional links: target client against the simulator", () => {
  it("a CODE link for a staff opens the to-do list signed in as that person, once", async () => {
    const sim = await start();
    const url = urlOf(
      await links(sim).provisionalLink({ staffId: "corp1:legacy-1", page: "approve", expiresInSeconds: 90 }),
    );
    const parsed = new URL(url);
    expect(parsed.origin).toBe(sim.url);
    expect(parsed.pathname).toBe("/web/thirdparty.html");
    expect(parsed.searchParams.get("ekbCorpId")).toBe("corp1");
    expect(parsed.searchParams.get("pageType")).toBe("approve");
    expect(parsed.searchParams.get("accessToken")).toMatch(/^[\w-]{16,}$/);

    const first = await open(url);
    expect(first.status).toBe(200);
    expect(first.html).toContain("signed in as <strong>老财务</strong> (<code>corp1:legacy-1</code>)");
    expect(first.html).toContain("to-do list");
    expect(first.html).not.toContain(EXPIRED);

    const second = await open(url);
    expect(second.html).toContain(EXPIRED);
    expect(second.html).not.toContain("老财务");
    expect(sim.launches).toEqual([
      expect.objectContaining({ staffId: "corp1:legacy-1", pageType: "approve" }),
    ]);
  });

  it("a form link opens the named bill on the app page, escaping what it shows", async () => {
    const sim = await start();
    const flowId = "ID01<b>&x";
    const url = urlOf(
      await links(sim).provisionalLink({
        staffId: "corp1:legacy-1",
        page: "form",
        flowId,
        expiresInSeconds: 60,
        applet: true,
      }),
    );
    expect(new URL(url).pathname).toBe("/applet/thirdparty.html");
    const page = await open(url);
    expect(page.html).toContain("bill");
    expect(page.html).toContain("<code>ID01&lt;b&gt;&amp;x</code>");
    expect(page.html).not.toContain("<b>&x");
    expect(sim.launches).toEqual([expect.objectContaining({ pageType: "form", flowId })]);
  });

  it("a form link without a flowId is refused without asking Hesi", async () => {
    const sim = await start();
    const result = await links(sim).provisionalLink({
      staffId: "corp1:legacy-1",
      page: "form",
      expiresInSeconds: 60,
    });
    expect(result).toMatchObject({ ok: false, failure: { class: "bad-data", code: "INVALID_REQUEST" } });
    expect(sim.controls.calls.get("/api/openapi/v1.1/provisional/getProvisionalAuth") ?? 0).toBe(0);
  });

  it("refuses a link opened after its lifetime, even if never used", async () => {
    const sim = await start();
    const url = urlOf(
      await links(sim).provisionalLink({ staffId: "corp1:legacy-1", page: "home", expiresInSeconds: 60 }),
    );
    sim.controls.clock.advance(59_000);
    const client = links(sim);
    const fresh = urlOf(
      await client.provisionalLink({ staffId: "corp1:legacy-1", page: "home", expiresInSeconds: 60 }),
    );
    sim.controls.clock.advance(1_000);
    const late = await open(url);
    expect(late.html).toContain(EXPIRED);
    expect(late.html).not.toContain("老财务");
    // The second link, 1 s old, still works: the first was refused for its age, not for the clock jump.
    expect((await open(fresh)).html).toContain("老财务");
    expect(sim.launches).toHaveLength(1);
  });

  it("more than 7 days is refused with Hesi's message", async () => {
    const sim = await start();
    const result = await links(sim).provisionalLink({
      staffId: "corp1:legacy-1",
      page: "home",
      expiresInSeconds: 604_801,
    });
    expect(result).toEqual({
      ok: false,
      failure: {
        class: "bad-data",
        code: "INVALID_REQUEST",
        message: "getProvisionalAuth: expireDate最多只能指定7天内的秒数！",
        http: 200,
      },
    });
    const sevenDays = await links(sim).provisionalLink({
      staffId: "corp1:legacy-1",
      page: "home",
      expiresInSeconds: 604_800,
    });
    expect(sevenDays.ok).toBe(true);
  });

  it("a disabled or unknown staff gets no link", async () => {
    const sim = await start();
    expect(sim.staff().find((s) => s.id === "corp1:legacy-2")?.active).toBe(false);
    const client = links(sim);
    for (const staffId of ["corp1:legacy-2", "corp1:nobody"]) {
      const result = await client.provisionalLink({ staffId, page: "approve", expiresInSeconds: 60 });
      expect(result).toMatchObject({ ok: false, failure: { class: "bad-data", code: "NOT_FOUND" } });
    }
    expect(sim.launches).toHaveLength(0);
  });

  it("a link issued before the staff was disabled no longer signs in", async () => {
    const sim = await start();
    const url = urlOf(
      await links(sim).provisionalLink({ staffId: "corp1:legacy-1", page: "home", expiresInSeconds: 60 }),
    );
    sim.tenant.setStaffActive(["corp1:legacy-1"], "id", false, false);
    const page = await open(url);
    expect(page.html).toContain(EXPIRED);
    expect(page.html).not.toContain("老财务");
    expect(sim.launches).toHaveLength(0);
  });
});
