/**
 * Noise IX handshakes (nebula-spec §3): the initiator with `handshakes.try_interval` linear backoff and
 * `handshakes.retries` attempts to every known address, and the responder with certificate validation bound to
 * the Noise static key, cached stage-2 replies for retransmitted stage 1s, and the race rules of §3.7.
 * Packets waiting for a tunnel are parked in the routines, which flush them when the tunnel is installed.
 */
import { createInitiator, createResponder, type NoiseIXHandshake } from '../shared/noise';
import { HEADER_LEN, TYPE_HANDSHAKE, writeHeader } from '../shared/protocol/header';
import { decodeHandshake, encodeHandshake } from '../shared/protocol/handshake-payload';
import { marshalCertForHandshake, validateHandshakeCert, type NebulaCertificate } from '../shared/pki';
import { formatIPv4 } from '../shared/util/ipv4';
import type { Logger } from '../shared/log';
import type { CipherName } from '../shared/crypto';
import type { MetaPacket } from '../shared/ipc/messages';
import type { HostMap, HostInfo } from './hostmap';
import type { SupervisorCounters } from './counters';
import type { CAPool } from '../shared/pki';

export interface Endpoint {
  ip: number;
  port: number;
}

export interface HandshakeEnv {
  log: Logger;
  cipher: CipherName;
  /** The current PKI: read at every handshake, so a reloaded cert/key/CA pool applies to new tunnels. */
  pki: () => { cert: NebulaCertificate; privateKey: Buffer; caPool: CAPool };
  vpnIp: number;
  hostmap: HostMap;
  tryIntervalMs: number;
  retries: number;
  counters: SupervisorCounters;
  /** Known underlay addresses of a VPN IP (static_host_map for now). */
  addressesFor(vpnIp: number): Endpoint[];
  sendUdp(buf: Buffer, to: Endpoint): void;
  /** Installs a completed tunnel (host map + routines); replaces and removes `replaced` if given. */
  install(h: Omit<HostInfo, 'slot' | 'sender' | 'recvErrors' | 'createdAt'>): HostInfo;
  /** Sends a test request on an existing tunnel (race aftermath). */
  sendTest(h: HostInfo): void;
}

interface Pending {
  vpnIp: number;
  localIndex: number;
  noise: NoiseIXHandshake;
  packet: Buffer;
  attempts: number;
  startedAt: bigint;
  timer?: NodeJS.Timeout;
}

function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function addr(e: Endpoint): string {
  return `${formatIPv4(e.ip)}:${e.port}`;
}

export class HandshakeManager {
  private readonly pendingByVpn = new Map<number, Pending>();
  private readonly pendingByIndex = new Map<number, Pending>();
  /** Handshake durations (ns) for the `handshakes` histogram. */
  readonly durations: number[] = [];

  constructor(private readonly env: HandshakeEnv) {}

  get pendingCount(): number {
    return this.pendingByVpn.size;
  }

  isPending(vpnIp: number): boolean {
    return this.pendingByVpn.has(vpnIp);
  }

  /** Starts a handshake to `vpnIp` unless a tunnel or a pending handshake already exists. */
  start(vpnIp: number): void {
    const env = this.env;
    if (vpnIp === env.vpnIp || env.hostmap.get(vpnIp) || this.pendingByVpn.has(vpnIp)) return;
    const localIndex = env.hostmap.allocateIndex();
    const pki = env.pki();
    const noise = createInitiator({ cipher: env.cipher, staticPrivate: pki.privateKey });
    const payload = encodeHandshake({
      details: { cert: marshalCertForHandshake(pki.cert), initiatorIndex: localIndex, responderIndex: 0, cookie: 0n, time: nowNanos() },
    });
    const msg = noise.writeMessage1(payload);
    const packet = Buffer.alloc(HEADER_LEN + msg.length);
    writeHeader(packet, 0, TYPE_HANDSHAKE, 0, 0, 0, 1);
    msg.copy(packet, HEADER_LEN);
    const p: Pending = { vpnIp, localIndex, noise, packet, attempts: 0, startedAt: process.hrtime.bigint() };
    this.pendingByVpn.set(vpnIp, p);
    this.pendingByIndex.set(localIndex, p);
    env.counters.inc('handshake_manager.initiated');
    // A static host is tried at once (nebula-spec §3.6); later attempts back off linearly.
    this.attempt(p);
  }

  private attempt(p: Pending): void {
    const env = this.env;
    if (this.pendingByIndex.get(p.localIndex) !== p) return;
    if (p.attempts >= env.retries) {
      env.log.info('Handshake timed out', {
        vpnIp: formatIPv4(p.vpnIp),
        initiatorIndex: p.localIndex,
        remoteIndex: 0,
        durationNs: Number(process.hrtime.bigint() - p.startedAt),
        handshake: { stage: 1, style: 'ix_psk0' },
      });
      env.counters.inc('handshake_manager.timed_out');
      this.drop(p);
      return;
    }
    p.attempts++;
    const addrs = env.addressesFor(p.vpnIp);
    for (const a of addrs) {
      env.sendUdp(p.packet, a);
      env.counters.inc('messages.tx.handshake_ixpsk0');
    }
    if (addrs.length > 0) {
      env.log.info('Handshake message sent', {
        vpnIp: formatIPv4(p.vpnIp),
        udpAddrs: addrs.map(addr),
        initiatorIndex: p.localIndex,
        handshake: { stage: 1, style: 'ix_psk0' },
      });
    } else {
      env.log.debug('No known address for host, waiting', { vpnIp: formatIPv4(p.vpnIp) });
    }
    p.timer = setTimeout(() => this.attempt(p), p.attempts * env.tryIntervalMs);
    p.timer.unref();
  }

  private drop(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (this.pendingByIndex.get(p.localIndex) === p) this.pendingByIndex.delete(p.localIndex);
    if (this.pendingByVpn.get(p.vpnIp) === p) this.pendingByVpn.delete(p.vpnIp);
    this.env.hostmap.releaseIndex(p.localIndex);
  }

  /** A recvError for a pending handshake's index discards it (nebula-spec §6.1). */
  dropPendingByIndex(index: number): void {
    const p = this.pendingByIndex.get(index);
    if (p) this.drop(p);
  }

  stop(): void {
    for (const p of [...this.pendingByIndex.values()]) this.drop(p);
  }

  /** A type-0 datagram handed up by a routine. */
  onPacket(m: MetaPacket): void {
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (m.subtype !== 0) return;
    const from = { ip: m.fromIp, port: m.fromPort };
    if (m.counter === 1) this.respond(data, from);
    else if (m.counter === 2) this.complete(data, m.localIndex, from);
  }

  private respond(data: Buffer, from: Endpoint): void {
    const env = this.env;
    const noiseMsg = data.subarray(HEADER_LEN);
    const pki = env.pki();
    const noise = createResponder({ cipher: env.cipher, staticPrivate: pki.privateKey });
    let payload: Buffer;
    let peerStatic: Buffer;
    try {
      ({ payload, peerStatic } = noise.readMessage1(noiseMsg));
    } catch (err) {
      env.log.error('Failed to call noise.ReadMessage', { udpAddr: addr(from), error: errText(err), handshake: { stage: 1, style: 'ix_psk0' } });
      return;
    }
    let details;
    try {
      details = decodeHandshake(payload).details;
    } catch (err) {
      env.log.error('Failed unmarshal handshake message', { udpAddr: addr(from), error: errText(err), handshake: { stage: 1, style: 'ix_psk0' } });
      return;
    }
    if (!details) {
      env.log.error('Message did not contain handshake details', { udpAddr: addr(from), handshake: { stage: 1, style: 'ix_psk0' } });
      return;
    }
    let cert: NebulaCertificate;
    try {
      cert = validateHandshakeCert(details.cert, peerStatic, pki.caPool);
    } catch (err) {
      env.log.info('Invalid certificate from host', { udpAddr: addr(from), error: errText(err), handshake: { stage: 1, style: 'ix_psk0' } });
      return;
    }
    const vpnIp = cert.vpnIp!;
    const fields = {
      vpnIp: formatIPv4(vpnIp),
      udpAddr: addr(from),
      certName: cert.details.name,
      fingerprint: cert.fingerprint(),
      issuer: cert.details.issuer,
      initiatorIndex: details.initiatorIndex,
      handshake: { stage: 1, style: 'ix_psk0' },
    };
    if (vpnIp === env.vpnIp) {
      env.log.error('Refusing to handshake with myself', fields);
      return;
    }

    const existing = env.hostmap.get(vpnIp);
    if (existing?.stage1 && existing.stage1.equals(noiseMsg) && existing.stage2Reply) {
      // A retransmitted stage 1 (our reply was lost): answer with the very same stage 2.
      env.sendUdp(existing.stage2Reply, from);
      env.counters.inc('messages.tx.handshake_ixpsk0');
      env.log.debug('Handshake message sent', { ...fields, cached: true, handshake: { stage: 2, style: 'ix_psk0' } });
      return;
    }
    if (existing && existing.handshakeTime >= details.time) {
      env.log.info('Handshake too old', { ...fields, oldHandshakeTime: existing.handshakeTime.toString(), newHandshakeTime: details.time.toString() });
      env.sendTest(existing);
      return;
    }
    const ours = this.pendingByVpn.get(vpnIp);
    if (ours) {
      // Both sides initiated: the handshake from the higher VPN IP wins (uint32 compare, spec §3.7).
      if (vpnIp >>> 0 > env.vpnIp >>> 0) this.drop(ours);
      else {
        env.log.info('Prevented a pending handshake race', fields);
        return;
      }
    }

    const localIndex = env.hostmap.allocateIndex();
    const replyPayload = encodeHandshake({
      details: {
        cert: marshalCertForHandshake(pki.cert),
        initiatorIndex: details.initiatorIndex,
        responderIndex: localIndex,
        cookie: 0n,
        time: nowNanos(),
      },
    });
    let msg2: Buffer;
    try {
      msg2 = noise.writeMessage2(replyPayload);
    } catch (err) {
      env.hostmap.releaseIndex(localIndex);
      env.log.error('Failed to call noise.WriteMessage', { ...fields, error: errText(err) });
      return;
    }
    const keys = noise.split();
    const reply = Buffer.alloc(HEADER_LEN + msg2.length);
    writeHeader(reply, 0, TYPE_HANDSHAKE, 0, details.initiatorIndex, 0, 2);
    msg2.copy(reply, HEADER_LEN);

    env.install({
      vpnIp,
      localIndex,
      remoteIndex: details.initiatorIndex,
      sendKey: keys.sendKey,
      recvKey: keys.recvKey,
      cert,
      remoteIp: from.ip,
      remotePort: from.port,
      handshakeTime: details.time,
      stage1: Buffer.from(noiseMsg),
      stage2Reply: reply,
      initiatedLocally: false,
    });
    env.sendUdp(reply, from);
    env.counters.inc('messages.tx.handshake_ixpsk0');
    env.log.info('Handshake message received', fields);
    env.log.info('Handshake message sent', { ...fields, responderIndex: localIndex, sentCachedPackets: 0, handshake: { stage: 2, style: 'ix_psk0' } });
  }

  private complete(data: Buffer, localIndex: number, from: Endpoint): void {
    const env = this.env;
    const p = this.pendingByIndex.get(localIndex);
    if (!p) {
      const done = env.hostmap.byLocalIndex(localIndex);
      if (done) env.log.debug('Handshake is already complete', { vpnIp: formatIPv4(done.vpnIp), udpAddr: addr(from) });
      return;
    }
    let payload: Buffer;
    let peerStatic: Buffer;
    try {
      ({ payload, peerStatic } = p.noise.readMessage2(data.subarray(HEADER_LEN)));
    } catch (err) {
      // Unauthenticated garbage must not cost us the handshake: the Noise state was rolled back, keep waiting.
      env.log.error('Failed to call noise.ReadMessage', { vpnIp: formatIPv4(p.vpnIp), udpAddr: addr(from), error: errText(err), handshake: { stage: 2, style: 'ix_psk0' } });
      return;
    }
    let details;
    try {
      details = decodeHandshake(payload).details;
    } catch (err) {
      // Authenticated by Noise, so it really came from the peer: its handshake is broken, give up on this one.
      env.log.error('Failed unmarshal handshake message', { vpnIp: formatIPv4(p.vpnIp), udpAddr: addr(from), error: errText(err), handshake: { stage: 2, style: 'ix_psk0' } });
      this.drop(p);
      return;
    }
    if (!details) {
      env.log.error('Message did not contain handshake details', { vpnIp: formatIPv4(p.vpnIp), udpAddr: addr(from) });
      this.drop(p);
      return;
    }
    let cert: NebulaCertificate;
    try {
      cert = validateHandshakeCert(details.cert, peerStatic, env.pki().caPool);
    } catch (err) {
      env.log.info('Invalid certificate from host', { vpnIp: formatIPv4(p.vpnIp), udpAddr: addr(from), error: errText(err), handshake: { stage: 2, style: 'ix_psk0' } });
      this.drop(p);
      return;
    }
    const fields = {
      vpnIp: formatIPv4(p.vpnIp),
      udpAddr: addr(from),
      certName: cert.details.name,
      fingerprint: cert.fingerprint(),
      issuer: cert.details.issuer,
      initiatorIndex: p.localIndex,
      responderIndex: details.responderIndex,
      handshake: { stage: 2, style: 'ix_psk0' },
    };
    if (cert.vpnIp !== p.vpnIp) {
      env.log.info('Incorrect host responded to handshake', { ...fields, certVpnIp: formatIPv4(cert.vpnIp ?? 0) });
      this.drop(p);
      return;
    }
    const keys = p.noise.split();
    const duration = Number(process.hrtime.bigint() - p.startedAt);
    this.drop(p);
    env.install({
      vpnIp: p.vpnIp,
      localIndex: p.localIndex,
      remoteIndex: details.responderIndex,
      sendKey: keys.sendKey,
      recvKey: keys.recvKey,
      cert,
      remoteIp: from.ip,
      remotePort: from.port,
      handshakeTime: details.time,
      initiatedLocally: true,
    });
    this.durations.push(duration);
    if (this.durations.length > 1024) this.durations.shift();
    env.log.info('Handshake message received', { ...fields, durationNs: duration, sentCachedPackets: 0 });
  }

}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
