/**
 * Finds Go nebula-cert 1.11.0 as ../shared/tools/fetch-nebula.sh DEST unpacks it: $NEBULA_BIN_DIR/1.11.0/nebula-cert,
 * else ../nebula-bin/1.11.0/nebula-cert beside the checkout. Outside CI a missing binary skips the test with a
 * printed reason; under CI=true it fails it (.ci/run fetches it).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import { inCI } from '../../helpers/prereq';

export const NEBULA_CERT_VERSION = '1.11.0';

type TapTest = { skip(name: string, cb: () => unknown): unknown; fail(message: string): unknown };

function candidates(): string[] {
  const dirs = [process.env.NEBULA_BIN_DIR, path.resolve(__dirname, '..', '..', '..', '..', 'nebula-bin')];
  return dirs.filter((d): d is string => !!d).map((d) => path.join(d, NEBULA_CERT_VERSION, 'nebula-cert'));
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The path of nebula-cert 1.11.0 (checked with -version), or undefined. */
export function findNebulaCert111(): string | undefined {
  for (const file of candidates()) {
    if (!executable(file)) continue;
    const r = spawnSync(file, ['-version'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.includes(`Version: ${NEBULA_CERT_VERSION}`)) return file;
  }
  return undefined;
}

/** The binary, or undefined after skipping (outside CI) or failing (CI) the test with the reason. */
export function needNebulaCert111(t: TapTest): string | undefined {
  const found = findNebulaCert111();
  if (found) return found;
  const reason =
    `missing prerequisite: Go nebula-cert ${NEBULA_CERT_VERSION} (looked at ${candidates().join(', ')}; ` +
    'run ../shared/tools/fetch-nebula.sh DIR and set NEBULA_BIN_DIR=DIR)';
  if (inCI) t.fail(`${reason} (CI must fetch it)`);
  else {
    console.error(`# SKIP ${reason}`);
    t.skip(reason, () => undefined);
  }
  return undefined;
}

export interface GoRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs nebula-cert in `cwd` with TZ=UTC (so printed times match a TZ=UTC test process). */
export function runGo(bin: string, cwd: string, ...args: string[]): GoRun {
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
