/**
 * The shared-memory region: fd passing to children through stdio despite MFD_CLOEXEC, and Atomics on koffi.view
 * ArrayBuffers being atomic across processes.
 */
import t from 'tap';
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createRegion, mapRegion } from '../../src/shared/shm/region';
import { isCloseOnExec } from '../../src/shared/native/libc';
import { compiledFixture } from '../helpers/compiled-fixture';

function runAdders(fd: number, bytes: number, count: number): Promise<void> {
  // Compiled here (test/helpers/compiled-fixture.ts): the children start without the TS loader.
  const script = compiledFixture(join(__dirname, 'fixtures', 'shm-adder.ts'));
  const kids = [0, 1].map(() =>
    fork(script, [String(bytes), String(count)], { execArgv: ['--enable-source-maps'], stdio: ['ignore', 'inherit', 'inherit', fd, 'ipc'] }),
  );
  return Promise.all(
    kids.map(
      (k) =>
        new Promise<void>((resolve, reject) => {
          k.on('error', reject);
          k.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`adder exited with ${code}`))));
        }),
    ),
  ).then(() => undefined);
}

t.test('two processes x 1M Atomics.add on one slot give exactly 2M', async (t) => {
  const region = createRegion(100);
  t.equal(region.size, 4096, 'rounded up to a page');
  t.ok(isCloseOnExec(region.fd), 'memfd is close-on-exec in the parent');
  const slots = new Int32Array(region.buffer);
  t.equal(slots[0], 0, 'zero-filled');
  await runAdders(region.fd, region.size, 1_000_000);
  t.equal(Atomics.load(slots, 0), 2_000_000, 'no lost update: the fd reached fd 3 of each child and Atomics are atomic');
  t.equal(slots[1], 2, 'both children mapped the same memory');
});

t.test('koffi.view buffers: a plain ArrayBuffer, Atomics work except wait/notify', async (t) => {
  const region = createRegion(4096);
  t.ok(region.buffer instanceof ArrayBuffer);
  t.notOk((region.buffer as unknown) instanceof SharedArrayBuffer, 'not a SharedArrayBuffer');
  const i32 = new Int32Array(region.buffer);
  t.equal(Atomics.add(i32, 5, 7), 0);
  t.equal(Atomics.compareExchange(i32, 5, 7, 9), 7);
  const i64 = new BigInt64Array(region.buffer);
  Atomics.add(i64, 10, 1n << 40n);
  t.equal(Atomics.load(i64, 10), 1n << 40n, '64-bit atomics work (tunnel send counters)');
  t.throws(() => Atomics.wait(i32, 0, 0, 1), /not a shared typed array/, 'Atomics.wait refuses it');
  t.equal(Atomics.notify(i32, 0, 1), 0, 'Atomics.notify wakes nobody');

  // A second mapping of the same fd in this process sees the same memory.
  const again = mapRegion(region.fd, 4096);
  t.equal(new Int32Array(again.buffer)[5], 9);
  t.throws(() => mapRegion(region.fd, 8192), /expected at least 8192/, 'size checked before mapping (no SIGBUS)');
});
