/**
 * The initiator's last step (Go's ixHandshakeStage2): the responder's stage 2 is read with the pending handshake's
 * Noise state, its certificate validated and bound to the Noise static key, and checked to be the host we meant:
 * its certificate must hold the VPN IP we handshook, or, for first contact by IPv6 VPN address, that address (the
 * host's IPv4 VPN IP, the key of every tunnel here, is then taken from the certificate, as Go 1.11 takes the
 * certificate's addresses as the host's). What comes out is the tunnel to install, or why there is none.
 */
import { HEADER_LEN } from '../shared/protocol/header';
import type { Certificate } from '../shared/pki';
import { addrKey, addrOfBytes, formatAddr6, type VpnAddr } from '../shared/protocol/vpn-addr';
import { formatIPv4 } from '../shared/util/ipv4';
import { formatEndpoint } from '../shared/util/endpoint';
import type { HandshakeEnv } from './handshake-env';
import { certHasVpnIp, errText, logFailure, openHandshakePayload, peerNetworks, remoteOf, type HandshakePath } from './handshake-messages';
import type { NewTunnel } from './hostmap';
import type { Pending } from './pending-handshakes';

export type Stage2Outcome =
  /** Unauthenticated garbage: the Noise state was rolled back, the handshake keeps waiting (and retrying). */
  | { kind: 'wait' }
  /** Authenticated but unacceptable (logged): the handshake ends. */
  | { kind: 'fail' }
  | { kind: 'ok'; tunnel: NewTunnel; fields: Record<string, unknown>; inCommon: boolean };

/** How a pending handshake names its peer in logs: its IPv4 VPN IP, or the IPv6 address it was started for. */
export function pendingName(p: Pick<Pending, 'vpnIp' | 'target6'>): string {
  return p.target6 ? formatAddr6(p.target6) : formatIPv4(p.vpnIp);
}

/** Does `cert` hold VPN address `a` among its networks? */
export function certHoldsAddr(cert: Certificate, a: VpnAddr): boolean {
  const key = addrKey(a);
  return cert.networks.some((n) => addrKey(addrOfBytes(n.addr)) === key);
}

export function readStage2(env: HandshakeEnv, p: Pending, data: Buffer, from: HandshakePath): Stage2Outcome {
  const where = { vpnIp: pendingName(p), udpAddr: formatEndpoint(from) };
  let payload: Buffer;
  let peerStatic: Buffer;
  try {
    ({ payload, peerStatic } = p.noise.readMessage2(data.subarray(HEADER_LEN)));
  } catch (err) {
    // Unauthenticated garbage must not cost us the handshake: the Noise state was rolled back, keep waiting.
    env.log.error('Failed to call noise.ReadMessage', { ...where, error: errText(err), handshake: { stage: 2, style: 'ix_psk0' } });
    return { kind: 'wait' };
  }
  // Authenticated by Noise from here on, so it really came from the peer: a broken payload ends this handshake.
  const pki = env.pki();
  const opened = openHandshakePayload(payload, peerStatic, pki.caPool, pki.cert.curve);
  if (!opened.ok) {
    logFailure(env.log, opened, where, 2);
    return { kind: 'fail' };
  }
  const { details, cert } = opened;
  const fields: Record<string, unknown> = {
    ...where,
    certName: cert.details.name,
    certVersion: cert.version,
    fingerprint: cert.fingerprint(),
    issuer: cert.details.issuer,
    initiatorIndex: p.localIndex,
    responderIndex: details.responderIndex,
    handshake: { stage: 2, style: 'ix_psk0' },
  };
  const networks = peerNetworks(cert, pki.cert);
  if (networks.isSelf) {
    env.log.error('Refusing to handshake with myself', fields);
    return { kind: 'fail' };
  }
  const meant = p.target6 ? certHoldsAddr(cert, p.target6) : certHasVpnIp(cert, p.vpnIp);
  if (!meant) {
    env.log.info('Incorrect host responded to handshake', { ...fields, certVpnIp: formatIPv4(cert.vpnIp ?? 0) });
    return { kind: 'fail' };
  }
  // First contact by IPv6 address: the host is keyed by its certificate's IPv4 VPN IP from now on. Certificates
  // without an IPv4 network are refused when the handshake payload is opened, so this is always set.
  const vpnIp = p.target6 ? (cert.vpnIp ?? 0) >>> 0 : p.vpnIp;
  if (vpnIp === 0) {
    env.log.info('Incorrect host responded to handshake', { ...fields, reason: 'no IPv4 VPN address in its certificate' });
    return { kind: 'fail' };
  }
  const keys = p.noise.split();
  return {
    kind: 'ok',
    fields: { ...fields, vpnIp: formatIPv4(vpnIp) },
    inCommon: networks.inCommon,
    tunnel: {
      vpnIp,
      localIndex: p.localIndex,
      remoteIndex: details.responderIndex,
      sendKey: keys.sendKey,
      recvKey: keys.recvKey,
      cert,
      ...remoteOf(from),
      handshakeTime: details.time,
      initiatedLocally: true,
    },
  };
}
