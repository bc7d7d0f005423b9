#!/usr/bin/env node
// Launcher: registers the TypeScript loader (tsx) and runs the CLI, so `npm ci && npm start`
// needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
