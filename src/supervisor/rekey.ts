/**
 * Re-keying before a tunnel's send counter runs low: a (key, nonce) pair must never repeat, and the counter has an
 * end (SEND_COUNTER_LIMIT). Once a tunnel has sent REKEY_AFTER_MESSAGES packets, a fresh handshake to the same
 * peer makes a new tunnel with new keys, which replaces the old one when it completes (the old one is retired then,
 * the routines switch to the new one for sending). If the handshake fails, it is tried again later; a tunnel that
 * reaches the hard limit anyway sends nothing more (routines count routine.dropped.counter_spent).
 */
import type { Logger } from '../shared/log';
import { formatIPv4 } from '../shared/util/ipv4';
import type { HandshakeManager } from './handshake-manager';
import type { HostInfo, HostMap } from './hostmap';

/**
 * Packets sent on one key before it is replaced: far below SEND_COUNTER_LIMIT (2^53 - 2^20), so a re-key that
 * fails for a long time still leaves room; the counter is 64 bits on the wire, as in Go nebula.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 48;
const CHECK_INTERVAL_MS = 1000;
/** A re-key that has not replaced the tunnel by then is started again. */
const RETRY_AFTER_MS = 30_000;

export interface RekeyEnv {
  log: Logger;
  hostmap: HostMap;
  handshakes: Pick<HandshakeManager, 'rekey'>;
}

export class Rekeyer {
  private readonly startedAt = new WeakMap<HostInfo, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly env: RekeyEnv) {}

  start(): void {
    this.timer = setInterval(() => this.tick(Date.now()), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A new host cert or key (reload): every tunnel re-handshakes with it. Returns how many. */
  rekeyAll(): number {
    const hosts = [...this.env.hostmap.hosts()];
    for (const h of hosts) this.env.handshakes.rekey(h);
    return hosts.length;
  }

  tick(now: number): void {
    const { hostmap, handshakes, log } = this.env;
    for (const h of hostmap.hosts()) {
      const sent = hostmap.sendCounter(h);
      if (sent < REKEY_AFTER_MESSAGES) continue;
      const started = this.startedAt.get(h);
      if (started !== undefined && now - started < RETRY_AFTER_MS) continue;
      this.startedAt.set(h, now);
      log.info('Re-keying tunnel: its send counter passed the re-key threshold', { vpnIp: formatIPv4(h.vpnIp), localIndex: h.localIndex, messageCounter: sent });
      handshakes.rekey(h);
    }
  }
}
