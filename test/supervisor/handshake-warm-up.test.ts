/**
 * The supervisor's handshake warm-up (src/supervisor/handshake-warm-up.ts): a whole handshake with our own PKI runs
 * to the end in both ciphers (a failure anywhere would come back as an error), and a bad key is reported, not thrown.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCA } from '../../src/testbed/mesh-pki';
import { warmUpHandshakes } from '../../src/supervisor/handshake-warm-up';
import { peerPki } from './fixtures/handshake-peers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nts-hswu-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = makeCA(dir);
const pki = peerPki(dir, ca, 'node', '192.168.60.1/24');

for (const cipher of ['aes', 'chachapoly'] as const) {
  t.test(`${cipher}: both roles, both payloads and the certificate checks complete`, async (t) => {
    t.equal(warmUpHandshakes(cipher, pki), undefined);
  });
}

t.test('a certificate our CA pool does not know is reported (the checks ran)', async (t) => {
  const other = peerPki(dir, makeCA(path.join(dir, 'other-ca')), 'stranger', '192.168.60.2/24');
  t.match(warmUpHandshakes('aes', { ...other, caPool: pki.caPool }), /Invalid certificate/);
});

t.test('a key the curve refuses is reported as an error string', async (t) => {
  const error = warmUpHandshakes('aes', { ...pki, privateKey: Buffer.alloc(5) });
  t.type(error, 'string');
  t.match(error, /32 bytes/);
});
