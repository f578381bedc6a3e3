/**
 * Issue 11 acceptance, in one mesh: a Go nebula 1.6.1 lighthouse `lh`; the node under test `t` (nebula-ts, routines 2,
 * Prometheus with stats.message_metrics and stats.lighthouse_metrics); `g`, a Go 1.6.1 node with the very same stats,
 * lighthouse, punchy, routines and firewall config; `p`, a nebula-ts lighthouse client exporting to graphite.
 *
 * - The name sets: `g`'s /metrics and `t`'s /metrics name the same series (with their labels), apart from the
 *   documented differences: our extras (metrics-catalogue.ts EXTRA_NAMES, `routine.*`) and Go's runtime statistics.
 * - Equal to the wire: an underlay capture on t's interface and one on the lighthouse's, through handshakes, pings, a
 *   lighthouse query (t -> g) and a punch (p -> t: the lighthouse tells t to punch p), a test request, a closeTunnel
 *   each way, a recvError each way and a truncated datagram; then every meta and lighthouse counter on t's /metrics
 *   equals the number of such datagrams in the capture, per direction. Lighthouse messages are encrypted, so their
 *   type is told apart by what the capture does show: a HostQuery is the only lighthouse message of its length (one
 *   VpnIp), and a message from the lighthouse to t answers t's query if the last query the lighthouse received came
 *   from t, and is a punch notification (p's query about t) otherwise.
 * - A routine killed mid-run: no counter of t goes down, and the wire check above runs after it.
 * - Graphite: p's exports (to a TCP listener in p's namespace) carry the same numbers as `nebula-ctl stats -json`,
 *   and without stats.message_metrics / lighthouse_metrics only the recv_error counters of messages.*.
 * - The respawned routine counts: 4 pings after the kill add exactly 4 to the data-path totals.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Mesh } from '../../src/testbed/netns-mesh';
import { encodeMeta, MetaType } from '../../src/shared/protocol/lighthouse';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { EXTRA_NAMES, EXTRA_PREFIXES, GO_RUNTIME_PREFIXES } from '../../src/supervisor/metrics-catalogue';
import { metricName } from '../../src/supervisor/metrics';
import { prereqs } from '../helpers/prereq';
import { background } from './fixtures/background';
import { nebulaHeader, readPcapUdp, type UdpDatagram } from './fixtures/pcap';
import { request } from '../../src/ctl/client';
import { newMesh, status, until } from './helpers';

const LH = '192.168.100.1';
const T = '192.168.100.2';
const G = '192.168.100.3';
const P = '192.168.100.4';
const PORT = 4242;
const STATS_PORT = 9123;
const NS = { namespace: 'nebula', subsystem: '' };
const STATS = { type: 'prometheus', listen: `127.0.0.1:${STATS_PORT}`, path: '/metrics', ...NS, interval: '1s', message_metrics: true, lighthouse_metrics: true };
/** t's and g's config (besides their certs): lighthouse client, punchy, 2 routines, ICMP-only inbound firewall. */
const SUBJECT = {
  stats: STATS,
  routines: 2,
  // No periodic update during the test (one at start): the capture then holds a known set of lighthouse messages.
  lighthouse: { am_lighthouse: false, hosts: [LH], interval: 60 },
  punchy: { punch: true, delay: '100ms' },
  timers: { connection_alive_interval: 1 },
  firewall: { inbound: [{ port: 'any', proto: 'icmp', host: 'any' }] },
};

type Series = Map<string, number>;

/** GET /metrics inside the node's namespace (bash's /dev/tcp: no process start beyond the shell's). */
async function scrape(mesh: Mesh, node: string): Promise<{ series: Series; types: Map<string, string> }> {
  const response = await mesh.exec(node, 'bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${STATS_PORT}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3`]);
  const text = response.slice(response.indexOf('\r\n\r\n') + 4);
  const series: Series = new Map();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line.startsWith('#') || line.trim() === '') continue;
    const sp = line.lastIndexOf(' ');
    series.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return { series, types };
}

const value = (s: Series, dotted: string): number => s.get(metricName(NS, dotted)) ?? NaN;

/** A console command over the node's control socket (what nebula-ctl sends), from this process. */
async function control(mesh: Mesh, node: string, cmd: string, args: string[] = []): Promise<string> {
  const reply = await request(mesh.node(node).controlSocket, { cmd, args });
  if (reply.ok !== true || typeof reply.output !== 'string') throw new Error(`${cmd} on ${node}: ${JSON.stringify(reply)}`);
  return reply.output;
}

/** Bash's printf of raw bytes to a UDP address (one datagram per redirection), from the node's namespace. */
function sendRaw(mesh: Mesh, from: string, to: string, port: number, datagrams: Buffer[]): Promise<string> {
  const esc = (b: Buffer): string => [...b].map((x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
  return mesh.exec(from, 'bash', ['-c', datagrams.map((d) => `printf '${esc(d)}' > /dev/udp/${to}/${port}`).join('; ')]);
}

/** A series' identity without values: name and label names (label values too for `type`, the histogram's). */
function identity(key: string): string {
  const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key)!;
  if (!m[2]) return m[1]!;
  const labels = m[2].split(',').map((l) => l.split('=')[0]!);
  if (labels.includes('type')) return key;
  return `${m[1]}{${labels.join(',')}}`;
}

const flat = (dotted: string): string => metricName(NS, dotted);

/**
 * A HostQuery on the wire: header, NebulaMeta{Type, Details{VpnIp}} (every VpnIp of the mesh has the same varint
 * length), AEAD tag. No other lighthouse message is this short: an update or an answer carries addresses too.
 */
const QUERY_LENGTH = 16 + encodeMeta({ type: MetaType.HostQuery, details: { vpnIp: parseIPv4(G)!, ip4AndPorts: [], counter: 0, ip6AndPorts: [], relayVpnIps: [] } }).length + 16;

/** Every kind of message the scenario makes t send or receive at least once. */
const SCENARIO_KINDS = [
  'messages.tx.handshake_ixpsk0',
  'messages.rx.handshake_ixpsk0',
  'messages.tx.lighthouse',
  'messages.rx.lighthouse',
  'messages.tx.test_request',
  'messages.rx.test_response',
  'messages.tx.close_tunnel',
  'messages.rx.close_tunnel',
  'messages.tx.recv_error',
  'messages.rx.recv_error',
  'messages.rx.invalid',
  'messages.tx.holepunch',
  'lighthouse.tx.HostQuery',
  'lighthouse.tx.HostUpdateNotification',
  'lighthouse.rx.HostQueryReply',
  'lighthouse.rx.HostPunchNotification',
];

/** Per-direction counts of what the capture on t's interface shows, under the metric each kind is counted as. */
function wireCounts(packets: UdpDatagram[], self: string): Map<string, number> {
  const counts = new Map<string, number>();
  const inc = (k: string): void => void counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const d of packets) {
    const tx = d.src === self && d.srcPort === PORT;
    const rx = d.dst === self && d.dstPort === PORT;
    if (!tx && !rx) continue;
    const dir = tx ? 'tx' : 'rx';
    if (d.length === 1) {
      if (tx) inc(d.payload[0] === 0 ? 'messages.tx.holepunch' : 'messages.tx.punchy');
      continue; // punches received are not counted (nor by Go)
    }
    const h = nebulaHeader(d);
    if (!h) {
      if (rx) inc('messages.rx.invalid');
      continue;
    }
    switch (h.type) {
      case 0:
        inc(`messages.${dir}.handshake_ixpsk0`);
        break;
      case 1:
        break; // data: never counted per packet
      case 2:
        inc(`messages.${dir}.recv_error`);
        break;
      case 3:
        inc(`messages.${dir}.lighthouse`);
        if (tx) inc(d.length === QUERY_LENGTH ? 'lighthouse.tx.HostQuery' : 'lighthouse.tx.HostUpdateNotification');
        break;
      case 4:
        inc(`messages.${dir}.${h.subtype === 0 ? 'test_request' : 'test_response'}`);
        break;
      case 5:
        inc(`messages.${dir}.close_tunnel`);
        break;
      default:
        inc(`messages.${dir}.other`);
    }
  }
  return counts;
}

/** The lighthouse's messages to `self`, told apart as the header comment says, from the capture on the lighthouse. */
function lighthouseToSelf(packets: UdpDatagram[], lh: string, self: string): Map<string, number> {
  const counts = new Map<string, number>([
    ['lighthouse.rx.HostQueryReply', 0],
    ['lighthouse.rx.HostPunchNotification', 0],
  ]);
  let lastQuerier: string | undefined;
  for (const d of packets) {
    if (nebulaHeader(d)?.type !== 3) continue;
    if (d.dst === lh && d.length === QUERY_LENGTH) lastQuerier = d.src;
    if (d.src === lh && d.dst === self) {
      const k = lastQuerier === self ? 'lighthouse.rx.HostQueryReply' : 'lighthouse.rx.HostPunchNotification';
      counts.set(k, counts.get(k)! + 1);
    }
  }
  return counts;
}

/** Every meta and lighthouse counter t exports (the Go ones behind message_metrics and lighthouse_metrics). */
const WIRE_COUNTERS = [
  ...['rx', 'tx'].flatMap((d) => ['handshake_ixpsk0', 'recv_error', 'lighthouse', 'test_request', 'test_response', 'close_tunnel', 'other'].map((m) => `messages.${d}.${m}`)),
  'messages.rx.invalid',
  'messages.tx.punchy',
  'messages.tx.holepunch',
  ...['rx', 'tx'].flatMap((d) => ['HostQuery', 'HostQueryReply', 'HostUpdateNotification', 'HostPunchNotification', 'other'].map((m) => `lighthouse.${d}.${m}`)),
];

t.test('names as Go 1.6.1, counters equal to the wire, totals never down, graphite equal to nebula-ctl stats', async (t) => {
  if (!prereqs(t, ['root', 'tun', 'nebula', 'tcpdump'])) return;
  t.setTimeout(120_000);
  const t0 = Date.now();
  const phase = (what: string): void => void t.comment(`${what} at ${Date.now() - t0} ms`);
  const mesh = await newMesh(t);
  const lh = await mesh.add({ name: 'lh', kind: 'go', overlayIp: LH, staticHosts: [], config: { lighthouse: { am_lighthouse: true } } });
  const tn = await mesh.add({ name: 't', kind: 'ts', overlayIp: T, staticHosts: ['lh'], config: SUBJECT });
  await mesh.add({ name: 'g', kind: 'go', overlayIp: G, staticHosts: ['lh'], config: SUBJECT });
  const graphite = { type: 'graphite', host: '127.0.0.1:2003', prefix: 'nebula', interval: '1s' };
  await mesh.add({ name: 'p', kind: 'ts', overlayIp: P, staticHosts: ['lh'], config: { lighthouse: { hosts: [LH], interval: 60 }, stats: graphite } });
  mesh.writeConfigs();

  const dir = mesh.dir;
  const tcap = background(t, tn.ns, 'tcpdump', ['-i', 'eth0', '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '64', '-w', path.join(dir, 't.pcap'), `udp port ${PORT}`]);
  const lcap = background(t, lh.ns, 'tcpdump', ['-i', 'eth0', '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '64', '-w', path.join(dir, 'lh.pcap'), `udp port ${PORT}`]);
  await Promise.all([tcap.waitFor(/listening on/, 10_000), lcap.waitFor(/listening on/, 10_000)]);
  // A plaintext graphite listener in p's namespace: export n (one connection each) goes to graphite-<n>.txt.
  const exportFile = (n: number): string => path.join(dir, `graphite-${n}.txt`);
  const sink = background(t, mesh.node('p').ns, process.execPath, [
    '-e',
    `let n=0;require('net').createServer((c)=>{const b=[];c.on('data',(d)=>b.push(d));c.on('end',()=>{require('fs').writeFileSync(${JSON.stringify(dir)}+'/graphite-'+n+'.txt',Buffer.concat(b));console.log('export '+n++)})}).listen(2003,'127.0.0.1',()=>console.log('listening'))`,
  ]);
  await sink.waitFor(/listening/, 10_000);

  await mesh.start('lh');
  phase('mesh made, captures running');
  await Promise.all(['g', 'p', 't'].map((n) => mesh.start(n)));

  phase('nodes up');
  // t -> g: t knows g only through the lighthouse (a HostQuery and its reply; the lighthouse has g punch t).
  t.ok(await mesh.pingUntilReply('t', G), 't found g through the lighthouse');
  // p -> t: the lighthouse tells t to punch p (HostPunchNotification, messages.tx.holepunch after punchy.delay).
  t.ok(await mesh.pingUntilReply('p', T), 'p found t through the lighthouse');
  await until('t to punch p', () => status(mesh, 't'), (s) => (s.counters['messages.tx.holepunch'] ?? 0) >= 1, 5000);

  phase('query and punch done');
  // The name sets, once g's periodic gauges (hostmap.*, udp.*: registered at its first stats interval) are there.
  const goNames = await until('g to export its periodic gauges', () => scrape(mesh, 'g'), (m) => m.series.has(flat('udp.1.drops')) && m.series.has(flat('hostmap.main.hosts')), 10_000, 200);
  const tsNames = await scrape(mesh, 't');
  const ids = (m: Series): Set<string> => new Set([...m.keys()].filter((k) => !k.startsWith(flat('info'))).map(identity));
  const goIds = ids(goNames.series);
  const tsIds = ids(tsNames.series);
  const onlyGo = [...goIds].filter((n) => !tsIds.has(n)).sort();
  const onlyTs = [...tsIds].filter((n) => !goIds.has(n)).sort();
  const runtime = GO_RUNTIME_PREFIXES.map(flat);
  t.same(onlyGo.filter((n) => !runtime.some((p) => n.startsWith(p))), [], 'every series of Go 1.6.1 is exported, but its Go runtime statistics');
  t.ok(onlyGo.length > 0, `Go's runtime statistics are the documented difference (${onlyGo.length} series)`);
  const extras = EXTRA_NAMES.map(flat);
  const extraPrefixes = EXTRA_PREFIXES.map(flat);
  t.same(onlyTs.filter((n) => !extras.includes(n.replace(/\{.*$/, '')) && !extraPrefixes.some((p) => n.startsWith(p))), [], `our other series are the documented extras: ${onlyTs.join(' ')}`);
  t.ok([...goNames.series.keys()].some((k) => k.startsWith(`${flat('info')}{`)) && [...tsNames.series.keys()].some((k) => k.startsWith(`${flat('info')}{`)), 'both have the info gauge');
  t.same([...new Set(tsNames.types.values())], ['gauge'], 'every series a gauge, as 1.6.1 exports them');
  t.same([...new Set([...goNames.types.values()])], ['gauge']);

  phase('name sets compared');
  // A routine killed mid-run: nothing goes down, and the wire check below covers the respawned routine's counting.
  const before = await status(mesh, 't');
  const m1 = (await scrape(mesh, 't')).series;
  const victim = before.routines[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await until('routine 0 of t respawned', () => status(mesh, 't'), (s) => s.routines[0]!.restarts === 1 && s.routines[0]!.pid !== undefined && s.routines[0]!.pid !== victim.pid, 10_000);
  const m2 = (await scrape(mesh, 't')).series;
  const gauges = /^nebula_(hostmap_|firewall_conntrack_count|firewall_rules_version|routines$|udp_|handshakes\{type="(?!count)|network_tcp_rtt|info)/;
  const down = [...m1].filter(([k, v]) => !gauges.test(k) && !((m2.get(k) ?? -1) >= v)).map(([k, v]) => `${k}: ${v} -> ${m2.get(k)}`);
  t.same(down, [], 'no counter (total or per routine) went down when routine 0 was killed and respawned');
  t.ok([...m1.keys()].filter((k) => !gauges.test(k)).length > 50, 'and that covers every counter');
  // The respawned routine counts data packets into the same totals.
  const s0 = await status(mesh, 't');
  t.equal(await mesh.ping('p', T, 4, 2), 4, '4 pings p -> t');
  const s1 = await status(mesh, 't');
  const delta = (k: string): number => s1.counters[k]! - s0.counters[k]!;
  t.equal(delta('routine.inside.tx_packets'), 4, 'the 4 echo requests written to the tun (summed over routines)');
  t.equal(delta('routine.outside.tx_packets'), 4, 'and the 4 replies sent');

  phase('routine killed and respawned');
  // A test request: traffic t -> g that g drops (its firewall) leaves t without inbound traffic on the tunnel, so
  // t's connection manager asks (connection_alive_interval: 1). One datagram per poll keeps t's "out" mark set.
  const probes = background(t, tn.ns, 'bash', ['-c', `for i in $(seq 100); do echo probe > /dev/udp/${G}/7; sleep 0.2; done`]);
  await until('t to send a test request to g', () => status(mesh, 't'), (s) => s.counters['messages.tx.test_request']! >= 1, 15_000, 100);
  await probes.stop('SIGKILL');
  // Every test request answered before the tunnel closes: a reply arriving after the close is on the wire but, its
  // tunnel gone, counted as no_tunnel rather than test_response.
  await until(
    'every test request to be answered',
    () => status(mesh, 't'),
    (s) => s.counters['messages.rx.test_response']! >= s.counters['messages.tx.test_request']!,
    15_000,
    100,
  );
  // closeTunnel: t closes its tunnel to g (tx), p shuts down and tells t (rx).
  t.equal(await control(mesh, 't', 'close-tunnel', [G]), 'Closed\n');
  // recvError both ways, and one datagram too short for a header: from the lighthouse's namespace, raw.
  const unknownIndex = Buffer.concat([Buffer.from('11000000deadbeef0000000000000009', 'hex'), Buffer.alloc(32)]);
  const recvError = Buffer.from('12000000cafebabe0000000000000001', 'hex');
  await sendRaw(mesh, 'lh', tn.underlayIp, PORT, [Buffer.alloc(10, 0x11), unknownIndex, recvError]);

  phase('test request, closeTunnel, recvErrors sent');
  // Graphite: an export of p equal to `nebula-ctl stats -json` read just before and just after it (p is quiet now).
  const stats = async (): Promise<Record<string, unknown>> => JSON.parse(await control(mesh, 'p', 'stats', ['-json'])) as Record<string, unknown>;
  const exportsSoFar = (): number => Number(/export (\d+)\n$/.exec(sink.out())?.[1] ?? -1) + 1;
  const matched = await until(
    'a graphite export of p equal to nebula-ctl stats',
    async () => {
      const n = exportsSoFar();
      const s0 = await stats();
      await until('the next export', exportsSoFar, (c) => c > n, 5000);
      const s1 = await stats();
      return { s0, s1, lines: readFileSync(exportFile(n), 'utf8') };
    },
    (r) => JSON.stringify(r.s0) === JSON.stringify(r.s1),
    20_000,
    0,
  );
  const rows = matched.lines.trim().split('\n');
  t.ok(rows.every((l) => /^nebula\.\S+ -?\d+(\.\d\d)? \d{10}$/.test(l)), 'every line is `<prefix>.<name>.<field> <value> <unix seconds>`');
  const lines = new Map(rows.map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
  t.equal(lines.size, rows.length, 'no series twice');
  const mismatches: string[] = [];
  let expectedLines = 0;
  const expect = (key: string, v: number): void => {
    if (lines.get(key) !== v) mismatches.push(`${key}: graphite ${lines.get(key)}, stats ${v}`);
  };
  for (const [name, v] of Object.entries(matched.s0)) {
    if (typeof v === 'number') {
      const counter = lines.has(`nebula.${name}.count`);
      expect(`nebula.${name}.${counter ? 'count' : 'value'}`, v);
      if (counter) expect(`nebula.${name}.count_ps`, v); // interval 1s: per second = the count
      expectedLines += counter ? 2 : 1;
    } else if (Array.isArray(v)) {
      (v as number[]).forEach((x, r) => {
        expect(`nebula.routine.${r}.${name.slice('routine.'.length)}.count`, x);
        expectedLines += 2;
      });
    } else {
      const h = v as Record<string, number>;
      for (const [field, type] of [['count', 'count'], ['min', 'min'], ['max', 'max'], ['75-percentile', 'perc75'], ['999-percentile', 'perc999']]) {
        expect(`nebula.${name}.${field}`, type === 'count' || type === 'min' || type === 'max' ? h[type]! : Number(h[type]!.toFixed(2)));
      }
      expectedLines += 10;
    }
  }
  t.same(mismatches, [], `p's graphite export equals nebula-ctl stats -json (${lines.size} lines)`);
  t.equal(rows.length, expectedLines, 'and has nothing else');
  t.same(
    [...lines.keys()].filter((k) => /^nebula\.(messages|lighthouse)\.(rx|tx)\./.test(k)).sort(),
    ['nebula.messages.rx.recv_error.count', 'nebula.messages.rx.recv_error.count_ps', 'nebula.messages.tx.recv_error.count', 'nebula.messages.tx.recv_error.count_ps'],
    'without message_metrics and lighthouse_metrics only recv_error of messages.* (as Nebula 1.6.1)',
  );

  await mesh.stop('p'); // p tells t it is leaving: a closeTunnel t receives

  phase('graphite compared');
  // Every meta and lighthouse counter equals the capture, per direction, once both are quiet.
  const result = await until(
    "every kind of the scenario on the wire, and t's counters equal to the capture",
    async () => {
      const wire = wireCounts(readPcapUdp(path.join(dir, 't.pcap')), tn.underlayIp);
      for (const [k, v] of lighthouseToSelf(readPcapUdp(path.join(dir, 'lh.pcap')), lh.underlayIp, tn.underlayIp)) wire.set(k, v);
      const m = (await scrape(mesh, 't')).series;
      const again = wireCounts(readPcapUdp(path.join(dir, 't.pcap')), tn.underlayIp);
      const diff = WIRE_COUNTERS.filter((k) => value(m, k) !== (wire.get(k) ?? 0)).map((k) => `${k}: metrics ${value(m, k)} wire ${wire.get(k) ?? 0}`);
      const stable = [...again].every(([k, v]) => wire.get(k) === v);
      const missing = SCENARIO_KINDS.filter((k) => (wire.get(k) ?? 0) === 0);
      return { m, wire, diff, stable, missing };
    },
    // The scenario must have reached every kind it was built for before the counts are compared (a recvError for a
    // datagram with an unknown index leaves only when it expires from the early-arrivals room, 250 ms later).
    (r) => r.diff.length === 0 && r.stable && r.missing.length === 0,
    15_000,
    200,
  ).catch((err: Error) => {
    t.fail(err.message);
    return undefined;
  });
  if (!result) return;
  for (const k of WIRE_COUNTERS) t.equal(value(result.m, k), result.wire.get(k) ?? 0, `${k} = ${result.wire.get(k) ?? 0} on the wire`);

  const text = await control(mesh, 't', 'stats');
  t.match(text, new RegExp(`^messages\\.tx\\.close_tunnel\\s+counter\\s+${value(result.m, 'messages.tx.close_tunnel')}$`, 'm'), 'nebula-ctl stats: the same number as /metrics');
  t.match(text, /^routine\.inside\.rx_packets\{routine="1"\}\s+counter\s+\d+$/m, 'per-routine rows');
});
