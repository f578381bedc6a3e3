/**
 * nebula-ts-cert: a drop-in for nebula-cert 1.6.1 (modes ca, keygen, sign, print, verify). Errors are one
 * "Error: ..." line on stderr and exit status 1; unexpected exceptions are reported the same way, never as a stack.
 */
import { CertError } from '../shared/pki';
import { CliError, HelpError, HelpRequested } from './errors';
import { caMode, keygenMode, printMode, signMode, verifyMode, type Output } from './commands';
import { FlagSet } from './flags';
import { MAIN_HELP, MODE_HELP } from './help';

export const VERSION = '1.6.1';

const MODES: Record<string, (args: string[], io: Output) => void> = {
  ca: caMode,
  keygen: keygenMode,
  sign: signMode,
  print: printMode,
  verify: verifyMode,
};

export interface RunIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Runs the CLI on `argv` (without node and script); returns the exit status. */
export function run(argv: string[], io: RunIO): number {
  let mode = '';
  try {
    const global = new FlagSet().bool('version').bool('help').bool('h');
    try {
      global.parse(argv);
    } catch (err) {
      if (err instanceof CliError) {
        io.stderr(`Error: ${err.message}\n\n${MAIN_HELP}`);
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
        io.stderr(MAIN_HELP);
        return 0;
      }
      io.stderr(`Error: No mode was provided\n\n${MAIN_HELP}`);
      return 1;
    }
    mode = args[0]!;
    const handler = MODES[mode];
    if (wantHelp) {
      io.stderr(MODE_HELP[mode] ?? MAIN_HELP);
      return 0;
    }
    if (!handler) throw new CliError(`unknown mode: ${mode}`);
    handler(args.slice(1), { out: io.stdout });
    return 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stderr(MODE_HELP[mode] ?? MAIN_HELP);
      return 0;
    }
    const message = err instanceof CliError || err instanceof CertError ? err.message : describe(err);
    io.stderr(`Error: ${message}\n`);
    if (err instanceof HelpError && MODE_HELP[mode]) io.stderr(MODE_HELP[mode]!);
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
