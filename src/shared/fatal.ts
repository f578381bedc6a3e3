/**
 * What a process does with an error nothing caught: log it and exit non-zero at once. A supervisor or routine that
 * carried on after an unexpected throw would be half-dead (a handler or timer gone, state half-updated); exiting
 * lets the routine be respawned, or pm2/systemd restart the node, with the reason in the log.
 */
export const EXIT_UNEXPECTED = 70; // EX_SOFTWARE

export function exitOnUnexpectedErrors(report: (msg: string, error: string) => void): void {
  const die = (what: string) => (err: unknown) => {
    try {
      report(what, err instanceof Error ? (err.stack ?? err.message) : String(err));
    } finally {
      process.exit(EXIT_UNEXPECTED);
    }
  };
  process.on('uncaughtException', die('Unexpected error, exiting'));
  process.on('unhandledRejection', die('Unhandled promise rejection, exiting'));
}
