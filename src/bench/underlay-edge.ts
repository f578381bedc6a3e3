/**
 * Micro-benchmark of the underlay edge (not a test): one datagram batch sent by one FdUnderlaySocket and received by
 * another over UDP loopback, per packet, with one datagram per syscall ('single': sendto/recvfrom) against
 * recvmmsg/sendmmsg ('batch'). Reports CPU µs per datagram (send + receive, kernel included) and koffi calls per
 * datagram. Run it under `valgrind --tool=callgrind` or `perf stat -e raw_syscalls:sys_enter` for instruction and
 * syscall counts, which do not depend on the machine's load as CPU time does (docs/performance.md).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/underlay-edge.js [--packets 200000] [--batch 64] [--size 124]
 *     [--mode single|batch|both]
 */
import { DatagramBatch } from '../routine/edges';
import { FdUnderlaySocket } from '../routine/fd-edges';
import { close, pollFds, POLLIN, setNonBlocking } from '../shared/native/libc';
import { kernelMmsg, type MmsgCalls } from '../shared/native/mmsg';
import { fillSockaddrIn } from '../shared/native/sockaddr';
import { createUdpSocket, localPort } from '../shared/native/udp';

interface Options {
  packets: number;
  batch: number;
  /** Datagram bytes; 124 is a Nebula message carrying a 64-byte UDP payload (16 header + 92 IP packet + 16 tag). */
  size: number;
  modes: Array<'single' | 'batch'>;
}

function parse(argv: string[]): Options {
  const o: Options = { packets: 200_000, batch: 64, size: 124, modes: ['single', 'batch'] };
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--packets') o.packets = Math.max(1000, Number(v));
    else if (argv[i] === '--batch') o.batch = Math.min(1024, Math.max(1, Number(v)));
    else if (argv[i] === '--size') o.size = Math.min(9000, Math.max(1, Number(v)));
    else if (argv[i] === '--mode') o.modes = v === 'both' ? ['single', 'batch'] : [v === 'single' ? 'single' : 'batch'];
  }
  return o;
}

function socketPair(): { a: number; b: number; portB: number } {
  const opts = { host: '127.0.0.1', port: 0, reusePort: false, recvBuf: 8 << 20, sendBuf: 8 << 20 };
  const a = createUdpSocket(opts);
  const b = createUdpSocket(opts);
  setNonBlocking(a, true);
  setNonBlocking(b, true);
  return { a, b, portB: localPort(b) };
}

interface Result {
  mode: string;
  packets: number;
  cpuUsPerPacket: number;
  callsPerPacket: number;
  lost: number;
}

/** Counts calls into the kernel's recvmmsg/sendmmsg (the 'single' path's calls are counted by the loop itself). */
function counting(counter: { n: number }): MmsgCalls {
  return {
    recvmmsg: (fd, h, c, f) => (counter.n++, kernelMmsg.recvmmsg(fd, h, c, f)),
    sendmmsg: (fd, h, c, f) => (counter.n++, kernelMmsg.sendmmsg(fd, h, c, f)),
  };
}

function run(mode: 'single' | 'batch', o: Options): Result {
  const { a, b, portB } = socketPair();
  const calls = { n: 0 };
  const tx = new FdUnderlaySocket(a, { batching: mode, calls: counting(calls) });
  const rx = new FdUnderlaySocket(b, { batching: mode, calls: counting(calls) });
  const out = new DatagramBatch(o.batch, Math.max(o.size, 64));
  const inb = new DatagramBatch(64, 9001);
  for (let i = 0; i < o.batch; i++) {
    out.bufs[i]!.fill(i & 0xff, 0, o.size);
    fillSockaddrIn(out.addrs[i]!, 0x7f000001, portB);
  }
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(b, 0);
  pfd.writeInt16LE(POLLIN, 4);
  const rounds = Math.ceil(o.packets / o.batch);
  let received = 0;
  let singleCalls = 0;
  const round = (): void => {
    for (let i = 0; i < o.batch; i++) out.lens[i] = o.size;
    tx.sendBatch(out, o.batch);
    let got = 0;
    // Loopback delivers inside the send call; the poll only guards against a datagram still in flight.
    while (got < o.batch) {
      const n = rx.recvBatch(inb);
      if (mode === 'single') singleCalls += n + 1; // n recvfrom that returned data, then one EAGAIN
      if (n === 0 && pollFds(pfd, 1, 100) !== 1) break;
      got += n;
    }
    if (mode === 'single') singleCalls += o.batch;
    received += got;
  };
  for (let i = 0; i < Math.min(200, rounds); i++) round(); // warm-up: JIT, vectors built
  received = 0;
  singleCalls = 0;
  calls.n = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) round();
  const cpu = process.cpuUsage(cpu0);
  close(a);
  close(b);
  const sent = rounds * o.batch;
  return {
    mode,
    packets: sent,
    cpuUsPerPacket: (cpu.user + cpu.system) / sent,
    callsPerPacket: (mode === 'single' ? singleCalls : calls.n) / sent,
    lost: sent - received,
  };
}

function main(): void {
  const o = parse(process.argv.slice(2));
  process.stdout.write(`underlay edge, loopback, ${o.size}-byte datagrams, batches of ${o.batch}, ${o.packets} packets per mode\n`);
  for (const mode of o.modes) {
    const r = run(mode, o);
    process.stdout.write(
      `  ${r.mode.padEnd(6)} ${r.cpuUsPerPacket.toFixed(2)} µs CPU/packet (send+receive)  ${r.callsPerPacket.toFixed(3)} koffi calls/packet  lost ${r.lost}\n`,
    );
  }
}

main();
