/**
 * Reload re-reads the PKI files every time (rotation = overwrite in place + SIGHUP): a new cert is taken and every
 * tunnel re-handshaked; the CA bundle applies on its own (a bad cert keeps the running cert, reported); a cert with
 * another VPN IP is refused (restart needed); peers are re-checked against the pool after each reload.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Logger } from '../../src/shared/log';
import { makeCA, makeHostCert, type CertFiles, type MeshCA } from '../../src/testbed/mesh-pki';
import { LiveConfig } from '../../src/supervisor/live-config';
import { reloadConfig, type ReloadResult } from '../../src/supervisor/reload';
import { pkiInPlace } from './fixtures/pki-in-place';

interface Fixture {
  dir: string;
  /** The paths the config names (overwritten in place by the tests). */
  files: CertFiles;
  ca: MeshCA;
  live: LiveConfig;
  lines: string[];
  calls: { disconnect: number; rehandshake: number };
  reload(): ReloadResult;
}

function fixture(t: { teardown: (fn: () => void) => void }): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-reload-pki-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCA(path.join(dir, 'made'), 'ca-one');
  const made = makeHostCert(path.join(dir, 'made'), ca, { name: 'node', ip: '192.168.100.1/24', groups: ['old'] });
  const { files, configPath: file } = pkiInPlace(dir, made);
  const lines: string[] = [];
  const log = new Logger({ format: 'json', disableTimestamp: true, write: (l) => void lines.push(l) });
  const live = new LiveConfig(file, log);
  const calls = { disconnect: 0, rehandshake: 0 };
  const reload = (): ReloadResult =>
    reloadConfig({
      live,
      log,
      resetConntrack: () => undefined,
      broadcastFirewall: () => undefined,
      disconnectInvalidPeers: () => {
        calls.disconnect++;
        return 0;
      },
      rehandshakeAll: () => {
        calls.rehandshake++;
        return 3;
      },
    });
  return { dir, files, ca, live, lines, calls, reload };
}

/** Overwrites the configured cert and key in place with a fresh pair. */
function overwriteHost(f: Fixture, ca: MeshCA, opts: { ip: string; groups: string[] }): string {
  const made = makeHostCert(path.join(f.dir, 'made2'), ca, { name: 'node', ...opts });
  writeFileSync(f.files.cert, readFileSync(made.cert));
  writeFileSync(f.files.key, readFileSync(made.key));
  return made.certObj.fingerprint();
}

t.test('an unchanged config re-reads the PKI and changes nothing', async (t) => {
  const f = fixture(t);
  const before = f.live.pki;
  const r = f.reload();
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(r.changed, []);
  t.same(r.pki, { ca: false, cert: false });
  t.equal(r.summary, 'nothing changed');
  t.equal(f.live.pki, before, 'the running PKI object is kept');
  t.equal(f.calls.rehandshake, 0, 'no re-handshake');
  t.equal(f.calls.disconnect, 1, 'peers are re-checked at every reload');
});

t.test('cert and CA overwritten in place (same paths) are picked up', async (t) => {
  const f = fixture(t);
  const fp = overwriteHost(f, f.ca, { ip: '192.168.100.1/24', groups: ['new', 'newer'] });
  const r = f.reload();
  t.equal(r.ok, true, r.error ?? 'reloaded');
  t.same(r.changed, ['pki']);
  t.same(r.pki, { ca: false, cert: true });
  t.equal(f.live.pki.cert.fingerprint(), fp, 'the new cert is in force');
  t.same(f.live.pki.cert.details.groups, ['new', 'newer']);
  t.equal(f.calls.rehandshake, 1, 'every tunnel is re-handshaked');
  t.equal(r.rehandshaked, 3);
  t.match(r.summary ?? '', /pki changed; pki: cert reloaded; 3 tunnels re-handshaked/);
  t.ok(f.lines.some((l) => l.includes('Re-handshaking tunnels with the new certificate')), 'the log says why');
  t.ok(f.lines.some((l) => /msg="Config reloaded"/.test(l) && l.includes('cert reloaded')), 'one summary line');

  const two = makeCA(path.join(f.dir, 'made3'), 'ca-two');
  writeFileSync(f.files.ca, f.ca.cert.toPem() + two.cert.toPem());
  const r2 = f.reload();
  t.equal(r2.ok, true, r2.error ?? 'reloaded');
  t.same(r2.pki, { ca: true, cert: false });
  t.equal(f.live.caPool.cas.size, 2, 'the new bundle is in force');
  t.equal(f.calls.rehandshake, 1, 'a CA change alone re-handshakes nothing');
  t.equal(f.live.pki.cert.fingerprint(), fp, 'the cert is kept');
});

t.test('a CA-only change with a broken cert applies the CA and reports the cert error', async (t) => {
  const f = fixture(t);
  const running = f.live.pki.cert.fingerprint();
  const two = makeCA(path.join(f.dir, 'made3'), 'ca-two');
  writeFileSync(f.files.ca, f.ca.cert.toPem() + two.cert.toPem());
  writeFileSync(f.files.cert, 'not a certificate\n');
  const r = f.reload();
  t.equal(r.ok, true, 'the reload went through');
  t.same(r.pki, { ca: true, cert: false });
  t.equal(r.errors?.length, 1);
  t.match(r.errors?.[0] ?? '', /^pki\.cert: /);
  t.match(r.summary ?? '', /pki: ca reloaded; kept the running cert: pki\.cert: /);
  t.equal(f.live.caPool.cas.size, 2, 'the new CA pool is applied');
  t.ok(f.live.caPool.getCA(two.cert.fingerprint()), 'with the new CA');
  t.equal(f.live.pki.cert.fingerprint(), running, 'the running cert is kept');
  t.equal(f.calls.rehandshake, 0);
  t.ok(f.lines.some((l) => l.includes('Failed to reload the host certificate, keeping the running certificate and key')));
});

t.test('a bad CA bundle refuses the whole reload', async (t) => {
  const f = fixture(t);
  const pki = f.live.pki;
  overwriteHost(f, f.ca, { ip: '192.168.100.1/24', groups: ['new'] });
  rmSync(f.files.ca);
  const r = f.reload();
  t.equal(r.ok, false);
  t.match(r.error ?? '', /^unable to read pki\.ca file /);
  t.equal(f.live.pki, pki, 'nothing changed, not even the cert');
  t.equal(f.calls.disconnect, 0);
});

t.test('a cert with another VPN IP is refused and the running one kept', async (t) => {
  const f = fixture(t);
  const running = f.live.pki.cert.fingerprint();
  overwriteHost(f, f.ca, { ip: '192.168.100.9/24', groups: ['new'] });
  const r = f.reload();
  t.equal(r.ok, true);
  t.match(r.errors?.[0] ?? '', /^pki\.cert: the new certificate changes the VPN IP \(192\.168\.100\.1 to 192\.168\.100\.9\); restart to apply it$/);
  t.equal(f.live.pki.cert.fingerprint(), running);
  t.same(r.pki, { ca: false, cert: false });
  t.equal(f.calls.rehandshake, 0);
});

t.test('a cert not signed by the new pool is refused and the running one kept', async (t) => {
  const f = fixture(t);
  const running = f.live.pki.cert.fingerprint();
  const other = makeCA(path.join(f.dir, 'made3'), 'ca-other');
  overwriteHost(f, other, { ip: '192.168.100.1/24', groups: [] });
  const r = f.reload();
  t.match(r.errors?.[0] ?? '', /^pki\.cert: the new certificate does not verify against pki\.ca: could not find ca for the certificate$/);
  t.equal(f.live.pki.cert.fingerprint(), running);
});
