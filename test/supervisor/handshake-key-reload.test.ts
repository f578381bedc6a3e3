/**
 * The static key pair is prepared once and kept between handshakes (issue 13), so a reload that brings a new key must
 * bring it to the very next handshake: a hub whose cert and key are overwritten in place and reloaded answers a new
 * initiator, and re-keys an existing tunnel, with the new key (the peers' certificate check binds the Noise static
 * key to the certificate, so the old key with the new certificate would make no tunnel at all).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Logger } from '../../src/shared/log';
import type { Endpoint } from '../../src/shared/util/endpoint';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { SupervisorCounters } from '../../src/supervisor/counters';
import { HandshakeManager, type HandshakeEnv } from '../../src/supervisor/handshake-manager';
import type { HostMap } from '../../src/supervisor/hostmap';
import { LiveConfig } from '../../src/supervisor/live-config';
import { reloadConfig } from '../../src/supervisor/reload';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { deliverHandshake, installInto, peerPki, testHostMap } from './fixtures/handshake-peers';
import { pkiInPlace } from './fixtures/pki-in-place';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-hs-key-reload-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(path.join(dir, 'ca'));

interface Node {
  vpnIp: number;
  addr: Endpoint;
  hm: HandshakeManager;
  hostmap: HostMap;
}

const nodes: Node[] = [];

function node(ip: string, pki: HandshakeEnv['pki']): Node {
  const hostmap = testHostMap();
  const vpnIp = parseIPv4(ip)!;
  const addr = { ip: parseIPv4(`10.0.0.${ip.split('.')[3]}`)!, port: 4242 };
  const self: Node = { vpnIp, addr, hostmap, hm: undefined as unknown as HandshakeManager };
  self.hm = new HandshakeManager({
    log: new Logger({ level: 'error', write: () => undefined }),
    cipher: 'aes',
    pki,
    vpnIp,
    hostmap,
    tryIntervalMs: 1000,
    retries: 3,
    counters: new SupervisorCounters(),
    addressesFor: (to) => nodes.filter((n) => n.vpnIp === to).map((n) => n.addr),
    sendUdp: (buf, to) => deliverHandshake(nodes.find((n) => n.addr.ip === to.ip)!.hm, addr, Buffer.from(buf)),
    install: installInto(hostmap),
    sendTest: () => undefined,
  });
  nodes.push(self);
  return self;
}

/** The tunnel `from` has to `to`: its peer's certificate key, and whether both sides hold mirrored keys. */
function tunnel(from: Node, to: Node): { peerKey: Buffer | undefined; mirrored: boolean } {
  const a = from.hostmap.get(to.vpnIp);
  const b = to.hostmap.get(from.vpnIp);
  const mirrored = a !== undefined && b !== undefined && a.sendKey.equals(b.recvKey) && a.recvKey.equals(b.sendKey) && a.remoteIndex === b.localIndex;
  return { peerKey: a?.cert.details.publicKey, mirrored };
}

t.test('after a reload with a new key, handshakes answered and initiated use the new key', async (t) => {
  // The hub runs from a config file whose PKI files are overwritten in place, then reloaded (rotation).
  const made = makeHostCert(path.join(dir, 'hub-old'), ca, { name: 'hub', ip: '192.168.60.1/24' });
  const { files, configPath } = pkiInPlace(dir, made);
  const log = new Logger({ level: 'error', write: () => undefined });
  const live = new LiveConfig(configPath, log);
  const hub = node('192.168.60.1', () => live.pki);
  const oldKey = made.certObj.details.publicKey;

  const aPki = peerPki(dir, ca, 'a', '192.168.60.2/24');
  const a = node('192.168.60.2', () => aPki);
  a.hm.start(hub.vpnIp);
  t.same(tunnel(a, hub), { peerKey: oldKey, mirrored: true }, 'before: the old key');

  const next = makeHostCert(path.join(dir, 'hub-new'), ca, { name: 'hub', ip: '192.168.60.1/24' });
  writeFileSync(files.cert, readFileSync(next.cert));
  writeFileSync(files.key, readFileSync(next.key));
  const newKey = next.certObj.details.publicKey;
  t.notSame(newKey, oldKey);
  const r = reloadConfig({ live, log, resetConntrack: () => undefined, broadcastFirewall: () => undefined, disconnectInvalidPeers: () => 0, rehandshakeAll: () => 0 });
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(r.pki, { ca: false, cert: true });

  // Answering: a host that never met the hub.
  const cPki = peerPki(dir, ca, 'c', '192.168.60.3/24');
  const c = node('192.168.60.3', () => cPki);
  c.hm.start(hub.vpnIp);
  t.same(tunnel(c, hub), { peerKey: newKey, mirrored: true }, 'the responder answers with the new key');

  // Initiating: the hub re-keys its tunnel to a (what rehandshakeAll does after a cert change).
  hub.hm.rekey(hub.hostmap.get(a.vpnIp)!);
  t.same(tunnel(a, hub), { peerKey: newKey, mirrored: true }, 'the initiator uses the new key');
  t.equal(hub.hm.pendingCount, 0);
});
