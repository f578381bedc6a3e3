/**
 * Keeps a test runner's instrumentation out of the nodes a testbed starts.
 *
 * Under tap, every child process gets tap's process-info loader through NODE_OPTIONS (tap puts it back into the
 * environment of every spawn it sees, so a plain `env` option cannot remove it). In a nebula-ts node that loader
 * runs in the supervisor, every routine and its data-path worker: a module-loading hook thread in each, plus V8
 * precise coverage when coverage is on. It measures nothing a test asserts and costs CPU the tests share, so the
 * testbed starts nodes with NODE_OPTIONS cleaned of it in the exec chain (`env NODE_OPTIONS=...`), keeping
 * whatever else a test put there (a `--require` preload, say). Outside a test runner nothing changes.
 */

/** Does a NODE_OPTIONS word belong to the test runner (tap's `@tapjs/*` hooks)? */
const isRunnerHook = (word: string): boolean => /[\\/]@tapjs[\\/]/.test(word);

/** Flags whose value may be the next word (`--import x`), so a runner hook given that way is dropped with it. */
const TAKES_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/** `nodeOptions` without the test runner's hooks (words are separated by whitespace, as node splits them). */
export function withoutRunnerHooks(nodeOptions: string): string {
  const words = nodeOptions.split(/\s+/).filter((w) => w !== '');
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (TAKES_VALUE.has(word) && isRunnerHook(words[i + 1] ?? '')) {
      i++;
      continue;
    }
    if (isRunnerHook(word)) continue;
    kept.push(word);
  }
  return kept.join(' ');
}

/**
 * What to put in front of a node's command (inside its namespace) so it runs with `nodeOptions` minus the runner's
 * hooks: nothing when there is nothing to remove, else `env NODE_OPTIONS=...` (or `env -u NODE_OPTIONS`). `env`
 * execs the command, so the node keeps the pid the harness started.
 * `inherited` is this process's NODE_OPTIONS ('' for none): when it has runner hooks, the runner adds them to the
 * child too.
 */
export function cleanNodeOptionsPrefix(nodeOptions: string | undefined, inherited: string = process.env.NODE_OPTIONS ?? ''): string[] {
  const wanted = nodeOptions ?? inherited;
  const hooked = (options: string): boolean => options.split(/\s+/).some(isRunnerHook);
  if (!hooked(inherited) && !hooked(wanted)) return [];
  const cleaned = withoutRunnerHooks(wanted);
  return cleaned === '' ? ['env', '-u', 'NODE_OPTIONS'] : ['env', `NODE_OPTIONS=${cleaned}`];
}

/** The command that runs node without the test runner's hooks: `[...env prefix, process.execPath]`. */
export function nodeCommand(): string[] {
  return [...cleanNodeOptionsPrefix(undefined), process.execPath];
}
