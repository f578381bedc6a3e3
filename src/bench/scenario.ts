/**
 * One benchmark run: a fresh two-node mesh (client 192.168.100.1, server .2) of one implementation, one cipher and
 * one routine count, then every selected measurement through its tunnel, then the mesh is destroyed. The time to
 * the first ping is taken first, on the tunnel the ping itself makes.
 */
import { Mesh, type NodeKind } from '../testbed/netns-mesh';
import { cpuSeconds, distinctResidentBytes, processTree, rssBytes, schedNs } from './proc-stats';
import { GATED_SERIES, SCRAPE_URL, metricsStatsConfig } from './metrics-cost';
import { countSyscalls, dropCounters, firstPing, pingRtt, startIperfServer, startScraper, tcp, udpFlood, type Scraper } from './probes';

export type TestName = 'first' | 'ping' | 'tcp1' | 'tcp1r' | 'tcp4' | 'tcp4r' | 'udp';
export const ALL_TESTS: readonly TestName[] = ['first', 'ping', 'tcp1', 'tcp1r', 'tcp4', 'tcp4r', 'udp'];

/** An implementation under test: which binary each of the two nodes runs, and from which build for nebula-ts. */
export interface Impl {
  /** Column label: 'go', 'ts', 'base' (another nebula-ts build), 'mix' (nebula-ts client, Go server). */
  label: string;
  client: NodeKind;
  server: NodeKind;
  /** Project root whose dist/ the nebula-ts nodes run. */
  root: string;
  /**
   * nebula-ts nodes get a Prometheus `stats` section (metrics-cost.ts): 'gates-on' with message_metrics and
   * lighthouse_metrics, 'gates-off' without them (the endpoint alone). Absent: no `stats` section.
   */
  stats?: 'gates-on' | 'gates-off';
  /** Extra config for the nebula-ts nodes (merged into the testbed's), e.g. `{ tun: { offloads: true } }`. */
  config?: Record<string, unknown>;
}

export interface RunSpec {
  impl: Impl;
  cipher: 'aes' | 'chachapoly';
  routines: number;
  seconds: number;
  tests: ReadonlySet<TestName>;
  /** Syscall counts with perf (when it works here). */
  perf: boolean;
  /**
   * Scrape each node's metrics endpoint this often from the tunnel's start to the end of the measurements, and
   * measure the supervisors' CPU over that window (the metrics-cost comparison; both of its arms scrape).
   */
  scrapeIntervalMs?: number;
}

/** Metric name -> value; a metric a run did not measure is absent. */
export type Metrics = Record<string, number>;

const CLIENT = '192.168.100.1';
const SERVER = '192.168.100.2';

export async function runOnce(spec: RunSpec): Promise<Metrics> {
  const { impl, seconds, tests } = spec;
  const m: Metrics = {};
  const mesh = new Mesh({ projectRoot: impl.root, cipher: spec.cipher });
  let scrape: ScrapeWindow | undefined;
  try {
    await mesh.init();
    for (const [name, ip, kind] of [
      ['client', CLIENT, impl.client],
      ['server', SERVER, impl.server],
    ] as const) {
      // Go 1.6.1 and nebula-ts read the same `routines` key; nebula-ts' testbed sets it from the spec.
      const config = kind === 'go' ? { routines: spec.routines } : { ...impl.config, ...(impl.stats ? { stats: metricsStatsConfig(impl.stats === 'gates-on') } : {}) };
      await mesh.add({ name, kind, overlayIp: ip, routines: kind === 'ts' ? spec.routines : undefined, config });
    }
    mesh.writeConfigs();
    await mesh.start('server');
    await mesh.start('client');
    if (tests.has('first')) m.first_ping_ms = await firstPing(mesh, 'client', SERVER);
    if (!(await mesh.pingUntilReply('client', SERVER, 15_000))) throw new Error(`${impl.label}: no tunnel`);
    const trees = (): number[] => [mesh.node('client'), mesh.node('server')].flatMap((n) => processTree(n.process!.pid!));
    if (spec.scrapeIntervalMs) scrape = await startScrapeWindow(mesh, spec.scrapeIntervalMs, trees);
    if (tests.has('ping')) {
      const pids = trees();
      const run0 = schedNs(pids).runNs;
      const p = await pingRtt(mesh, 'client', SERVER, 100, 0.01);
      m.ping_rtt_ms = p.medianMs;
      // What the pings cost both nodes (tun.keep_warm spends CPU for latency at such rates): ms per ping, from the
      // threads' scheduler run time (nanoseconds, unlike /proc stat's 10 ms ticks).
      m.ping_cpu_ms = (schedNs(pids).runNs - run0) / 1e6 / Math.max(1, p.answered);
    }
    const iperf = await startIperfServer(mesh, 'server', SERVER);
    try {
      if (tests.has('tcp1')) {
        const cpu0 = cpuSeconds(trees());
        const r = await tcp(mesh, 'client', SERVER, seconds, 1, false);
        m.tcp1_gbps = r.gbps;
        m.cpu_s_per_gb = (cpuSeconds(trees()) - cpu0) / (r.bytes / 1e9);
      }
      if (tests.has('tcp1r')) m.tcp1r_gbps = (await tcp(mesh, 'client', SERVER, seconds, 1, true)).gbps;
      if (tests.has('tcp4')) m.tcp4_gbps = (await tcp(mesh, 'client', SERVER, seconds, 4, false)).gbps;
      if (tests.has('tcp4r')) m.tcp4r_gbps = (await tcp(mesh, 'client', SERVER, seconds, 4, true)).gbps;
      if (tests.has('udp')) {
        const pids = trees();
        const syscalls = spec.perf ? countSyscalls(pids) : undefined;
        const cpu0 = cpuSeconds(pids);
        const sched0 = schedNs(pids);
        const [client0, server0] = await Promise.all([dropCounters(mesh, 'client'), dropCounters(mesh, 'server')]);
        const r = await udpFlood(mesh, 'client', SERVER, seconds, 64);
        const cpu = cpuSeconds(pids) - cpu0;
        const sched1 = schedNs(pids);
        const [client1, server1] = await Promise.all([dropCounters(mesh, 'client'), dropCounters(mesh, 'server')]);
        // Where the flood's losses happened, as shares of what iperf3 sent.
        const sent = Math.max(1, r.sent);
        m.udp64_lost_client_tun = (client1.tunTxDropped - client0.tunTxDropped) / sent;
        const serverUnderlay = server1.underlayDrops - server0.underlayDrops;
        m.udp64_lost_server_underlay = serverUnderlay / sent;
        m.udp64_lost_server_app = (server1.udpRcvbufErrors - server0.udpRcvbufErrors - serverUnderlay) / sent;
        m.udp64_lost_total = (r.sent - r.received) / sent;
        const calls = await syscalls?.stop();
        m.udp64_pps = r.pps;
        m.udp64_cpu_us_per_pkt = (cpu * 1e6) / Math.max(1, r.received);
        // CPUs the two nodes used, and how long their threads waited for one, per second of the flood.
        m.udp64_cpus_used = (sched1.runNs - sched0.runNs) / 1e9 / seconds;
        m.udp64_cpus_waited = (sched1.waitNs - sched0.waitNs) / 1e9 / seconds;
        if (calls !== undefined) m.udp64_syscalls_per_pkt = calls / Math.max(1, r.received);
      }
    } finally {
      iperf.stop();
    }
    if (scrape) Object.assign(m, await scrape.stop(impl.stats));
    const nodeTrees = [mesh.node('client'), mesh.node('server')].map((n) => processTree(n.process!.pid!));
    m.rss_mib = (rssBytes(nodeTrees[0]!) + rssBytes(nodeTrees[1]!)) / 2 / (1 << 20);
    m.mem_mib = (distinctResidentBytes(nodeTrees[0]!) + distinctResidentBytes(nodeTrees[1]!)) / 2 / (1 << 20);
    return m;
  } finally {
    await scrape?.close();
    await mesh.destroy();
  }
}

/**
 * A scraper per node, and the CPU the nodes use while it runs: the supervisors' (the process each node was started
 * as: `ip netns exec` execs it), where the endpoint serves, and the whole trees'. `stop(stats)` throws when a run
 * with an endpoint had a failed scrape, or its series do not match the gates (present with 'gates-on', absent with
 * 'gates-off'): such a run would not measure what it claims.
 */
interface ScrapeWindow {
  stop(stats: Impl['stats']): Promise<Metrics>;
  /** Ends any scraper still running (after a failed run); harmless after stop(). */
  close(): Promise<void>;
}

async function startScrapeWindow(mesh: Mesh, intervalMs: number, trees: () => number[]): Promise<ScrapeWindow> {
  const names = ['client', 'server'];
  const supervisors = names.map((n) => mesh.node(n).process!.pid!);
  const scrapers: Scraper[] = [];
  const close = async (): Promise<void> => void (await Promise.all(scrapers.map((s) => s.stop().catch(() => undefined))));
  try {
    for (const n of names) scrapers.push(await startScraper(mesh, n, SCRAPE_URL, intervalMs));
  } catch (err) {
    await close();
    throw err;
  }
  const t0 = process.hrtime.bigint();
  const sup0 = cpuSeconds(supervisors);
  const all0 = cpuSeconds(trees());
  return {
    close,
    async stop(stats) {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m: Metrics = {
        supervisor_cpu_ms_per_s: ((cpuSeconds(supervisors) - sup0) * 1000) / seconds,
        nodes_cpu_ms_per_s: ((cpuSeconds(trees()) - all0) * 1000) / seconds,
      };
      const seen = await Promise.all(scrapers.map((s) => s.stop()));
      const ok = seen.filter((s) => s.ok > 0);
      m.scrapes_per_node = seen.reduce((a, s) => a + s.ok, 0) / seen.length;
      m.scraper_cpu_ms_per_s = seen.reduce((a, s) => a + s.cpuMs, 0) / seconds;
      if (ok.length > 0) {
        m.scrape_kib = ok.reduce((a, s) => a + s.meanBytes, 0) / ok.length / 1024;
        m.scrape_ms = ok.reduce((a, s) => a + s.medianMs, 0) / ok.length;
      }
      if (stats !== undefined) {
        for (const [i, s] of seen.entries()) {
          const wrong = GATED_SERIES.filter((name) => s.series.includes(name) !== (stats === 'gates-on'));
          if (s.ok === 0 || s.failed > 0 || wrong.length > 0) {
            const what = stats === 'gates-on' ? 'missing' : 'present with the gates off';
            throw new Error(`${names[i]}: ${s.ok} scrapes ok, ${s.failed} failed${wrong.length > 0 ? `, series ${what}: ${wrong.join(', ')}` : ''}`);
          }
        }
      }
      return m;
    },
  };
}
