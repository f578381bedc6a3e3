/**
 * nebula-ctl: Nebula's ssh console commands, run against a running nebula-ts over its control socket.
 *   nebula-ctl [-socket PATH | -config FILE] <command> [flags] [args]
 *   nebula-ctl help [command]          (also: nebula-ctl <command> -h)
 * The commands, their flags and help are the shared table's (src/shared/console-commands.ts); the node runs them
 * (src/supervisor/console.ts) and answers with the text to print. A bad argument, or something the node could not
 * do, is one line on stderr and a non-zero exit (2 for a bad command line caught here, 1 for what the node refused).
 * `reload` exits non-zero when the node rejected the new config (the running config is kept); `status` prints JSON.
 *
 * Which socket: `-socket PATH` or the `control.socket` of `-config FILE` (the last given); else $NEBULA_TS_SOCKET; else the
 * default place of this network namespace (src/shared/control-path.ts, the rule the node's config default uses):
 * the node of a default install is found whatever its tun.dev, and `ip netns exec NS nebula-ctl ...` reaches the
 * node of namespace NS.
 */
import { commandHelp, commandList, findCommand, parseCommandArgs, UsageError, type CommandSpec, type ParsedArgs } from '../shared/console-commands';
import { findDefaultSocket, request } from './client';

const USAGE = 'Usage: nebula-ctl [-socket PATH | -config FILE] <command> [flags] [args]   (nebula-ctl help [command])\n';

/** A bad command line: printed as one line, exit 2. */
class CommandLineError extends Error {}

interface CommandLine {
  /** The last of -socket / -config given, if any. */
  where?: { socket: string } | { config: string };
  cmd?: string;
  argv: string[];
}

/** Global flags up to the command; everything after the command is the command's. */
function parseCommandLine(argv: string[]): CommandLine {
  let where: CommandLine['where'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) return { where, cmd: a, argv: argv.slice(i + 1) };
    const [flag, inline] = a.replace(/^--?/, '').split('=', 2) as [string, string | undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new CommandLineError(`flag needs an argument: -${flag}`);
      return v;
    };
    if (flag === 'socket') where = { socket: value() };
    else if (flag === 'config') where = { config: value() };
    else if (flag === 'h' || flag === 'help') return { where, cmd: 'help', argv: argv.slice(i + 1) };
    else throw new CommandLineError(`flag provided but not defined: ${a}`);
  }
  return { where, argv: [] };
}

async function socketPathOf(where: CommandLine['where']): Promise<string> {
  if (where && 'socket' in where) return where.socket;
  // Loaded only for -config: the config schema is most of what nebula-ctl would otherwise spend starting up.
  if (where) {
    const { loadConfig } = require('../shared/config') as typeof import('../shared/config');
    return loadConfig(where.config).config.control.socket;
  }
  return process.env.NEBULA_TS_SOCKET || (await findDefaultSocket());
}

function help(argv: string[]): number {
  const name = argv[0];
  if (name === undefined) {
    process.stdout.write(USAGE + '\n' + commandList());
    return 0;
  }
  const spec = findCommand(name);
  if (!spec) throw new CommandLineError(`unknown command "${name}" (nebula-ctl help lists the commands)`);
  process.stdout.write(commandHelp(spec));
  return 0;
}

function parseLocally(spec: CommandSpec, argv: string[]): ParsedArgs {
  try {
    return parseCommandArgs(spec, argv);
  } catch (err) {
    if (err instanceof UsageError) throw new CommandLineError(`${spec.name}: ${err.message}`);
    throw err;
  }
}

async function main(): Promise<number> {
  const line = parseCommandLine(process.argv.slice(2));
  if (line.cmd === undefined) throw new CommandLineError(`no command given. ${USAGE.trim()}`);
  if (line.cmd === 'help') return help(line.argv);
  const spec = findCommand(line.cmd);
  if (!spec) throw new CommandLineError(`unknown command "${line.cmd}" (nebula-ctl help lists the commands)`);
  // Checked here too, so a mistyped flag is caught without a node; the node parses the same way.
  if (parseLocally(spec, line.argv).help) {
    process.stdout.write(commandHelp(spec));
    return 0;
  }
  const reply = await request(await socketPathOf(line.where), { cmd: spec.name, args: line.argv });
  switch (spec.name) {
    case 'status':
      process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
      return reply.ok === false ? 1 : 0;
    case 'reload':
      return printReload(reply);
    default:
      if (reply.ok === true && typeof reply.output === 'string') {
        process.stdout.write(reply.output);
        return 0;
      }
      process.stderr.write(`nebula-ctl: ${spec.name}: ${oneLine(reply.error)}\n`);
      return 1;
  }
}

function printReload(reply: Record<string, unknown>): number {
  if (reply.ok === true) {
    const changed = (reply.changed as string[] | undefined) ?? [];
    const summary = typeof reply.summary === 'string' ? reply.summary : changed.length ? `${changed.join(', ')} changed` : 'nothing changed';
    process.stdout.write(`reloaded: ${summary}\n`);
    // Applied, but a part was kept (a bad host cert with a good CA bundle): the operator must hear of it.
    const errors = (reply.errors as string[] | undefined) ?? [];
    for (const e of errors) process.stderr.write(`reload error, running certificate kept: ${e}\n`);
    return errors.length > 0 ? 1 : 0;
  }
  process.stderr.write(`reload failed, running config kept: ${String(reply.error)}\n`);
  return 1;
}

/** The node's error, kept to one line whatever it sent. */
function oneLine(error: unknown): string {
  return (typeof error === 'string' ? error : 'the node answered without an error message').replace(/\s*\n\s*/g, '; ');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nebula-ctl: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    process.exit(err instanceof CommandLineError ? 2 : 1);
  },
);
