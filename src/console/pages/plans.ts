/** Console pages: plans (not built yet). */
import type { PageGroup } from "../router.js";

export const planPages: PageGroup = () => undefined;
