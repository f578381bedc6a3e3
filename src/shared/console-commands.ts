/**
 * The console commands `nebula-ctl` sends to a node (Nebula's ssh console, src/supervisor/console.ts runs them): names,
 * flags and help in one table, and the one flag parser, so nebula-ctl (help, early errors) and the node (which parses
 * again: the socket is an API) agree. Names, flags and help texts are Go nebula's (ssh.go); flags are parsed as Go's
 * `flag` package does (`-f`, `--f`, `-f=v`, `-f v`), except that flags may also follow the positional arguments.
 * A new command is one entry here plus one handler in the console.
 */

export interface FlagSpec {
  name: string;
  kind: 'bool' | 'string' | 'int';
  usage: string;
  /** Default of an int flag (printed as Go's PrintDefaults does). */
  defaultValue?: number;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** A longer note, printed indented under the summary by `help <command>`. */
  help?: string;
  /** Positional arguments, for the usage line: e.g. "<vpn-ip>", "[level]". */
  args: string;
  /** How many positional arguments it takes at most. */
  maxArgs: number;
  flags: FlagSpec[];
}

const JSON_FLAG: FlagSpec = { name: 'json', kind: 'bool', usage: 'outputs as json with more information' };
const PRETTY_FLAG: FlagSpec = { name: 'pretty', kind: 'bool', usage: 'pretty prints json, assumes -json' };
const LISTING = [JSON_FLAG, PRETTY_FLAG];

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'list-hostmap', summary: 'List all known previously connected hosts', args: '', maxArgs: 0, flags: LISTING },
  { name: 'list-pending-hostmap', summary: 'List all handshaking hosts', args: '', maxArgs: 0, flags: LISTING },
  {
    name: 'print-cert',
    summary: 'Prints the current certificate being used or the certificate for the provided vpn ip',
    args: '[vpn-ip]',
    maxArgs: 1,
    flags: [
      { name: 'json', kind: 'bool', usage: 'outputs as json' },
      PRETTY_FLAG,
      { name: 'raw', kind: 'bool', usage: 'raw prints the PEM encoded certificate, not compatible with -json or -pretty' },
    ],
  },
  {
    name: 'print-tunnel',
    summary: 'Prints json details about a tunnel for the provided vpn ip',
    args: '<vpn-ip>',
    maxArgs: 1,
    // Go's print-tunnel always prints json and has only -pretty; -json is accepted like on every other listing.
    flags: [{ name: 'json', kind: 'bool', usage: 'outputs as json (always: accepted for symmetry)' }, { name: 'pretty', kind: 'bool', usage: 'pretty prints json' }],
  },
  {
    name: 'change-remote',
    summary: 'Changes the remote address used in the tunnel for the provided vpn ip',
    help: 'The address is given with -address, or as a second argument.',
    args: '<vpn-ip> [ip:port]',
    maxArgs: 2,
    flags: [{ name: 'address', kind: 'string', usage: 'The new remote address, ip:port' }],
  },
  {
    name: 'close-tunnel',
    summary: 'Closes a tunnel for the provided vpn ip',
    args: '<vpn-ip>',
    maxArgs: 1,
    flags: [{ name: 'local-only', kind: 'bool', usage: 'Disables notifying the remote that the tunnel is shutting down' }],
  },
  {
    name: 'create-tunnel',
    summary: 'Creates a tunnel for the provided vpn ip and address',
    help: 'The known addresses of the host (static_host_map) are tried, and the one you provide as well.',
    args: '<vpn-ip>',
    maxArgs: 1,
    flags: [{ name: 'address', kind: 'string', usage: 'Optionally provide a real remote address, ip:port ' }],
  },
  { name: 'list-lighthouse-addrmap', summary: 'List all lighthouse map entries', args: '', maxArgs: 0, flags: LISTING },
  {
    name: 'print-relays',
    summary: 'Prints json details about all relay info',
    args: '',
    maxArgs: 0,
    flags: [JSON_FLAG, { name: 'pretty', kind: 'bool', usage: 'pretty prints json' }],
  },
  { name: 'query-lighthouse', summary: 'Query the lighthouses for the provided vpn ip', args: '<vpn-ip>', maxArgs: 1, flags: [] },
  { name: 'log-level', summary: 'Gets or sets the current log level', args: '[level]', maxArgs: 1, flags: [] },
  { name: 'log-format', summary: 'Gets or sets the current log format', args: '[text|json]', maxArgs: 1, flags: [] },
  { name: 'version', summary: 'Prints the currently running version of nebula', args: '', maxArgs: 0, flags: [] },
  { name: 'device-info', summary: 'Prints information about the network device.', args: '', maxArgs: 0, flags: LISTING },
  { name: 'routines', summary: 'Lists the routine processes: pid, uptime, restarts and packets', args: '', maxArgs: 0, flags: LISTING },
  {
    name: 'conntrack',
    summary: 'Prints the conntrack table: the entry count and a listing',
    args: '',
    maxArgs: 0,
    flags: [...LISTING, { name: 'limit', kind: 'int', usage: 'lists at most this many entries (up to 100000)', defaultValue: 1000 }],
  },
  { name: 'reload', summary: 'Reloads configuration from disk, same as sending HUP to the process', args: '', maxArgs: 0, flags: [] },
  { name: 'status', summary: 'Prints the node status as json: tunnels, routines and every counter', args: '', maxArgs: 0, flags: [] },
  {
    name: 'stats',
    summary: 'Prints the metrics: the series and numbers /metrics shows, under Nebula\'s dotted names',
    help: 'Works whatever stats.type is; stats.message_metrics and stats.lighthouse_metrics decide what is shown.',
    args: '',
    maxArgs: 0,
    flags: LISTING,
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** A bad command line: the message is one line, fit to print as it is. */
export class UsageError extends Error {}

export class ParsedArgs {
  constructor(
    readonly args: string[],
    private readonly values: ReadonlyMap<string, boolean | string | number>,
    /** -h / -help was given: the caller prints the command's help instead of running it. */
    readonly help: boolean,
  ) {}

  bool(name: string): boolean {
    return this.values.get(name) === true;
  }

  string(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  int(name: string, fallback: number): number {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : fallback;
  }
}

/** Parses a command's arguments; throws UsageError with Go's flag-package wording for a bad one. */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const args: string[] = [];
  const values = new Map<string, boolean | string | number>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (raw === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!raw.startsWith('-') || raw === '-') {
      args.push(raw);
      continue;
    }
    const body = raw.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    if (name === 'h' || name === 'help') {
      help = true;
      continue;
    }
    const flag = spec.flags.find((f) => f.name === name);
    if (!flag) throw new UsageError(`flag provided but not defined: -${name}`);
    if (flag.kind === 'bool') {
      if (inline !== undefined && !/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(inline)) {
        throw new UsageError(`invalid boolean value "${inline}" for -${name}`);
      }
      values.set(name, inline === undefined || /^(true|1|t)$/i.test(inline));
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag needs an argument: -${name}`);
    if (flag.kind === 'int') {
      if (!/^\d{1,9}$/.test(value)) throw new UsageError(`invalid value "${value}" for flag -${name}: not a non-negative integer`);
      values.set(name, Number(value));
    } else values.set(name, value);
  }
  if (!help && args.length > spec.maxArgs) {
    throw new UsageError(`${spec.name} takes ${spec.maxArgs === 0 ? 'no arguments' : `at most ${spec.maxArgs} argument${spec.maxArgs > 1 ? 's' : ''} (${spec.args})`}, got: ${args.join(' ')}`);
  }
  return new ParsedArgs(args, values, help);
}

/** `help <command>` as Go's console prints it: name - summary, the note, then the flags as flag.PrintDefaults does. */
export function commandHelp(spec: CommandSpec): string {
  let out = `${spec.name} - ${spec.summary}\n`;
  out += `  usage: ${[spec.name, spec.flags.length ? '[flags]' : '', spec.args].filter(Boolean).join(' ')}\n`;
  if (spec.help) out += `  ${spec.help}\n`;
  for (const f of spec.flags) {
    const type = f.kind === 'bool' ? '' : ` ${f.kind === 'int' ? 'int' : 'string'}`;
    const dflt = f.defaultValue !== undefined ? ` (default ${f.defaultValue})` : '';
    out += `  -${f.name}${type}\n    \t${f.usage}${dflt}\n`;
  }
  return out;
}

/** `help` as Go's console prints it: every command with its summary, sorted. */
export function commandList(): string {
  const lines = COMMANDS.map((c) => `${c.name} - ${c.summary}`).sort();
  return `Available commands:\n${lines.join('\n')}\n`;
}
