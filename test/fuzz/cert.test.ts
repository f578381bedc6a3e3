/**
 * Fuzz: the v1 certificate decoder (src/shared/pki/cert.ts) in its three entry points: unmarshalCert (files, CA
 * bundles), certFromHandshake and validateHandshakeCert (the certificate an unauthenticated peer sends in its
 * handshake). Bad input must end in CertError (protobuf problems included); accepted certificates must re-marshal
 * byte-identically (fingerprints and signatures depend on it), and nothing the CA did not sign may validate.
 */
import t from 'tap';
import {
  CAPool,
  CertError,
  certFromHandshake,
  certToJson,
  certToText,
  checkRootConstraints,
  loadCAPool,
  marshalCertForHandshake,
  marshalDetails,
  NebulaCertificate,
  unmarshalCert,
  validateHandshakeCert,
} from '../../src/shared/pki';
import { makeCA, makeHost } from '../pki/helpers';
import { fuzzRun, nextInput, Tally } from './fuzz-helpers';

const BASE_COUNT = 3000;

const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Structural sanity of any certificate the decoder hands out. */
function checkShape(tally: Tally, c: NebulaCertificate, input: Buffer): void {
  const d = c.details;
  tally.check(d.ips.every((n) => isU32(n.ip) && isU32(n.mask)), 'ips are uint32 pairs', input);
  tally.check(d.subnets.every((n) => isU32(n.ip) && isU32(n.mask)), 'subnets are uint32 pairs', input);
  tally.check(Number.isSafeInteger(d.notBefore) && Number.isSafeInteger(d.notAfter), 'times are safe integers', input);
  tally.check(d.publicKey.length >= 32, 'public key at least 32 bytes', input);
  tally.check(/^(?:[0-9a-f]{2})*$/.test(d.issuer), `issuer ${d.issuer} is lowercase hex`, input);
  const bytes = Buffer.byteLength(d.name) + d.groups.reduce((n, g) => n + Buffer.byteLength(g), 0) + c.signature.length;
  tally.check(bytes <= input.length, 'decoded strings and signature are bounded by the input', input);
}

t.test('unmarshalCert on mutated and random certificates', async (t) => {
  const run = fuzzRun(t, 'cert-unmarshal', BASE_COUNT);
  const { rng } = run;
  const ca = makeCA({ groups: ['a', 'b', ''], ips: ['10.0.0.0/8'], subnets: ['192.168.0.0/16'] });
  const host = makeHost(ca, { name: 'höst ✓', groups: ['a', 'b', ''], ips: ['10.1.2.3/16', '10.9.9.9/8'], subnets: ['192.168.1.0/24'] });
  const plain = makeHost(makeCA(), {});
  const seeds = [ca.cert.marshal(), host.cert.marshal(), plain.cert.marshal(), marshalCertForHandshake(host.cert)];
  t.same(unmarshalCert(seeds[1]!).details, host.cert.details, 'seed decodes to what was signed');

  const tally = new Tally('unmarshalCert', [CertError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true, randomMax: 128 });
    const r = tally.run(input, () => unmarshalCert(input));
    if (!r.ok) continue;
    const c = r.value;
    checkShape(tally, c, input);
    // Canonical: the re-marshalled bytes decode to the same certificate and re-marshal byte-identically.
    const canon = tally.mustNotThrow(input, 'marshal', () => c.marshal());
    if (!canon) continue;
    const again = tally.mustNotThrow(input, 're-decoding the canonical encoding', () => unmarshalCert(canon));
    if (again) {
      tally.same(again.details, c.details, 'details survive decode(encode(decode(x)))', input);
      tally.same(again.signature, c.signature, 'signature survives', input);
      tally.same(again.marshal(), canon, 'marshal is byte-identical after a round trip', input);
      tally.check(again.fingerprint() === c.fingerprint(), 'fingerprint is stable', input);
    }
    // What `nebula-ts-cert print`, logs and the pool do with a decoded certificate must not throw.
    tally.mustNotThrow(input, 'print/verify helpers', () => {
      certToText(c);
      certToJson(c);
      c.expired();
      c.checkSignature(c.details.publicKey);
      checkRootConstraintsQuiet(c, ca.cert);
      return c.vpnIp;
    });
  }
  tally.assert(t, 100);
});

/** checkRootConstraints may refuse (CertError) but must not fail any other way. */
function checkRootConstraintsQuiet(c: NebulaCertificate, signer: NebulaCertificate): void {
  try {
    checkRootConstraints(c, signer);
  } catch (err) {
    if (!(err instanceof CertError)) throw err;
  }
}

t.test('certFromHandshake and validateHandshakeCert on mutated peer certificates', async (t) => {
  const run = fuzzRun(t, 'cert-handshake', BASE_COUNT);
  const { rng } = run;
  const ca = makeCA({ groups: ['a', 'b'], ips: ['10.0.0.0/8'] });
  const other = makeCA({ name: 'other ca' });
  const { pool } = loadCAPool(ca.cert.toPem() + other.cert.toPem());
  const now = ca.cert.details.notBefore + 60;
  const hosts = [
    makeHost(ca, { groups: ['a'], ips: ['10.1.2.3/16'] }),
    makeHost(ca, { name: 'second', groups: ['a', 'b'], ips: ['10.4.5.6/8', '10.7.7.7/32'], subnets: ['10.200.0.0/16'] }),
    makeHost(other, { name: 'from the other ca' }),
  ];
  const seeds = hosts.map((h) => marshalCertForHandshake(h.cert));

  for (const [i, s] of seeds.entries()) {
    t.same(validateHandshakeCert(s, hosts[i]!.cert.details.publicKey, pool, now).details, hosts[i]!.cert.details, `seed ${i} validates`);
  }

  const recombine = new Tally('certFromHandshake', [CertError]);
  const validate = new Tally('validateHandshakeCert', [CertError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true, randomMax: 128 });
    // Mostly the static key of one of the hosts (so the signature can hold), sometimes a foreign or odd-sized key.
    const hostIdx = rng.int(hosts.length);
    const key = rng.chance(0.85) ? hosts[hostIdx]!.cert.details.publicKey : rng.bytes(rng.pick([0, 31, 32, 33, 64]));

    const r = recombine.run(input, () => certFromHandshake(input, key));
    if (r.ok) {
      const c = r.value;
      checkShape(recombine, c, input);
      recombine.same(c.details.publicKey, key, 'public key is the Noise static key', input);
      const canon = marshalCertForHandshake(c);
      const again = recombine.mustNotThrow(input, 're-decoding the handshake form', () => certFromHandshake(canon, key));
      if (again) {
        recombine.same(again.details, c.details, 'handshake form round trip', input);
        recombine.same(marshalCertForHandshake(again), canon, 'handshake form is canonical', input);
      }
    }

    const v = validate.run(input, () => validateHandshakeCert(input, key, pool, now));
    if (v.ok) {
      // The CA signature covers every detail: whatever bytes arrived, what validates is exactly a signed cert.
      const signed = hosts.find((h) => h.cert.details.publicKey.equals(v.value.details.publicKey));
      validate.check(signed !== undefined, 'validated a certificate for a key no CA signed', input);
      if (signed) validate.same(marshalDetails(v.value.details), marshalDetails(signed.cert.details), 'validated details are the signed ones', input);
      validate.check(!v.value.details.isCA && v.value.details.ips.length > 0, 'validated cert is a host cert with an IP', input);
    }
  }

  recombine.assert(t, 100);
  validate.assert(t, 20);
});

t.test('a CA pool only ever grows through valid self-signed CAs', async (t) => {
  const run = fuzzRun(t, 'cert-pool', BASE_COUNT / 3);
  const { rng } = run;
  const ca = makeCA();
  const host = makeHost(ca);
  const seeds = [ca.cert.marshal(), makeCA({ name: 'ca2', groups: ['x'] }).cert.marshal(), host.cert.marshal()];
  const tally = new Tally('CAPool.addCA', [CertError]);
  for (let i = 0; i < run.count; i++) {
    const input = nextInput(rng, seeds, { corpus: seeds, proto: true });
    const pool = new CAPool();
    const r = tally.run(input, () => pool.addCA(unmarshalCert(input), ca.cert.details.notBefore + 1));
    if (!r.ok) {
      tally.check(pool.cas.size === 0, 'a refused CA left something in the pool', input);
      continue;
    }
    const added = pool.getCA(r.value.fingerprint);
    tally.check(added !== undefined && added.details.isCA && added.checkSignature(added.details.publicKey), 'pool holds a self-signed CA', input);
  }
  tally.assert(t, 20);
});
