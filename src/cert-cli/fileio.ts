/**
 * File access with Go's error wording ("open ca.key: no such file or directory") so messages match nebula-cert,
 * writes that create files 0600 and never replace an existing file (O_EXCL), and nebula-cert 1.11's "-" path:
 * any path flag set to "-" reads stdin or writes stdout, and at most one flag may claim each stream.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { CliError } from './errors';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file exists',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
};

/** The path value that selects stdin (inputs) or stdout (outputs). */
export const STDIO_PATH = '-';

export const isStdio = (path: string): boolean => path === STDIO_PATH;

/** Go's *PathError text for a failed fs call. */
export function goPathError(op: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = (code && ERRNO_TEXT[code]) ?? (err instanceof Error ? err.message : String(err));
  // Go reports a directory as "read <path>: is a directory", since open(2) itself succeeds.
  return `${code === 'EISDIR' ? 'read' : op} ${path}: ${text}`;
}

/** Which flags took stdin and stdout in this invocation (Go's ioClaims). */
export class IoClaims {
  private inFlag = '';
  private outFlag = '';

  /** Claims stdin for every (flag, path) pair whose path is "-"; a second claimant is an error. */
  reserveInputs(...pairs: Array<[flag: string, path: string]>): this {
    for (const [flag, path] of pairs) if (isStdio(path)) this.claimIn(flag);
    return this;
  }

  /** Claims stdout likewise, before anything is written, so a conflict never leaves half an output. */
  reserveOutputs(...pairs: Array<[flag: string, path: string]>): this {
    for (const [flag, path] of pairs) if (isStdio(path)) this.claimOut(flag);
    return this;
  }

  claimIn(flag: string): void {
    if (this.inFlag !== '' && this.inFlag !== flag) {
      throw new CliError(`-${this.inFlag} and -${flag} both set to "-", only one input may read from stdin`);
    }
    this.inFlag = flag;
  }

  claimOut(flag: string): void {
    if (this.outFlag !== '' && this.outFlag !== flag) {
      throw new CliError(`-${this.outFlag} and -${flag} both set to "-", only one output may write to stdout`);
    }
    this.outFlag = flag;
  }
}

/** Reads the text a path flag names (stdin for "-"); on failure throws CliError(`${prefix}${go error}`). */
export function readInput(flag: string, path: string, claims: IoClaims, prefix: string): string {
  try {
    if (isStdio(path)) {
      claims.claimIn(flag);
      return readFileSync(0, 'utf8');
    }
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`${prefix}${goPathError(isStdio(path) ? 'read' : 'open', isStdio(path) ? '/dev/stdin' : path, err)}`);
  }
}

/** True when `path` names an existing file; "-" (stdout) never does, so it is never refused as an overwrite. */
export function exists(path: string): boolean {
  return !isStdio(path) && existsSync(path);
}

/** Creates `path` with mode 0600, refusing (EEXIST) to replace a file even if it appeared meanwhile; "-" is stdout. */
export function writeOutput(path: string, data: string, stdout: (text: string) => void, prefix: string): void {
  if (isStdio(path)) {
    stdout(data);
    return;
  }
  try {
    writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new CliError(`${prefix}${goPathError('open', path, err)}`);
  }
}
