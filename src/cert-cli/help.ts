/**
 * Usage texts in nebula-cert 1.11's layout (main.go's help, each mode's "Usage of ..." line, the stdio note and
 * FlagSet.PrintDefaults), written to stderr, with this program's name where Go prints os.Args[0].
 */
import type { Mode } from './commands';

export const PROGRAM = 'nebula-ts-cert';

const STDIO_HELP = '  Pass "-" to any path flag to read from stdin or write to stdout.\n';

export function mainHelp(modes: readonly Mode[], error = ''): string {
  return (
    (error ? `Error: ${error}\n\n` : '') +
    `Usage of ${PROGRAM} <global flags> <mode>:\n` +
    '  Global flags:\n' +
    '    -version: Prints the version\n' +
    '    -h, -help: Prints this help message\n\n' +
    '  Modes:\n' +
    modes.map((m) => `    ${m.summary}\n`).join('') +
    '\n' +
    `  To see usage for a given mode, use ${PROGRAM} <mode> -h\n`
  );
}

export function modeHelp(mode: Mode): string {
  return `Usage of ${PROGRAM} ${mode.summary}\n${STDIO_HELP}${mode.flags().printDefaults()}`;
}
