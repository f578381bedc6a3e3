/**
 * Prerequisite checks for tests that need root, /dev/net/tun or Debian's nebula package.
 * Outside CI a missing prerequisite skips the test with a printed reason. Under CI=true it fails the test:
 * .ci/run installs everything, so a missing prerequisite there is a broken CI, not a reason to skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The two tap assertions used here (typed loosely so any tap Test, whatever its plugins, fits). */
type TapTest = { skip(name: string, cb: () => unknown): unknown; fail(message: string): unknown };

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const inCI = process.env.CI === 'true';

export function missingPrereqs(needs: ReadonlyArray<'root' | 'tun' | 'nebula' | 'iperf3' | 'tcpdump'>): string[] {
  const missing: string[] = [];
  for (const need of needs) {
    switch (need) {
      case 'root':
        if (process.getuid?.() !== 0) missing.push('root');
        break;
      case 'tun':
        if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
        break;
      case 'nebula':
        if (!which('nebula') || !which('nebula-cert')) missing.push('the nebula package (nebula, nebula-cert)');
        break;
      case 'iperf3':
        if (!which('iperf3')) missing.push('iperf3');
        break;
      case 'tcpdump':
        if (!which('tcpdump')) missing.push('tcpdump');
        break;
    }
  }
  return missing;
}

/**
 * Returns true when the test may run. Otherwise skips it (outside CI) or fails it (CI), printing the reason.
 * Usage: `if (!prereqs(t, ['root', 'nebula'])) return;`
 */
export function prereqs(t: TapTest, needs: ReadonlyArray<'root' | 'tun' | 'nebula' | 'iperf3' | 'tcpdump'>): boolean {
  const missing = missingPrereqs(needs);
  if (missing.length === 0) return true;
  const reason = `missing prerequisite: ${missing.join(', ')}`;
  if (inCI) t.fail(`${reason} (CI must install it)`);
  else {
    console.error(`# SKIP ${reason}`);
    t.skip(reason, () => undefined); // a skipped subtest: counted as a skip in tap's summary
  }
  return false;
}
