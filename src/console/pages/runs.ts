/** Console pages: runs (not built yet). */
import type { PageGroup } from "../router.js";

export const runPages: PageGroup = () => undefined;
