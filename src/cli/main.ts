import { createReadStream, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Command, CommanderError, Option } from "commander";
import type { JSONWebKeySet } from "jose";
import { loadConfigFromProcess, type Config } from "../config/load.js";
import { AppError, describeError, isAppError } from "../domain/errors.js";
import { exportCsv, exportJsonl } from "../audit/export.js";
import type { AuditFilter } from "../audit/export-format.js";
import { verifyExport } from "../audit/verify.js";
import { generateKeys, loadKeys, rotateTokenKey } from "../keys/keys.js";
import { openStore } from "../store/index.js";
import { openOutput } from "./output.js";
import {
  findSource,
  formatSourceList,
  formatSummary,
  readSource,
  snapshotLines,
  testSource,
} from "./sources.js";

/**
 * Exit codes: 0 success, 1 failure (including a failed verification or a partly applied plan), 2 bad usage
 * or invalid config, 3 a plan waits for a person's approval (`sync run`).
 */
const EXIT = { ok: 0, failed: 1, usage: 2, approval: 3 } as const;

interface ConfigOption {
  config?: string;
}

function readConfig(options: ConfigOption): Config {
  return loadConfigFromProcess(options.config);
}

const configOption = (): Option =>
  new Option(
    "-c, --config <file>",
    "config file (default: ./idbridge.yaml if present, else built-in defaults)",
  );

function isoOption(value: string, name: string): string {
  if (Number.isNaN(Date.parse(value))) {
    throw new AppError(
      "INPUT_INVALID",
      `--${name}: "${value}" is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)`,
    );
  }
  return new Date(value).toISOString();
}

/** Builds the command tree; each action sets `result.code`. */
function buildProgram(result: { code: number }): Command {
  const program = new Command("idbridge")
    .description("SSO identity and permission sync between DingTalk / WeCom / AD and finance platforms")
    .showHelpAfterError("(run idbridge --help for usage)")
    .exitOverride();

  program
    .command("serve")
    .description("run the service (HTTP, OIDC provider, sync scheduler) until SIGTERM or SIGINT")
    .addOption(configOption())
    .action(async (options: ConfigOption) => {
      const config = readConfig(options);
      // Listen for signals before starting, so one that arrives during start-up still stops us gracefully.
      let wake = (): void => undefined;
      const stopRequested = new Promise<void>((resolve) => (wake = resolve));
      process.on("SIGTERM", wake);
      process.on("SIGINT", wake);
      try {
        // Loaded here so that export and verify do not pay for the HTTP stack (start-up time, memory).
        const { startService } = await import("./serve.js");
        const service = await startService(config);
        await stopRequested;
        await service.stop();
      } finally {
        process.off("SIGTERM", wake);
        process.off("SIGINT", wake);
      }
    });

  const config = program.command("config").description("work with the configuration file");
  config
    .command("check")
    .description("validate a config file: prints ok, or every problem as dotted.path: message (exit 2)")
    .addOption(configOption())
    .action((options: ConfigOption) => {
      readConfig(options);
      process.stdout.write("ok\n");
    });

  const keys = program.command("keys").description("manage signing keys");
  keys
    .command("generate")
    .description("write new private signing keys (0600) and the public jwks.json into a directory")
    .requiredOption("--dir <dir>", "directory to write the keys to (must not hold keys already)")
    .action(async (options: { dir: string }) => {
      const set = await generateKeys(options.dir);
      process.stdout.write(
        `wrote ${options.dir}/{token-signing.pem,audit-signing.pem,jwks.json}\n` +
          `audit key kid ${set.audit.kid}\ntoken key kid ${set.token.kid}\n`,
      );
    });
  keys
    .command("rotate")
    .description(
      "make a new token signing key current and a new cookie secret first; the old ones still verify for signIn.signingKeyGraceDays",
    )
    .option("--dir <dir>", "keys directory (default: keys.dir of the config)")
    .addOption(configOption())
    .action(async (options: ConfigOption & { dir?: string }) => {
      // The config gives the directory and the grace; --dir alone rotates with the default grace.
      const config = options.dir === undefined || options.config !== undefined ? readConfig(options) : null;
      const dir = options.dir ?? config!.keys.dir;
      const graceDays = config?.signIn.signingKeyGraceDays ?? 7;
      const rotated = await rotateTokenKey(dir, new Date(), { graceDays });
      process.stdout.write(
        `new token key kid ${rotated.current.kid} signs from now on\n` +
          `old token key kid ${rotated.retired.kid} still verifies until ${rotated.retiredVerifiesUntil.toISOString()}\n` +
          `new cookie secret first; the previous one still verifies\n` +
          `wrote ${dir}/jwks.json; restart every idbridge instance to use the new keys\n`,
      );
    });

  const sources = program.command("sources").description("check and read the configured directory sources");
  sources
    .command("list")
    .description("list the configured sources")
    .addOption(configOption())
    .action((options: ConfigOption) => {
      process.stdout.write(formatSourceList(readConfig(options)));
    });
  sources
    .command("test")
    .description("connect, authenticate and read one page; exit 1 with the cause when the source is unusable")
    .argument("<id>", "source id from the config")
    .addOption(configOption())
    .action(async (id: string, options: ConfigOption) => {
      const report = await testSource(findSource(readConfig(options), id));
      process.stdout.write(report.text);
      if (!report.ok) result.code = EXIT.failed;
    });
  sources
    .command("read")
    .description("read a snapshot and print it or a summary; exit 1 if the read was incomplete")
    .argument("<id>", "source id from the config")
    .addOption(configOption())
    .addOption(
      new Option("--format <format>", "output format").choices(["summary", "jsonl"]).default("summary"),
    )
    .option("--incremental", "read only what changed since this command's last complete read")
    .action(
      async (id: string, options: ConfigOption & { format: "summary" | "jsonl"; incremental?: boolean }) => {
        const config = readConfig(options);
        const snapshot = await readSource(config, findSource(config, id), {
          incremental: options.incremental === true,
          progress: process.stderr.isTTY,
          note: (line) => process.stderr.write(`note: ${line}\n`),
        });
        if (options.format === "jsonl") {
          for (const line of snapshotLines(snapshot)) process.stdout.write(`${line}\n`);
          if (!snapshot.completeness.complete) {
            process.stderr.write(formatSummary(snapshot));
          }
        } else {
          process.stdout.write(formatSummary(snapshot));
        }
        if (!snapshot.completeness.complete) result.code = EXIT.failed;
      },
    );

  const policy = program.command("policy").description("check the policy files");
  policy
    .command("check")
    .description(
      "validate the policy files: prints ok, or every problem as file:line: path: message (exit 2)",
    )
    .addOption(configOption())
    .option("--dir <dir>", "policy directory (default: policiesDir from the config)")
    .action(async (options: ConfigOption & { dir?: string }) => {
      const config = readConfig(options);
      const { checkPolicies } = await import("../policy/load.js");
      const { keptDirectories } = await import("./sync.js");
      const dir = options.dir ?? config.policiesDir;
      const directories = await keptDirectories(config);
      const check = checkPolicies(dir, {
        sourceIds: config.sources.map((s) => s.id),
        ...(directories ? { directories } : {}),
      });
      for (const line of check.problems) process.stderr.write(`${line}\n`);
      for (const line of check.warnings) process.stderr.write(`warning: ${line}\n`);
      const targetIds = config.targets.map((t) => t.id);
      for (const p of check.policies)
        if (!targetIds.includes(p.target))
          process.stderr.write(
            `warning: ${p.file}: target ${p.target} is not configured (targets: ${targetIds.join(", ") || "none"}); no sync uses this policy\n`,
          );
      if (!directories)
        process.stderr.write(
          "note: no kept source reads to check group and department names against (they appear after the first idbridge sync plan)\n",
        );
      if (check.problems.length > 0) {
        result.code = EXIT.usage;
        return;
      }
      const targets = check.policies.map((p) => p.target).join(", ");
      process.stdout.write(
        `ok: ${check.policies.length} policy file(s) in ${dir} (targets: ${targets || "none"})\n`,
      );
    });

  policy
    .command("explain")
    .description("which rules give a person which roles in a target, and why not others")
    .argument("<person>", "a person id (p_…), an account as SOURCE:SUBJECT, or a name")
    .addOption(configOption())
    .option("--target <id>", "target id (default: the only configured target)")
    .action(async (person: string, options: ConfigOption & { target?: string }) => {
      const config = readConfig(options);
      const { withSync } = await import("./sync.js");
      process.stdout.write(
        await withSync(config, (sync) => sync.explain(person, options.target ?? onlyTarget(config))),
      );
    });

  const sync = program
    .command("sync")
    .description("plan, review, approve and apply permission syncs into the finance platforms");
  const incrementalOption = () =>
    new Option("--incremental", "read only what changed where the source supports it (no removals from it)");
  sync
    .command("plan")
    .description("read the sources and the target, and store a reviewable plan")
    .addOption(configOption())
    .option("--target <id>", "target id (default: the only configured target)")
    .addOption(incrementalOption())
    .action(async (options: ConfigOption & { target?: string; incremental?: boolean }) => {
      const config = readConfig(options);
      const { withSync, readRequest, plannedText } = await import("./sync.js");
      const plan = await withSync(config, (s) =>
        s.plan(options.target ?? onlyTarget(config), readRequest(options.incremental === true)),
      );
      process.stdout.write(plannedText(plan));
    });
  sync
    .command("show")
    .description("print a plan: what needs approval and why, every change with its lineage")
    .argument("<plan>", "plan id")
    .addOption(configOption())
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (id: string, options: ConfigOption & { format: "text" | "json" }) => {
      const { withSync, showPlan } = await import("./sync.js");
      const record = await withSync(readConfig(options), (s) => s.getPlan(id));
      process.stdout.write(showPlan(record, options.format));
    });
  for (const kind of ["approve", "reject"] as const) {
    sync
      .command(kind)
      .description(
        kind === "approve"
          ? "approve a pending plan (recorded with your name)"
          : "reject a plan; it is never applied",
      )
      .argument("<plan>", "plan id")
      .addOption(configOption())
      .requiredOption("--by <name>", "who decides (recorded in the plan and the audit log)")
      .option("--comment <text>", "why, in your words")
      .action(async (id: string, options: ConfigOption & { by: string; comment?: string }) => {
        const { withSync, planLine } = await import("./sync.js");
        const plan = await withSync(readConfig(options), (s) =>
          kind === "approve"
            ? s.approve(id, options.by, options.comment)
            : s.reject(id, options.by, options.comment),
        );
        process.stdout.write(`${planLine(plan)}\n`);
      });
  }
  sync
    .command("apply")
    .description(
      "apply an approved plan (only if the target still matches it); exit 1 if some changes failed",
    )
    .argument("<plan>", "plan id")
    .addOption(configOption())
    .action(async (id: string, options: ConfigOption) => {
      const { withSync, reportText } = await import("./sync.js");
      const { plan, report } = await withSync(readConfig(options), (s) =>
        s.apply(id, undefined, { trigger: "cli" }),
      );
      process.stdout.write(reportText(plan.id, plan.status, report));
      if (plan.status !== "applied") result.code = EXIT.failed;
    });
  sync
    .command("run")
    .description(
      "plan, auto-approve if allowed, apply — once, for cron; exit 3 when a plan waits for approval",
    )
    .addOption(configOption())
    .option("--target <id>", "only this target (default: every configured target)")
    .addOption(incrementalOption())
    .action(async (options: ConfigOption & { target?: string; incremental?: boolean }) => {
      const config = readConfig(options);
      const { withSync, readRequest, planLine, reportText } = await import("./sync.js");
      const outcomes = await withSync(config, (s) =>
        s.run("cli", readRequest(options.incremental === true), options.target),
      );
      for (const { run, plan, report } of outcomes) {
        process.stdout.write(`${run.target}: ${run.status}\n  ${planLine(plan)}\n`);
        if (report) process.stdout.write(reportText(plan.id, plan.status, report));
        if (run.status === "partial" || run.status === "failed") result.code = EXIT.failed;
        else if (run.status === "needs-approval" && result.code === EXIT.ok) result.code = EXIT.approval;
      }
    });
  sync
    .command("status")
    .description("the last sync runs and the plans waiting for someone")
    .addOption(configOption())
    .action(async (options: ConfigOption) => {
      const { withSync, statusText } = await import("./sync.js");
      process.stdout.write(statusText(await withSync(readConfig(options), (s) => s.status())));
    });

  program
    .command("simulate")
    .description("run a DingTalk, WeCom or 合思 simulator on 127.0.0.1 and print the config entry for it")
    .argument("<vendor>", "dingtalk | wecom | hesi")
    .option("--port <port>", "TCP port (default: any free port)", (v) => intOption(v, "port", 0, 65535))
    .option("--people <n>", "size of the simulated company", (v) => intOption(v, "people", 1, 1_000_000), 200)
    .option("--seed <n>", "seed of the generated company", (v) => intOption(v, "seed", 0, 2 ** 31 - 1), 1)
    .option("--faults <spec>", "faults to inject, e.g. expire-token-after=3,5xx@/topapi/v2/user/list*2")
    .action(
      async (vendor: string, options: { port?: number; people: number; seed: number; faults?: string }) => {
        const { runSimulator } = await import("./simulate.js");
        await runSimulator(vendor, options);
      },
    );

  program
    .command("demo")
    .description(
      "run the whole product on 127.0.0.1 with simulators, a demo company and a demo finance app (npm start)",
    )
    .option("--reset", "delete the demo data dir first (only one the demo created)", false)
    .option(
      "--port <port>",
      "idbridge's port; the simulators and the finance app take the next four (0: any free ports)",
      (v) => intOption(v, "port", 0, 65530),
      8080,
    )
    .option("--data-dir <dir>", "where the demo keeps its store, keys and simulator state", "./data/demo")
    .action(async (options: { reset: boolean; port: number; dataDir: string }) => {
      const { runDemo } = await import("./demo.js");
      await runDemo(options);
    });

  const audit = program.command("audit").description("export and verify the tamper-evident audit log");
  audit
    .command("export")
    .description("stream selected audit entries with their proof (JSONL) or for spreadsheets (CSV)")
    .addOption(configOption())
    .addOption(new Option("--format <format>", "output format").choices(["jsonl", "csv"]).default("jsonl"))
    .option("--from <iso>", "entries at or after this time")
    .option("--to <iso>", "entries before this time")
    .option("--actor <actor>", "only this actor")
    .option("--action <action>", "only this action, or a prefix such as role.*")
    .option("--subject <subject>", "only this subject")
    .option("-o, --output <file>", "write to a file (default: stdout)")
    .action(
      async (
        options: ConfigOption & { format: "jsonl" | "csv"; from?: string; to?: string; actor?: string } & {
          action?: string;
          subject?: string;
          output?: string;
        },
      ) => {
        const cfg = readConfig(options);
        const filter: AuditFilter = {};
        if (options.from !== undefined) filter.from = isoOption(options.from, "from");
        if (options.to !== undefined) filter.to = isoOption(options.to, "to");
        if (options.actor !== undefined) filter.actor = options.actor;
        if (options.action !== undefined) filter.action = options.action;
        if (options.subject !== undefined) filter.subject = options.subject;
        const keys = await loadKeys(cfg.keys.dir);
        const store = await openStore({ url: cfg.store.url, poolSize: 2 });
        const out = await openOutput(options.output).catch(async (err: unknown) => {
          await store.close();
          throw err;
        });
        try {
          const summary =
            options.format === "jsonl"
              ? await exportJsonl({ store, filter, out: out.stream, key: keys.audit, jwks: keys.jwks })
              : await exportCsv({ store, filter, out: out.stream, jwks: keys.jwks });
          await out.commit();
          if (options.output !== undefined) {
            process.stderr.write(
              `exported ${summary.count} entries (chain verified to seq ${summary.toSeq}) to ${options.output}\n`,
            );
          }
        } catch (err) {
          out.abort();
          throw err;
        } finally {
          await store.close();
        }
      },
    );
  audit
    .command("verify")
    .description("verify a JSONL export offline against a JWKS: exit 0 if intact, 1 naming the first bad seq")
    .argument("<file>", "the export (JSONL)")
    .requiredOption("--jwks <file>", "public keys (jwks.json) the export must be signed with")
    .action(async (file: string, options: { jwks: string }) => {
      const jwks = readJwks(options.jwks);
      const input = createReadStream(file);
      const opened = new Promise<void>((resolve, reject) => {
        input.once("open", () => resolve());
        input.once("error", reject);
      });
      try {
        await opened;
      } catch (err) {
        throw new AppError("EXPORT_INVALID", `cannot read ${file}: ${describeError(err)}`, { cause: err });
      }
      const lines = createInterface({ input, crlfDelay: Infinity });
      const verdict = await verifyExport(lines, jwks);
      input.destroy();
      if (verdict.ok) {
        process.stdout.write(
          `verified ${verdict.entries} entries and ${verdict.checkpoints} checkpoints up to seq ${verdict.toSeq}, ` +
            `exported ${verdict.createdAt}; head ${verdict.head}\n`,
        );
      } else {
        const where =
          verdict.seq === null ? `line ${verdict.line}` : `seq ${verdict.seq} (line ${verdict.line})`;
        process.stderr.write(`verification FAILED at ${where}: ${verdict.reason}\n`);
        result.code = EXIT.failed;
      }
    });
  const identities = program
    .command("identities")
    .description("review and decide how source accounts link to people");
  identities
    .command("review")
    .description("list the accounts the last linking could not decide, with candidates, reasons and evidence")
    .addOption(configOption())
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (options: ConfigOption & { format: "text" | "json" }) => {
      const { reviewQueue } = await import("./identities.js");
      process.stdout.write(await reviewQueue(readConfig(options), options.format));
    });
  const decide = (kind: "link" | "unlink" | "ignore", description: string, personFlag?: "to" | "from") => {
    const command = identities
      .command(kind)
      .description(description)
      .argument("<account>", "the account as SOURCE:SUBJECT (e.g. wecom-hq:zhangwei)")
      .addOption(configOption())
      .requiredOption("--by <name>", "who decides (recorded in the decision and the audit log)")
      .option("--comment <text>", "why, in your words");
    if (personFlag) command.requiredOption(`--${personFlag} <person>`, "person id (p_…)");
    command.action(
      async (
        account: string,
        options: ConfigOption & { by: string; comment?: string; to?: string; from?: string },
      ) => {
        const { recordDecision } = await import("./identities.js");
        const personId = (personFlag === "to" ? options.to : options.from) ?? "";
        const common = {
          account,
          by: options.by,
          ...(options.comment === undefined ? {} : { comment: options.comment }),
        };
        const request = kind === "ignore" ? { ...common, kind } : { ...common, kind, personId };
        process.stdout.write(await recordDecision(readConfig(options), request, new Date()));
      },
    );
  };
  decide("link", "link an account to a person, whatever the link rules say", "to");
  decide("unlink", "keep an account away from a person; rules may link it elsewhere", "from");
  decide("ignore", "never link or review an account (a test or shared account)");
  program.addHelpText("after", () => `\nAll commands:\n${listCommands(program, "idbridge")}`);
  return program;
}

/** Every leaf command with its description, so `idbridge --help` shows the whole CLI at once. */
function listCommands(command: Command, prefix: string): string {
  return command.commands
    .filter((c) => c.name() !== "help")
    .map((c) => {
      const name = `${prefix} ${c.name()}`;
      if (c.commands.length > 0) return listCommands(c, name);
      const args = c.registeredArguments
        .map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`))
        .join(" ");
      return `  ${`${name} ${args}`.trim().padEnd(30)} ${c.description()}\n`;
    })
    .join("");
}

/** The one configured target, for commands whose --target may be left out. */
function onlyTarget(config: Config): string {
  if (config.targets.length === 1) return config.targets[0]!.id;
  throw new AppError(
    "INPUT_INVALID",
    config.targets.length === 0
      ? "no targets are configured; add one under targets: (idbridge simulate hesi prints one)"
      : `several targets are configured (${config.targets.map((t) => t.id).join(", ")}); choose one with --target`,
  );
}

function intOption(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new AppError("INPUT_INVALID", `--${name}: "${value}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

function readJwks(file: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new AppError(
      "INPUT_INVALID",
      `--jwks ${file}: cannot read a JSON key set (${describeError(err)})`,
      { cause: err },
    );
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys))
    throw new AppError("INPUT_INVALID", `--jwks ${file}: not a JWKS (no "keys" array)`);
  return { keys } as JSONWebKeySet;
}

/** Runs the CLI; returns the exit code. Errors are one line on stderr, never a stack trace for user errors. */
export async function main(argv: readonly string[]): Promise<number> {
  const result: { code: number } = { code: EXIT.ok };
  const program = buildProgram(result);
  try {
    await program.parseAsync([...argv]);
    return result.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage mistakes were already printed by commander.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (isAppError(err)) {
      process.stderr.write(`idbridge: ${err.message}\n`);
      for (const line of err.details) process.stderr.write(`${line}\n`);
      const usage =
        err.code === "CONFIG_INVALID" ||
        err.code === "POLICY_INVALID" ||
        err.code === "INPUT_INVALID" ||
        err.code === "NOT_FOUND";
      return usage ? EXIT.usage : EXIT.failed;
    }
    process.stderr.write(`idbridge: internal error: ${describeError(err)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT.failed;
  }
}
