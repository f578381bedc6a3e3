/**
 * pki.disconnect_invalid (src/supervisor/invalid-certs.ts) through the connection manager's liveness check, with
 * real certificates and no root: when the check looks at a tunnel whose peer cert has expired, whose CA is no longer
 * in the pool, or which is blocklisted, the tunnel is closed (closeTunnel sent) with Go's log line when the option
 * is true, and kept when it is false.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { createPacketCipher } from '../../src/shared/crypto';
import { Logger } from '../../src/shared/log';
import { CAPool, type NebulaCertificate } from '../../src/shared/pki';
import { TUNNEL_SLOT_WORDS } from '../../src/shared/state/layout';
import { TunnelSlots } from '../../src/shared/state/tunnel-slots';
import { allocSockaddrIn } from '../../src/shared/native/sockaddr';
import { formatIPv4, parseIPv4 } from '../../src/shared/util/ipv4';
import { HostMap, type HostInfo } from '../../src/supervisor/hostmap';
import { ConnectionManager } from '../../src/supervisor/connection-manager';
import { disconnectIfInvalid } from '../../src/supervisor/invalid-certs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-dci-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const caOne = makeCA(path.join(dir, 'one'), 'ca one');
const caTwo = makeCA(path.join(dir, 'two'), 'ca two');
const nowSec = Math.floor(Date.now() / 1000);
const VALID_FOR_S = 3600;

const certs = {
  good: makeHostCert(path.join(dir, 'good'), caOne, { name: 'good', ip: '192.168.50.2/24' }).certObj,
  expiring: makeHostCert(path.join(dir, 'expiring'), caOne, { name: 'expiring', ip: '192.168.50.3/24', notAfter: nowSec + VALID_FOR_S }).certObj,
  otherCA: makeHostCert(path.join(dir, 'other'), caTwo, { name: 'other-ca', ip: '192.168.50.4/24' }).certObj,
  blocked: makeHostCert(path.join(dir, 'blocked'), caOne, { name: 'blocked', ip: '192.168.50.5/24' }).certObj,
};

function pool(...cas: NebulaCertificate[]): CAPool {
  const p = new CAPool();
  for (const ca of cas) p.addCA(ca);
  return p;
}

const ALIVE_MS = 5000;
const PENDING_MS = 10_000;

interface Rig {
  hostmap: HostMap;
  slots: TunnelSlots;
  cm: ConnectionManager;
  closed: string[];
  tests: string[];
  dead: string[];
  logs: string[];
  host(cert: NebulaCertificate): HostInfo;
  /** Traffic went out on `h` (a routine's send mark). */
  sent(h: HostInfo): void;
}

function rig(enabled: boolean, caPool: () => CAPool): Rig {
  const slots = new TunnelSlots(new Int32Array(8 * TUNNEL_SLOT_WORDS), -1);
  const hostmap = new HostMap(slots, 8);
  const closed: string[] = [];
  const tests: string[] = [];
  const dead: string[] = [];
  const logs: string[] = [];
  const log = new Logger({ level: 'debug', format: 'json', disableTimestamp: true, write: (l) => void logs.push(l) });
  const invalid = {
    enabled,
    log,
    caPool,
    close: (h: HostInfo) => {
      closed.push(h.cert.details.name);
      hostmap.remove(h, Date.now());
    },
  };
  const cm = new ConnectionManager({
    hostmap,
    aliveIntervalMs: ALIVE_MS,
    pendingDeletionMs: PENDING_MS,
    sendTest: (h) => void tests.push(h.cert.details.name),
    dead: (h) => void dead.push(h.cert.details.name),
    closedInvalid: (h, now) => disconnectIfInvalid(invalid, h, now),
  });
  let index = 100;
  return {
    hostmap,
    slots,
    cm,
    closed,
    tests,
    dead,
    logs,
    host(cert) {
      const slot = hostmap.allocateSlot(Date.now())!;
      const h: HostInfo = {
        vpnIp: cert.details.ips[0]!.ip >>> 0,
        localIndex: index++,
        remoteIndex: index++,
        slot,
        sendKey: Buffer.alloc(32, 1),
        recvKey: Buffer.alloc(32, 2),
        cert,
        remoteIp: parseIPv4('10.0.0.9')!,
        remotePort: 4242,
        handshakeTime: 1n,
        initiatedLocally: true,
        encrypt: createPacketCipher('aes', Buffer.alloc(32, 1)),
        remoteSockaddr: allocSockaddrIn(),
        recvErrors: 0,
        createdAt: Date.now(),
      };
      hostmap.add(h);
      return h;
    },
    sent(h) {
      slots.markTx(h.slot);
    },
  };
}

/** Drives one liveness check of every tunnel with outgoing traffic, at `at` (ms since epoch). */
function check(r: Rig, hosts: HostInfo[], at: number): void {
  for (const h of hosts) r.sent(h);
  r.cm.tick(at - ALIVE_MS); // arms the check
  r.cm.tick(at); // the check
}

const cases: Array<[name: string, cert: NebulaCertificate, poolNow: () => CAPool, at: number]> = [
  ['an expired cert', certs.expiring, () => pool(caOne.cert), Date.now() + (VALID_FOR_S + 60) * 1000],
  ['a cert whose CA is no longer in the pool (reloaded without it)', certs.otherCA, () => pool(caOne.cert), Date.now()],
  [
    'a blocklisted cert',
    certs.blocked,
    () => {
      const p = pool(caOne.cert);
      p.blocklistFingerprint(certs.blocked.fingerprint());
      return p;
    },
    Date.now(),
  ],
];

for (const [name, cert, poolNow, at] of cases) {
  t.test(`disconnect_invalid true: ${name} is disconnected at the liveness check`, async (t) => {
    const r = rig(true, poolNow);
    const bad = r.host(cert);
    const good = r.host(certs.good);
    check(r, [bad, good], at);
    t.same(r.closed, [cert.details.name], 'the invalid tunnel was closed (closeTunnel sent), the valid one not');
    t.notOk(r.hostmap.get(bad.vpnIp), 'gone from the host map');
    t.equal(r.hostmap.get(good.vpnIp), good, 'the valid tunnel stays');
    t.same(r.tests, ['good'], 'only the valid tunnel went on to the test probe');
    const line = r.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'Remote certificate is no longer valid, tearing down the tunnel');
    t.ok(line, "Go's log line");
    t.equal(line?.level, 'info');
    t.equal(line?.certName, cert.details.name);
    t.equal(line?.fingerprint, cert.fingerprint());
    t.equal(line?.vpnIp, formatIPv4(cert.details.ips[0]!.ip));
    t.type(line?.error, 'string');
  });

  t.test(`disconnect_invalid false: ${name} is kept`, async (t) => {
    const r = rig(false, poolNow);
    const bad = r.host(cert);
    check(r, [bad], at);
    t.same(r.closed, []);
    t.equal(r.hostmap.get(bad.vpnIp), bad, 'still installed');
    t.same(r.tests, [cert.details.name], 'the ordinary liveness check goes on');
  });
}

t.test('the check also runs when a tunnel pending deletion is judged', async (t) => {
  let current = pool(caOne.cert, caTwo.cert);
  const r = rig(true, () => current);
  const h = r.host(certs.otherCA);
  const t0 = Date.now();
  check(r, [h], t0);
  t.same(r.tests, ['other-ca'], 'valid at the first check: test probe, pending deletion');
  current = pool(caOne.cert); // a reload drops ca two
  r.slots.markRx(h.slot); // the peer answered
  r.cm.tick(t0 + 1);
  t.same(r.closed, ['other-ca'], 'closed instead of being kept alive');
  t.same(r.dead, []);
});

t.test('a tunnel that stays valid is never touched by the check', async (t) => {
  const r = rig(true, () => pool(caOne.cert));
  const h = r.host(certs.good);
  check(r, [h], Date.now());
  r.cm.tick(Date.now() + ALIVE_MS + PENDING_MS);
  t.same(r.closed, []);
  t.same(r.dead, ['good'], 'no answer to the probe: dead the ordinary way');
});
