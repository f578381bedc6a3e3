/**
 * The console commands (src/supervisor/console.ts) over real parts without root: our node's LiveConfig, host map,
 * tunnels and handshake manager, a peer's handshake manager wired to ours in memory (real Noise, real certs), a
 * conntrack table over an array, and a routine pool stand-in. Every command is run as nebula-ctl sends it
 * (name + argv); JSON output is parsed and compared field by field with Go's shapes; actions are checked where they
 * land: the closeTunnel datagram sealed for the peer, the remoteChanged told to the routines, the stage 1 sent to a
 * given address, the log level and format of the node's own logger.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COMMANDS, parseCommandArgs, findCommand, UsageError } from '../../src/shared/console-commands';
import type { SupervisorToRoutine } from '../../src/shared/ipc/messages';
import { Logger } from '../../src/shared/log';
import { sockaddrIPv4, sockaddrPort } from '../../src/shared/native/sockaddr';
import { certToJsonValue, certToText } from '../../src/shared/pki';
import { TYPE_CLOSE_TUNNEL } from '../../src/shared/protocol/header';
import { ConntrackTable, conntrackEntries, conntrackNow, type FlowKey } from '../../src/shared/state/conntrack';
import { C } from '../../src/shared/state/counters';
import { CONNTRACK_WORDS, TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { TunnelSlots } from '../../src/shared/state/tunnel-slots';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { NodeConsole, type ConsoleParts, type ConsoleReply } from '../../src/supervisor/console';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { HandshakeManager } from '../../src/supervisor/handshake-manager';
import { HostMap } from '../../src/supervisor/hostmap';
import { LiveConfig } from '../../src/supervisor/live-config';
import { Tunnels } from '../../src/supervisor/tunnels';
import { deliverHandshake, installInto, peerPki, testHostMap } from './fixtures/handshake-peers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-console-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(path.join(dir, 'ca'));

const OURS = '192.168.50.1';
const PEER = '192.168.50.2';
const ourAddr: Endpoint = { ip: parseIPv4('10.0.0.1')!, port: 4242 };
const peerAddr: Endpoint = { ip: parseIPv4('10.0.0.2')!, port: 4242 };
const CT_CAPACITY = 64;

interface Rig {
  console: NodeConsole;
  parts: ConsoleParts;
  tunnels: Tunnels;
  hostmap: HostMap;
  peerHostmap: HostMap;
  lines: string[];
  log: Logger;
  /** What our supervisor sealed and sent on a tunnel (closeTunnel): the datagram and where to. */
  sealed: Array<{ data: Buffer; to: Endpoint }>;
  /** Stage-1 datagrams our handshake manager sent, by destination. */
  handshakesSent: Endpoint[];
  broadcasts: SupervisorToRoutine[];
  conntrack: ConntrackTable;
  /** The conntrack clock's second the stand-in region reads the table at. */
  ctNow: number;
  run(line: string): ConsoleReply;
  /** Runs a command that must succeed; its output. */
  out(line: string): string;
  /** Runs a command that must fail; its error. */
  err(line: string): string;
}

function rig(t: Test): Rig {
  const own = makeHostCert(path.join(dir, 'a'), ca, { name: 'node-a', ip: `${OURS}/24`, groups: ['ops'] });
  const file = path.join(dir, 'a', 'config.yml');
  writeFileSync(file, `pki: {ca: ${own.ca}, cert: ${own.cert}, key: ${own.key}}\ntun: {disabled: true}\nlogging: {level: info, format: text, disable_timestamp: true}\n`);
  const lines: string[] = [];
  const log = new Logger({ disableTimestamp: true, write: (l) => void lines.push(l) });
  const live = new LiveConfig(file, log);
  const slots = new TunnelSlots(new Int32Array(16 * TUNNEL_SLOT_WORDS), -1);
  const hostmap = new HostMap(slots, 16);
  const counters = new SupervisorCounters();
  const sealed: Rig['sealed'] = [];
  const scratch = Buffer.alloc(2048);
  const broadcasts: SupervisorToRoutine[] = [];
  const tunnels = new Tunnels({
    log,
    counters,
    hostmap,
    slots,
    live,
    broadcast: (m) => void broadcasts.push(m),
    outbox: {
      buffer: () => scratch,
      commit: (len, to) => void sealed.push({ data: Buffer.from(scratch.subarray(0, len)), to: { ip: sockaddrIPv4(to), port: sockaddrPort(to) } }),
    },
  });
  const handshakesSent: Endpoint[] = [];
  const peerPkiFiles = peerPki(dir, ca, 'node-b', `${PEER}/24`);
  const peerHostmap = testHostMap();
  // The wire: our stage 1 to the peer's address reaches the peer, its stage 2 comes back; anything else is lost.
  const peerHm: HandshakeManager = new HandshakeManager({
    log: new Logger({ write: () => undefined }),
    cipher: 'aes',
    pki: () => peerPkiFiles,
    vpnIp: parseIPv4(PEER)!,
    hostmap: peerHostmap,
    tryIntervalMs: 1000,
    retries: 3,
    counters: new SupervisorCounters(),
    addressesFor: () => [],
    sendUdp: (buf, to) => {
      if (to.ip === ourAddr.ip && to.port === ourAddr.port) deliverHandshake(ourHm, peerAddr, Buffer.from(buf));
    },
    install: installInto(peerHostmap),
    sendTest: () => undefined,
  });
  const ourHm: HandshakeManager = new HandshakeManager({
    log,
    cipher: 'aes',
    pki: () => live.pki,
    vpnIp: live.vpnIp,
    hostmap,
    tryIntervalMs: 1000,
    retries: 3,
    counters,
    addressesFor: (ip) => (ip === parseIPv4(PEER) ? [peerAddr] : []),
    sendUdp: (buf, to) => {
      handshakesSent.push(to);
      if (to.ip === peerAddr.ip && to.port === peerAddr.port) deliverHandshake(peerHm, ourAddr, Buffer.from(buf));
    },
    install: (h) => tunnels.install(h),
    sendTest: () => undefined,
  });
  t.teardown(() => {
    ourHm.stop();
    peerHm.stop();
  });
  const ctTable = new Int32Array(CT_CAPACITY * CONNTRACK_WORDS);
  const conntrack = new ConntrackTable(ctTable, CT_CAPACITY);
  const ctNow = conntrackNow();
  const parts: ConsoleParts = {
    log,
    live,
    insideName: 'nebula1',
    hostmap,
    handshakes: ourHm,
    tunnels,
    // Started 65.5 s before every call: 65 whole seconds of uptime whenever the command reads its own clock.
    routines: { pids: () => [4101, undefined], restarts: (i) => [0, 2][i]!, startedAt: (i) => (i === 0 ? Date.now() - 65_500 : undefined) },
    region: {
      capacities: { tunnels: 16, routines: 2, conntrack: CT_CAPACITY },
      routineCounter: (r, i) => r * 1000 + i,
      // The table is read at the second the rig was built: a listing's expiry does not depend on when it runs.
      conntrackCount: () => conntrack.count(ctNow),
      conntrackEntries: (limit) => conntrackEntries(ctTable, CT_CAPACITY, ctNow, limit),
    },
  };
  const nodeConsole = new NodeConsole(() => parts, '0.1.0-test');
  const run = (line: string): ConsoleReply => {
    const [cmd, ...argv] = line.split(' ').filter(Boolean);
    return nodeConsole.run(cmd!, argv);
  };
  return {
    console: nodeConsole,
    parts,
    tunnels,
    hostmap,
    peerHostmap,
    lines,
    log,
    sealed,
    handshakesSent,
    broadcasts,
    conntrack,
    ctNow,
    run,
    out(line) {
      const r = run(line);
      if (!r.ok) throw new Error(`${line}: unexpected error ${r.error}`);
      return r.output;
    },
    err(line) {
      const r = run(line);
      if (r.ok) throw new Error(`${line}: expected an error, got output ${JSON.stringify(r.output)}`);
      t.notOk(r.error.includes('\n'), `${line}: the error is one line`);
      return r.error;
    },
  };
}

/** Our tunnel to the peer, brought up by a handshake through the in-memory wire. */
function connect(r: Rig): void {
  r.out(`create-tunnel ${PEER}`);
  if (!r.hostmap.get(parseIPv4(PEER)!)) throw new Error('the handshake did not complete');
}

const GO_HOSTINFO_KEYS = ['vpnIp', 'localIndex', 'remoteIndex', 'remoteAddrs', 'cachedPackets', 'cert', 'messageCounter', 'currentRemote', 'currentRelaysToMe', 'currentRelaysThroughMe'];

t.test('list-hostmap and print-tunnel: Go ControlHostInfo, in text and json', async (t) => {
  const r = rig(t);
  t.equal(r.out('list-hostmap'), '', 'no tunnel: no line');
  t.equal(r.out('list-hostmap -json'), '[]\n', 'no tunnel: an empty json list');
  connect(r);
  const h = r.hostmap.get(parseIPv4(PEER)!)!;
  const peerSide = r.peerHostmap.get(parseIPv4(OURS)!)!;
  t.equal(r.out('list-hostmap'), `${PEER}: [10.0.0.2:4242]\n`, "Go's text line: vpn ip and the remote addresses");
  const list = JSON.parse(r.out('list-hostmap -json')) as Array<Record<string, unknown>>;
  t.equal(list.length, 1);
  const entry = list[0]!;
  t.same(Object.keys(entry), GO_HOSTINFO_KEYS, "Go's field names, in Go's order");
  t.same(entry, {
    vpnIp: PEER,
    localIndex: h.localIndex,
    remoteIndex: peerSide.localIndex,
    remoteAddrs: [{ ip: '10.0.0.2', port: 4242 }],
    cachedPackets: 0,
    cert: certToJsonValue(h.cert),
    messageCounter: 2, // as Go: the handshake used counters 1 and 2
    currentRemote: { ip: '10.0.0.2', port: 4242 },
    currentRelaysToMe: [],
    currentRelaysThroughMe: [],
  });
  t.equal((entry.cert as { details: { name: string } }).details.name, 'node-b', "the peer's cert name");
  t.equal(entry.remoteIndex, peerSide.localIndex, "remoteIndex is the peer's own local index");

  const tunnel = JSON.parse(r.out(`print-tunnel ${PEER}`)) as Record<string, unknown>;
  t.same(tunnel, entry, 'print-tunnel is the same ControlHostInfo');
  t.same(JSON.parse(r.out(`print-tunnel -json ${PEER}`)), entry, '-json is accepted and changes nothing');
  const pretty = r.out(`print-tunnel -pretty ${PEER}`);
  t.match(pretty, /^\{\n {4}"vpnIp": "192\.168\.50\.2",\n/, '-pretty indents by four spaces, as Go');
  t.same(JSON.parse(pretty), entry);
  t.same(JSON.parse(r.out('list-hostmap -pretty')), list, '-pretty alone means json');
  r.tunnels.sendTest(h);
  t.equal((JSON.parse(r.out(`print-tunnel ${PEER}`)) as { messageCounter: number }).messageCounter, 3, 'messageCounter: the last counter sent');

  t.equal(r.err('print-tunnel'), 'No vpn ip was provided');
  t.equal(r.err('print-tunnel 300.1.2.3'), 'The provided vpn ip could not be parsed: 300.1.2.3');
  t.equal(r.err('print-tunnel 0.0.0.0'), 'The provided vpn ip could not be parsed: 0.0.0.0');
  t.equal(r.err('print-tunnel 192.168.50.9'), 'Could not find tunnel for vpn ip: 192.168.50.9');
});

t.test('print-cert: ours or a peer\'s, as text, json and PEM', async (t) => {
  const r = rig(t);
  const own = r.parts.live.pki.cert;
  t.equal(r.out('print-cert'), certToText(own) + '\n', 'text: nebula-cert print\'s block');
  const json = JSON.parse(r.out('print-cert -json')) as { details: { name: string; groups: string[] }; fingerprint: string };
  t.equal(json.details.name, 'node-a');
  t.same(json.details.groups, ['ops']);
  t.equal(json.fingerprint, own.fingerprint());
  t.equal(r.out('print-cert -raw'), own.toPem(), '-raw: the PEM');
  t.same(JSON.parse(r.out('print-cert -raw -json')), json, '-json wins over -raw, as in Go');
  t.equal(r.err(`print-cert ${PEER}`), `Could not find tunnel for vpn ip: ${PEER}`);
  connect(r);
  const peer = JSON.parse(r.out(`print-cert -pretty ${PEER}`)) as { details: { name: string } };
  t.equal(peer.details.name, 'node-b', "a tunnel's cert: the peer's");
});

t.test('create-tunnel and list-pending-hostmap', async (t) => {
  const r = rig(t);
  t.equal(r.out('list-pending-hostmap -json'), '[]\n');
  // No address is known for .7: the handshake waits; with -address it is sent there at once.
  t.equal(r.out('create-tunnel 192.168.50.7'), 'Created\n');
  t.equal(r.out('create-tunnel -address 10.0.0.9:4243 192.168.50.8'), 'Created\n');
  t.same(r.handshakesSent, [{ ip: parseIPv4('10.0.0.9'), port: 4243 }], 'a stage 1 went to the given address, none elsewhere');
  const pending = JSON.parse(r.out('list-pending-hostmap -json')) as Array<Record<string, unknown>>;
  t.same(
    pending.map((p) => [p.vpnIp, p.remoteIndex, p.cert, p.currentRemote, p.remoteAddrs]),
    [
      ['192.168.50.7', 0, null, null, []],
      ['192.168.50.8', 0, null, null, [{ ip: '10.0.0.9', port: 4243 }]],
    ],
  );
  t.same(Object.keys(pending[0]!), GO_HOSTINFO_KEYS);
  t.ok(pending.every((p) => typeof p.localIndex === 'number' && p.localIndex > 0), 'each with its local index');
  t.equal(r.out('list-pending-hostmap'), '192.168.50.7: []\n192.168.50.8: [10.0.0.9:4243]\n');
  t.equal(r.err('create-tunnel 192.168.50.8'), 'Tunnel already handshaking');
  connect(r);
  t.equal(r.err(`create-tunnel ${PEER}`), 'Tunnel already exists');
  t.equal(r.err(`create-tunnel ${OURS}`), `${OURS} is this node's own vpn ip`);
  t.equal(r.err('create-tunnel -address 10.0.0.9 192.168.50.20'), 'Address could not be parsed: 10.0.0.9');
  t.equal(r.err('create-tunnel'), 'No vpn ip was provided');
});

t.test('change-remote moves the tunnel and tells every routine', async (t) => {
  const r = rig(t);
  connect(r);
  const h = r.hostmap.get(parseIPv4(PEER)!)!;
  r.broadcasts.length = 0;
  t.equal(r.out(`change-remote ${PEER} 10.0.0.22:4300`), 'Changed\n');
  t.same([h.remoteIp, h.remotePort], [parseIPv4('10.0.0.22'), 4300], 'the host map has the new remote');
  t.same(r.broadcasts, [{ type: 'remoteChanged', localIndex: h.localIndex, remoteIp: parseIPv4('10.0.0.22'), remotePort: 4300 }], 'routines told');
  const tunnel = JSON.parse(r.out(`print-tunnel ${PEER}`)) as { currentRemote: unknown; remoteAddrs: unknown };
  t.same(tunnel.currentRemote, { ip: '10.0.0.22', port: 4300 });
  t.same(tunnel.remoteAddrs, [{ ip: '10.0.0.2', port: 4242 }, { ip: '10.0.0.22', port: 4300 }], 'known addresses, then the current one');
  t.equal(r.out(`change-remote -address 10.0.0.2:4242 ${PEER}`), 'Changed\n', "Go's form: -address");
  t.same([h.remoteIp, h.remotePort], [peerAddr.ip, 4242]);
  t.equal(r.err(`change-remote ${PEER}`), 'No address was provided');
  t.equal(r.err('change-remote'), 'No vpn ip was provided');
  for (const bad of ['10.0.0.1', '10.0.0.1:0', 'gateway:4242', '10.0.0.1:70000']) t.equal(r.err(`change-remote ${PEER} ${bad}`), `Address could not be parsed: ${bad}`);
  t.match(r.err(`change-remote -address 10.0.0.3:1 ${PEER} 10.0.0.4:1`), /either with -address or as the second argument/);
  t.equal(r.err('change-remote 192.168.50.9 10.0.0.9:1'), 'Could not find tunnel for vpn ip: 192.168.50.9');
});

t.test('close-tunnel tells the peer unless -local-only; create-tunnel brings it back', async (t) => {
  const r = rig(t);
  connect(r);
  let h = r.hostmap.get(parseIPv4(PEER)!)!;
  r.broadcasts.length = 0;
  t.equal(r.out(`close-tunnel -local-only ${PEER}`), 'Closed\n');
  t.notOk(r.hostmap.get(parseIPv4(PEER)!), 'gone from the host map');
  t.same(r.sealed, [], '-local-only: nothing sent');
  t.same(r.broadcasts, [{ type: 'tunnelDown', localIndex: h.localIndex }], 'routines told');

  connect(r);
  h = r.hostmap.get(parseIPv4(PEER)!)!;
  t.equal(r.out(`close-tunnel ${PEER}`), 'Closed\n');
  t.notOk(r.hostmap.get(parseIPv4(PEER)!));
  t.equal(r.sealed.length, 1, 'one datagram sent');
  const { data, to } = r.sealed[0]!;
  t.same(to, peerAddr, "to the peer's address");
  t.equal(data[0]! & 0x0f, TYPE_CLOSE_TUNNEL, 'a closeTunnel');
  t.equal(data.readUInt32BE(4), h.remoteIndex, "addressed to the peer's index");
  t.equal(r.err(`close-tunnel ${PEER}`), `Could not find tunnel for vpn ip: ${PEER}`);
});

t.test('log-level and log-format change the node logger', async (t) => {
  const r = rig(t);
  t.equal(r.out('log-level'), 'Log level is: info\n');
  r.out('create-tunnel 192.168.50.30');
  t.notOk(r.lines.some((l) => l.includes('No known address for host')), 'at info: no debug line');
  t.equal(r.out('log-level debug'), 'Log level is: debug\n');
  r.out('create-tunnel 192.168.50.31');
  t.ok(r.lines.some((l) => l.startsWith('level=debug msg="No known address for host, waiting" vpnIp=192.168.50.31')), 'at debug: the debug line');
  t.equal(r.out('log-level WARN'), 'Log level is: warning\n', 'warn is warning, any case');
  t.equal(r.err('log-level loud'), 'Unknown log level loud. Possible log levels: [panic fatal error warning info debug trace]');
  t.equal(r.log.level, 'warning', 'a bad level changes nothing');

  t.equal(r.out('log-format'), 'Log format is: text\n');
  t.equal(r.out('log-format JSON'), 'Log format is: json\n');
  r.log.warn('after the switch', { k: 1 });
  t.same(JSON.parse(r.lines.at(-1)!), { k: 1, level: 'warning', msg: 'after the switch' }, 'lines are json now');
  t.equal(r.err('log-format xml'), 'unknown log format `xml`. possible formats: [text json]');
  t.equal(r.out('log-format text'), 'Log format is: text\n');
});

t.test('version, device-info, routines', async (t) => {
  const r = rig(t);
  t.equal(r.out('version'), '0.1.0-test\n');
  t.equal(r.out('device-info'), `name=nebula1 cidr=[${OURS}/24]\n`);
  t.same(JSON.parse(r.out('device-info -json')), { name: 'nebula1', cidr: [`${OURS}/24`] });
  const rows = JSON.parse(r.out('routines -json')) as Array<Record<string, unknown>>;
  t.same(rows, [
    { routine: 0, pid: 4101, uptimeSeconds: 65, restarts: 0, ...countersOf(0) },
    { routine: 1, pid: null, uptimeSeconds: null, restarts: 2, ...countersOf(1) },
  ]);
  const text = r.out('routines').split('\n');
  t.match(text[0], /^ROUTINE\s+PID\s+UPTIME\s+RESTARTS\s+INSIDE_RX\s+INSIDE_TX\s+OUTSIDE_RX\s+OUTSIDE_TX$/);
  t.match(text[1], /^0\s+4101\s+1m5s\s+0\s/);
  t.match(text[2], /^1\s+-\s+-\s+2\s/);
});

/** The stand-in region's counter values (routine * 1000 + counter index) for the four packet counters. */
function countersOf(routine: number): Record<string, number> {
  const v = (name: keyof typeof C): number => routine * 1000 + C[name];
  return {
    insideRx: v('routine.inside.rx_packets'),
    insideTx: v('routine.inside.tx_packets'),
    outsideRx: v('routine.outside.rx_packets'),
    outsideTx: v('routine.outside.tx_packets'),
  };
}

t.test('conntrack: the count and a listing, limited', async (t) => {
  const r = rig(t);
  const now = r.ctNow;
  const flow = (proto: number, localPort: number, remotePort: number): FlowKey => ({
    version: 4,
    local6: new Uint32Array(4),
    remote6: new Uint32Array(4),
    localIp: parseIPv4(OURS)!,
    remoteIp: parseIPv4(PEER)!,
    localPort,
    remotePort,
    proto,
    fragment: false,
  });
  r.conntrack.insert(flow(6, 40000, 22), false, 3, now + 720, now);
  r.conntrack.insert(flow(17, 53, 5353), true, 3, now + 180, now);
  r.conntrack.insert(flow(1, 0, 0), false, 2, now - 5, now); // expired: neither counted nor listed
  const report = JSON.parse(r.out('conntrack -json')) as { count: number; capacity: number; truncated: boolean; entries: Array<Record<string, unknown>> };
  t.equal(report.count, 2);
  t.equal(report.capacity, CT_CAPACITY);
  t.equal(report.truncated, false);
  const byProto = new Map(report.entries.map((e) => [e.Protocol, e]));
  t.same(byProto.get('tcp'), { Fragment: false, LocalIP: OURS, LocalPort: 40000, Protocol: 'tcp', RemoteIP: PEER, RemotePort: 22, incoming: false, rulesVersion: 3, expiresInSeconds: 720 });
  t.same(byProto.get('udp'), { Fragment: false, LocalIP: OURS, LocalPort: 53, Protocol: 'udp', RemoteIP: PEER, RemotePort: 5353, incoming: true, rulesVersion: 3, expiresInSeconds: 180 });
  t.equal(report.entries.length, 2);
  const limited = JSON.parse(r.out('conntrack -json -limit 1')) as typeof report;
  t.equal(limited.entries.length, 1);
  t.equal(limited.truncated, true);
  t.equal(limited.count, 2, 'the count is the whole table');
  const text = r.out('conntrack');
  t.match(text, /^Conntrack entries: 2 \(capacity 64\)\n/);
  t.match(text, new RegExp(`tcp\\s+${OURS}:40000\\s+${PEER}:22\\s+out\\s+v3\\s+12m0s`));
  t.match(text, new RegExp(`udp\\s+${OURS}:53\\s+${PEER}:5353\\s+in\\s+v3\\s+3m0s`));
  t.match(r.out('conntrack -limit=1'), /first 1 listed/);
  t.match(r.err('conntrack -limit x'), /invalid value "x" for flag -limit/);
  t.equal(r.err('conntrack -limit 100001'), '-limit is at most 100000', 'an answer stays bounded');
});

t.test('conntrack: IPv6 entries listed with their full addresses (Go\'s netip text), bracketed in the table', async (t) => {
  const r = rig(t);
  const now = r.ctNow;
  const flow6 = (proto: number, localPort: number, remotePort: number): FlowKey => ({
    version: 6,
    local6: Uint32Array.of(0xfd000000, 0, 0, 1),
    remote6: Uint32Array.of(0x20010db8, 0, 0x00050000, 0x0000beef),
    localIp: 1,
    remoteIp: 0xbeef,
    localPort,
    remotePort,
    proto,
    fragment: false,
  });
  r.conntrack.insert(flow6(6, 443, 50000), true, 4, now + 720, now);
  r.conntrack.insert(flow6(58, 0, 0x1234), false, 4, now + 600, now);
  const report = JSON.parse(r.out('conntrack -json')) as { count: number; entries: Array<Record<string, unknown>> };
  t.equal(report.count, 2);
  const byProto = new Map(report.entries.map((e) => [e.Protocol, e]));
  t.same(byProto.get('tcp'), { Fragment: false, LocalIP: 'fd00::1', LocalPort: 443, Protocol: 'tcp', RemoteIP: '2001:db8::5:0:0:beef', RemotePort: 50000, incoming: true, rulesVersion: 4, expiresInSeconds: 720 });
  t.same(byProto.get('icmpv6'), { Fragment: false, LocalIP: 'fd00::1', LocalPort: 0, Protocol: 'icmpv6', RemoteIP: '2001:db8::5:0:0:beef', RemotePort: 0x1234, incoming: false, rulesVersion: 4, expiresInSeconds: 600 });
  const text = r.out('conntrack');
  t.match(text, /tcp\s+\[fd00::1\]:443\s+\[2001:db8::5:0:0:beef\]:50000\s+in\s+v4\s+12m0s/);
  t.match(text, /icmpv6\s+\[fd00::1\]:0\s+\[2001:db8::5:0:0:beef\]:4660\s+out\s+v4\s+10m0s/);
});

t.test('bad requests: one-line errors, and help', async (t) => {
  const r = rig(t);
  t.match(r.err('frobnicate'), /^unknown command "frobnicate"/);
  t.equal(r.err('list-hostmap -bogus'), 'flag provided but not defined: -bogus');
  t.match(r.err('version extra'), /^version takes no arguments, got: extra$/);
  t.match(r.err(`print-tunnel ${PEER} ${OURS}`), /^print-tunnel takes at most 1 argument/);
  t.equal(r.err('close-tunnel -address'), 'flag provided but not defined: -address');
  t.equal(r.err('create-tunnel -address'), 'flag needs an argument: -address');
  const notList = r.console.run('list-hostmap', '-json');
  t.same(notList, { ok: false, error: 'the request\'s "args" must be a list of strings' });
  t.match(r.out('print-cert -h'), /^print-cert - Prints the current certificate .*\n {2}usage: print-cert \[flags\] \[vpn-ip\]\n {2}-json\n {4}\toutputs as json\n/);
  t.match(r.out('conntrack -help'), /-limit int\n {4}\tlists at most this many entries \(up to 100000\) \(default 1000\)\n/);
});

t.test('extra handlers (commands built with other parts) are run like the others', async (t) => {
  const r = rig(t);
  const spec = findCommand('version')!;
  const c = new NodeConsole(() => r.parts, '1', { version: (a) => `custom ${a.args.length}\n` });
  t.same(c.run(spec.name, []), { ok: true, output: 'custom 0\n' });
});

t.test('the flag parser: Go flag forms', async (t) => {
  const spec = findCommand('close-tunnel')!;
  t.equal(parseCommandArgs(spec, ['-local-only', '1.2.3.4']).bool('local-only'), true);
  t.equal(parseCommandArgs(spec, ['--local-only=false', '1.2.3.4']).bool('local-only'), false);
  t.same(parseCommandArgs(spec, ['1.2.3.4', '-local-only']).args, ['1.2.3.4'], 'flags may follow the arguments');
  t.same(parseCommandArgs(spec, ['--', '-local-only']).args, ['-local-only'], '-- ends the flags');
  t.ok(
    (() => {
      try {
        parseCommandArgs(spec, ['-local-only=maybe']);
        return false;
      } catch (err) {
        return err instanceof UsageError && err.message === 'invalid boolean value "maybe" for -local-only';
      }
    })(),
    'a bad boolean is a UsageError',
  );
  const create = findCommand('create-tunnel')!;
  t.equal(parseCommandArgs(create, ['-address=1.2.3.4:5', 'x']).string('address'), '1.2.3.4:5');
  t.equal(parseCommandArgs(create, ['--address', '1.2.3.4:5', 'x']).string('address'), '1.2.3.4:5');
  t.ok(parseCommandArgs(create, ['-h']).help);
  const names = COMMANDS.map((c) => c.name);
  t.equal(new Set(names).size, names.length, 'no command twice');
});
