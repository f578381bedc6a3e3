/**
 * One whole Noise IX handshake with ourselves, in memory, before the node's first real one: both roles, both payloads,
 * the certificate checks against the CA pool, the key split and a packet cipher. Only V8's and OpenSSL's first-use
 * costs are paid here (lazily compiled code, algorithm fetches): cold, the first handshake of a node cost twice the
 * CPU of later ones, and the first packet to a new peer waits for it (issue 13). Nothing is sent, counted, logged or
 * kept, and it touches no host map or pending table.
 */
import { createPacketCipher, type CipherName } from '../shared/crypto';
import { createInitiator, createResponder } from '../shared/noise';
import { ownCertFor, type CAPool, type Certificate } from '../shared/pki';
import { HEADER_LEN } from '../shared/protocol/header';
import { buildStage1, buildStage2, errText, openHandshakePayload } from './handshake-messages';

/** Runs the handshake; returns undefined, or why it failed (for the caller to log: a failure only costs speed). */
export function warmUpHandshakes(cipher: CipherName, pki: { cert: Certificate; privateKey: Buffer; caPool: CAPool }): string | undefined {
  try {
    const curve = pki.cert.curve;
    const initiator = createInitiator({ cipher, staticPrivate: pki.privateKey, curve });
    const stage1 = buildStage1(initiator, pki.cert, 1);
    const responder = createResponder({ cipher, staticPrivate: pki.privateKey, curve });
    const m1 = responder.readMessage1(stage1.subarray(HEADER_LEN));
    const opened = openHandshakePayload(m1.payload, m1.peerStatic, pki.caPool, curve);
    if (!opened.ok) return `${opened.message}: ${opened.error ?? ''}`;
    const stage2 = buildStage2(responder, ownCertFor(pki.cert, opened.cert.version), 1, 2);
    const m2 = initiator.readMessage2(stage2.subarray(HEADER_LEN));
    const answered = openHandshakePayload(m2.payload, m2.peerStatic, pki.caPool, curve);
    if (!answered.ok) return `${answered.message}: ${answered.error ?? ''}`;
    responder.split();
    createPacketCipher(cipher, initiator.split().sendKey).dispose();
    return undefined;
  } catch (err) {
    return errText(err);
  }
}
