/**
 * Whole-data-path micro-benchmark (not a test): two routine data paths (datapath.ts, the production object) in one
 * process and one thread, joined by a tunnel over real UDP loopback sockets, each with a SOCK_SEQPACKET socketpair
 * as its inside queue (one packet per read/write, like a tun queue). Packets written to A's inside are read,
 * firewalled, sealed and sent by A, received, opened and written to B's inside by B, and read back here. No
 * scheduler, no other process: CPU µs and (under callgrind) instructions per packet measure the code, not the
 * machine's load. Compare the underlay batching modes, ciphers and batch sizes:
 *
 *   node dist/bench/datapath-loop.js [--packets 100000] [--batch 64] [--cipher aes|chachapoly] [--mode single|batch|both]
 *
 * Instructions per packet: run it under `valgrind --tool=callgrind` with two --packets values and divide the
 * difference of the totals by the difference of the counts (start-up cancels out; docs/performance.md).
 */
import { privateDatapath, testRoutineSetup } from '../testbed/routine-setup';
import type { Datapath } from '../routine/datapath';
import { randomBytes } from 'node:crypto';
import { FdInsideQueue, FdUnderlaySocket } from '../routine/fd-edges';
import type { TunnelInstall } from '../shared/ipc/messages';
import { close, readFd, setNonBlocking, writeFd } from '../shared/native/libc';
import { createUdpSocket, localPort } from '../shared/native/udp';
import { socketpairSeqpacket } from '../shared/native/unix';

interface Options {
  packets: number;
  batch: number;
  cipher: 'aes' | 'chachapoly';
  modes: Array<'single' | 'batch'>;
}

function parse(argv: string[]): Options {
  const o: Options = { packets: 100_000, batch: 64, cipher: 'aes', modes: ['single', 'batch'] };
  for (let i = 0; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--packets') o.packets = Math.max(1000, Number(v));
    else if (argv[i] === '--batch') o.batch = Math.min(64, Math.max(1, Number(v)));
    else if (argv[i] === '--cipher') o.cipher = v === 'chachapoly' ? 'chachapoly' : 'aes';
    else if (argv[i] === '--mode') o.modes = v === 'both' ? ['single', 'batch'] : [v === 'single' ? 'single' : 'batch'];
  }
  return o;
}

const VPN_A = 0x0a000001; // 10.0.0.1
const VPN_B = 0x0a000002;
const LOOPBACK = 0x7f000001;

/** An IPv4/UDP packet A -> B with a 64-byte payload (92 bytes, header checksum set, UDP checksum 0). */
function udpPacket(): Buffer {
  const p = Buffer.alloc(92);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 17;
  p.writeUInt32BE(VPN_A, 12);
  p.writeUInt32BE(VPN_B, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += p.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16BE(~sum & 0xffff, 10);
  p.writeUInt16BE(5000, 20);
  p.writeUInt16BE(6000, 22);
  p.writeUInt16BE(72, 24);
  return p;
}

interface Node {
  datapath: Datapath;
  /** The far end of the inside socketpair: what the "kernel" side writes and reads. */
  peerFd: number;
  fds: number[];
}

function node(vpnIp: number, cipher: Options['cipher'], mode: 'single' | 'batch', udpFd: number, tunnel: TunnelInstall): Node {
  const [insideFd, peerFd] = socketpairSeqpacket();
  setNonBlocking(insideFd, true);
  setNonBlocking(peerFd, true);
  const datapath = privateDatapath(testRoutineSetup(vpnIp, { cipher, tunnels: [tunnel] }), {
    underlay: new FdUnderlaySocket(udpFd, { batching: mode }),
    inside: new FdInsideQueue(insideFd),
  });
  return { datapath, peerFd, fds: [insideFd, peerFd, udpFd] };
}

function run(mode: 'single' | 'batch', o: Options): { cpuUsPerPacket: number; delivered: number; sent: number } {
  const opts = { host: '127.0.0.1', port: 0, reusePort: false, recvBuf: 8 << 20, sendBuf: 8 << 20 };
  const udpA = createUdpSocket(opts);
  const udpB = createUdpSocket(opts);
  setNonBlocking(udpA, true);
  setNonBlocking(udpB, true);
  const keyAB = randomBytes(32);
  const keyBA = randomBytes(32);
  const peer = (name: string, ip: number) => ({ name, groups: [], issuer: 'ca', caName: 'ca', ips: [ip], subnets: [], ips6: [], subnets6: [] });
  const a = node(VPN_A, o.cipher, mode, udpA, { slot: 2, localIndex: 0x1111, remoteIndex: 0x2222, vpnIp: VPN_B, sendKey: keyAB, recvKey: keyBA, remoteIp: LOOPBACK, remotePort: localPort(udpB), peer: peer('b', VPN_B) });
  const b = node(VPN_B, o.cipher, mode, udpB, { slot: 5, localIndex: 0x2222, remoteIndex: 0x1111, vpnIp: VPN_A, sendKey: keyBA, recvKey: keyAB, remoteIp: LOOPBACK, remotePort: localPort(udpA), peer: peer('a', VPN_A) });
  const pkt = udpPacket();
  const rx = Buffer.alloc(2048);
  let delivered = 0;
  const round = (): void => {
    for (let i = 0; i < o.batch; i++) writeFd(a.peerFd, pkt, pkt.length);
    a.datapath.onInsideReadable();
    b.datapath.onUnderlayReadable();
    while (readFd(b.peerFd, rx, rx.length) > 0) delivered++;
  };
  const rounds = Math.ceil(o.packets / o.batch);
  for (let i = 0; i < Math.min(300, rounds); i++) round(); // warm-up: JIT, vectors, conntrack entry
  delivered = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < rounds; i++) round();
  const cpu = process.cpuUsage(cpu0);
  for (const fd of [...a.fds, ...b.fds]) close(fd);
  const sent = rounds * o.batch;
  return { cpuUsPerPacket: (cpu.user + cpu.system) / sent, delivered, sent };
}

function main(): void {
  const o = parse(process.argv.slice(2));
  process.stdout.write(`data path A -> B over loopback, ${o.cipher}, 92-byte IP packets in rounds of ${o.batch}, ${o.packets} packets per mode\n`);
  for (const mode of o.modes) {
    const r = run(mode, o);
    process.stdout.write(`  ${mode.padEnd(6)} ${r.cpuUsPerPacket.toFixed(2)} µs CPU/packet (both nodes, harness included)  delivered ${r.delivered}/${r.sent}\n`);
  }
}

main();
