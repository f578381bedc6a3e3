/**
 * `punchy.punch` (nebula-spec §5.6, Go's HostMap.Punchy): every 10 s one datagram holding the single byte 0x01 to
 * every known address of every host we have a tunnel to, from the main socket, so the NAT mappings on both sides
 * stay open while the tunnel is idle. Receivers drop datagrams shorter than a header (a 1-byte one silently:
 * outside-to-inside.ts). Counted as `messages.tx.punchy` (exported with stats.message_metrics, as in Go).
 * `punchy.punch` is read at start only (Go does not reload it); delay and respond are read by the lighthouse
 * handler at each use.
 */
import type { Endpoint } from '../shared/util/endpoint';
import type { SupervisorCounters } from './counters';

export const PUNCH_INTERVAL_MS = 10_000;

export interface PunchyEnv {
  counters: SupervisorCounters;
  /** The VPN IPs we have tunnels to. */
  tunnelVpnIps(): Iterable<number>;
  /** Every address we know for a host (its tunnel's remote among them). */
  addressesOf(vpnIp: number): Endpoint[];
  /** One raw datagram from the main socket. */
  send(payload: Buffer, to: Endpoint): void;
}

const KEEPALIVE = Buffer.from([1]);

export class Punchy {
  private timer?: NodeJS.Timeout;

  constructor(private readonly env: PunchyEnv) {}

  start(): void {
    this.punchAll();
    this.timer = setInterval(() => this.punchAll(), PUNCH_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: a keep-alive to every address of every tunnelled host. */
  punchAll(): number {
    let sent = 0;
    for (const vpnIp of this.env.tunnelVpnIps()) {
      for (const to of this.env.addressesOf(vpnIp)) {
        this.env.send(KEEPALIVE, to);
        this.env.counters.inc('messages.tx.punchy');
        sent++;
      }
    }
    return sent;
  }
}
