/**
 * The Noise IX handshake messages as Nebula frames them (nebula-spec §3.3–§3.5): building stage 1 and stage 2
 * datagrams (header + Noise message carrying our cert and indexes), and opening a received one's payload (decode,
 * then validate the cert against the CA pool and the Noise static key). The handshake manager decides what to do;
 * this module only knows the bytes.
 */
import type { ViaRelay } from '../shared/ipc/messages';
import type { Logger } from '../shared/log';
import type { Endpoint } from '../shared/util/endpoint';
import type { NoiseIXHandshake } from '../shared/noise';
import {
  ownNetworks,
  prefixContainsAddr,
  requireIPv4Network,
  validateHandshakeCert,
  type CAPool,
  type Certificate,
  type Curve,
} from '../shared/pki';
import { HEADER_LEN, TYPE_HANDSHAKE, writeHeader } from '../shared/protocol/header';
import { decodeHandshake, encodeHandshake, type NebulaHandshakeDetails } from '../shared/protocol/handshake-payload';

let lastTime = 0n;

/**
 * The handshake Time (ns since the epoch, as Go's time.Now().UnixNano()). Strictly increasing within the process:
 * a peer takes a handshake for a host it already has a tunnel to only when its Time is newer (nebula-spec §3.7), so
 * a re-key must never carry the same Time as the handshake it replaces, even within one millisecond.
 */
function nowNanos(): bigint {
  const now = BigInt(Date.now()) * 1_000_000n;
  lastTime = now > lastTime ? now : lastTime + 1n;
  return lastTime;
}

function frame(noiseMessage: Buffer, remoteIndex: number, counter: number): Buffer {
  const packet = Buffer.alloc(HEADER_LEN + noiseMessage.length);
  writeHeader(packet, 0, TYPE_HANDSHAKE, 0, remoteIndex, 0, counter);
  noiseMessage.copy(packet, HEADER_LEN);
  return packet;
}

/**
 * Our certificate in a payload: its handshake form and, as 1.11 does, its version in CertVersion (1.6.1 ignores
 * the field and reads the v1 form it expects).
 */
function certFields(cert: Certificate): Pick<NebulaHandshakeDetails, 'cert' | 'certVersion'> {
  return { cert: cert.marshalForHandshake(), certVersion: cert.version };
}

/** Stage 1 (initiator -> responder): header counter 1, remote index 0. */
export function buildStage1(noise: NoiseIXHandshake, cert: Certificate, localIndex: number): Buffer {
  const payload = encodeHandshake({
    details: { ...certFields(cert), initiatorIndex: localIndex, responderIndex: 0, cookie: 0n, time: nowNanos() },
  });
  return frame(noise.writeMessage1(payload), 0, 1);
}

/** Stage 2 (responder -> initiator): header counter 2, addressed to the initiator's index. Throws if Noise does. */
export function buildStage2(noise: NoiseIXHandshake, cert: Certificate, initiatorIndex: number, localIndex: number): Buffer {
  const payload = encodeHandshake({
    details: { ...certFields(cert), initiatorIndex, responderIndex: localIndex, cookie: 0n, time: nowNanos() },
  });
  return frame(noise.writeMessage2(payload), initiatorIndex, 2);
}

export type OpenedHandshake =
  | { ok: true; details: NebulaHandshakeDetails; cert: Certificate }
  /** `message` and `level`: how Nebula logs that failure. */
  | { ok: false; message: string; error?: string; level: 'error' | 'info' };

/**
 * Decodes a Noise-decrypted handshake payload and validates the peer's cert (bound to its Noise static key) in the
 * version the payload names; `curve` is our own certificate's (Go recombines a v2 cert with its credential's curve).
 * A cert without an IPv4 network is refused here: the overlay is IPv4 only, such a peer has no address in it.
 */
export function openHandshakePayload(payload: Buffer, peerStatic: Buffer, caPool: CAPool, curve: Curve = 'CURVE25519'): OpenedHandshake {
  let details: NebulaHandshakeDetails | undefined;
  try {
    details = decodeHandshake(payload).details;
  } catch (err) {
    return { ok: false, message: 'Failed unmarshal handshake message', error: errText(err), level: 'error' };
  }
  if (!details) return { ok: false, message: 'Message did not contain handshake details', level: 'error' };
  try {
    const cert = validateHandshakeCert(details.cert, peerStatic, caPool, new Date(), details.certVersion ?? 0, curve);
    requireIPv4Network(cert);
    return { ok: true, details, cert };
  } catch (err) {
    return { ok: false, message: 'Invalid certificate from host', error: errText(err), level: 'info' };
  }
}

/**
 * What Go 1.11 looks at in a verified peer's networks (handshake_manager.go validatePeerCert and the stage-2 check):
 * `isSelf` when one of its addresses is one of ours (refused), `inCommon` when one lies in one of our networks (only
 * the log message differs when none does).
 */
export function peerNetworks(peer: Certificate, own: Certificate): { isSelf: boolean; inCommon: boolean } {
  const mine = ownNetworks(own);
  const addrs = peer.networks.map((n) => n.addr);
  return {
    isSelf: addrs.some((a) => mine.some((m) => m.addr.equals(a))),
    inCommon: addrs.some((a) => mine.some((m) => prefixContainsAddr(m, a))),
  };
}

/** The initiator's check: the host that answered has the VPN address we meant among its networks (not only first). */
export function certHasVpnIp(cert: Certificate, vpnIp: number): boolean {
  return cert.details.ips.some((n) => n.ip >>> 0 === vpnIp >>> 0);
}

/** Go 1.11's "Handshake message received" line, with its variant for a peer outside all of our networks. */
export function receivedMessage(inCommon: boolean): string {
  return inCommon ? 'Handshake message received' : 'Handshake message received, but no vpnNetworks in common.';
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Go logs every remote-allow-list refusal of a handshake with this message, at debug level. */
export const DENIED = 'lighthouse.remote_allow_list denied incoming handshake';

/** Logs a failed payload opening as Nebula does, with the stage it happened at. */
export function logFailure(log: Logger, failure: { message: string; error?: string; level: 'error' | 'info' }, base: Record<string, unknown>, stage: 1 | 2): void {
  const fields = failure.error === undefined ? { ...base } : { ...base, error: failure.error };
  log[failure.level](failure.message, { ...fields, handshake: { stage, style: 'ix_psk0' } });
}

/**
 * Where a handshake datagram came from, and so where its answer goes: an underlay address, or (`via`) a relay, in
 * which case the address is the relay host's and the tunnel made is relayed (no remote of its own, no allow list:
 * the relay host's tunnel passed it).
 */
export type HandshakePath = Endpoint & { via?: ViaRelay };

/** The NewTunnel fields for a tunnel made over `from`. */
export function remoteOf(from: HandshakePath): { remoteIp: number; remotePort: number; relay?: ViaRelay } {
  return from.via ? { remoteIp: 0, remotePort: 0, relay: from.via } : { remoteIp: from.ip, remotePort: from.port };
}
