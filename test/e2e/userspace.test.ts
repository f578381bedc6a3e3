/**
 * The userspace inside (`tun.userspace`, DESIGN.md "Inside"): node A runs as nobody (no root, no tun) and offers
 * its packet queues on a unix socket; this test process takes the queue fds and pings node B (a normal nebula-ts
 * node with a tun) with a hand-built ICMP echo request, through the tunnel, and reads B's reply back from a queue.
 *
 * Root is needed only to build the namespaces. The harness (`runAs`) gives A's files to nobody and runs it from a
 * world-readable copy of the runtime (so the checkout may be anywhere, e.g. under a 0700 /root); its control socket
 * and userspace socket live in a 0777 directory so nobody can create them there.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { prereqs } from '../helpers/prereq';
import { newMesh } from './helpers';
import { close, pollFds, readFd, setNonBlocking, writeFd, POLLIN } from '../../src/shared/native/libc';
import { connectUserspace } from '../../src/shared/native/userspace-client';

const A_IP = '192.168.100.1';
const B_IP = '192.168.100.2';
const NOBODY = 65534;

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** RFC 1071 ones'-complement sum over `buf` (checksum field already zeroed). */
function checksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length & 1) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 ICMP echo request from `src` to `dst` (20-byte header, no options). */
function echoRequest(src: string, dst: string, id: number, seq: number, payload: Buffer): Buffer {
  const icmp = Buffer.alloc(8 + payload.length);
  icmp[0] = 8; // echo request
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  payload.copy(icmp, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip.writeUInt16BE(id, 4);
  ip[8] = 64; // ttl
  ip[9] = 1; // ICMP
  Buffer.from(ipBytes(src)).copy(ip, 12);
  Buffer.from(ipBytes(dst)).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, icmp]);
}

interface Reply {
  src: string;
  dst: string;
  type: number;
  id: number;
  seq: number;
  payload: Buffer;
}

function parseIcmp(pkt: Buffer): Reply | undefined {
  if (pkt.length < 28 || pkt[0]! >> 4 !== 4 || pkt[9] !== 1) return undefined;
  const ihl = (pkt[0]! & 0x0f) * 4;
  const icmp = pkt.subarray(ihl);
  return {
    src: [...pkt.subarray(12, 16)].join('.'),
    dst: [...pkt.subarray(16, 20)].join('.'),
    type: icmp[0]!,
    id: icmp.readUInt16BE(4),
    seq: icmp.readUInt16BE(6),
    payload: Buffer.from(icmp.subarray(8)),
  };
}

/** Waits up to `timeoutMs` for one packet on any of `fds` (non-blocking); returns it, or undefined. */
function readAny(fds: number[], timeoutMs: number): Buffer | undefined {
  const pfds = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    pfds.writeInt32LE(fd, 8 * i);
    pfds.writeInt16LE(POLLIN, 8 * i + 4);
  });
  if (pollFds(pfds, fds.length, timeoutMs) <= 0) return undefined;
  const buf = Buffer.alloc(65536);
  for (const fd of fds) {
    const n = readFd(fd, buf, buf.length);
    if (n > 0) return Buffer.from(buf.subarray(0, n));
  }
  return undefined;
}

function uidOf(pid: number): number {
  const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

/** Children of `pid` (the routines of a supervisor). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${e}/status`, 'utf8'))?.[1] === String(pid)) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

t.test('userspace inside: an unprivileged node exchanges raw packets with a local program', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  t.setTimeout(90_000);
  const sockDir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-us-'));
  chmodSync(sockDir, 0o777);
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const userspacePath = path.join(sockDir, 'a.packets');

  const mesh = await newMesh(t);
  const a = await mesh.add({
    name: 'a',
    kind: 'ts',
    overlayIp: A_IP,
    config: { tun: { userspace: userspacePath } },
    runAs: { uid: NOBODY, gid: NOBODY },
  });
  await mesh.add({ name: 'b', kind: 'ts', overlayIp: B_IP });
  a.controlSocket = path.join(sockDir, 'a.control.sock');
  mesh.writeConfigs();

  await mesh.start('b');
  await mesh.start('a');
  const pid = a.process!.pid!;
  t.equal(uidOf(pid), NOBODY, 'node A supervisor runs as nobody');
  const routines = childPids(pid);
  t.ok(routines.length >= 1 && routines.every((p) => uidOf(p) === NOBODY), 'node A routines run as nobody');
  t.equal(statSync(userspacePath).mode & 0o777, 0o600, 'userspace socket is mode 0600');
  t.equal(statSync(userspacePath).uid, NOBODY, 'userspace socket belongs to the node user');

  const conn = connectUserspace(userspacePath);
  t.teardown(() => conn.queues.forEach((fd) => close(fd)));
  t.same({ queues: conn.queues.length, vpnIp: conn.vpnIp, mtu: conn.mtu }, { queues: 1, vpnIp: A_IP, mtu: 1300 }, 'hello describes the node');
  for (const fd of conn.queues) setNonBlocking(fd, true);

  // The first request may be spent on the handshake; resend until a matching reply arrives.
  const id = 0x4e54;
  const payload = Buffer.from('nebula-ts userspace inside ' + 'x'.repeat(32));
  const deadline = Date.now() + 20_000;
  let reply: Reply | undefined;
  for (let seq = 1; !reply && Date.now() < deadline; seq++) {
    const req = echoRequest(A_IP, B_IP, id, seq, payload);
    t.equal(writeFd(conn.queues[0]!, req, req.length), req.length, `echo request ${seq} written`);
    const until = Math.min(deadline, Date.now() + 1000);
    while (!reply && Date.now() < until) {
      const pkt = readAny(conn.queues, Math.max(1, until - Date.now()));
      const r = pkt && parseIcmp(pkt);
      if (r && r.type === 0 && r.id === id) reply = r;
    }
  }
  t.ok(reply, 'echo reply received on a queue fd');
  if (reply) {
    t.equal(reply.src, B_IP, 'reply comes from B');
    t.equal(reply.dst, A_IP, 'reply goes to A');
    t.equal(reply.type, 0, 'ICMP echo reply');
    t.same(reply.payload, payload, 'payload echoed unchanged');
  }

  await mesh.stop('a');
  t.throws(() => statSync(userspacePath), 'userspace socket removed on shutdown');
});
