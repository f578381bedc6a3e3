/**
 * The underlay UDP sockets: one per routine, all bound to the same port (SO_REUSEPORT), created before any routine
 * is forked and kept open for the supervisor's whole life so a respawned routine gets the very same socket. The
 * supervisor itself only ever sends, on socket 0: sending never steals a routine's packets, reading would.
 */
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { close as closeFd } from '../shared/native/libc';
import { allocSockaddrIn, fillSockaddrIn } from '../shared/native/sockaddr';
import { bufferSizes, createUdpSocket, localPort, sendTo, setBufferSize } from '../shared/native/udp';
import type { DatagramOutbox } from '../shared/tunnel/send';
import type { Endpoint } from '../shared/util/endpoint';

/** Room for the largest datagram plus the header and AEAD tag sealed around it. */
const OUTBOX_BYTES = 65536 + 32;

/**
 * The receive buffer when listen.read_buffer is not set (Go leaves the kernel's 208 KiB; wireguard-go asks for 7 MiB).
 * The routine reading a socket shares two CPUs with everything else, and 208 KiB holds only ~270 small datagrams
 * (2.7 ms at 100k/s): one missed time slice and the socket overflows. Measured (docs/performance.md "Change 7"): a
 * 64-byte UDP flood lost 8-13 % at the receiver's socket and got 1.05-1.13x Go's packet rate; with 4 MiB none was
 * lost there and the rate went to 1.43-1.46x. A super-packet sender (tun.offloads) bursts 32 datagrams at once
 * (Change 4: 42k-91k dropped per 8 s transfer with the default). A limit, not an allocation: the memory is used only
 * while datagrams wait. Without CAP_NET_ADMIN the kernel caps it at net.core.rmem_max (setBufferSize).
 */
export const DEFAULT_READ_BUFFER = 4 * 1024 * 1024;

/** listen.read_buffer as set, else DEFAULT_READ_BUFFER. */
export function readBufferFor(listen: NebulaConfig['listen']): number {
  return listen.read_buffer > 0 ? listen.read_buffer : DEFAULT_READ_BUFFER;
}

export class Underlay {
  /** The port every socket is bound to (the kernel's choice when listen.port is 0). */
  readonly listenPort: number;
  /** Where the supervisor's tunnel sends (test, closeTunnel) are sealed; sent on socket 0 at commit. */
  readonly outbox: DatagramOutbox;
  private fds: number[] = [];
  private readonly sendSa = allocSockaddrIn();

  /** Binds `routines` sockets to listen.host:listen.port; throws (having closed any it made) if one cannot be bound. */
  constructor(listen: NebulaConfig['listen'], routines: number) {
    const host = listen.host === '::' || listen.host === '[::]' ? '0.0.0.0' : listen.host;
    const reusePort = routines > 1;
    const bufs = { recvBuf: readBufferFor(listen), sendBuf: listen.write_buffer || undefined };
    try {
      const first = createUdpSocket({ host, port: listen.port, reusePort, ...bufs });
      this.fds.push(first);
      // With listen.port 0 every socket must still share the port the first one got (Nebula #1057 got this wrong).
      this.listenPort = localPort(first);
      for (let i = 1; i < routines; i++) this.fds.push(createUdpSocket({ host, port: this.listenPort, reusePort, ...bufs }));
    } catch (err) {
      this.close();
      throw err;
    }
    this.outbox = new SendOnCommit((buf, len, to) => sendTo(this.fds[0]!, buf, len, to));
  }

  /** Routine i's socket. */
  fd(i: number): number {
    return this.fds[i]!;
  }

  /**
   * Reload (Go 1.6.1 udp ReloadConfig, run at every reload): listen.read_buffer / write_buffer, when above 0, set on
   * every socket (SO_*BUFFORCE, the capped option without CAP_NET_ADMIN) and the size the kernel took logged per
   * socket; 0 leaves the running size alone. A failure is logged and the other sockets still get theirs. The routines
   * hold the same sockets (dup'd fds), so they see the new sizes at once. Returns the sizes read back, per socket.
   */
  applyBuffers(listen: NebulaConfig['listen'], log: Logger): { recv: number[]; send: number[] } {
    const sizes = { recv: [] as number[], send: [] as number[] };
    for (const [key, which, bytes] of [
      ['listen.read_buffer', 'recv', listen.read_buffer],
      ['listen.write_buffer', 'send', listen.write_buffer],
    ] as const) {
      if (bytes <= 0) continue;
      this.fds.forEach((fd, i) => {
        try {
          setBufferSize(fd, which, bytes);
        } catch (err) {
          log.error(`Failed to set ${key}`, { socket: i, error: err instanceof Error ? err.message : String(err) });
          return;
        }
        const size = bufferSizes(fd)[which];
        sizes[which].push(size);
        log.info(`${key} was set`, { socket: i, size });
      });
    }
    return sizes;
  }

  /** Sends `len` bytes of `buf` to `to` on socket 0 (handshakes). */
  send(buf: Buffer, len: number, to: Endpoint): void {
    fillSockaddrIn(this.sendSa, to.ip, to.port);
    sendTo(this.fds[0]!, buf, len, this.sendSa);
  }

  close(): void {
    for (const fd of this.fds) closeFd(fd);
    this.fds = [];
  }
}

/** An outbox with one preallocated buffer that sends each datagram as it is committed. */
class SendOnCommit implements DatagramOutbox {
  private readonly buf = Buffer.alloc(OUTBOX_BYTES);

  constructor(private readonly sendTo: (buf: Buffer, len: number, to: Buffer) => void) {}

  buffer(): Buffer {
    return this.buf;
  }

  commit(len: number, to: Buffer): void {
    this.sendTo(this.buf, len, to);
  }
}
