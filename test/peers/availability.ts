/**
 * What happens when a real peer (a server the integration tests talk to) cannot be had: under CI=true the
 * run fails, because green must mean tested; on a developer's machine the tests that need it are skipped,
 * with a warning nobody can miss.
 */
export function peerMissing(name: string, why: string): void {
  if (process.env.CI === "true") {
    throw new Error(`${name} is required under CI=true but is not available: ${why}`);
  }
  const bar = "!".repeat(100);
  process.stderr.write(
    [
      "",
      bar,
      `!!! ${name} IS NOT AVAILABLE — ITS INTEGRATION TESTS ARE SKIPPED, NOT PASSED`,
      `!!! why: ${why}`,
      `!!! Under CI=true this fails the run. Fix the above to run them here.`,
      bar,
      "",
      "",
    ].join("\n"),
  );
}
