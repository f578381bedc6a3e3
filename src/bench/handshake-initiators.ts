/**
 * The handshake-rate benchmark's initiators (handshake-loadgen.ts drives them): many hosts, each with its own v1
 * certificate signed by the mesh CA and its own VPN address, whose Noise IX stage 1s are built before the timed
 * window, and the check that a reply is a stage 2 that completes the handshake.
 *
 * Building a stage 1 must cost next to nothing during the window, and Noise IX makes that possible: message 1 is
 * `e.pub || s.pub || payload`, all in clear (no key exists yet), so the datagram is the header and three byte
 * strings. The ephemeral keys come from a pool made beforehand (a responder's work does not depend on whether an
 * initiator's ephemeral is fresh: it makes its own and does the same three DHs). The reply is checked only
 * afterwards, by replaying the initiator's Noise state with the same keys (`Stage2Verifier`): that costs three DHs,
 * as much as the responder's own work, so the window keeps only a cheap structural match (`matchStage2`).
 */
import { createInitiator } from '../shared/noise';
import { generateX25519KeyPair, signCert, validateHandshakeCert, type CAPool, type NebulaCertificate } from '../shared/pki';
import { decodeHandshake, encodeHandshake } from '../shared/protocol/handshake-payload';
import { HEADER_LEN, SUBTYPE_HANDSHAKE_IXPSK0, TYPE_HANDSHAKE, writeHeader } from '../shared/protocol/header';
import type { CipherName } from '../shared/crypto';

/** One initiating host: its certificate (handshake form) and static key pair. */
export interface Initiator {
  vpnIp: number;
  privateKey: Buffer;
  publicKey: Buffer;
  /** The certificate as a handshake payload carries it (without the public key). */
  certBytes: Buffer;
}

export interface Ephemeral {
  privateRaw: Buffer;
  publicRaw: Buffer;
}

/** Public key, then static key (Noise IX message 1 before its payload). */
const KEYS_LEN = 64;
/** Go's flynn/noise adds nothing else: a stage 2 shorter than e + encrypted s + payload tag is not one. */
const STAGE2_MIN = HEADER_LEN + 32 + 32 + 16 + 16;

/**
 * `count` initiators with distinct VPN addresses counted up from `firstVpnIp` (skipping .0 and .255 host octets),
 * each certificate in network `prefix` bits wide, signed by the CA, valid for `validSeconds`.
 */
export function makeInitiators(ca: { cert: NebulaCertificate; privateKey: Buffer }, count: number, firstVpnIp: number, prefix: number, validSeconds = 3600): Initiator[] {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const now = Math.floor(Date.now() / 1000);
  const out: Initiator[] = [];
  let ip = firstVpnIp >>> 0;
  while (out.length < count) {
    const last = ip & 0xff;
    if (last !== 0 && last !== 255) {
      const kp = generateX25519KeyPair();
      const cert = signCert(
        {
          name: `hs-initiator-${out.length}`,
          ips: [{ ip, mask }],
          subnets: [],
          groups: [],
          notBefore: now - 60,
          notAfter: Math.min(now + validSeconds, ca.cert.details.notAfter - 1),
          publicKey: kp.publicKey,
          isCA: false,
          issuer: ca.cert.fingerprint(),
        },
        ca.privateKey,
      );
      out.push({ vpnIp: ip, privateKey: kp.privateKey, publicKey: kp.publicKey, certBytes: cert.marshalForHandshake() });
    }
    ip = (ip + 1) >>> 0;
  }
  return out;
}

export function makeEphemerals(count: number): Ephemeral[] {
  return Array.from({ length: count }, () => {
    const kp = generateX25519KeyPair();
    return { privateRaw: kp.privateKey, publicRaw: kp.publicKey };
  });
}

/**
 * A stage 1 datagram (header: handshake, ixpsk0, remote index 0, counter 1) of `initiator` with ephemeral `e`,
 * carrying `initiatorIndex` and `time` (ns; a responder takes a new handshake from a host it has a tunnel to only
 * when its Time is newer). Byte for byte what createInitiator(...).writeMessage1 makes with the same keys.
 */
export function buildStage1(initiator: Initiator, e: Ephemeral, initiatorIndex: number, time: bigint): Buffer {
  const payload = encodeHandshake({ details: { cert: initiator.certBytes, initiatorIndex, responderIndex: 0, cookie: 0n, time } });
  const packet = Buffer.allocUnsafe(HEADER_LEN + KEYS_LEN + payload.length);
  writeHeader(packet, 0, TYPE_HANDSHAKE, SUBTYPE_HANDSHAKE_IXPSK0, 0, 0, 1);
  e.publicRaw.copy(packet, HEADER_LEN);
  initiator.publicKey.copy(packet, HEADER_LEN + 32);
  payload.copy(packet, HEADER_LEN + KEYS_LEN);
  return packet;
}

/**
 * Which attempt a datagram answers, when it looks like a stage 2 (version 1, handshake ixpsk0, counter 2, long
 * enough) addressed to an initiator index in [base, base + attempts); -1 otherwise. No cryptography: this runs in
 * the timed window.
 */
export function matchStage2(packet: Buffer, base: number, attempts: number): number {
  if (packet.length < STAGE2_MIN) return -1;
  if (packet[0] !== ((1 << 4) | TYPE_HANDSHAKE) || packet[1] !== SUBTYPE_HANDSHAKE_IXPSK0) return -1;
  if (packet.readUInt32BE(8) !== 0 || packet.readUInt32BE(12) !== 2) return -1;
  const attempt = packet.readUInt32BE(4) - base;
  return attempt >= 0 && attempt < attempts ? attempt : -1;
}

/**
 * Completes handshakes after the fact: the initiator's Noise state is rebuilt from its keys and its stage 1, then
 * the reply must decrypt as message 2, name our initiator index and a responder index, and carry a certificate the
 * CA pool accepts for the static key the responder used. Only then would the initiator have a tunnel. The
 * responder's certificate check is remembered per (certificate, key): a node answers with the same one every time.
 */
export class Stage2Verifier {
  private readonly certsSeen = new Map<string, string | undefined>();

  constructor(
    private readonly caPool: CAPool,
    private readonly cipher: CipherName,
  ) {}

  /** Undefined when `reply` completes the handshake begun by `stage1`, else why not. */
  verify(initiator: Initiator, e: Ephemeral, stage1: Buffer, reply: Buffer): string | undefined {
    const noise = createInitiator({ cipher: this.cipher, staticPrivate: initiator.privateKey, ephemeralPrivate: e.privateRaw });
    const sent = stage1.subarray(HEADER_LEN);
    const rebuilt = noise.writeMessage1(sent.subarray(KEYS_LEN));
    if (!rebuilt.equals(sent)) return 'stage 1 does not match its keys';
    const ours = decodeHandshake(sent.subarray(KEYS_LEN)).details?.initiatorIndex;
    let payload: Buffer;
    let peerStatic: Buffer;
    try {
      ({ payload, peerStatic } = noise.readMessage2(reply.subarray(HEADER_LEN)));
    } catch (err) {
      return `noise: ${err instanceof Error ? err.message : String(err)}`;
    }
    let details;
    try {
      details = decodeHandshake(payload).details;
    } catch (err) {
      return `payload: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (!details) return 'payload without details';
    if (details.initiatorIndex !== ours) return 'wrong initiator index';
    if (details.responderIndex === 0) return 'no responder index';
    const key = `${details.cert.toString('base64')}|${peerStatic.toString('base64')}`;
    if (!this.certsSeen.has(key)) this.certsSeen.set(key, this.checkCert(details.cert, peerStatic, details.certVersion ?? 0));
    const certError = this.certsSeen.get(key);
    if (certError !== undefined) return certError;
    noise.split();
    return undefined;
  }

  private checkCert(cert: Buffer, peerStatic: Buffer, version: number): string | undefined {
    try {
      validateHandshakeCert(cert, peerStatic, this.caPool, new Date(), version);
      return undefined;
    } catch (err) {
      return `certificate: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}
