/**
 * Worker side of blocking-reader.ts: drains a non-blocking fd with read()/recvfrom() into one preallocated Buffer,
 * sleeps in poll() on {fd, stopFd} when it runs dry, and posts packets in batches. Nothing is allocated per packet;
 * one ArrayBuffer set is allocated per batch and transferred (not copied) to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, EINTR, POLLIN, errnoName, pollFds, readFd, strerror } from './libc';
import { recvFrom } from './udp';
import type { WorkerInit, WorkerMessage } from './blocking-reader';

const init = workerData as WorkerInit;
const port = parentPort;
if (!port) throw new Error('blocking-reader-worker must run in a worker thread');

const SOCKADDR = 16;
const pkt = Buffer.alloc(init.maxPacket);
const sockaddr = Buffer.alloc(SOCKADDR);
const stats = new Float64Array(init.stats);
// Room for a full batch of MTU-sized packets, but at least one maximal packet; a batch is flushed early when full.
const batchBytes = Math.max(init.maxPacket, Math.min(init.batchPackets * init.maxPacket, init.batchPackets * 2048));
const pollfds = Buffer.alloc(16);
pollfds.writeInt32LE(init.fd, 0);
pollfds.writeInt16LE(POLLIN, 4);
pollfds.writeInt32LE(init.stopFd, 8);
pollfds.writeInt16LE(POLLIN, 12);

// The batch under construction (only when delivering).
let count = 0;
let used = 0;
let dataAB = new ArrayBuffer(0);
let data = Buffer.from(dataAB);
let offsets = new Uint32Array(0);
let lengths = new Uint32Array(0);
let addrsAB: ArrayBuffer | undefined;
let addrs: Buffer | undefined;

let packets = 0;
let bytes = 0;
let polls = 0;

function newBatch(): void {
  count = 0;
  used = 0;
  // Fresh (not pooled) ArrayBuffers: they are transferred away with the batch.
  dataAB = new ArrayBuffer(batchBytes);
  data = Buffer.from(dataAB);
  offsets = new Uint32Array(init.batchPackets);
  lengths = new Uint32Array(init.batchPackets);
  addrsAB = init.kind === 'recvfrom' ? new ArrayBuffer(init.batchPackets * SOCKADDR) : undefined;
  addrs = addrsAB ? Buffer.from(addrsAB) : undefined;
}

function publish(): void {
  stats[0] = packets;
  stats[1] = bytes;
  stats[2] = polls;
}

function flush(): void {
  publish();
  if (count === 0) return;
  const msg: WorkerMessage = {
    type: 'batch',
    count,
    data: dataAB,
    offsets: offsets.buffer,
    lengths: lengths.buffer,
    addrs: addrsAB,
  };
  const transfer: ArrayBuffer[] = [dataAB, offsets.buffer, lengths.buffer];
  if (addrsAB) transfer.push(addrsAB);
  port!.postMessage(msg, transfer);
  newBatch();
}

function append(n: number): void {
  if (used + n > data.length) flush();
  pkt.copy(data, used, 0, n);
  offsets[count] = used;
  lengths[count] = n;
  if (addrs) sockaddr.copy(addrs, count * SOCKADDR, 0, SOCKADDR);
  used += n;
  count++;
  if (count === init.batchPackets) flush();
}

function fail(syscall: string, errno: number): void {
  flush();
  port!.postMessage({ type: 'error', message: `${syscall} failed: ${errnoName(errno)}: ${strerror(errno)}` } satisfies WorkerMessage);
}

function run(): void {
  if (init.deliver) newBatch();
  const isRead = init.kind === 'read';
  for (;;) {
    const n = isRead ? readFd(init.fd, pkt, pkt.length) : recvFrom(init.fd, pkt, sockaddr);
    if (n >= 0) {
      packets++;
      bytes += n;
      if (init.deliver) append(n);
      continue;
    }
    if (n === -EINTR) continue;
    if (n !== -EAGAIN) return fail(isRead ? 'read' : 'recvfrom', -n);
    // Ran dry: hand over what we have, then sleep until the fd is readable or stop() is signalled.
    if (init.deliver) flush();
    else publish();
    polls++;
    const r = pollFds(pollfds, 2, -1);
    if (r === -EINTR) continue;
    if (r < 0) return fail('poll', -r);
    if (pollfds.readInt16LE(14) !== 0) break; // stopFd readable (or error): stop() was called
  }
  if (init.deliver) flush();
  publish();
}

run();
