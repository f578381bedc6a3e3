/**
 * The lighthouse DNS responder: the record store, the TXT source gate, the server on 127.0.0.1 (A for a known name,
 * empty for an unknown one, TXT to loopback, garbage dropped and counted while later queries are still answered,
 * FORMERR/NOTIMP refusals, a clear bind error), a cross-check with dig, and a byte-for-byte comparison with a real
 * Go nebula 1.6.1 lighthouse (Debian's package) answering the same queries about the same peer.
 * No root needed: everything listens on 127.0.0.1 (the Go nodes run with tun.disabled).
 */
import t, { type Test } from 'tap';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Logger } from '../../src/shared/log';
import { NebulaCertificate, unmarshalCertFromPem } from '../../src/shared/pki/cert';
import { goTimeString } from '../../src/shared/pki/format';
import { parseIPv4 } from '../../src/shared/util/ipv4';
import { DnsRecords, DnsServer, dnsCertText, txtAllowedFrom } from '../../src/supervisor/dns-server';
import { inCI, prereqs } from '../helpers/prereq';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ip = (s: string): number => parseIPv4(s)!;
const wire = (name: string): Buffer =>
  Buffer.concat([...name.split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
/** A query: ID and flags as hex, QDCOUNT..ARCOUNT as hex, then the body. */
const query = (id: string, flags: string, counts: string, ...body: Buffer[]): Buffer => Buffer.concat([hex(id + flags + counts), ...body]);
const ONE_Q = '0001 0000 0000 0000';
const quietLog = (): Logger => new Logger({ level: 'error', write: () => undefined });

const tmp = mkdtempSync(path.join(os.tmpdir(), 'nts-dns-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** A UDP client that keeps every datagram it receives, with a wait for one matching a predicate. */
type WaitFor = (pred: (m: Buffer) => boolean, what: string, timeoutMs?: number) => Promise<Buffer>;

async function client(): Promise<{ sock: dgram.Socket; got: Buffer[]; waitFor: WaitFor }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const got: Buffer[] = [];
  const waiters: (() => void)[] = [];
  sock.on('message', (m) => {
    got.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const waitFor: WaitFor = (pred, what, timeoutMs = 5000) =>
    new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new Error(`no reply: ${what}`));
      }, timeoutMs);
      const check = (): void => {
        if (done) return;
        const hit = got.find(pred);
        if (hit) {
          done = true;
          clearTimeout(timer);
          resolve(hit);
        } else waiters.push(check);
      };
      check();
    });
  return { sock, got, waitFor };
}
const idOf = (m: Buffer): number => (m.length >= 2 ? m.readUInt16BE(0) : -1);

t.test('records: lower-cased FQDNs, removal, a name taken over, bounded', async (t) => {
  const r = new DnsRecords(2);
  t.equal(r.add('Host-One', ip('10.1.0.2'), 'text1'), true);
  t.equal(r.addressOf('host-one.'), ip('10.1.0.2'));
  t.equal(r.addressOf('HOST-ONE.'), ip('10.1.0.2'), 'looked up without regard to case');
  t.equal(r.addressOf('host-one'), undefined, 'the trailing dot is part of the name');
  t.equal(r.certText(ip('10.1.0.2')), 'text1');
  t.equal(r.add('host-one', ip('10.1.0.3'), 'text2'), true, 'a second host with the same name');
  t.equal(r.addressOf('host-one.'), ip('10.1.0.3'), 'the name points at the newer host');
  t.equal(r.certText(ip('10.1.0.2')), 'text1', 'the older host keeps its TXT answer');
  t.equal(r.add('three', ip('10.1.0.4'), 'text3'), false, 'full: refused');
  t.equal(r.overflows, 1);
  r.remove(ip('10.1.0.2'));
  t.equal(r.addressOf('host-one.'), ip('10.1.0.3'), "removing the older host leaves the newer host's name");
  t.equal(r.certText(ip('10.1.0.2')), undefined);
  t.equal(r.add('three', ip('10.1.0.4'), 'text3'), true, 'room again');
  t.equal(r.add('renamed', ip('10.1.0.4'), 'text3b'), true, 'the same host re-added under a new name: no room needed');
  t.equal(r.addressOf('three.'), undefined, 'its old name is gone');
  t.equal(r.addressOf('renamed.'), ip('10.1.0.4'));
  r.remove(ip('10.1.0.3'));
  t.equal(r.addressOf('host-one.'), undefined);
  t.equal(r.size, 1);
});

t.test("TXT answers go only to our VPN network and 127.0.0.1 (Go 1.6.1's check)", async (t) => {
  const net = [ip('10.1.0.1'), 0xffff0000] as const;
  t.equal(txtAllowedFrom('127.0.0.1', ...net), true);
  t.equal(txtAllowedFrom('10.1.200.9', ...net), true);
  t.equal(txtAllowedFrom('10.2.0.1', ...net), false);
  t.equal(txtAllowedFrom('127.0.0.2', ...net), false, 'only 127.0.0.1 itself, as Go 1.6.1 compares the text');
  t.equal(txtAllowedFrom('192.168.1.5', ...net), false);
  t.equal(txtAllowedFrom('::1', ...net), false);
});

t.test("dnsCertText: Go's fmt line for a cert", async (t) => {
  const details = {
    name: 'h1',
    ips: [{ ip: ip('10.1.0.2'), mask: 0xffff0000 }],
    subnets: [] as { ip: number; mask: number }[],
    groups: ['a', 'b'],
    notBefore: 1700000000,
    notAfter: 1800000000,
    publicKey: Buffer.alloc(32, 0xab),
    isCA: false,
    issuer: 'cafe',
  };
  const text = dnsCertText(new NebulaCertificate(details, Buffer.alloc(64)));
  t.equal(
    text,
    `"Name: h1" "Ips: [10.1.0.2/16]" "Subnets []" "Groups [a b]" "NotBefore ${goTimeString(1700000000)}" ` +
      `"NotAFter ${goTimeString(1800000000)}" "PublicKey ${'ab'.repeat(32)}" "IsCA false" "Issuer cafe"`,
  );
});

async function startServer(t: Test, records: DnsRecords, vpn = '10.1.0.1'): Promise<DnsServer> {
  const server = new DnsServer({ host: '127.0.0.1', port: 0, vpnIp: ip(vpn), vpnMask: 0xffff0000, records, log: quietLog() });
  await server.start();
  t.teardown(() => server.stop());
  return server;
}

t.test('the server on 127.0.0.1 answers, refuses and drops as Go does', async (t) => {
  const records = new DnsRecords();
  records.add('Host1', ip('10.1.0.2'), '"Name: Host1" "IsCA false"');
  const server = await startServer(t, records);
  t.equal(server.address.address, '127.0.0.1');
  const { sock, got, waitFor } = await client();
  t.teardown(() => sock.close());
  const ask = async (q: Buffer, id: number, what: string): Promise<Buffer> => {
    sock.send(q, server.address.port, '127.0.0.1');
    return waitFor((m) => idOf(m) === id, what);
  };
  const qHost1 = '05 686f737431 00';

  const a = await ask(query('4242', '0100', ONE_Q, hex(qHost1), hex('0001 0001')), 0x4242, 'A host1.');
  t.equal(a.toString('hex'), hex(`4242 8100 0001 0001 0000 0000 ${qHost1} 0001 0001 ${qHost1} 0001 0001 00000e10 0004 0a010002`).toString('hex'), 'A, byte for byte');

  const upper = await ask(query('4243', '0000', ONE_Q, wire('HOST1'), hex('0001 0001')), 0x4243, 'A HOST1.');
  t.equal(upper.readUInt16BE(6), 1, 'matched without regard to case');
  t.same(upper.subarray(23, 30), wire('HOST1'), 'the owner name is spelled as the query spelled it');

  const unknown = await ask(query('4244', '0100', ONE_Q, wire('nope'), hex('0001 0001')), 0x4244, 'A nope.');
  t.equal(unknown.toString('hex'), hex(`4244 8100 0001 0000 0000 0000 ${wire('nope').toString('hex')} 0001 0001`).toString('hex'), 'unknown: empty NOERROR');

  const aaaa = await ask(query('4245', '0100', ONE_Q, hex(qHost1), hex('001c 0001')), 0x4245, 'AAAA host1.');
  t.equal(aaaa.readUInt16BE(6), 0, 'AAAA: no answer');
  t.equal(aaaa.readUInt16BE(2) & 0xf, 0, 'AAAA: NOERROR');

  const txt = await ask(query('4246', '0100', ONE_Q, wire('10.1.0.2'), hex('0010 0001')), 0x4246, 'TXT 10.1.0.2.');
  const qTxt = wire('10.1.0.2').toString('hex');
  const rdata = '0b 4e616d653a20486f737431 0a 4973434120 66616c7365'; // "Name: Host1", "IsCA false"
  t.equal(txt.toString('hex'), hex(`4246 8100 0001 0001 0000 0000 ${qTxt} 0010 0001 ${qTxt} 0010 0001 00000e10 0017 ${rdata}`).toString('hex'), 'TXT from 127.0.0.1, byte for byte');

  // Garbage and a response get nothing; the query after them is answered, and it is the only reply that came.
  const before = got.length;
  sock.send(hex('dead beef 01'), server.address.port, '127.0.0.1');
  sock.send(query('4247', '8100', ONE_Q, hex(qHost1), hex('0001 0001')), server.address.port, '127.0.0.1');
  sock.send(Buffer.concat([query('4248', '0100', ONE_Q, hex(qHost1), hex('0001 0001')), Buffer.alloc(600)]), server.address.port, '127.0.0.1');
  const after = await ask(query('4249', '0100', ONE_Q, hex(qHost1), hex('0001 0001')), 0x4249, 'A after garbage');
  t.equal(after.readUInt16BE(6), 1, 'still answering');
  t.same(got.slice(before).map(idOf), [0x4249], 'nothing came back for the garbage, the response or the oversize query');
  t.equal(server.dropped, 3, 'all three counted');

  const twoQ = await ask(query('424a', '0100', '0002 0000 0000 0000', hex(qHost1), hex('0001 0001'), hex(qHost1), hex('0001 0001')), 0x424a, 'two questions');
  t.equal(twoQ.toString('hex'), '424a81010000000000000000', 'two questions: FORMERR, header only');
  const loop = await ask(query('424b', '0100', ONE_Q, hex('c00c 0001 0001')), 0x424b, 'pointer loop');
  t.equal(loop.toString('hex'), '424b81010000000000000000', 'a pointer loop: FORMERR');
  const update = await ask(query('424c', '2800', ONE_Q, hex(qHost1), hex('0001 0001')), 0x424c, 'UPDATE');
  t.equal(update.toString('hex'), '424ca8040000000000000000', 'opcode UPDATE: NOTIMP, opcode kept');
  const bare = await ask(query('424d', '0100', ONE_Q), 0x424d, 'header only');
  t.equal(bare.toString('hex'), '424d81050000000000000000', 'a query ending after its header: REFUSED (miekg ServeMux)');
  t.equal(server.refused, 4);
  t.equal(server.dropped, 3);
});

t.test('TXT is refused (an empty NOERROR) outside the VPN network and answered inside it', async (t) => {
  const records = new DnsRecords();
  records.add('h', ip('10.1.0.2'), '"x"');
  const server = new DnsServer({ host: '127.0.0.1', port: 0, vpnIp: ip('10.1.0.1'), vpnMask: 0xffff0000, records, log: quietLog() });
  const q = query('0007', '0000', ONE_Q, wire('10.1.0.2'), hex('0010 0001'));
  const outside = server.respond(q, '192.168.7.7');
  t.equal(outside?.readUInt16BE(6), 0, 'no answer from outside');
  t.equal((outside?.readUInt16BE(2) ?? -1) & 0xf, 0, 'NOERROR');
  t.equal(server.respond(q, '10.1.77.3')?.readUInt16BE(6), 1, 'answered inside the VPN network');
  const unknownHost = query('0008', '0000', ONE_Q, wire('10.1.0.9'), hex('0010 0001'));
  t.equal(server.respond(unknownHost, '127.0.0.1')?.readUInt16BE(6), 0, 'no host at that IP: no answer');
  const notAnIp = query('0009', '0000', ONE_Q, wire('010.1.0.2'), hex('0010 0001'));
  t.equal(server.respond(notAnIp, '127.0.0.1')?.readUInt16BE(6), 0, 'a leading zero is no IP to Go');
});

t.test('a bind failure is an error naming lighthouse.dns.host:port', async (t) => {
  const first = await startServer(t, new DnsRecords());
  const port = first.address.port;
  const second = new DnsServer({ host: '127.0.0.1', port, vpnIp: 0, vpnMask: 0, records: new DnsRecords(), log: quietLog() });
  await t.rejects(second.start(), { message: new RegExp(`lighthouse\\.dns\\.host:port 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`) });
  t.throws(() => second.address, /not listening/);
  await first.stop();
  await first.stop(); // idempotent
  t.throws(() => first.address, /not listening/);
});

function haveDig(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v dig'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('dig reads our answers as we meant them', async (t) => {
  if (!haveDig()) {
    const reason = 'missing prerequisite: dig (bind9-dnsutils)';
    if (inCI) t.fail(`${reason} (CI must install it)`);
    else {
      console.error(`# SKIP ${reason}`);
      t.skip(reason, () => undefined);
    }
    return;
  }
  const records = new DnsRecords();
  records.add('Peer-One', ip('10.1.0.2'), '"Name: Peer-One" "Groups [a b]" "IsCA false"');
  const server = await startServer(t, records);
  const dig = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)('dig', ['@127.0.0.1', '-p', String(server.address.port), '+tries=1', '+time=5', ...args])).stdout;
  // dig sends RD and AD, and an EDNS OPT record with a cookie: the reply copies RD only and carries no OPT.
  const a = await dig('peer-one.', 'A', '+noall', '+comments', '+answer');
  t.match(a, /opcode: QUERY, status: NOERROR/);
  t.match(a, /flags: qr rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0/);
  const answer = a.split('\n').find((l) => l.startsWith('peer-one.'));
  t.same(answer?.split(/\s+/), ['peer-one.', '3600', 'IN', 'A', '10.1.0.2']);
  const txt = await dig('10.1.0.2.', 'TXT', '+short');
  t.equal(txt.trim(), '"Name: Peer-One" "Groups [a b]" "IsCA false"');
  const none = await dig('nobody.', 'A', '+noall', '+comments');
  t.match(none, /status: NOERROR/);
  t.match(none, /ANSWER: 0/);
});

/** Polls `get` every `intervalMs` until `pred` holds (test/e2e/helpers.ts has the same; importing it costs seconds). */
async function until<T>(what: string, get: () => Promise<T>, pred: (v: T) => boolean, timeoutMs: number, intervalMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A free UDP port on 127.0.0.1 (bound and released; Go nebula's lighthouse needs a fixed one). */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

t.test('byte for byte the replies of Go nebula 1.6.1 about the same peer', async (t) => {
  if (!prereqs(t, ['nebula'])) return;
  const dir = mkdtempSync(path.join(tmp, 'go-'));
  const certCmd = (...args: string[]): void => void execFileSync('nebula-cert', args, { cwd: dir, stdio: 'pipe' });
  certCmd('ca', '-name', 'DNS test CA');
  certCmd('sign', '-name', 'lh', '-ip', '10.77.0.1/16', '-out-crt', 'lh.crt', '-out-key', 'lh.key');
  certCmd('sign', '-name', 'Peer-One', '-ip', '10.77.0.2/16', '-groups', `g1,${'x'.repeat(300)}`, '-out-crt', 'peer.crt', '-out-key', 'peer.key');
  const [lhPort, dnsPort] = [await freePort(), await freePort()];
  const config = (name: string, extra: string): string => {
    const file = path.join(dir, `${name}.yml`);
    writeFileSync(
      file,
      `pki: {ca: ${dir}/ca.crt, cert: ${dir}/${name}.crt, key: ${dir}/${name}.key}\n${extra}\n` +
        'tun: {disabled: true}\nlogging: {level: info}\n' +
        'firewall: {outbound: [{port: any, proto: any, host: any}], inbound: [{port: any, proto: any, host: any}]}\n',
    );
    return file;
  };
  const lhConfig = config('lh', `lighthouse: {am_lighthouse: true, serve_dns: true, dns: {host: 127.0.0.1, port: ${dnsPort}}}\nlisten: {host: 127.0.0.1, port: ${lhPort}}`);
  const peerConfig = config('peer', `static_host_map: {"10.77.0.1": ["127.0.0.1:${lhPort}"]}\nlighthouse: {hosts: ["10.77.0.1"]}\nlisten: {host: 127.0.0.1, port: 0}`);
  const run = (name: string, file: string): ChildProcess => {
    const out = openSync(path.join(dir, `${name}.log`), 'w');
    const child = spawn('nebula', ['-config', file], { stdio: ['ignore', out, out] });
    t.teardown(() => void child.kill('SIGTERM'));
    return child;
  };
  run('lh', lhConfig);
  run('peer', peerConfig);

  const { sock, got, waitFor } = await client();
  t.teardown(() => sock.close());
  const askGo = async (q: Buffer, id: number, what: string, timeoutMs?: number): Promise<Buffer> => {
    sock.send(q, dnsPort, '127.0.0.1');
    return waitFor((m) => idOf(m) === id, what, timeoutMs);
  };
  // Ready once Go's map holds the peer (its tunnel to the lighthouse is up).
  const probeFor = (id: number): Buffer => query(id.toString(16).padStart(4, '0'), '0100', ONE_Q, wire('Peer-One'), hex('0001 0001'));
  let nextProbe = 0xf000;
  const askOnce = (id: number): Promise<Buffer | undefined> => askGo(probeFor(id), id, 'probe', 300).catch(() => undefined);
  try {
    await until('the Go lighthouse to answer for Peer-One', () => askOnce(nextProbe++), (r) => r?.readUInt16BE(6) === 1, 20_000, 100);
  } catch (err) {
    t.fail(`${(err as Error).message}; its log:\n${readFileSync(path.join(dir, 'lh.log'), 'utf8').slice(-2000)}`);
    return;
  }

  const peer = unmarshalCertFromPem(readFileSync(path.join(dir, 'peer.crt'), 'utf8')).cert;
  const records = new DnsRecords();
  records.add(peer.details.name, ip('10.77.0.2'), dnsCertText(peer));
  const ours = new DnsServer({ host: '127.0.0.1', port: 0, vpnIp: ip('10.77.0.1'), vpnMask: 0xffff0000, records, log: quietLog() });
  const name = wire('Peer-One');
  const cases: [string, Buffer][] = [
    ['A, RD', query('0101', '0100', ONE_Q, name, hex('0001 0001'))],
    ['A, AA TC RA AD CD and an RCODE set', query('0102', '06bf', ONE_Q, name, hex('0001 0001'))],
    ['A, class CH', query('0103', '0000', ONE_Q, name, hex('0001 0003'))],
    ['A, unknown name', query('0104', '0100', ONE_Q, wire('nobody.example'), hex('0001 0001'))],
    ['AAAA', query('0105', '0100', ONE_Q, name, hex('001c 0001'))],
    ['TXT (split at 255)', query('0106', '0100', ONE_Q, wire('10.77.0.2'), hex('0010 0001'))],
    ['TXT, no such host', query('0107', '0100', ONE_Q, wire('10.77.0.9'), hex('0010 0001'))],
    ['header only', query('0108', '0100', ONE_Q)],
    ['name only', query('0109', '0100', ONE_Q, name)],
    ['class cut short', query('010a', '0100', ONE_Q, name, hex('0001 00'))],
    ['two questions', query('010b', '0100', '0002 0000 0000 0000', name, hex('0001 0001'), name, hex('0001 0001'))],
    ['three additional', query('010c', '0100', '0001 0000 0000 0003', name, hex('0001 0001'))],
    ['opcode STATUS', query('010d', '1100', ONE_Q, name, hex('0001 0001'))],
    ['NOTIFY', query('010e', '2100', ONE_Q, name, hex('0001 0001'))],
    ['pointer loop', query('010f', '0100', ONE_Q, hex('c00c 0001 0001'))],
    ['compressed name', query('0110', '0100', ONE_Q, hex('c012 0001 0001'), name)],
    ['EDNS OPT', query('0111', '0120', '0001 0000 0000 0001', name, hex('0001 0001 00 0029 04d0 00000000 0000'))],
    ['OPT past the end', query('0112', '0100', '0001 0000 0000 0001', name, hex('0001 0001 00 0029 1000 00000000 0050'))],
    ['special bytes in a label', query('0113', '0100', ONE_Q, hex('05 612e2040ff 00 0001 0001'))],
  ];
  for (const [what, q] of cases) {
    const goReply = await askGo(q, q.readUInt16BE(0), what);
    t.equal(ours.respond(q, '127.0.0.1')?.toString('hex'), goReply.toString('hex'), what);
  }
  // What Go does not answer at all: a response and a stub of a header. A probe sent after each comes back alone.
  for (const [what, q, probeId] of [
    ['a response', query('0120', '8100', ONE_Q, name, hex('0001 0001')), 0xe001],
    ['five bytes', hex('0121 0100 00'), 0xe002],
  ] as const) {
    const before = got.length;
    sock.send(q, dnsPort, '127.0.0.1');
    await askGo(probeFor(probeId), probeId, `probe after ${what}`);
    t.same(got.slice(before).map(idOf).filter((id) => id < 0xf000), [probeId], `Go sends nothing for ${what}`);
    t.equal(ours.respond(q, '127.0.0.1'), undefined, `nor do we for ${what}`);
  }
});
