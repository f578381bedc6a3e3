/**
 * Reads packets from a tun queue fd or a UDP socket fd in a `worker_threads` Worker, with koffi syscalls that block
 * the worker's thread (not the event loop, and not the libuv threadpool), and hands them to the main thread in
 * batches (one transferred ArrayBuffer per batch, never one message per packet).
 *
 * Why not a plain blocking read(): a worker parked in read() on a tun fd cannot be stopped. Worker.terminate()
 * never resolves, TUNSETQUEUE-detach and close() from another thread do not wake it, and even process.exit() hangs
 * because Node joins worker threads at exit (measured). So the fd is made O_NONBLOCK and the worker drains it with
 * read()/recvfrom() until EAGAIN, then blocks in poll() on the fd plus an eventfd that `stop()` writes to. Under load
 * poll() is rarely reached; when idle the thread sleeps in the kernel.
 *
 * O_NONBLOCK belongs to the open file description, so it also applies to every other copy of the fd (e.g. the
 * supervisor's); that is harmless for tun and UDP fds, which everyone here uses non-blocking.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { close, eventfd, setNonBlocking, writeFd } from './libc';

export type ReaderKind = 'read' | 'recvfrom';

export interface BlockingReaderOptions {
  fd: number;
  /** 'read' for a tun queue fd, 'recvfrom' for a UDP socket (then each packet carries its 16-byte sockaddr_in). */
  kind: ReaderKind;
  /** Largest packet (default 65535). */
  maxPacket?: number;
  /** Packets per batch before it is posted (default 64). A partial batch is posted as soon as the fd runs dry. */
  batchPackets?: number;
  /** false: count only, deliver nothing (measurements). Default true. */
  deliver?: boolean;
}

/** Packets laid end to end in `data`; packet i is data[offsets[i], offsets[i] + lengths[i]). */
export interface PacketBatch {
  count: number;
  data: Buffer;
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** recvfrom only: 16-byte sockaddr_in of packet i at addrs[16 i]. */
  addrs?: Buffer;
}

/** Message protocol between this module and its worker (blocking-reader-worker.ts). */
export interface WorkerInit {
  fd: number;
  stopFd: number;
  kind: ReaderKind;
  maxPacket: number;
  batchPackets: number;
  deliver: boolean;
  /** Float64Array slots: [packets, bytes, polls], published by the worker at each flush and poll. */
  stats: SharedArrayBuffer;
}
export type WorkerMessage =
  | { type: 'batch'; count: number; data: ArrayBuffer; offsets: ArrayBuffer; lengths: ArrayBuffer; addrs?: ArrayBuffer }
  | { type: 'error'; message: string };

export interface ReaderStats {
  packets: number;
  bytes: number;
  /** poll() calls, i.e. how often the fd ran dry. */
  polls: number;
}

function workerScript(): string {
  // Compiled: blocking-reader-worker.js next to this file. Under a TS loader (tests) the .ts source is next to us.
  const js = join(__dirname, 'blocking-reader-worker.js');
  return existsSync(js) ? js : join(__dirname, 'blocking-reader-worker.ts');
}

export class BlockingReader {
  private readonly worker: Worker;
  private readonly stopFd: number;
  private readonly statsView: Float64Array;
  private readonly exited: Promise<void>;
  private stopping = false;
  private stopFdClosed = false;
  // process.exit() joins worker threads, and a worker asleep in poll() cannot be interrupted by Node: without this
  // hook process.exit() hangs forever (measured). The 'exit' event runs first, synchronously, so waking it there
  // lets the worker return on its own.
  private readonly onProcessExit = (): void => this.signalStop();

  /**
   * Starts reading `opts.fd` (set O_NONBLOCK here). `onBatch` runs on the main thread; `onError` gets a read error
   * (after which the worker has ended).
   */
  constructor(opts: BlockingReaderOptions, onBatch: (batch: PacketBatch) => void, onError?: (err: Error) => void) {
    setNonBlocking(opts.fd, true);
    this.stopFd = eventfd(0);
    const stats = new SharedArrayBuffer(3 * 8);
    this.statsView = new Float64Array(stats);
    const init: WorkerInit = {
      fd: opts.fd,
      stopFd: this.stopFd,
      kind: opts.kind,
      maxPacket: opts.maxPacket ?? 65535,
      batchPackets: opts.batchPackets ?? 64,
      deliver: opts.deliver ?? true,
      stats,
    };
    this.worker = new Worker(workerScript(), { workerData: init });
    this.worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'error') {
        onError?.(new Error(m.message));
        return;
      }
      onBatch({
        count: m.count,
        data: Buffer.from(m.data),
        offsets: new Uint32Array(m.offsets),
        lengths: new Uint32Array(m.lengths),
        addrs: m.addrs ? Buffer.from(m.addrs) : undefined,
      });
    });
    this.exited = new Promise((resolve, reject) => {
      this.worker.once('exit', () => resolve());
      this.worker.once('error', (err) => {
        onError?.(err);
        reject(err);
      });
    });
    // A crashed worker must not leave the error unhandled while nobody awaits stop().
    this.exited.catch(() => undefined);
    process.on('exit', this.onProcessExit);
  }

  /** Writes the stop eventfd once (synchronous, safe inside a process 'exit' handler). */
  private signalStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n, 0);
    writeFd(this.stopFd, one, 8);
  }

  /** Counters published by the worker (at each batch flush and each poll). */
  stats(): ReaderStats {
    return { packets: this.statsView[0], bytes: this.statsView[1], polls: this.statsView[2] };
  }

  /** Wakes the worker out of poll() and waits for it to end. Does not close the packet fd. */
  async stop(): Promise<void> {
    this.signalStop();
    process.off('exit', this.onProcessExit);
    try {
      await this.exited;
    } finally {
      if (!this.stopFdClosed) {
        this.stopFdClosed = true;
        close(this.stopFd);
      }
    }
  }
}
