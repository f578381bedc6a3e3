/**
 * `nebula-ctl stats [-json|-pretty]`: the series of the metrics catalogue (metrics-catalogue.ts) read now, the same
 * ones with the same numbers as /metrics and graphite, under their dotted (Go nebula) names. It reads the same
 * sources as the endpoint, so it works whatever `stats.type` is (none included); `stats.message_metrics` and
 * `stats.lighthouse_metrics` decide what is shown, as they decide what /metrics shows.
 * - text: one row per series, `METRIC KIND VALUE`; a histogram gives one row per `type` label and a per-routine
 *   counter one row per routine, written as on /metrics (`handshakes{type="count"}`, `...{routine="0"}`).
 * - json: `{"<dotted name>": number | {"<type>": number, ...} | [per-routine numbers]}`, keys in catalogue order.
 */
import type { ParsedArgs } from '../shared/console-commands';
import type { ConsoleHandler } from './console';
import { goJson, textTable } from './console-views';
import { HISTOGRAM_TYPES } from './histogram';
import { metricDefinitions, metricsOptions, type MetricDef } from './metrics-catalogue';
import { metricsSource, type ReportedParts } from './status';

type StatsValue = number | Record<string, number> | number[];

/** One series' value as the JSON answer gives it. */
function valueOf(def: MetricDef): StatsValue {
  switch (def.kind) {
    case 'counter':
    case 'gauge':
      return def.read();
    case 'histogram': {
      const snap = def.read();
      return Object.fromEntries(HISTOGRAM_TYPES.map((t) => [t, snap[t]]));
    }
    case 'per-routine':
      return def.read();
  }
}

const number = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** The text rows of one series. */
function rowsOf(def: MetricDef, value: StatsValue): string[][] {
  if (typeof value === 'number') return [[def.name, def.kind, number(value)]];
  if (Array.isArray(value)) return value.map((v, r) => [`${def.name}{routine="${r}"}`, 'counter', number(v)]);
  return Object.entries(value).map(([type, v]) => [`${def.name}{type="${type}"}`, 'histogram', number(v)]);
}

/** The series and their values, read once. */
export function statsReport(defs: readonly MetricDef[]): Array<[MetricDef, StatsValue]> {
  return defs.map((d) => [d, valueOf(d)]);
}

export function statsText(report: ReadonlyArray<[MetricDef, StatsValue]>): string {
  return textTable(
    ['METRIC', 'KIND', 'VALUE'],
    report.flatMap(([d, v]) => rowsOf(d, v)),
  );
}

export function statsJson(report: ReadonlyArray<[MetricDef, StatsValue]>): Record<string, StatsValue> {
  return Object.fromEntries(report.map(([d, v]) => [d.name, v]));
}

/** The `stats` command; handed to NodeConsole as an extra handler (main.ts). */
export const statsCommand: ConsoleHandler<ReportedParts> = (a: ParsedArgs, p: ReportedParts) => {
  const report = statsReport(metricDefinitions(metricsOptions(p.live.config), metricsSource(p)));
  if (a.bool('json') || a.bool('pretty')) return goJson(statsJson(report), a.bool('pretty'));
  return statsText(report);
};
