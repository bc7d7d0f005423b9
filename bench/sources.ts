/**
 * Directory source benchmark: reads N people from slapd (against `ldapsearch -E pr=1000/noprompt` on the
 * same entries) and from the DingTalk simulator (against the floor its rate limit sets), side by side in
 * one run, and prints a Markdown table for docs/benchmarks.md.
 *
 *   npm run bench:sources                                  # 100,000 people, 3 runs each
 *   npm run bench:sources -- --people 20000 --runs 1 --only ldap
 */
import os from "node:os";
import { parseArgs } from "node:util";
import type { BenchRow } from "./bench-row.js";
import { runDingtalkBench } from "./dingtalk-sources.js";
import { runLdapBench } from "./ldap-sources.js";

const { values } = parseArgs({
  options: {
    people: { type: "string", default: "100000" },
    runs: { type: "string", default: "3" },
    qps: { type: "string", default: "100" },
    only: { type: "string" },
  },
});
const people = Number(values.people);
const runs = Number(values.runs);
const qps = Number(values.qps);
if (!Number.isInteger(people) || people < 1 || !Number.isInteger(runs) || runs < 1 || !(qps > 0)) {
  process.stderr.write("usage: bench/sources.ts [--people N] [--runs R] [--qps Q] [--only ldap|dingtalk]\n");
  process.exit(2);
}

const rows: BenchRow[] = [];
if (values.only === undefined || values.only === "ldap") rows.push(...(await runLdapBench({ people, runs })));
if (values.only === undefined || values.only === "dingtalk") {
  rows.push(...(await runDingtalkBench({ people, qps, runs })));
}

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
process.stdout.write(
  `machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}\n\n` +
    "| what | ours (s) | floor (s) | ratio | peak RSS (MB) | notes |\n| --- | --- | --- | --- | --- | --- |\n" +
    rows
      .map(
        (r) =>
          `| ${r.name} | ${r.oursSeconds} | ${r.floorSeconds} | ${r.ratio} | ${r.peakRssMb} | ${r.notes} |`,
      )
      .join("\n") +
    "\n",
);
