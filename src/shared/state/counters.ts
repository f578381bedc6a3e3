/**
 * Per-routine counters in shared memory. Each routine writes only its own row (plain stores, one writer), the
 * supervisor reads every row at scrape time: no IPC and no prom-client call on the packet path.
 * Names follow Nebula's metric names (nebula-spec §9.2, §9.3) where Nebula has one.
 */
export const COUNTER_NAMES = [
  // meta packets (messages.<d>.*, nebula-spec §9.2)
  'messages.rx.handshake_ixpsk0',
  'messages.tx.handshake_ixpsk0',
  'messages.rx.recv_error',
  'messages.tx.recv_error',
  'messages.rx.lighthouse',
  'messages.tx.lighthouse',
  'messages.rx.test_request',
  'messages.tx.test_request',
  'messages.rx.test_response',
  'messages.tx.test_response',
  'messages.rx.close_tunnel',
  'messages.tx.close_tunnel',
  'messages.rx.other',
  'messages.tx.other',
  'messages.rx.invalid',
  'messages.rx.message',
  'messages.tx.message',
  // replay window (network.packets.*)
  'network.packets.duplicate',
  'network.packets.out_of_window',
  'network.packets.lost',
  // firewall drops
  'firewall.incoming.dropped.local_ip',
  'firewall.incoming.dropped.remote_ip',
  'firewall.incoming.dropped.no_rule',
  'firewall.outgoing.dropped.local_ip',
  'firewall.outgoing.dropped.remote_ip',
  'firewall.outgoing.dropped.no_rule',
  // packets parked while their tunnel was being made (Go's per-host packet cache): sent once it came up, or dropped
  // (the per-host or host limit was reached, or the handshake never completed)
  'hostinfo.cached_packets.sent',
  'hostinfo.cached_packets.dropped',
  // nebula-ts data-path accounting (per routine: shows how flows spread over routines)
  'routine.inside.rx_packets',
  'routine.outside.tx_packets',
  'routine.outside.rx_packets',
  'routine.inside.tx_packets',
  'routine.dropped.malformed',
  'routine.dropped.decrypt_failed',
  'routine.dropped.no_tunnel',
  'routine.dropped.parked_overflow',
  // sends refused because the tunnel's counter space is spent (it must be re-keyed; never a wrap)
  'routine.dropped.counter_spent',
  // sends on a relayed tunnel while the tunnel to its relay host is gone
  'routine.dropped.relay_down',
  // datagrams dropped because their tunnel slot's lock stayed taken past the spin limit (a stopped holder)
  'routine.dropped.slot_busy',
  // recvErrors not sent, handshakes not handed to the supervisor, because of the per-routine rate limits
  'routine.dropped.recv_error_limited',
  'routine.dropped.handshake_limited',
  // datagrams for the supervisor shed because MAX_IPC_BACKLOG of the routine's messages still waited for its channel
  'routine.dropped.ipc_backlog',
  'routine.dropped.recv_error_in_limited',
  // datagrams for an unknown index that found the early-arrivals room full (early-arrivals.ts): dropped, not answered
  'routine.dropped.early_overflow',
  // tun.keep_warm: throwaway round trips run to keep a slow flow's packet path warm (src/routine/keep-warm.ts)
  'routine.keep_warm.rounds',
  // syscalls that failed: datagrams the socket refused, packets the inside queue refused
  'routine.outside.tx_errors',
  'routine.inside.tx_errors',
  // firewall.inbound_action / outbound_action reject (Go counts none): answers to refused packets, inbound ones
  // counted once the socket took them (sealed back to the sender), outbound ones once queued for the inside
  'routine.firewall.incoming.rejects_sent',
  'routine.firewall.outgoing.rejects_sent',
  // relay frames (nebula-spec §5.8) this routine verified: for a tunnel of ours (terminal), or passed on (forwarded)
  'routine.relay.rx_terminal',
  'routine.relay.forwarded',
  // tun.offloads: reads from the tun that were TCP/UDP super-packets, split into MTU-sized packets (each of which
  // also counts in routine.inside.rx_packets)
  'routine.inside.rx_superpackets',
  // tun.offloads: writes to the tun that merged consecutive TCP segments of one flow into one super-packet
  'routine.inside.tx_superpackets',
  // tun.offloads on the underlay socket: receive buffers that held several coalesced datagrams (UDP GRO; each
  // datagram also counts as it is handled), sends that carried several datagrams as one message (UDP GSO; each
  // datagram also counts in routine.outside.tx_packets / messages.tx.*), and offloads the kernel refused (the
  // routine warns once and carries on without: GRO refused, or a GSO send refused with EIO / EINVAL)
  'routine.outside.rx_gro_buffers',
  'routine.outside.tx_gso_messages',
  'routine.outside.offload_fallbacks',
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

export const COUNTER_COUNT = COUNTER_NAMES.length;

/** Index of each counter in a routine's row, resolved once (the packet path uses these numeric constants). */
export const C: { readonly [K in CounterName]: number } = Object.freeze(
  Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i])) as { [K in CounterName]: number },
);
