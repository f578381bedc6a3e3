/**
 * What a node costs the machine, read from /proc: the node's whole process tree (a nebula-ts supervisor and its
 * routines, or the one Go process), the CPU time it used (all threads, user + system) and its resident memory.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI in use). */
const USER_HZ = 100;

/** Fields of /proc/<pid>/stat after the parenthesised command name (which may itself hold spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone
  }
}

/** `root` and every live descendant of it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const f = statFields(pid);
    if (!f) continue;
    const ppid = Number(f[1]); // field 4 of stat: after state
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds (user + system, every thread) the processes have used so far. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // utime, stime: fields 14 and 15 of stat
  }
  return ticks / USER_HZ;
}

/** Resident set size in bytes, summed over the processes. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

const PAGE = 4096;
const PFN_MASK = (1n << 55n) - 1n;

/**
 * The memory the processes occupy together: each resident physical page counted once, however many of the
 * processes map it (frame numbers from /proc/<pid>/pagemap; needs root, as the benchmark does). Summing VmRSS would
 * count the node binary's file pages (over 40 MiB) once per process of a node. NaN when pagemap is unreadable.
 */
export function distinctResidentBytes(pids: readonly number[]): number {
  const frames = new Set<bigint>();
  try {
    for (const pid of pids) {
      const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
      const fd = openSync(`/proc/${pid}/pagemap`, 'r');
      try {
        let start = 0;
        let end = 0;
        for (const line of smaps.split('\n')) {
          const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
          if (range) {
            start = parseInt(range[1]!, 16);
            end = parseInt(range[2]!, 16);
            continue;
          }
          const rss = /^Rss:\s+(\d+) kB/.exec(line);
          if (!rss || rss[1] === '0') continue;
          const pages = (end - start) / PAGE;
          const entries = Buffer.alloc(pages * 8);
          readSync(fd, entries, 0, entries.length, (start / PAGE) * 8);
          for (let i = 0; i < pages; i++) {
            const v = entries.readBigUInt64LE(i * 8);
            if (v >> 63n === 1n) frames.add(v & PFN_MASK);
          }
        }
      } finally {
        closeSync(fd);
      }
    }
  } catch {
    return NaN;
  }
  return frames.size * PAGE;
}

/**
 * Scheduler time of every thread of the processes so far (/proc/<pid>/task/<tid>/schedstat): nanoseconds spent
 * running on a CPU, and spent runnable but waiting in a run queue. On a shared machine the second says how much
 * of a node's slowness is waiting for a CPU rather than work.
 */
export function schedNs(pids: readonly number[]): { runNs: number; waitNs: number } {
  let runNs = 0;
  let waitNs = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
        runNs += Number(run);
        waitNs += Number(wait);
      } catch {
        // thread gone
      }
    }
  }
  return { runNs, waitNs };
}
