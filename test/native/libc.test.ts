/** libc bindings: error reporting with errno names, fcntl flags, eventfd round trip. */
import t from 'tap';
import {
  EAGAIN,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  NativeError,
  close,
  errnoName,
  eventfd,
  ioctl,
  isCloseOnExec,
  isNonBlocking,
  readFd,
  setNonBlocking,
  writeFd,
} from '../../src/shared/native/libc';

t.test('errno names and NativeError', async (t) => {
  t.equal(errnoName(98), 'EADDRINUSE');
  t.equal(errnoName(11), 'EAGAIN');
  const err = t.throws(() => close(-1)) as NativeError;
  t.ok(err instanceof NativeError);
  t.match(err, { syscall: 'close', errno: 9, code: 'EBADF' });
  t.match(err.message, /^close failed: EBADF: Bad file descriptor$/);
  const e2 = t.throws(() => ioctl(-1, 0x8913, Buffer.alloc(40), 'SIOCGIFFLAGS x')) as NativeError;
  t.match(e2.message, /^ioctl \(SIOCGIFFLAGS x\) failed: EBADF/, 'the detail names the request');
});

t.test('eventfd, O_NONBLOCK and hot-path -errno results', async (t) => {
  const fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  t.teardown(() => close(fd));
  t.ok(isCloseOnExec(fd));
  t.ok(isNonBlocking(fd));
  const buf = Buffer.alloc(64);
  t.equal(readFd(fd, buf, 8), -EAGAIN, 'empty: -EAGAIN, not an exception');
  buf.writeBigUInt64LE(5n, 0);
  t.equal(writeFd(fd, buf, 8), 8);
  buf.fill(0);
  t.equal(readFd(fd, buf, buf.length), 8, 'whole Buffer passed with a length, no subarray');
  t.equal(buf.readBigUInt64LE(0), 5n);
  setNonBlocking(fd, false);
  t.notOk(isNonBlocking(fd));
});
