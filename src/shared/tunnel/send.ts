/**
 * The one way anything is sent on an established tunnel (nebula-spec §2.5, §6): take the tunnel's next send counter
 * from its shared slot, write the header with it, seal the payload with the tunnel's key under that counter, and
 * hand the datagram to an outbox. Routines (data, test replies, echo replies) and the supervisor (test requests,
 * closeTunnel) both come through here, so the counter limit and the header/nonce pairing live in one place.
 */
import { TAG_LEN, type PacketCipher } from '../crypto/types';
import { HEADER_LEN, SUBTYPE_MESSAGE_RELAY, TYPE_MESSAGE, writeHeader } from '../protocol/header';
import { COUNTER_SPENT, type TunnelSlots } from '../state/tunnel-slots';
import { splitCounter } from '../util/counter64';

/** What sending needs to know of a tunnel. */
export interface SendableTunnel {
  readonly slot: number;
  readonly remoteIndex: number;
  readonly encrypt: PacketCipher;
  /** The peer's current underlay address as a sockaddr_in (kept up to date on roaming). */
  readonly remoteSockaddr: Buffer;
  /**
   * Set on a relayed tunnel: the tunnel to the relay host (looked up at each send: it may have been re-keyed) and
   * the relay index the relay host knows our side by. Undefined relay tunnel: nothing can be sent now.
   */
  readonly via?: { readonly remoteIndex: number; relayTunnel(): SendableTunnel | undefined };
}

const EMPTY = Buffer.alloc(0);

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
  if (t.via !== undefined) return sendRelayed(slots, t, t.via, type, subtype, src, srcOffset, len, out);
  const counter = slots.nextCounter(t.slot);
  if (counter === COUNTER_SPENT) return false;
  const buf = out.buffer();
  const n = sealAt(buf, 0, t, type, subtype, counter, src, srcOffset, len);
  out.commit(n, t.remoteSockaddr);
  slots.markTx(t.slot);
  return true;
}

/** Writes the header for `counter` at buf[at] and seals the payload after it; the datagram's length (header + sealed). */
function sealAt(buf: Buffer, at: number, t: SendableTunnel, type: number, subtype: number, counter: number, src: Buffer, srcOffset: number, len: number): number {
  const { hi, lo } = splitCounter(counter);
  writeHeader(buf, at, type, subtype, t.remoteIndex, hi, lo);
  return HEADER_LEN + t.encrypt.encrypt(buf, at + HEADER_LEN, buf, at, HEADER_LEN, src, srcOffset, len, counter);
}

/**
 * A relayed tunnel's datagram: sealed as usual one header further in, then wrapped in a relay frame on the tunnel to
 * the relay host (nebula-spec §5.8): outer header (message/relay, the relay's index, the relay tunnel's counter),
 * the inner datagram in clear, and the relay tunnel's AEAD tag over an empty plaintext with all of that as AD.
 */
function sendRelayed(
  slots: TunnelSlots,
  t: SendableTunnel,
  via: NonNullable<SendableTunnel['via']>,
  type: number,
  subtype: number,
  src: Buffer,
  srcOffset: number,
  len: number,
  out: DatagramOutbox,
): boolean {
  const relay = via.relayTunnel();
  if (relay === undefined) return false;
  const counter = slots.nextCounter(t.slot);
  if (counter === COUNTER_SPENT) return false;
  const outer = slots.nextCounter(relay.slot);
  if (outer === COUNTER_SPENT) return false;
  const buf = out.buffer();
  const n = sealAt(buf, HEADER_LEN, t, type, subtype, counter, src, srcOffset, len);
  sealRelayFrame(buf, relay, via.remoteIndex, outer, n);
  out.commit(HEADER_LEN + n + TAG_LEN, relay.remoteSockaddr);
  slots.markTx(t.slot);
  slots.markTx(relay.slot);
  return true;
}

/**
 * Forwards a complete datagram `src[srcOffset, srcOffset+len)` in a relay frame on `relay` to the relay index
 * `remoteIndex` (a relay passing frames on, or a handshake sent through a relay). False when the counter is spent.
 */
export function sendRelayFrame(slots: TunnelSlots, relay: SendableTunnel, remoteIndex: number, src: Buffer, srcOffset: number, len: number, out: DatagramOutbox): boolean {
  const outer = slots.nextCounter(relay.slot);
  if (outer === COUNTER_SPENT) return false;
  const buf = out.buffer();
  src.copy(buf, HEADER_LEN, srcOffset, srcOffset + len);
  sealRelayFrame(buf, relay, remoteIndex, outer, len);
  out.commit(HEADER_LEN + len + TAG_LEN, relay.remoteSockaddr);
  slots.markTx(relay.slot);
  return true;
}

/** Writes the outer header at 0 and the tag after the `innerLen` bytes that follow it. */
function sealRelayFrame(buf: Buffer, relay: SendableTunnel, remoteIndex: number, counter: number, innerLen: number): void {
  const { hi, lo } = splitCounter(counter);
  writeHeader(buf, 0, TYPE_MESSAGE, SUBTYPE_MESSAGE_RELAY, remoteIndex, hi, lo);
  const end = HEADER_LEN + innerLen;
  relay.encrypt.encrypt(buf, end, buf, 0, end, EMPTY, 0, 0, counter);
}
