/** Console pages: holders (not built yet). */
import type { PageGroup } from "../router.js";

export const holderPages: PageGroup = () => undefined;
