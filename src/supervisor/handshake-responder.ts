/**
 * The responder's side of Noise IX (nebula-spec §3.4, §3.7): a stage 1 handed up by a routine is read, its payload and
 * cert checked, the remote allow list applied, retransmissions answered with the cached stage 2, older handshakes and
 * races settled, and a new tunnel installed before the stage 2 reply goes out.
 */
import { createResponder } from '../shared/noise';
import { HEADER_LEN } from '../shared/protocol/header';
import { formatEndpoint as addr } from '../shared/util/endpoint';
import { formatIPv4 } from '../shared/util/ipv4';
import type { HandshakeEnv } from './handshake-env';
import { ownCertFor } from '../shared/pki';
import { buildStage2, DENIED, errText, logFailure, openHandshakePayload, peerNetworks, receivedMessage, remoteOf, type HandshakePath } from './handshake-messages';
import type { Pending } from './pending-handshakes';

/** What the responder needs of the handshake manager: its environment and its pending (initiated) handshakes. */
export interface Responder {
  env: HandshakeEnv;
  pendingFor(vpnIp: number): Pending | undefined;
  drop(p: Pending): void;
  /** Our pending handshake `ours` won a race against the peer's stage 1 that came from `from`. */
  wonRace?(ours: Pending, from: HandshakePath): void;
}

export function respondToStage1(r: Responder, data: Buffer, from: HandshakePath): void {
  const env = r.env;
  const noiseMsg = data.subarray(HEADER_LEN);
  const pki = env.pki();
  const noise = createResponder({ cipher: env.cipher, staticPrivate: pki.privateKey, curve: pki.cert.curve });
  let payload: Buffer;
  let peerStatic: Buffer;
  try {
    ({ payload, peerStatic } = noise.readMessage1(noiseMsg));
  } catch (err) {
    env.log.error('Failed to call noise.ReadMessage', { udpAddr: addr(from), error: errText(err), handshake: { stage: 1, style: 'ix_psk0' } });
    return;
  }
  const opened = openHandshakePayload(payload, peerStatic, pki.caPool, pki.cert.curve);
  if (!opened.ok) {
    logFailure(env.log, opened, { udpAddr: addr(from) }, 1);
    return;
  }
  const { details, cert } = opened;
  const vpnIp = cert.vpnIp!;
  const fields = {
    vpnIp: formatIPv4(vpnIp),
    udpAddr: addr(from),
    certName: cert.details.name,
    certVersion: cert.version,
    fingerprint: cert.fingerprint(),
    issuer: cert.details.issuer,
    initiatorIndex: details.initiatorIndex,
    handshake: { stage: 1, style: 'ix_psk0' },
  };
  const networks = peerNetworks(cert, pki.cert);
  if (vpnIp === env.vpnIp || networks.isSelf) {
    env.log.error('Refusing to handshake with myself', fields);
    return;
  }
  // Now with the VPN IP from the cert: its remote_allow_ranges list applies too (Go's ixHandshakeStage1).
  if (!from.via && env.remoteAllowList && !env.remoteAllowList().allow(vpnIp, from.ip)) {
    env.log.debug(DENIED, { vpnIp: formatIPv4(vpnIp), udpAddr: addr(from) });
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
  const ours = r.pendingFor(vpnIp);
  if (ours) {
    // Both sides initiated: the handshake from the higher VPN IP wins (uint32 compare, spec §3.7).
    if (vpnIp >>> 0 > env.vpnIp >>> 0) r.drop(ours);
    else {
      env.log.info('Prevented a pending handshake race', fields);
      r.wonRace?.(ours, from);
      return;
    }
  }

  const localIndex = env.hostmap.allocateIndex();
  let reply: Buffer;
  try {
    // Go 1.11: answer in the initiator's certificate version when we hold a certificate of it, else in ours.
    reply = buildStage2(noise, ownCertFor(pki.cert, cert.version), details.initiatorIndex, localIndex);
  } catch (err) {
    env.hostmap.releaseIndex(localIndex);
    env.log.error('Failed to call noise.WriteMessage', { ...fields, error: errText(err) });
    return;
  }
  const keys = noise.split();

  const installed = env.install({
    vpnIp,
    localIndex,
    remoteIndex: details.initiatorIndex,
    sendKey: keys.sendKey,
    recvKey: keys.recvKey,
    cert,
    ...remoteOf(from),
    handshakeTime: details.time,
    stage1: Buffer.from(noiseMsg),
    stage2Reply: reply,
    initiatedLocally: false,
  });
  if (!installed) {
    // Refused (and logged) by install: no tunnel, so no reply; the initiator retries or times out.
    env.hostmap.releaseIndex(localIndex);
    return;
  }
  env.sendUdp(reply, from);
  env.counters.inc('messages.tx.handshake_ixpsk0');
  env.log.info(receivedMessage(networks.inCommon), fields);
  env.log.info('Handshake message sent', { ...fields, responderIndex: localIndex, sentCachedPackets: 0, handshake: { stage: 2, style: 'ix_psk0' } });
}
