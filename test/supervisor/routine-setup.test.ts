/**
 * What a routine is told at (re)spawn about keeping its packet path warm (src/routine/keep-warm.ts): on with a tun or
 * a userspace inside unless `tun.keep_warm: false`, never without an inside (a lighthouse has no flows to keep warm).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Logger } from '../../src/shared/log';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import type { InsideKind } from '../../src/supervisor/inside/inside';
import { LiveConfig } from '../../src/supervisor/live-config';
import { routineSetup } from '../../src/supervisor/routine-setup';

function keepWarm(t: { teardown: (fn: () => void) => void }, extra: string, insideKind: InsideKind): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-routine-setup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCA(dir, 'ca');
  const files = makeHostCert(dir, ca, { name: 'node', ip: '192.168.100.1/24' });
  const file = path.join(dir, 'config.yml');
  writeFileSync(file, `pki: {ca: ${files.ca}, cert: ${files.cert}, key: ${files.key}}\n${extra}`);
  const live = new LiveConfig(file, new Logger({ write: () => undefined }));
  return routineSetup(0, { live, insideKind, tunnels: () => [], relays: () => [] }).keepWarm;
}

t.test('tun.keep_warm: on by default with an inside, off on request, never without an inside', async (t) => {
  t.equal(keepWarm(t, '', 'tun'), true, 'default, tun');
  t.equal(keepWarm(t, '', 'userspace'), true, 'default, userspace inside');
  t.equal(keepWarm(t, 'tun: {keep_warm: false}\n', 'tun'), false, 'turned off');
  t.equal(keepWarm(t, 'tun: {disabled: true}\n', 'disabled'), false, 'tun.disabled: no inside');
});
