/**
 * Go's flag package semantics, so nebula-ts-cert accepts exactly what nebula-cert does: "-flag value",
 * "-flag=value", "--flag", boolean flags only take "=value", parsing stops at the first non-flag or "--".
 * Error messages are the flag package's.
 */
import { CliError, HelpRequested } from './errors';
import { parseGoDuration } from './duration';

type FlagKind = 'string' | 'bool' | 'duration';

interface FlagDef {
  kind: FlagKind;
  value: string | boolean | bigint;
}

export class FlagSet {
  private defs = new Map<string, FlagDef>();
  /** Arguments left after the flags. */
  rest: string[] = [];

  string(name: string, def = ''): this {
    this.defs.set(name, { kind: 'string', value: def });
    return this;
  }
  bool(name: string, def = false): this {
    this.defs.set(name, { kind: 'bool', value: def });
    return this;
  }
  duration(name: string, defNs = 0n): this {
    this.defs.set(name, { kind: 'duration', value: defNs });
    return this;
  }

  getString(name: string): string {
    return this.get(name, 'string') as string;
  }
  getBool(name: string): boolean {
    return this.get(name, 'bool') as boolean;
  }
  getDuration(name: string): bigint {
    return this.get(name, 'duration') as bigint;
  }

  private get(name: string, kind: FlagKind): string | boolean | bigint {
    const d = this.defs.get(name);
    if (!d || d.kind !== kind) throw new Error(`internal: no ${kind} flag ${name}`);
    return d.value;
  }

  /** Parses `args`; throws CliError (bad flags) or HelpRequested (-h / -help not defined as a flag). */
  parse(args: readonly string[]): this {
    let i = 0;
    while (i < args.length) {
      const s = args[i]!;
      if (s.length < 2 || s[0] !== '-') break;
      let minuses = 1;
      if (s[1] === '-') {
        minuses = 2;
        if (s.length === 2) {
          i++;
          break;
        }
      }
      let name = s.slice(minuses);
      if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new CliError(`bad flag syntax: ${s}`);
      i++;
      let value: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      const def = this.defs.get(name);
      if (!def) {
        if (name === 'help' || name === 'h') throw new HelpRequested();
        throw new CliError(`flag provided but not defined: -${name}`);
      }
      if (def.kind === 'bool') {
        if (value === undefined) def.value = true;
        else {
          const b = parseGoBool(value);
          if (b === undefined) throw new CliError(`invalid boolean value "${value}" for -${name}: parse error`);
          def.value = b;
        }
        continue;
      }
      if (value === undefined) {
        if (i >= args.length) throw new CliError(`flag needs an argument: -${name}`);
        value = args[i++]!;
      }
      if (def.kind === 'string') def.value = value;
      else {
        try {
          def.value = parseGoDuration(value);
        } catch {
          throw new CliError(`invalid value "${value}" for flag -${name}: parse error`);
        }
      }
    }
    this.rest = args.slice(i);
    return this;
  }
}

function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}
