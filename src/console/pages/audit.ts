/** Console pages: audit (not built yet). */
import type { PageGroup } from "../router.js";

export const auditPages: PageGroup = () => undefined;
