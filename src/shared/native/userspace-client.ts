/**
 * Client side of the userspace inside (`tun.userspace`): connect to the node's unix socket and receive one packet
 * fd per queue. Each fd is a SOCK_SEQPACKET socket: write() one whole IPv4 packet to send it into the overlay,
 * read() one whole packet the node delivers. Blocking calls are fine here: the node answers at once (within its
 * accept poll period), and this is set-up, not the data path.
 */
import { close } from './libc';
import { connectUnix, recvFds, SOCK_SEQPACKET } from './unix';

export interface UserspaceConnection {
  /** Packet fds, one per node queue (CLOEXEC, blocking). The caller owns and closes them. */
  queues: number[];
  vpnIp: string;
  mtu: number;
}

/** Upper bound on queues accepted (routines are capped far below this in practice). */
const MAX_QUEUES = 256;

export function connectUserspace(path: string): UserspaceConnection {
  const sock = connectUnix(path, SOCK_SEQPACKET);
  let fds: number[] = [];
  try {
    const msg = recvFds(sock, MAX_QUEUES);
    fds = msg.fds;
    const hello = JSON.parse(msg.payload.toString('utf8')) as { queues?: unknown; vpnIp?: unknown; mtu?: unknown };
    if (typeof hello.queues !== 'number' || typeof hello.vpnIp !== 'string' || typeof hello.mtu !== 'number') {
      throw new Error(`userspace inside ${path}: malformed hello ${msg.payload.toString('utf8')}`);
    }
    if (fds.length !== hello.queues) throw new Error(`userspace inside ${path}: ${fds.length} fds for ${hello.queues} queues`);
    return { queues: fds, vpnIp: hello.vpnIp, mtu: hello.mtu };
  } catch (err) {
    for (const fd of fds) close(fd);
    throw err;
  } finally {
    close(sock);
  }
}
