/**
 * The newer Go nebula releases the interop tests run against (fetched by ../shared/tools/fetch-nebula.sh into
 * ../nebula-bin or NEBULA_BIN_DIR, as .ci/run does). A missing binary skips the test with the reason printed, or
 * fails it under CI=true (see prereq.ts).
 */
import type { Test } from 'tap';
import path from 'node:path';
import { findGoBinary, goBinaryCandidates } from '../../src/testbed/mesh-v2';
import { inCI } from './prereq';

const ROOT = path.resolve(__dirname, '..', '..');

/** Go nebula `version`'s `nebula` and `nebula-cert`, or undefined after skipping / failing `t` with the reason. */
export function needGoNebula(t: Test, version: string): { nebula: string; cert: string } | undefined {
  const nebula = findGoBinary(ROOT, version, 'nebula');
  const cert = findGoBinary(ROOT, version, 'nebula-cert');
  if (nebula && cert) return { nebula, cert };
  const looked = [...goBinaryCandidates(ROOT, version, 'nebula'), ...goBinaryCandidates(ROOT, version, 'nebula-cert')].join(', ');
  const reason = `missing prerequisite: Go nebula ${version} (looked at ${looked}; run ../shared/tools/fetch-nebula.sh DIR and set NEBULA_BIN_DIR=DIR)`;
  if (inCI) t.fail(`${reason} (CI must fetch it)`);
  else {
    console.error(`# SKIP ${reason}`);
    t.skip(reason, () => undefined);
  }
  return undefined;
}
