/**
 * Fault injection for tests, in one place. Product code never reads a NEBULA_TS_TEST_* variable itself: it asks this
 * module, so every hook is listed here with the test that needs it. All hooks are off (zero) unless a test's
 * environment sets them; nothing in a normal deployment sets them.
 */
function numberFromEnv(name: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function stringFromEnv(name: string): string {
  return process.env[name] ?? '';
}

export interface TestHooks {
  /**
   * Delay (ms) a routine adds to each tunnelUp before its data path sees it, so a peer's first packet deterministically
   * arrives before the routine knows its tunnel (test/e2e/first-packet.test.ts).
   */
  readonly tunnelUpDelayMs: number;
  /**
   * Path of a marker file: the first routine data path to find it removes it and makes its next poll() fail
   * (EINVAL), so a test sees a routine end on a poll error and be respawned (test/e2e/routine-faults.test.ts).
   */
  readonly pollFailOnceFile: string;
  /**
   * Send counter a host's first tunnel starts at instead of 2, so a test crosses the re-key threshold
   * (REKEY_AFTER_MESSAGES) with a few thousand packets (test/e2e/rekey.test.ts). Re-keyed tunnels start at 2.
   */
  readonly sendCounterStart: number;
}

export const testHooks: TestHooks = Object.freeze({
  tunnelUpDelayMs: numberFromEnv('NEBULA_TS_TEST_TUNNEL_UP_DELAY_MS'),
  pollFailOnceFile: stringFromEnv('NEBULA_TS_TEST_POLL_FAIL_ONCE'),
  sendCounterStart: numberFromEnv('NEBULA_TS_TEST_SEND_COUNTER_START'),
});
