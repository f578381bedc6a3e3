/**
 * Go 1.6.1's lighthouse metrics (message_metrics.go newLighthouseMetrics): `lighthouse.{rx,tx}.<Type>` for the four
 * message types 1.6.1 uses and `lighthouse.{rx,tx}.other` for the rest, plus `messages.tx.holepunch`, all exported
 * only with `stats.lighthouse_metrics`; `messages.tx.punchy` only with `stats.message_metrics`. The supervisor counts
 * them (it is where lighthouse messages are read and written) and metrics.ts exports them under those gates. Our own
 * extras, `lighthouse.dropped.*` (authenticated messages we refused) and `lighthouse.addrmap.evicted`, are exported
 * always: Go has no series by those names.
 */
import { MetaType, metaTypeName } from '../shared/protocol/lighthouse';

const USED: readonly number[] = [MetaType.HostQuery, MetaType.HostQueryReply, MetaType.HostUpdateNotification, MetaType.HostPunchNotification];

export function lighthouseCounter(dir: 'rx' | 'tx', type: number): string {
  return `lighthouse.${dir}.${USED.includes(type) ? metaTypeName(type) : 'other'}`;
}

/** Exported with stats.lighthouse_metrics. */
export const LIGHTHOUSE_METRICS: readonly string[] = [
  ...(['rx', 'tx'] as const).flatMap((dir) => [...USED.map((t) => lighthouseCounter(dir, t)), `lighthouse.${dir}.other`]),
  'messages.tx.holepunch',
];

/** Why an authenticated lighthouse message was not acted on (our extras). */
export const LIGHTHOUSE_DROPS = {
  /** Could not be decoded, or had no details. */
  invalid: 'lighthouse.dropped.invalid',
  /** A HostQueryReply or HostPunchNotification from a host that is not one of our lighthouses. */
  notLighthouse: 'lighthouse.dropped.not_lighthouse',
  /** A HostUpdateNotification whose VpnIp is not the sender's own. */
  wrongVpnIp: 'lighthouse.dropped.wrong_vpn_ip',
  /** A HostQuery or HostUpdateNotification sent to a node that is not a lighthouse. */
  notServing: 'lighthouse.dropped.not_serving',
} as const;

/** Always exported (nebula-ts extras). */
export const LIGHTHOUSE_EXTRAS: readonly string[] = [...Object.values(LIGHTHOUSE_DROPS), 'lighthouse.addrmap.evicted'];
