/**
 * Runs nebula-ts-cert in this process (src/cert-cli/main.ts's `run`), in `dir`: the same code path as the binary
 * minus the process start, so tables of invocations stay cheap. Spawning the built CLI (helpers.ts `tsCert`) is
 * kept for what only a real process shows (exit status, stdout flushing, stdin, a terminal).
 */
import { run } from '../../src/cert-cli/main';
import type { RunResult } from './helpers';

export function runCli(dir: string, ...args: string[]): RunResult {
  const cwd = process.cwd();
  let stdout = '';
  let stderr = '';
  process.chdir(dir);
  try {
    const code = run(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  } finally {
    process.chdir(cwd);
  }
}
