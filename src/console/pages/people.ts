/** Console pages: people (not built yet). */
import type { PageGroup } from "../router.js";

export const peoplePages: PageGroup = () => undefined;
