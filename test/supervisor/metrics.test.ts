/**
 * The supervisor's share of Nebula's metrics, without root: closeTunnel counted once per datagram actually sealed
 * and sent, the `handshakes` histogram with go-metrics' statistics and 1.6.1's export shape (one gauge, label
 * `type`), the host map gauges, and the SO_MEMINFO `udp.<i>.*` gauges read from real sockets.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { createPacketCipher } from '../../src/shared/crypto';
import { Logger } from '../../src/shared/log';
import { allocSockaddrIn } from '../../src/shared/native/sockaddr';
import { close as closeFd, SK_MEMINFO_FIELDS, socketMemInfo } from '../../src/shared/native/libc';
import { createUdpSocket } from '../../src/shared/native/udp';
import { HEADER_LEN, TYPE_CLOSE_TUNNEL } from '../../src/shared/protocol/header';
import { TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { SEND_COUNTER_LIMIT, TunnelSlots } from '../../src/shared/state/tunnel-slots';
import type { DatagramOutbox } from '../../src/shared/tunnel/send';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { Histogram, HISTOGRAM_TYPES } from '../../src/supervisor/histogram';
import { HostMap, type HostInfo } from '../../src/supervisor/hostmap';
import type { LiveConfig } from '../../src/supervisor/live-config';
import { buildRegistry, type MetricsOptions, type MetricsSource } from '../../src/supervisor/metrics';
import { Tunnels } from '../../src/supervisor/tunnels';
import { EXTRA_NAMES, EXTRA_PREFIXES, GO_RUNTIME_PREFIXES, isExtra, metricDefinitions } from '../../src/supervisor/metrics-catalogue';
import { LIGHTHOUSE_METRICS } from '../../src/supervisor/lighthouse-metrics';
import type { NebulaConfig } from '../../src/shared/config';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-metrics-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(dir);
const cert = makeHostCert(path.join(dir, 'peer'), ca, { name: 'peer', ip: '192.168.100.9/24' }).certObj;
const ip = (s: string): number => parseIPv4(s)!;

function tunnelsWithOutbox(): { tunnels: Tunnels; hostmap: HostMap; slots: TunnelSlots; counters: SupervisorCounters; sent: Buffer[] } {
  const slots = new TunnelSlots(new Int32Array(8 * TUNNEL_SLOT_WORDS), -1);
  const hostmap = new HostMap(slots, 8);
  const counters = new SupervisorCounters();
  const sent: Buffer[] = [];
  const buf = Buffer.alloc(2048);
  const outbox: DatagramOutbox = { buffer: () => buf, commit: (len) => void sent.push(Buffer.from(buf.subarray(0, len))) };
  const tunnels = new Tunnels({
    log: new Logger({ level: 'error', write: () => undefined }),
    counters,
    hostmap,
    slots,
    outbox,
    live: {} as LiveConfig,
    broadcast: () => undefined,
  });
  return { tunnels, hostmap, slots, counters, sent };
}

function addHost(hostmap: HostMap, n: number): HostInfo {
  const now = Date.now();
  const h: HostInfo = {
    vpnIp: ip(`192.168.100.${n}`),
    localIndex: 100 + n,
    remoteIndex: 200 + n,
    slot: hostmap.allocateSlot(now)!,
    sendKey: Buffer.alloc(32, n),
    recvKey: Buffer.alloc(32, n),
    cert,
    remoteIp: ip(`10.0.0.${n}`),
    remotePort: 4242,
    handshakeTime: 1n,
    initiatedLocally: true,
    encrypt: createPacketCipher('aes', Buffer.alloc(32, n)),
    remoteSockaddr: allocSockaddrIn(),
    recvErrors: 0,
    createdAt: now,
  };
  hostmap.add(h);
  return h;
}

t.test('messages.tx.close_tunnel counts each closeTunnel sealed and sent, and only those', async (t) => {
  const { tunnels, hostmap, slots, counters, sent } = tunnelsWithOutbox();
  const hosts = [2, 3, 4].map((n) => addHost(hostmap, n));
  slots.setSendCounter(hosts[2]!.slot, SEND_COUNTER_LIMIT); // this one's counter space is spent: nothing can go out
  tunnels.closeAll();
  t.equal(sent.length, 2, 'two closeTunnels on the wire');
  t.same(sent.map((d) => d[0]! & 0x0f), [TYPE_CLOSE_TUNNEL, TYPE_CLOSE_TUNNEL]);
  t.same(sent.map((d) => d.length), [HEADER_LEN + 16, HEADER_LEN + 16], 'empty payload, AEAD tag only');
  t.equal(counters.get('messages.tx.close_tunnel'), 2, 'equal to what was sent');
  t.equal(hostmap.size, 0, 'all three tunnels removed');

  const h = addHost(hostmap, 5);
  tunnels.teardown(h, false);
  t.equal(counters.get('messages.tx.close_tunnel'), 2, 'a silent teardown (dead tunnel) sends and counts nothing');
  t.equal(sent.length, 2);
  const g = addHost(hostmap, 6);
  tunnels.teardown(g, true);
  tunnels.teardown(g, true);
  t.equal(counters.get('messages.tx.close_tunnel'), 3, 'a tunnel already gone is not closed twice');
  t.equal(sent.length, 3);
});

t.test('Histogram: go-metrics statistics over the recorded values', async (t) => {
  const h = new Histogram(() => 0, () => 0.5);
  t.same(h.snapshot(), Object.fromEntries([...HISTOGRAM_TYPES, 'perc50'].map((k) => [k, 0])), 'empty: every value 0');
  for (const v of [10, 20, 30, 40]) h.update(v);
  const s = h.snapshot();
  t.equal(s.count, 4);
  t.equal(s.min, 10);
  t.equal(s.max, 40);
  t.equal(s.sum, 100);
  t.equal(s.mean, 25);
  t.equal(s.variance, 125, 'population variance, as go-metrics');
  t.equal(s.stddev, Math.sqrt(125));
  // SamplePercentiles: pos = p·(n+1) = 3.75 -> 30 + 0.75·(40-30)
  t.equal(s.perc75, 37.5);
  t.equal(s.perc50, 25, 'the median (graphite sends it): pos 2.5 -> 20 + 0.5·(30-20)');
  t.equal(s.perc95, 40, 'pos past the last value -> the max');
  t.equal(s.perc999, 40);
});

t.test('Histogram: count keeps every update, the statistics a bounded reservoir (1028, as ExpDecaySample)', async (t) => {
  let r = 0;
  const h = new Histogram(() => 0, () => ((r = (r * 7919 + 13) % 1000), r / 1000));
  for (let i = 0; i < 3000; i++) h.update(1);
  const s = h.snapshot();
  t.equal(s.count, 3000);
  t.equal(s.sum, 1028, 'sum over the reservoir only');
  t.equal(s.mean, 1);
});

function fakeSource(over: Partial<MetricsSource> = {}): MetricsSource {
  return {
    routines: 2,
    counterTotal: () => 0,
    routineCounter: () => 0,
    supervisorCounters: () => new Map<string, number>().entries(),
    gauges: () => ({ 'hostmap.main.indexes': 3, 'hostmap.pending.indexes': 1 }),
    handshakes: () => ({ count: 2, max: 9, min: 1, mean: 5, stddev: 4, perc50: 5, perc75: 9, perc95: 9, perc99: 9, perc999: 9, sum: 10, variance: 16 }),
    udpSockets: 2,
    udpMemInfo: (i) => [1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => v + 100 * i),
    ...over,
  };
}

const stats: NebulaConfig['stats'] = { namespace: 'nebula', subsystem: '', message_metrics: false } as NebulaConfig['stats'];
const options: MetricsOptions = { stats, punch: false, tunDisabled: false };

async function exposition(src: MetricsSource, o: MetricsOptions = options): Promise<Map<string, number>> {
  const text = await buildRegistry(o, src, 'test').metrics();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

t.test('export: handshakes as one gauge with the type label, udp.<i>.* per socket, host map gauges', async (t) => {
  const m = await exposition(fakeSource());
  for (const type of HISTOGRAM_TYPES) t.ok(m.has(`nebula_handshakes{type="${type}"}`), `handshakes{type="${type}"}`);
  t.equal(m.get('nebula_handshakes{type="count"}'), 2);
  t.equal(m.get('nebula_handshakes{type="sum"}'), 10);
  t.equal(m.get('nebula_udp_0_rmem_alloc'), 1);
  t.equal(m.get('nebula_udp_0_drops'), 9);
  t.equal(m.get('nebula_udp_1_rcvbuf'), 102);
  t.equal(m.get('nebula_udp_1_backlog'), 108);
  t.equal(m.get('nebula_hostmap_main_indexes'), 3);
  t.equal(m.get('nebula_hostmap_pending_indexes'), 1);
  t.ok(m.has('nebula_hostinfo_cached_packets_sent') && m.has('nebula_hostinfo_cached_packets_dropped'), 'cached packet counters, without message_metrics');
  t.notOk(m.has('nebula_messages_tx_close_tunnel'), 'close_tunnel stays behind stats.message_metrics');
  const text = await buildRegistry(options, fakeSource(), 'test').metrics();
  t.match(text, /# TYPE nebula_handshakes gauge/, 'a gauge, as 1.6.1 exports it');

  const none = await exposition(fakeSource({ udpMemInfo: () => undefined }));
  t.same([...none.keys()].filter((k) => k.startsWith('nebula_udp_')), [], 'no SO_MEMINFO: no udp gauges (as Go)');
});

t.test('socketMemInfo reads SO_MEMINFO of a real UDP socket', async (t) => {
  const fd = createUdpSocket({ host: '127.0.0.1', port: 0, reusePort: false });
  t.teardown(() => closeFd(fd));
  const info = socketMemInfo(fd);
  t.ok(info, 'the kernel answers SO_MEMINFO');
  t.equal(info!.length, SK_MEMINFO_FIELDS.length);
  t.ok(info!.every((v) => Number.isInteger(v) && v >= 0));
  t.ok(info![SK_MEMINFO_FIELDS.indexOf('rcvbuf')]! > 0, 'rcvbuf is the socket receive buffer');
  t.equal(socketMemInfo(-1), undefined, 'a bad fd gives undefined, not a throw');
});

/**
 * Go nebula 1.6.1's series for a config with stats.message_metrics, stats.lighthouse_metrics, punchy.punch and 2
 * routines, from its GetOrRegister* calls (bits.go, firewall.go, handshake_manager.go, hostmap.go, interface.go,
 * lighthouse.go, message_metrics.go, udp/udp_linux.go), its Go runtime statistics left out (GO_RUNTIME_PREFIXES).
 * The e2e test test/e2e/metrics-go.test.ts checks the same against a running Go node.
 */
const GO_161_FULL = [
  ...['rx', 'tx'].flatMap((d) =>
    [
      'handshake_ixpsk0',
      'recv_error',
      'lighthouse',
      'test_request',
      'test_response',
      'close_tunnel',
      'other',
    ].map((m) => `messages.${d}.${m}`),
  ),
  'messages.tx.punchy',
  'messages.tx.holepunch',
  ...['rx', 'tx'].flatMap((d) => ['HostQuery', 'HostQueryReply', 'HostUpdateNotification', 'HostPunchNotification', 'other'].map((m) => `lighthouse.${d}.${m}`)),
  'network.packets.lost',
  'network.packets.duplicate',
  'network.packets.out_of_window',
  'network.tcp.rtt',
  ...['incoming', 'outgoing'].flatMap((d) => ['local_ip', 'remote_ip', 'no_rule'].map((r) => `firewall.${d}.dropped.${r}`)),
  'firewall.conntrack.count',
  'firewall.rules.version',
  'handshake_manager.initiated',
  'handshake_manager.timed_out',
  ...['main', 'pending'].flatMap((m) => ['hosts', 'indexes', 'remoteIndexes', 'relayIndexes'].map((g) => `hostmap.${m}.${g}`)),
  'handshakes',
  'hostinfo.cached_packets.sent',
  'hostinfo.cached_packets.dropped',
  'routines',
  ...[0, 1].flatMap((i) => SK_MEMINFO_FIELDS.map((f) => `udp.${i}.${f}`)),
];

function gaugesLikeStatus(): Record<string, number> {
  const g: Record<string, number> = { 'firewall.conntrack.count': 0, 'firewall.rules.version': 0, routines: 2 };
  for (const m of ['main', 'pending']) for (const x of ['hosts', 'indexes', 'remoteIndexes', 'relayIndexes']) g[`hostmap.${m}.${x}`] = 0;
  return g;
}

const namesOf = (o: MetricsOptions): string[] => metricDefinitions(o, fakeSource({ gauges: gaugesLikeStatus })).map((d) => d.name);
const full: MetricsOptions = { stats: { ...stats, message_metrics: true, lighthouse_metrics: true }, punch: true, tunDisabled: false };

t.test('the catalogue: Go 1.6.1\'s series for the same config, plus our documented extras and nothing else', async (t) => {
  const names = namesOf(full);
  t.same(new Set(names).size, names.length, 'no name twice');
  t.same(names.filter((n) => !isExtra(n)).sort(), [...GO_161_FULL].sort(), 'every Go series, nothing more');
  t.same(
    names.filter(isExtra).filter((n) => !n.startsWith('routine.')).sort(),
    [...EXTRA_NAMES].sort(),
    'the extras are exactly the documented ones (and routine.*)',
  );
  t.ok(GO_161_FULL.every((n) => !GO_RUNTIME_PREFIXES.some((p) => n.startsWith(p))), 'no Go series of ours starts like a Go runtime one');
  t.ok(names.every((n) => !GO_RUNTIME_PREFIXES.some((p) => n.startsWith(p))));
});

t.test('the catalogue\'s gates are 1.6.1\'s', async (t) => {
  const messages = (o: MetricsOptions): string[] => namesOf(o).filter((n) => n.startsWith('messages.') || n.startsWith('lighthouse.') && !isExtra(n));
  const base = { ...full, stats: { ...stats, message_metrics: false, lighthouse_metrics: false } };
  t.same(messages(base).sort(), ['messages.rx.recv_error', 'messages.tx.recv_error'], 'neither: recv_error only (newMessageMetricsOnlyRecvError)');
  t.same(
    messages({ ...base, stats: { ...base.stats, lighthouse_metrics: true } }).filter((n) => !n.endsWith('recv_error')),
    [...LIGHTHOUSE_METRICS],
    'lighthouse_metrics: lighthouse.{rx,tx}.* and messages.tx.holepunch',
  );
  const msg = { ...base, stats: { ...base.stats, message_metrics: true } };
  t.ok(messages(msg).includes('messages.tx.punchy'), 'message_metrics with punchy.punch: messages.tx.punchy (HostMap.Punchy)');
  t.notOk(messages({ ...msg, punch: false }).includes('messages.tx.punchy'), 'without punchy.punch Go never registers it');
  t.notOk(messages(msg).includes('messages.rx.message'), 'messages.{rx,tx}.message only with tun.disabled');
  t.ok(['messages.rx.message', 'messages.tx.message'].every((n) => messages({ ...msg, tunDisabled: true }).includes(n)), 'tun.disabled + message_metrics: the disabled tun\'s counters');
  t.notOk(messages({ ...base, tunDisabled: true }).includes('messages.rx.message'), 'but not without message_metrics');
  t.ok(EXTRA_NAMES.filter((n) => !n.startsWith('messages.')).every((n) => namesOf(base).includes(n)), 'our extras outside messages.* are always there');
});

t.test('every documented extra is in docs/metrics.md', async (t) => {
  const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
  for (const n of [...EXTRA_NAMES, ...EXTRA_PREFIXES.map((p) => `${p}*`), ...GO_RUNTIME_PREFIXES.map((p) => `${p}*`)]) t.ok(doc.includes(`\`${n}\``), `docs/metrics.md names \`${n}\``);
  for (const def of metricDefinitions(full, fakeSource()).filter((d) => d.kind === 'per-routine')) t.ok(doc.includes(`\`${def.name}\``), `docs/metrics.md describes \`${def.name}\``);
});
