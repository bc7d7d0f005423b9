/** Console pages: access-review (not built yet). */
import type { PageGroup } from "../router.js";

export const accessReviewPages: PageGroup = () => undefined;
