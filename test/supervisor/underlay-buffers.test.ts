/**
 * listen.read_buffer / write_buffer applied on reload to every underlay socket (Go 1.6.1 udp ReloadConfig): real
 * SO_REUSEPORT sockets on loopback, sizes read back with getsockopt (the kernel reports twice what was asked).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { NebulaConfig } from '../../src/shared/config';
import { Logger } from '../../src/shared/log';
import { bufferSizes } from '../../src/shared/native/udp';
import { DEFAULT_READ_BUFFER, readBufferFor, Underlay } from '../../src/supervisor/underlay';
import { prereqs } from '../helpers/prereq';

const LISTEN: NebulaConfig['listen'] = { host: '127.0.0.1', port: 0, batch: 64, read_buffer: 0, write_buffer: 0, send_recv_error: 'always' };

function underlay(t: { teardown(fn: () => void): void }, routines: number): { u: Underlay; lines: Array<Record<string, unknown>>; log: Logger } {
  const u = new Underlay(LISTEN, routines);
  t.teardown(() => u.close());
  const lines: Array<Record<string, unknown>> = [];
  const log = new Logger({ format: 'json', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { u, lines, log };
}

function sizes(u: Underlay, routines: number): Array<{ recv: number; send: number }> {
  return Array.from({ length: routines }, (_, i) => bufferSizes(u.fd(i)));
}

t.test('every socket gets the new sizes, each logged as Go logs it; 0 leaves a socket alone', async (t) => {
  const { u, lines, log } = underlay(t, 3);
  const before = sizes(u, 3);
  // Below any net.core.rmem_max/wmem_max, so the plain option (without CAP_NET_ADMIN) takes it as well.
  const got = u.applyBuffers({ ...LISTEN, read_buffer: 65536, write_buffer: 49152 }, log);
  t.same(sizes(u, 3), [0, 1, 2].map(() => ({ recv: 131072, send: 98304 })), 'SO_RCVBUF / SO_SNDBUF read back on all three sockets');
  t.not(before[0]!.recv, 131072, 'which is not what the sockets had');
  t.same(got, { recv: [131072, 131072, 131072], send: [98304, 98304, 98304] }, 'returned as read back');
  t.same(
    lines.map((l) => `${String(l.msg)} socket=${String(l.socket)} size=${String(l.size)}`),
    [0, 1, 2].map((i) => `listen.read_buffer was set socket=${i} size=131072`).concat([0, 1, 2].map((i) => `listen.write_buffer was set socket=${i} size=98304`)),
  );

  const untouched = u.applyBuffers({ ...LISTEN, write_buffer: 65536 }, log);
  t.same(untouched.recv, [], 'read_buffer 0: not set');
  t.same(sizes(u, 3).map((s) => s.recv), [131072, 131072, 131072], 'the running read size stays');
  t.same(sizes(u, 3).map((s) => s.send), [131072, 131072, 131072], 'the new write size is taken');
});

t.test('as root, sizes above net.core.rmem_max are forced (SO_RCVBUFFORCE, as Go sets them)', async (t) => {
  if (!prereqs(t, ['root'])) return;
  const { u, log } = underlay(t, 2);
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const wanted = rmemMax + (1 << 20);
  u.applyBuffers({ ...LISTEN, read_buffer: wanted }, log);
  t.same(sizes(u, 2).map((s) => s.recv), [2 * wanted, 2 * wanted], `read_buffer ${wanted} > rmem_max ${rmemMax} on both sockets`);
});

t.test('the receive buffer defaults to DEFAULT_READ_BUFFER; listen.read_buffer still wins', async (t) => {
  t.equal(readBufferFor(LISTEN), DEFAULT_READ_BUFFER);
  t.equal(readBufferFor({ ...LISTEN, read_buffer: 1 << 20 }), 1 << 20, 'an explicit size is taken as it is');
  if (!prereqs(t, ['root'])) return;
  const plain = new Underlay(LISTEN, 2);
  t.teardown(() => plain.close());
  const set = new Underlay({ ...LISTEN, read_buffer: 1 << 20 }, 1);
  t.teardown(() => set.close());
  t.same([0, 1].map((i) => bufferSizes(plain.fd(i)).recv), [2 * DEFAULT_READ_BUFFER, 2 * DEFAULT_READ_BUFFER], 'both sockets forced to 4 MiB (read back doubled)');
  t.equal(bufferSizes(set.fd(0)).recv, 2 << 20, 'listen.read_buffer 1 MiB: exactly that (read back doubled)');
});
