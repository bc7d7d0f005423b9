/** The tests' finance platform is the demo's finance app (src/demo/finance-app.ts). */
export {
  startFinanceClient,
  type FinanceClient,
  type FinanceClientOptions,
  type ReceivedLogoutToken,
} from "../../src/demo/finance-app.js";
