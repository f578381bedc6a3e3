/**
 * Logging in Nebula's (logrus) shape: text `time="…" level=info msg="…" key=value` or one JSON object per line.
 * Nebula writes its log to stdout; so do we. Key material must never be passed as a field.
 */

export type LogLevel = 'panic' | 'fatal' | 'error' | 'warning' | 'info' | 'debug' | 'trace';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { panic: 0, fatal: 1, error: 2, warning: 3, info: 4, debug: 5, trace: 6 };

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  disableTimestamp: boolean;
  /** Extra fields on every line (a routine adds `routine: i`). */
  base?: LogFields;
  write?: (line: string) => void;
}

export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.toLowerCase();
  if (t === 'warn') return 'warning';
  return t in LEVEL_RANK ? (t as LogLevel) : undefined;
}

/** A value the way Go's %v prints it: slices as [a b], maps as map[k:v] with sorted keys. */
function goValue(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o)
      .sort()
      .map((k) => `${k}:${goValue(o[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

/** logrus quotes a text-format value unless every character is one of [A-Za-z0-9-._/@^+]. */
function textValue(v: unknown): string {
  const s = goValue(v);
  return /^[A-Za-z0-9\-._/@^+]+$/.test(s) ? s : JSON.stringify(s);
}

/** RFC 3339 at second precision, as logrus prints it by default ("2026-11-24T22:06:47Z"). */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class Logger {
  private opts: Required<LogOptions>;

  constructor(opts: Partial<LogOptions> = {}) {
    this.opts = {
      level: opts.level ?? 'info',
      format: opts.format ?? 'text',
      disableTimestamp: opts.disableTimestamp ?? false,
      base: opts.base ?? {},
      write: opts.write ?? ((line) => process.stdout.write(line + '\n')),
    };
  }

  /** Applies a new level/format (config reload); keeps the writer and base fields. */
  configure(opts: Partial<Pick<LogOptions, 'level' | 'format' | 'disableTimestamp'>>): void {
    Object.assign(this.opts, Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)));
  }

  child(fields: LogFields): Logger {
    const child = new Logger({ ...this.opts, base: { ...this.opts.base, ...fields } });
    return child;
  }

  get level(): LogLevel {
    return this.opts.level;
  }

  get format(): LogFormat {
    return this.opts.format;
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.opts.level];
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    const all: LogFields = { ...this.opts.base, ...fields };
    if (this.opts.format === 'json') {
      const obj: LogFields = {};
      for (const [k, v] of Object.entries(all)) obj[k] = v instanceof Error ? v.message : v;
      obj.level = level;
      obj.msg = msg;
      if (!this.opts.disableTimestamp) obj.time = timestamp();
      this.opts.write(JSON.stringify(obj));
      return;
    }
    const parts: string[] = [];
    if (!this.opts.disableTimestamp) parts.push(`time="${timestamp()}"`);
    parts.push(`level=${level}`, `msg=${JSON.stringify(msg)}`);
    for (const key of Object.keys(all).sort()) parts.push(`${key}=${textValue(all[key])}`);
    this.opts.write(parts.join(' '));
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warning', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
}
