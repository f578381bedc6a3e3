/**
 * The CA passphrase as nebula-cert 1.11 gets it (ca.go, sign.go, passwords.go): $NEBULA_CA_PASSPHRASE when set and
 * non-empty, else up to five "Enter passphrase: " prompts on stderr, read from stdin with echo off, which must be a
 * terminal. The run is synchronous, so echo is switched with stty(1) on our own stdin around a blocking read.
 */
import { spawnSync } from 'node:child_process';
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { CliError } from './errors';

export const PASSPHRASE_ENV = 'NEBULA_CA_PASSPHRASE';
const ATTEMPTS = 5;

export class NoTerminalError extends Error {}

/** Reads one line from the terminal on fd 0 without echo (term.ReadPassword), then ends the prompt's line. */
function readPasswordFromTerminal(stderr: (text: string) => void): Buffer {
  if (!isatty(0)) throw new NoTerminalError('cannot read password from nonexistent terminal');
  const stty = (arg: string): boolean => spawnSync('stty', [arg], { stdio: ['inherit', 'ignore', 'ignore'] }).status === 0;
  if (!stty('-echo')) throw new Error('could not turn terminal echo off');
  const bytes: number[] = [];
  try {
    const one = Buffer.alloc(1);
    for (;;) {
      const n = readSync(0, one, 0, 1, null);
      if (n === 0) {
        if (bytes.length === 0) throw new Error('EOF');
        break;
      }
      if (one[0] === 0x0a || one[0] === 0x0d) break;
      bytes.push(one[0]!);
    }
  } finally {
    stty('echo');
    stderr('\n');
  }
  return Buffer.from(bytes);
}

export interface PassphraseText {
  /** Error when stdin is not a terminal. */
  noTerminal: string;
  /** Error prefix for a failed read ("error reading passphrase: "). */
  readError: string;
  /** Error when five prompts got nothing. */
  empty: string;
}

/** The passphrase from the environment or the terminal; errors use the caller's (ca's or sign's) wording. */
export function getPassphrase(stderr: (text: string) => void, text: PassphraseText, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv) return Buffer.from(fromEnv, 'utf8');
  for (let i = 0; i < ATTEMPTS; i++) {
    stderr('Enter passphrase: ');
    let passphrase: Buffer;
    try {
      passphrase = readPasswordFromTerminal(stderr);
    } catch (err) {
      if (err instanceof NoTerminalError) throw new CliError(text.noTerminal);
      throw new CliError(`${text.readError}${err instanceof Error ? err.message : String(err)}`);
    }
    if (passphrase.length > 0) return passphrase;
  }
  throw new CliError(text.empty);
}
