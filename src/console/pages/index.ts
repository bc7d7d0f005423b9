/** Every page group of the console, in navigation order. */
import type { PageGroup } from "../router.js";
import { accessReviewPages } from "./access-review.js";
import { auditPages } from "./audit.js";
import { holderPages } from "./holders.js";
import { homePages } from "./home.js";
import { peoplePages } from "./people.js";
import { planPages } from "./plans.js";
import { reviewPages } from "./review.js";
import { runPages } from "./runs.js";

export const PAGE_GROUPS: readonly PageGroup[] = [
  homePages,
  planPages,
  runPages,
  reviewPages,
  peoplePages,
  auditPages,
  holderPages,
  accessReviewPages,
];
