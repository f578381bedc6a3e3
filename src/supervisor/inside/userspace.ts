/**
 * The userspace Inside (`tun.userspace: <path>`, a nebula-ts extension): instead of a tun device, one
 * SOCK_SEQPACKET socketpair per routine. The routine reads and writes whole IPv4 packets on its end exactly as on a
 * tun queue; the far ends are offered on a unix socket (mode 0600) so a local program, or a test, exchanges raw
 * packets with the node without root or CAP_NET_ADMIN.
 *
 * Protocol: a client connects (SOCK_SEQPACKET) and receives one message, the JSON `{"queues":N,"vpnIp":"a.b.c.d",
 * "mtu":M}` with the N far-end fds attached (SCM_RIGHTS, queue order), then the connection is closed. Every client
 * gets the same far ends: a packet written by the node is read by whichever holder reads first.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { close as closeFd, EAGAIN } from '../../shared/native/libc';
import { acceptNonBlocking, listenUnix, sendFds, socketpairSeqpacket, SOCK_SEQPACKET } from '../../shared/native/unix';
import { formatIPv4 } from '../../shared/util/ipv4';
import type { Logger } from '../../shared/log';
import type { Inside } from './inside';

/** Accept poll period. Control plane only: a client waits at most this long for its fds. */
const ACCEPT_POLL_MS = 50;

export interface UserspaceHello {
  queues: number;
  vpnIp: string;
  mtu: number;
}

export class UserspaceInside implements Inside {
  readonly kind = 'userspace' as const;
  private readonly routineEnds: number[] = [];
  private readonly farEnds: number[] = [];
  private listenFd = -1;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly path: string,
    private readonly vpnIp: number,
    private readonly mtu: number,
    queues: number,
    private readonly log?: Logger,
  ) {
    try {
      for (let i = 0; i < queues; i++) {
        const [routineEnd, farEnd] = socketpairSeqpacket();
        this.routineEnds.push(routineEnd);
        this.farEnds.push(farEnd);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get name(): string {
    return `userspace:${this.path}`;
  }

  queueFd(i: number): number {
    return this.routineEnds[i] ?? -1;
  }

  /**
   * Listens once the queues exist. Accepting is a non-blocking accept4 polled by an unref'd timer rather than a
   * blocking call on the libuv threadpool: clients are rare and the supervisor's event loop must never stall.
   */
  async activate(): Promise<void> {
    removeStaleSocket(this.path);
    this.listenFd = listenUnix(this.path, SOCK_SEQPACKET);
    this.timer = setInterval(() => this.acceptPending(), ACCEPT_POLL_MS);
    this.timer.unref();
    this.log?.info('Userspace inside listening', { path: this.path, queues: this.farEnds.length });
  }

  private acceptPending(): void {
    const hello: UserspaceHello = { queues: this.farEnds.length, vpnIp: formatIPv4(this.vpnIp), mtu: this.mtu };
    const payload = Buffer.from(JSON.stringify(hello));
    for (;;) {
      let client: number;
      try {
        client = acceptNonBlocking(this.listenFd);
      } catch (err) {
        this.log?.warn('Userspace inside: accept failed', { error: String(err) });
        return;
      }
      if (client === -EAGAIN) return;
      try {
        sendFds(client, payload, this.farEnds);
      } catch (err) {
        // A client that went away before reading is its own problem; the next one is served normally.
        this.log?.warn('Userspace inside: could not hand over the queues', { error: String(err) });
      } finally {
        closeFd(client);
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.listenFd >= 0) {
      closeFd(this.listenFd);
      this.listenFd = -1;
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
    for (const fd of [...this.routineEnds, ...this.farEnds]) closeFd(fd);
    this.routineEnds.length = 0;
    this.farEnds.length = 0;
  }
}

/** Removes a socket left by a killed run; refuses to delete anything that is not a socket (a mistyped path). */
function removeStaleSocket(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`tun.userspace: ${path} exists and is not a socket`);
  unlinkSync(path);
}
