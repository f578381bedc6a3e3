/**
 * The traffic the benchmark measures, run inside a testbed mesh's namespaces: iperf3 TCP and UDP, ping, a
 * `perf stat` syscall counter over a node's processes, and a Prometheus scraper (metrics-scraper.ts). Each probe is
 * bounded in time and returns numbers, not text.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Mesh } from '../testbed/netns-mesh';
import { nodeCommand } from '../testbed/runner-hooks';
import type { ScrapeSummary } from './metrics-scraper';

export function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/** An iperf3 server on `ip` inside node `name`'s namespace, serving one test after another until stopped. */
export async function startIperfServer(mesh: Mesh, name: string, ip: string): Promise<{ stop(): void }> {
  const proc = spawn('ip', ['netns', 'exec', mesh.node(name).ns, 'iperf3', '-s', '--forceflush', '-B', ip], { stdio: ['ignore', 'pipe', 'pipe'] });
  // iperf3 -s prints "Server listening" once bound (flushed at once with --forceflush): wait for it, no sleep.
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('iperf3 server did not start')), 10_000);
    proc.once('exit', (code) => reject(new Error(`iperf3 server exited (${code})`)));
    proc.stdout.on('data', (c: Buffer) => {
      if (/Server listening/.test(c.toString())) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { stop: () => void proc.kill('SIGTERM') };
}

export interface TcpResult {
  gbps: number;
  bytes: number;
  retransmits: number;
}

/** iperf3 TCP from `client` to `serverIp` (`reverse`: the server sends), `streams` in parallel. */
export async function tcp(mesh: Mesh, client: string, serverIp: string, seconds: number, streams: number, reverse: boolean): Promise<TcpResult> {
  const args = ['-c', serverIp, '-t', String(seconds), '-P', String(streams), '-J', ...(reverse ? ['-R'] : [])];
  const out = await mesh.exec(client, 'iperf3', args, (seconds + 30) * 1000);
  const json = JSON.parse(out) as { end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } } };
  const r = json.end.sum_received;
  return { gbps: r.bits_per_second / 1e9, bytes: r.bytes, retransmits: json.end.sum_sent.retransmits ?? 0 };
}

export interface UdpResult {
  /** Datagrams the receiving iperf3 got, per second. */
  pps: number;
  received: number;
  sent: number;
}

/** iperf3 UDP flood of `size`-byte payloads, as fast as the client can send (-b 0). */
export async function udpFlood(mesh: Mesh, client: string, serverIp: string, seconds: number, size: number): Promise<UdpResult> {
  const args = ['-c', serverIp, '-u', '-l', String(size), '-b', '0', '-t', String(seconds), '-J'];
  const out = await mesh.exec(client, 'iperf3', args, (seconds + 30) * 1000);
  const json = JSON.parse(out) as { end: { sum_received: { packets: number; lost_packets: number; seconds: number } } };
  const r = json.end.sum_received;
  const received = r.packets - r.lost_packets;
  return { pps: received / r.seconds, received, sent: r.packets };
}

/** Pings `ip` `count` times `intervalS` apart; the median and mean round trip in ms of those answered. */
export async function pingRtt(mesh: Mesh, from: string, ip: string, count: number, intervalS: number): Promise<{ medianMs: number; meanMs: number; answered: number }> {
  const out = await mesh.exec(from, 'ping', ['-c', String(count), '-i', String(intervalS), '-W', '2', ip], count * intervalS * 1000 + 30_000).catch((e: Error) => e.message);
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { medianMs: median(times), meanMs: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length), answered: times.length };
}

/** One ping right after both nodes came up: its round trip includes the handshake. NaN when it got no answer. */
export async function firstPing(mesh: Mesh, from: string, ip: string): Promise<number> {
  const out = await mesh.exec(from, 'ping', ['-c', '1', '-W', '5', ip], 30_000).catch((e: Error) => e.message);
  const m = /time=([\d.]+) ms/.exec(out);
  return m ? Number(m[1]) : NaN;
}

/** Counts the syscalls of `pids` (all their threads) from now until `stop()`; undefined without a usable perf. */
export function countSyscalls(pids: readonly number[]): { stop(): Promise<number | undefined> } {
  const proc: ChildProcess = spawn('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter', '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.once('error', () => resolve());
  });
  return {
    async stop() {
      proc.kill('SIGINT');
      await exited;
      const m = /^(\d+),[^,]*,raw_syscalls:sys_enter/m.exec(err);
      return m ? Number(m[1]) : undefined;
    },
  };
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Where datagrams of a flood can be dropped on one node, as cumulative counters (read before and after). */
export interface DropCounters {
  /** Packets the kernel could not queue to the tun device (the node did not read them in time). */
  tunTxDropped: number;
  /** Datagrams the underlay socket (port 4242) dropped: its receive buffer was full. */
  underlayDrops: number;
  /** Every UDP socket's receive-buffer drops in the namespace (the underlay's and the applications'). */
  udpRcvbufErrors: number;
}

export async function dropCounters(mesh: Mesh, name: string, underlayPort = 4242): Promise<DropCounters> {
  const out = await mesh.exec(name, 'sh', ['-c', 'cat /sys/class/net/nebula1/statistics/tx_dropped; cat /proc/net/udp; cat /proc/net/snmp'], 10_000);
  const lines = out.split('\n');
  const portHex = `:${underlayPort.toString(16).toUpperCase().padStart(4, '0')}`;
  let underlayDrops = 0;
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 13 && f[1]!.endsWith(portHex)) underlayDrops += Number(f[f.length - 1]);
  }
  const udp = lines.filter((l) => l.startsWith('Udp: '));
  const names = udp[0]?.split(/\s+/) ?? [];
  const values = udp[1]?.split(/\s+/) ?? [];
  const rcvbuf = names.indexOf('RcvbufErrors');
  return { tunTxDropped: Number(lines[0]) || 0, underlayDrops, udpRcvbufErrors: rcvbuf > 0 ? Number(values[rcvbuf]) : 0 };
}

export interface Scraper {
  /** Stops scraping and returns what the scraper saw. */
  stop(): Promise<ScrapeSummary>;
}

/**
 * Starts `metrics-scraper.js` inside node `name`'s namespace, GETting `url` every `intervalMs`; resolves once it
 * scrapes. Its own CPU is not part of the node's process tree.
 */
export async function startScraper(mesh: Mesh, name: string, url: string, intervalMs: number): Promise<Scraper> {
  const script = path.join(__dirname, 'metrics-scraper.js');
  const proc = spawn('ip', ['netns', 'exec', mesh.node(name).ns, ...nodeCommand(), script, url, String(intervalMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // 'close', not 'exit': after 'exit' the summary may still be in the pipe.
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`metrics scraper in ${name} did not start`)), 10_000);
    void exited.then((code) => reject(new Error(`metrics scraper in ${name} exited (${code}): ${err.trim()}`)));
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.startsWith('scraping\n')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return {
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error(`metrics scraper in ${name} printed no summary: ${err.trim()}`);
      return JSON.parse(line) as ScrapeSummary;
    },
  };
}
