/** Console pages: review (not built yet). */
import type { PageGroup } from "../router.js";

export const reviewPages: PageGroup = () => undefined;
