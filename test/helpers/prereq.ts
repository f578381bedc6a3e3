/**
 * Prerequisite checks for tests that need root, /dev/net/tun, Debian's nebula package or the shared reference files.
 * Outside CI a missing prerequisite skips the test with a printed reason. Under CI=true it fails the test:
 * .ci/run installs everything, so a missing prerequisite there is a broken CI, not a reason to skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

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

type Need = 'root' | 'tun' | 'nebula' | 'iperf3' | 'tcpdump' | 'dig' | 'nft' | 'shared';

/**
 * The shared reference directory (`shared/README.md`: tests may read its testdata/ but must not copy it into the
 * project): `../shared` next to the checkout, or $NEBULA_TS_SHARED for a checkout that lives elsewhere.
 */
export const SHARED_DIR = process.env.NEBULA_TS_SHARED || path.resolve(__dirname, '..', '..', '..', 'shared');

export function missingPrereqs(needs: ReadonlyArray<Need>): string[] {
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
      case 'dig':
        if (!which('dig')) missing.push('dig (bind9-dnsutils)');
        break;
      case 'nft':
        if (!which('nft')) missing.push('nft (nftables)');
        break;
      case 'shared':
        if (!existsSync(path.join(SHARED_DIR, 'testdata'))) missing.push(`the shared reference files (${SHARED_DIR}/testdata; set NEBULA_TS_SHARED to their directory)`);
        break;
    }
  }
  return missing;
}

/**
 * Returns true when the test may run. Otherwise skips it (outside CI) or fails it (CI), printing the reason.
 * Usage: `if (!prereqs(t, ['root', 'nebula'])) return;`
 */
export function prereqs(t: TapTest, needs: ReadonlyArray<Need>): boolean {
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
