/**
 * Roaming in the supervisor (Tunnels.roamed, Go 1.6.1's outside.go handleHostRoaming): an authenticated packet from
 * a new underlay address moves the tunnel there, except that going straight back to the address it just left is
 * suppressed for RoamingSuppressSeconds (2 s). A suppressed roam keeps the host map's remote and sends the routines a
 * remoteChanged back to it (the routine that saw the packet had already moved its copy).
 */
import t from 'tap';
import { RemoteAllowList } from '../../src/shared/allow-list';
import { createPacketCipher } from '../../src/shared/crypto';
import type { SupervisorToRoutine, ViaRelay } from '../../src/shared/ipc/messages';
import { Logger } from '../../src/shared/log';
import { allocSockaddrIn } from '../../src/shared/native/sockaddr';
import type { NebulaCertificate } from '../../src/shared/pki';
import { TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { TunnelSlots } from '../../src/shared/state/tunnel-slots';
import type { DatagramOutbox } from '../../src/shared/tunnel/send';
import { formatEndpoint } from '../../src/shared/util/endpoint';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { HostMap, type HostInfo } from '../../src/supervisor/hostmap';
import type { LiveConfig } from '../../src/supervisor/live-config';
import { ROAM_SUPPRESS_MS, Tunnels } from '../../src/supervisor/tunnels';

const ip = (s: string): number => parseIPv4(s)!;
const OLD = { ip: ip('203.0.113.5'), port: 4242 };
const NEW = { ip: ip('198.51.100.7'), port: 5000 };
const THIRD = { ip: ip('198.51.100.8'), port: 5001 };
const INDEX = 77;

function fixture(opts: { relay?: ViaRelay; allow?: RemoteAllowList } = {}) {
  const slots = new TunnelSlots(new Int32Array(4 * TUNNEL_SLOT_WORDS), -1);
  const hostmap = new HostMap(slots, 4);
  const broadcasts: SupervisorToRoutine[] = [];
  const roamedEvents: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const tunnels = new Tunnels({
    log: new Logger({ level: 'debug', format: 'json', disableTimestamp: true, write: (l) => void logs.push(JSON.parse(l) as Record<string, unknown>) }),
    counters: new SupervisorCounters(),
    hostmap,
    slots,
    outbox: {} as DatagramOutbox,
    // A tunnelUp would read the CA pool (peer identity); roaming itself never does.
    live: { caPool: { cas: new Map() } } as unknown as LiveConfig,
    broadcast: (m) => void broadcasts.push(m),
    ...(opts.allow ? { remoteAllowList: () => opts.allow! } : {}),
    events: { up: () => undefined, down: () => undefined, roamed: (h) => void roamedEvents.push(formatEndpoint({ ip: h.remoteIp, port: h.remotePort })) },
  });
  const h: HostInfo = {
    vpnIp: ip('10.1.0.9'),
    localIndex: INDEX,
    remoteIndex: 78,
    slot: hostmap.allocateSlot(0)!,
    sendKey: Buffer.alloc(32),
    recvKey: Buffer.alloc(32),
    // roamed() reads the cert's name for its log lines only; the rest is what a tunnelUp would describe.
    cert: { details: { name: 'roamer', groups: [], issuer: '', ips: [], subnets: [] }, networks: [], unsafeNetworks: [] } as unknown as NebulaCertificate,
    remoteIp: OLD.ip,
    remotePort: OLD.port,
    handshakeTime: 1n,
    initiatedLocally: true,
    encrypt: createPacketCipher('aes', Buffer.alloc(32)),
    remoteSockaddr: allocSockaddrIn(),
    recvErrors: 0,
    createdAt: 0,
  };
  if (opts.relay) {
    // A relayed tunnel has no remote of its own (hostmap.ts): 0:0, the relay names the way.
    h.relay = opts.relay;
    h.remoteIp = 0;
    h.remotePort = 0;
  }
  hostmap.add(h);
  const remote = (): string => formatEndpoint({ ip: h.remoteIp, port: h.remotePort });
  const roam = (to: { ip: number; port: number }, now: number): void => tunnels.roamed(INDEX, to.ip, to.port, now);
  const changed = (to: { ip: number; port: number }): SupervisorToRoutine => ({ type: 'remoteChanged', localIndex: INDEX, remoteIp: to.ip, remotePort: to.port });
  return { h, hostmap, tunnels, broadcasts, roamedEvents, logs, remote, roam, changed };
}

t.test('a roam back to the previous address within 2 s is suppressed; after 2 s it is followed', async (t) => {
  t.equal(ROAM_SUPPRESS_MS, 2000, "Go's RoamingSuppressSeconds");
  const f = fixture();
  f.roam(NEW, 10_000);
  t.equal(f.remote(), '198.51.100.7:5000', 'followed');
  t.same(f.broadcasts, [f.changed(NEW)]);
  t.same(f.roamedEvents, ['198.51.100.7:5000']);
  t.same(f.h.remoteSockaddr.readUInt16BE(2), NEW.port, "the supervisor's own sockaddr follows");

  f.broadcasts.length = 0;
  f.roam(OLD, 10_000 + ROAM_SUPPRESS_MS - 1);
  t.equal(f.remote(), '198.51.100.7:5000', 'suppressed: remote unchanged');
  t.same(f.broadcasts, [f.changed(NEW)], 'the routines are sent back to the current remote');
  t.same(f.roamedEvents, ['198.51.100.7:5000'], 'no roamed event');
  t.ok(f.logs.some((l) => l.msg === 'Suppressing roam back to previous remote' && l.newAddr === '203.0.113.5:4242'));

  f.broadcasts.length = 0;
  f.roam(OLD, 10_000 + ROAM_SUPPRESS_MS);
  t.equal(f.remote(), '203.0.113.5:4242', 'followed once 2 s passed (Go: time.Since < 2 s suppresses)');
  t.same(f.broadcasts, [f.changed(OLD)]);
  t.same(f.roamedEvents, ['198.51.100.7:5000', '203.0.113.5:4242']);
  t.same(
    f.logs.filter((l) => l.msg === 'Host roamed to new udp ip/port.').map((l) => [l.udpAddr, l.newAddr]),
    [
      ['203.0.113.5:4242', '198.51.100.7:5000'],
      ['198.51.100.7:5000', '203.0.113.5:4242'],
    ],
  );
});

t.test('only the address just left is suppressed: a third address is followed at once', async (t) => {
  const f = fixture();
  f.roam(NEW, 10_000);
  f.roam(THIRD, 10_100);
  t.equal(f.remote(), '198.51.100.8:5001');
  // The previous address is now NEW (left at 10 100), so OLD is not suppressed.
  f.roam(OLD, 10_200);
  t.equal(f.remote(), '203.0.113.5:4242');
  f.broadcasts.length = 0;
  f.roam(THIRD, 10_300);
  t.equal(f.remote(), '203.0.113.5:4242', 'THIRD was just left: suppressed');
  t.same(f.broadcasts, [f.changed(OLD)]);
});

t.test('a packet from the current address, or for an unknown tunnel, changes nothing', async (t) => {
  const f = fixture();
  f.roam(OLD, 10_000);
  f.tunnels.roamed(INDEX + 1, NEW.ip, NEW.port, 10_000);
  t.equal(f.remote(), '203.0.113.5:4242');
  t.same(f.broadcasts, []);
  t.same(f.roamedEvents, []);
});

t.test('a relayed tunnel denied a roam by the remote allow list stays relayed: one remoteChanged naming the relay, no tunnelUp', async (t) => {
  const relay: ViaRelay = { relayVpnIp: ip('10.1.0.1'), remoteIndex: 0x5a5a0002 };
  const f = fixture({ relay, allow: new RemoteAllowList({ '198.51.100.7/32': false }) });
  f.roam(NEW, 10_000);
  t.same(f.h.relay, relay, 'the host map keeps the relay');
  t.equal(f.remote(), '0.0.0.0:0', 'and no direct remote');
  t.strictSame(
    f.broadcasts,
    [{ type: 'remoteChanged', localIndex: INDEX, remoteIp: 0, remotePort: 0, via: relay }],
    'the routines are put back on the relay, the tunnel is not re-installed',
  );
  t.same(f.roamedEvents, [], 'no roamed event');

  f.broadcasts.length = 0;
  f.roam(THIRD, 10_100);
  t.same(f.h.relay, undefined, 'an allowed address is followed: the tunnel goes direct');
  t.equal(f.remote(), '198.51.100.8:5001');
  t.strictSame(f.broadcasts, [f.changed(THIRD)]);
});
