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
}

export function logConfigWarnings(logger: Logger, warnings: readonly ConfigWarning[]): void {
  for (const w of warnings) logger.log(w.level, w.msg, w.fields);
}
