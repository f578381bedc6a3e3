/**
 * BlockingReader: a worker thread draining a fd with koffi read()/recvfrom() and sleeping in poll(). Checks delivery
 * and clean stop on a UDP socket (loopback), then measures tun-queue read throughput in a namespace.
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { BlockingReader, PacketBatch } from '../../src/shared/native/blocking-reader';
import { close, isNonBlocking } from '../../src/shared/native/libc';
import { createUdpSocket, localPort, sendTo } from '../../src/shared/native/udp';
import { sockaddrIPv4, sockaddrIn, sockaddrPort } from '../../src/shared/native/sockaddr';
import { prereqs } from '../helpers/prereq';
import { netnsScope, waitForLine } from '../helpers/netns';
import { Agent } from './fixtures/agent-client';

t.test('UDP: every datagram delivered in batches with its sender; stop() ends an idle worker', async (t) => {
  const rx = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false, recvBuf: 4 << 20 });
  const tx = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false });
  t.teardown(() => {
    close(rx);
    close(tx);
  });
  const N = 2000;
  const seen: number[] = [];
  let batches = 0;
  let badSender = 0;
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const onBatch = (b: PacketBatch): void => {
    batches++;
    for (let i = 0; i < b.count; i++) {
      seen.push(b.data.readUInt32LE(b.offsets[i]));
      if (b.lengths[i] !== 100) badSender++;
      const sa = b.addrs!.subarray(16 * i, 16 * i + 16);
      if (sockaddrIPv4(sa) !== 0x7f000001 || sockaddrPort(sa) !== localPort(tx)) badSender++;
    }
    if (seen.length === N) done();
  };
  const reader = new BlockingReader({ fd: rx, kind: 'recvfrom', batchPackets: 64 }, onBatch, (e) => t.fail(e.message));
  t.ok(isNonBlocking(rx), 'fd switched to O_NONBLOCK');

  const dst = sockaddrIn('127.0.0.1', localPort(rx));
  const pkt = Buffer.alloc(100);
  for (let i = 0; i < N; i++) {
    pkt.writeUInt32LE(i, 0);
    sendTo(tx, pkt, 100, dst);
  }
  await all;
  t.same(seen, Array.from({ length: N }, (_, i) => i), 'all datagrams, in order, once');
  t.equal(badSender, 0, 'lengths and sender addresses correct');
  t.ok(batches < N, `${batches} batches for ${N} packets`);
  t.equal(reader.stats().packets, N);

  // The worker is now asleep in poll(); stop() must wake and end it.
  await reader.stop();
  t.pass('stopped while idle');
});

t.test('process.exit() does not hang while the worker sleeps in poll()', async (t) => {
  const child = fork(join(__dirname, 'fixtures', 'reader-exit.ts'), [], { stdio: 'inherit' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  t.teardown(() => clearTimeout(timer));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  t.same({ code, signal }, { code: 0, signal: null }, 'exited by itself with code 0');
});

t.test('tun read throughput in a worker (UDP flood routed into the tun)', async (t) => {
  if (!prereqs(t, ['root', 'tun'])) return;
  const scope = await netnsScope(t);
  const ns = await scope.createNetns();
  const agent = await Agent.start(scope, ns);
  const dev = await agent.call('openTun', { name: 'ntsb%d', queues: 1, multiQueue: false });
  await agent.call('configure', { name: dev.name, ip: '10.202.0.1', mask: '255.255.255.0', mtu: 1500, txQueueLen: 10000 });

  const seconds = 2;
  for (const deliver of [false, true]) {
    await agent.call('readerStart', { fd: dev.fds[0], kind: 'read', deliver });
    const flood = scope.spawnFixtureInNetns(ns, join(__dirname, 'fixtures', 'udp-flood.ts'), ['10.202.0.2', '9', String(seconds), '100', '4']);
    const sent = JSON.parse((await waitForLine(flood, /^\{.*\}$/, 30_000))[0]) as { sent: number; rate: number };
    const r = await agent.call('readerStop', {});
    const mode = deliver ? 'batches posted to main thread' : 'count only';
    // The reader keeps up with the sender, so its rate is packets over the flood's duration. Under tap the numbers
    // include coverage instrumentation (several times slower than compiled dist/ code).
    t.comment(
      `tun read, ${mode}: ${r.packets} pkts, ~${Math.round(r.packets / seconds)} pkt/s, sender ${sent.rate} pkt/s, ` +
        `${(r.cpuUs / r.packets).toFixed(2)} CPU us/pkt (whole agent process), ${r.polls} polls`,
    );
    // Loose on purpose: on a loaded 2-core machine the tun ring (txqueuelen) overflows while the reader is descheduled.
    t.ok(r.packets > Math.max(1000, sent.sent * 0.1), `reader keeps up with the flood (${r.packets}/${sent.sent} read)`);
    if (deliver) t.equal(r.delivered, r.packets, 'every packet read was delivered');
  }
});
