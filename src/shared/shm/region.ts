/**
 * A shared-memory region for state that every routine process must see and update atomically (tunnel send
 * counters, replay windows, conntrack; DESIGN.md "Shared state across processes").
 *
 * The supervisor creates it (`createRegion`: memfd_create + ftruncate + mmap MAP_SHARED) and passes the fd to each
 * routine in the `stdio` array of fork/spawn; the routine maps it (`mapRegion`). Node dup2()s every stdio entry onto
 * the child's fd 3, 4, ... and dup2 clears FD_CLOEXEC on the target, so the MFD_CLOEXEC fd still reaches the child
 * (checked by a test) while never leaking into other children.
 *
 * `buffer` is an ArrayBuffer over the mapping (koffi.view, no copy). It is a plain ArrayBuffer, not a
 * SharedArrayBuffer, and yet `Atomics.add/sub/and/or/xor/exchange/compareExchange/load/store` on an Int32Array,
 * Uint32Array or BigInt64Array over it are real locked instructions and hold across processes (tested: 2 processes
 * x 1M Atomics.add = exactly 2M). `Atomics.wait` throws ("not a shared typed array") and `Atomics.notify` returns
 * 0 on it, so there is no cross-process blocking wait through Atomics; poll or use an fd (eventfd, pipe, IPC).
 *
 * The mapping lives as long as the process: it is never unmapped, because any view still referencing it would
 * crash the process on access.
 */
import { fstatSync } from 'node:fs';
import koffi from '../native/koffi';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE, close, ftruncate, memfdCreate, mmap } from '../native/libc';

const PAGE = 4096;

export interface Region {
  /** The memfd (in the supervisor: keep it open to pass it to respawned routines). */
  fd: number;
  /** Mapped size in bytes (a multiple of the page size). */
  size: number;
  /** Address of the mapping. */
  address: bigint;
  /** The whole mapping, zero-copy. Build typed arrays over it; Atomics work on them across processes. */
  buffer: ArrayBuffer;
}

function roundUp(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`region size must be a positive integer: ${bytes}`);
  return Math.ceil(bytes / PAGE) * PAGE;
}

function mapFd(fd: number, size: number): Region {
  const address = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return { fd, size, address, buffer: koffi.view(address, size) };
}

/** Creates a zero-filled region of at least `bytes` bytes (supervisor side). */
export function createRegion(bytes: number, name = 'nebula-ts-shm'): Region {
  const size = roundUp(bytes);
  const fd = memfdCreate(name, MFD_CLOEXEC);
  try {
    ftruncate(fd, size);
    return mapFd(fd, size);
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * Maps a region received as an inherited fd (routine side). Checks the fd's size first: touching a page beyond the
 * end of a memfd raises SIGBUS, which would kill the routine instead of giving an error.
 */
export function mapRegion(fd: number, bytes: number): Region {
  const size = roundUp(bytes);
  const actual = fstatSync(fd).size;
  if (actual < size) throw new Error(`shared region fd ${fd} is ${actual} bytes, expected at least ${size}`);
  return mapFd(fd, size);
}
