/**
 * The one way anything is sent on an established tunnel (nebula-spec §2.5, §6): take the tunnel's next send counter
 * from its shared slot, write the header with it, seal the payload with the tunnel's key under that counter, and
 * hand the datagram to an outbox. Routines (data, test replies, echo replies) and the supervisor (test requests,
 * closeTunnel) both come through here, so the counter limit and the header/nonce pairing live in one place.
 */
import type { PacketCipher } from '../crypto/types';
import { HEADER_LEN, writeHeader } from '../protocol/header';
import { COUNTER_SPENT, type TunnelSlots } from '../state/tunnel-slots';
import { splitCounter } from '../util/counter64';

/** What sending needs to know of a tunnel. */
export interface SendableTunnel {
  readonly slot: number;
  readonly remoteIndex: number;
  readonly encrypt: PacketCipher;
  /** The peer's current underlay address as a sockaddr_in (kept up to date on roaming). */
  readonly remoteSockaddr: Buffer;
}

/**
 * Where sealed datagrams go. `buffer()` lends the buffer the next datagram is sealed into (so nothing is copied);
 * `commit` queues or sends it. A batch outbox lends a fresh entry each time; a direct one sends on commit.
 */
export interface DatagramOutbox {
  buffer(): Buffer;
  commit(len: number, to: Buffer): void;
}

/**
 * Seals `src[srcOffset, srcOffset+len)` as (type, subtype) on tunnel `t` into `out`. Returns false, having sent
 * nothing, when the tunnel's counter space is spent (the tunnel must be re-keyed). Allocates nothing.
 */
export function sendOnTunnel(
  slots: TunnelSlots,
  t: SendableTunnel,
  type: number,
  subtype: number,
  src: Buffer,
  srcOffset: number,
  len: number,
  out: DatagramOutbox,
): boolean {
  const counter = slots.nextCounter(t.slot);
  if (counter === COUNTER_SPENT) return false;
  const buf = out.buffer();
  const { hi, lo } = splitCounter(counter);
  writeHeader(buf, 0, type, subtype, t.remoteIndex, hi, lo);
  const n = t.encrypt.encrypt(buf, HEADER_LEN, buf, 0, HEADER_LEN, src, srcOffset, len, counter);
  out.commit(HEADER_LEN + n, t.remoteSockaddr);
  slots.markTx(t.slot);
  return true;
}
