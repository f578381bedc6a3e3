/**
 * An Inside is the local side of the node (Nebula's overlay.Device, nebula-spec §8.5): where overlay packets come
 * from and go to. The supervisor opens it and hands routine i `queueFd(i)`, a packet-preserving fd the routine
 * reads and writes whole IPv4 packets on; the routine's code is the same for every kind.
 */
export type InsideKind = 'tun' | 'disabled' | 'userspace';

export interface Inside {
  readonly kind: InsideKind;
  /** Device name (tun), or a description. */
  readonly name: string;
  /** The fd routine `i` uses, or -1 when the inside has no fd (disabled: the routine answers pings itself). */
  queueFd(i: number): number;
  /** Addresses, MTU, routes: after the queues exist, before traffic flows. */
  activate(): Promise<void>;
  /** Releases the device (a tun disappears when its last queue fd is closed). */
  close(): void;
}
