/**
 * Config warnings are returned as records rather than logged during parsing: the config is parsed before the
 * Logger exists (its level and format come from the config) and is re-parsed on reload, so the caller decides
 * when to log them, once.
 */
import { Logger } from '../log';

export interface ConfigWarning {
  level: 'warning' | 'info';
  msg: string;
  fields: Record<string, unknown>;
  /** About a setting only read at start (routines): logged at start, not again on every reload. */
  startupOnly?: boolean;
}

export function logConfigWarnings(logger: Logger, warnings: readonly ConfigWarning[], context: 'start' | 'reload' = 'start'): void {
  for (const w of warnings) if (context === 'start' || !w.startupOnly) logger.log(w.level, w.msg, w.fields);
}
