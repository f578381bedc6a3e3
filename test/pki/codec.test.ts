import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import {
  CertError,
  certFromHandshake,
  generateEd25519KeyPair,
  generateX25519KeyPair,
  marshalCertForHandshake,
  marshalDetails,
  pemDecode,
  pemEncode,
  unmarshalCert,
  unmarshalCertFromPem,
  unmarshalCertsFromPem,
  unmarshalEd25519PrivateKey,
  unmarshalX25519PrivateKey,
  marshalX25519PrivateKey,
  marshalEd25519PrivateKey,
  ed25519PublicFromPrivate,
  x25519PublicFromPrivate,
  x25519SharedSecret,
  ed25519Sign,
  ed25519Verify,
  signCert,
  CAPool,
} from '../../src/shared/pki';
import { ProtoWriter } from '../../src/shared/protobuf';
import { parseCidr } from '../../src/shared/util/ipv4';
import { makeCA, makeHost } from './helpers';

t.test('details encode canonically (the verified example of nebula-spec §4.2)', async (t) => {
  const pub = Buffer.alloc(32, 7);
  const issuer = 'ab'.repeat(32);
  const bytes = marshalDetails({
    name: 'host1',
    ips: [parseCidr('10.1.2.3/16')!],
    subnets: [],
    groups: ['g1'],
    notBefore: 1700000000,
    notAfter: 1800000000,
    publicKey: pub,
    isCA: false,
    issuer,
  });
  const expected = Buffer.concat([
    Buffer.from('0a05', 'hex'),
    Buffer.from('host1'),
    Buffer.from('1209838484508080fcff0f', 'hex'),
    Buffer.from('2202', 'hex'),
    Buffer.from('g1'),
  ]);
  t.same(bytes.subarray(0, expected.length).toString('hex'), expected.toString('hex'));
  // then 28 <notBefore> 30 <notAfter> 3a 20 <pub> 4a 20 <issuer>; no IsCA
  const tail = bytes.subarray(expected.length);
  t.equal(tail[0], 0x28);
  t.ok(tail.includes(Buffer.concat([Buffer.from('3a20', 'hex'), pub, Buffer.from('4a20', 'hex'), Buffer.from(issuer, 'hex')])));
  t.notOk(bytes.includes(Buffer.from('4001', 'hex')));
});

t.test('a certificate round-trips byte-identically and its fingerprint is sha256 of the bytes', async (t) => {
  const ca = makeCA({ name: 'ca', groups: ['a', 'b'], ips: ['10.0.0.0/8'], subnets: ['192.168.0.0/16'] });
  const host = makeHost(ca, { name: 'h', groups: ['a'], ips: ['10.1.2.3/16'], subnets: ['192.168.1.0/24', '192.168.2.0/24'] });
  for (const c of [ca.cert, host.cert]) {
    const raw = c.marshal();
    const back = unmarshalCert(raw);
    t.same(back.marshal(), raw);
    t.equal(back.fingerprint(), createHash('sha256').update(raw).digest('hex'));
    t.same(back.details, c.details);
    const pem = unmarshalCertFromPem(c.toPem());
    t.equal(pem.cert.fingerprint(), c.fingerprint());
  }
  t.ok(host.cert.checkSignature(ca.cert.details.publicKey));
  t.notOk(host.cert.checkSignature(host.cert.details.publicKey));
  t.equal(unmarshalCertsFromPem(ca.cert.toPem() + host.cert.toPem()).length, 2);
});

/** Asserts `fn` throws a CertError('malformed') whose message matches `pattern`. */
function expectMalformed(t: Test, fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof CertError && err.code === 'malformed' && pattern.test(err.message), `${String(err)} ~ ${pattern}`);
    return;
  }
  t.fail(`expected an error matching ${pattern}`);
}

t.test('parse rejects malformed protobuf with clear errors', async (t) => {
  const host = makeHost(makeCA());
  const raw = host.cert.marshal();
  expectMalformed(t, () => unmarshalCert(Buffer.alloc(0)), /nil byte array/);
  for (const cut of [1, 2, 10, raw.length - 1]) {
    expectMalformed(t, () => unmarshalCert(raw.subarray(0, cut)), /cannot parse invalid wire-format data|Details was nil/);
  }
  expectMalformed(t, () => unmarshalCert(Buffer.from([0xff, 0xff, 0xff])), /invalid wire-format/);
  const withDetails = (d: Buffer): Buffer => new ProtoWriter().message(1, d).bytes(2, Buffer.alloc(64)).finish();
  const key = Buffer.alloc(32, 1);
  expectMalformed(t, () => unmarshalCert(new ProtoWriter().bytes(2, Buffer.alloc(64)).finish()), /encoded Details was nil/);
  expectMalformed(
    t,
    () => unmarshalCert(withDetails(new ProtoWriter().bytes(1, 'x').packedUint32(2, [1, 2, 3]).bytes(7, key).finish())),
    /encoded IPs should be in pairs/,
  );
  expectMalformed(
    t,
    () => unmarshalCert(withDetails(new ProtoWriter().bytes(1, 'x').packedUint32(3, [1]).bytes(7, key).finish())),
    /encoded Subnets should be in pairs/,
  );
  expectMalformed(
    t,
    () => unmarshalCert(withDetails(new ProtoWriter().bytes(1, 'x').bytes(7, Buffer.alloc(31)).finish())),
    /Public key was fewer than 32 bytes; 31/,
  );
  expectMalformed(
    t,
    () => unmarshalCert(withDetails(new ProtoWriter().bytes(1, Buffer.from([0xff, 0xfe])).bytes(7, key).finish())),
    /invalid UTF-8/,
  );
  // Unknown fields of RawNebulaCertificate (here a field 100 outside Details) are accepted and dropped, as Go does.
  const extra = Buffer.concat([host.cert.marshal(), new ProtoWriter().uint(100, 1).finish()]);
  t.equal(unmarshalCert(extra).fingerprint(), host.cert.fingerprint());
});

t.test('PEM decoding: banners, bundles, corrupt and truncated input', async (t) => {
  const host = makeHost(makeCA());
  const pem = host.cert.toPem();
  t.match(pem, /^-----BEGIN NEBULA CERTIFICATE-----\n/);
  t.ok(pem.split('\n').every((l) => l.length <= 64));
  const d = pemDecode('junk before\n' + pem + 'rest');
  t.equal(d?.block.type, 'NEBULA CERTIFICATE');
  t.equal(d?.rest, 'rest');
  expectMalformed(t, () => unmarshalCertFromPem('garbage'), /input did not contain a valid PEM encoded block/);
  expectMalformed(t, () => unmarshalCertFromPem(pem.slice(0, 100)), /input did not contain a valid PEM encoded block/);
  expectMalformed(t, () => unmarshalCertFromPem(pem.replace('Q', '!')), /input did not contain a valid PEM encoded block/);
  expectMalformed(t, () => unmarshalCertFromPem(marshalX25519PrivateKey(host.privateKey)), /proper nebula certificate banner/);
  expectMalformed(t, () => unmarshalCertsFromPem(pem + 'trailing junk\n'), /valid PEM encoded block/);
  expectMalformed(t, () => unmarshalX25519PrivateKey(pem), /proper nebula X25519 private key banner/);
  expectMalformed(t, () => unmarshalX25519PrivateKey(pemEncode('NEBULA X25519 PRIVATE KEY', Buffer.alloc(31))), /key was not 32 bytes/);
  expectMalformed(t, () => unmarshalEd25519PrivateKey(pemEncode('NEBULA ED25519 PRIVATE KEY', Buffer.alloc(32))), /key was not 64 bytes/);
});

t.test('raw Ed25519 and X25519 keys through node:crypto', async (t) => {
  const ed = generateEd25519KeyPair();
  t.equal(ed.privateKey.length, 64);
  t.same(ed25519PublicFromPrivate(ed.privateKey), ed.publicKey);
  t.same(unmarshalEd25519PrivateKey(marshalEd25519PrivateKey(ed.privateKey)).key, ed.privateKey);
  const sig = ed25519Sign(ed.privateKey, Buffer.from('msg'));
  t.equal(sig.length, 64);
  t.ok(ed25519Verify(ed.publicKey, Buffer.from('msg'), sig));
  t.notOk(ed25519Verify(ed.publicKey, Buffer.from('msh'), sig));
  const a = generateX25519KeyPair();
  const b = generateX25519KeyPair();
  t.same(x25519PublicFromPrivate(a.privateKey), a.publicKey);
  t.same(x25519SharedSecret(a.privateKey, b.publicKey), x25519SharedSecret(b.privateKey, a.publicKey));
});

t.test('handshake form: public key omitted, recombined with the Noise static key, then verified', async (t) => {
  const ca = makeCA();
  const host = makeHost(ca);
  const pool = new CAPool();
  pool.addCA(ca.cert);
  const wire = marshalCertForHandshake(host.cert);
  t.notOk(wire.includes(host.cert.details.publicKey), 'public key is not sent');
  t.ok(wire.length < host.cert.marshal().length);
  const rebuilt = certFromHandshake(wire, host.cert.details.publicKey);
  t.same(rebuilt.marshal(), host.cert.marshal());
  t.equal(rebuilt.fingerprint(), host.cert.fingerprint());
  t.doesNotThrow(() => pool.verify(rebuilt));
  // A peer using a different static key cannot pass the signature check.
  const other = certFromHandshake(wire, generateX25519KeyPair().publicKey);
  t.throws(() => pool.verify(other), { message: 'certificate signature did not match' });
  t.throws(() => certFromHandshake(wire, Buffer.alloc(0)), /no peer static key/);
  // signCert copies its input, so later mutation of the caller's arrays cannot alter a signed cert.
  const groups = ['x'];
  const c = signCert({ ...host.cert.details, groups }, ca.privateKey);
  groups.push('y');
  t.same(c.details.groups, ['x']);
});
