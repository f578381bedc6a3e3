/**
 * File access with Go's error wording ("open ca.key: no such file or directory") so messages match nebula-cert,
 * and writes that create files 0600 and never replace an existing file (O_EXCL).
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

/** Go's *PathError text for a failed fs call. */
export function goPathError(op: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = (code && ERRNO_TEXT[code]) ?? (err instanceof Error ? err.message : String(err));
  // Go reports a directory as "read <path>: is a directory", since open(2) itself succeeds.
  return `${code === 'EISDIR' ? 'read' : op} ${path}: ${text}`;
}

/** Reads a text file; on failure throws CliError(`${prefix}${go error}`). */
export function readText(path: string, prefix: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`${prefix}${goPathError('open', path, err)}`);
  }
}

export function exists(path: string): boolean {
  return existsSync(path);
}

/** Creates `path` with mode 0600; refuses (EEXIST) to replace an existing file even if it appeared meanwhile. */
export function writeNew(path: string, data: string, prefix: string): void {
  try {
    writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new CliError(`${prefix}${goPathError('open', path, err)}`);
  }
}
