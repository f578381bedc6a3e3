/**
 * nebula-ts-cert: a drop-in for nebula-cert 1.11 (modes ca, keygen, sign, print, verify; v1 and v2 certificates,
 * curves 25519 and P256, encrypted CA keys) that still takes nebula-cert 1.6.1's flags. Errors are one
 * "Error: ..." line on stderr and exit status 1; unexpected exceptions are reported the same way, never as a stack.
 */
import { CertError } from '../shared/pki';
import { caMode } from './ca';
import type { Mode } from './commands';
import { CliError, HelpError, HelpRequested } from './errors';
import { FlagSet } from './flags';
import { mainHelp, modeHelp } from './help';
import { keygenMode } from './keygen';
import { printMode } from './print';
import { signMode } from './sign';
import { verifyMode } from './verify';

/** The nebula-cert release whose interface this reproduces (what `-version` reports). */
export const VERSION = '1.11.0';

const MODES: Record<string, Mode> = { ca: caMode, keygen: keygenMode, sign: signMode, print: printMode, verify: verifyMode };
const MODE_LIST = Object.values(MODES);

export interface RunIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const helpFor = (mode: string): string => (Object.hasOwn(MODES, mode) ? modeHelp(MODES[mode]!) : '');

/** Runs the CLI on `argv` (without node and script); returns the exit status. */
export function run(argv: string[], io: RunIO): number {
  let mode = '';
  try {
    const global = new FlagSet().bool('version').bool('help').bool('h');
    try {
      global.parse(argv);
    } catch (err) {
      if (err instanceof CliError) {
        io.stderr(mainHelp(MODE_LIST, err.message));
        return 1;
      }
      throw err;
    }
    const wantHelp = global.getBool('h') || global.getBool('help');
    if (global.getBool('version')) {
      io.stdout(`Version: ${VERSION}\n`);
      return 0;
    }
    const args = global.rest;
    if (args.length === 0) {
      if (wantHelp) {
        io.stderr(mainHelp(MODE_LIST));
        return 0;
      }
      io.stderr(mainHelp(MODE_LIST, 'No mode was provided'));
      return 1;
    }
    mode = args[0]!;
    if (wantHelp) {
      io.stderr(helpFor(mode));
      return 0;
    }
    if (!Object.hasOwn(MODES, mode)) throw new CliError(`unknown mode: ${mode}`);
    MODES[mode]!.run(args.slice(1), { out: io.stdout, err: io.stderr });
    return 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stderr(helpFor(mode));
      return 0;
    }
    const message = err instanceof CliError || err instanceof CertError ? err.message : describe(err);
    io.stderr(`Error: ${message}\n`);
    if (err instanceof HelpError) io.stderr(helpFor(mode));
    return 1;
  }
}

/** Unexpected failures still get one line: the message only, never a stack trace. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? 'unknown error';
  return String(err);
}

/** Process entry: runs the CLI on process.argv and sets the exit status. */
export function main(): void {
  const out: string[] = [];
  const code = run(process.argv.slice(2), {
    stdout: (t) => out.push(t),
    stderr: (t) => process.stderr.write(t),
  });
  // Write stdout in one go and let the process exit naturally so piped output is fully flushed.
  if (out.length > 0) process.stdout.write(out.join(''));
  process.exitCode = code;
}

if (require.main === module) main();
