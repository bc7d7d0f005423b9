/** Writes docs/config.md from the config schema. Run: npm run docs:config */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "../src/config/reference.js";

writeFileSync(join(import.meta.dirname, "..", "docs", "config.md"), renderConfigReference());
