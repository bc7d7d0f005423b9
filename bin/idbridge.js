#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm ci` through the prepare script, or `npm run build`).
import { existsSync } from "node:fs";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("idbridge: dist/ is missing; run `npm run build` (npm ci does it for you)\n");
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv);
