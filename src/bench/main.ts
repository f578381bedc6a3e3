/**
 * `npm run bench`: nebula-ts next to Go nebula 1.6.1 on this machine, in one run. Three meshes of two nodes each
 * (Go <-> Go, nebula-ts <-> nebula-ts, nebula-ts <-> Go), the same iperf3 TCP test through each overlay, and the
 * ratios printed. Every run is bounded in time and traffic stays inside the namespaces it creates. Needs root,
 * iperf3 and the nebula package.
 *
 *   npm run bench [-- --seconds 5 --routines 2 --cipher aes --parallel 4]
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Mesh, type NodeKind } from '../testbed/netns-mesh';

interface Options {
  seconds: number;
  routines: number;
  cipher: 'aes' | 'chachapoly';
  parallel: number;
}

function parse(argv: string[]): Options {
  const o: Options = { seconds: 5, routines: 1, cipher: 'aes', parallel: 1 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--seconds':
        o.seconds = Math.min(60, Math.max(1, Number(v)));
        i++;
        break;
      case '--routines':
        o.routines = Math.max(1, Number(v));
        i++;
        break;
      case '--cipher':
        o.cipher = v === 'chachapoly' ? 'chachapoly' : 'aes';
        i++;
        break;
      case '--parallel':
        o.parallel = Math.min(64, Math.max(1, Number(v)));
        i++;
        break;
    }
  }
  return o;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

interface Result {
  label: string;
  gbps: number;
  retransmits: number;
}

async function measure(label: string, kinds: [NodeKind, NodeKind], o: Options): Promise<Result> {
  const mesh = new Mesh({ projectRoot: path.resolve(__dirname, '..', '..'), cipher: o.cipher });
  try {
    await mesh.init();
    const routines = (k: NodeKind): number | undefined => (k === 'ts' ? o.routines : undefined);
    const goRoutines = (k: NodeKind): Record<string, unknown> => (k === 'go' ? { routines: o.routines } : {});
    await mesh.add({ name: 'client', kind: kinds[0], overlayIp: '192.168.100.1', routines: routines(kinds[0]), config: goRoutines(kinds[0]) });
    await mesh.add({ name: 'server', kind: kinds[1], overlayIp: '192.168.100.2', routines: routines(kinds[1]), config: goRoutines(kinds[1]) });
    mesh.writeConfigs();
    await mesh.start('server');
    await mesh.start('client');
    if (!(await mesh.pingUntilReply('client', '192.168.100.2', 15_000))) throw new Error(`${label}: no tunnel`);
    const server = mesh.node('server');
    const serverProc = execFile('ip', ['netns', 'exec', server.ns, 'iperf3', '-s', '-1', '--forceflush', '-B', '192.168.100.2'], { timeout: (o.seconds + 30) * 1000 });
    // iperf3 -s prints "Server listening" once bound (flushed at once with --forceflush): wait for it, no sleep.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('iperf3 server did not start')), 10_000);
      serverProc.stdout?.on('data', (c: Buffer) => {
        if (/Server listening/.test(c.toString())) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const out = await mesh.exec('client', 'iperf3', ['-c', '192.168.100.2', '-t', String(o.seconds), '-P', String(o.parallel), '-J'], (o.seconds + 30) * 1000);
    const json = JSON.parse(out) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
    return { label, gbps: json.end.sum_received.bits_per_second / 1e9, retransmits: json.end.sum_sent.retransmits ?? 0 };
  } finally {
    await mesh.destroy();
  }
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stdout.write('The benchmark builds network namespaces: run it as root.\n');
    return 1;
  }
  for (const cmd of ['nebula', 'iperf3']) {
    try {
      await run('sh', ['-c', `command -v ${cmd}`], 5000);
    } catch {
      process.stdout.write(`The benchmark needs ${cmd} (apt-get install nebula iperf3).\n`);
      return 1;
    }
  }
  process.stdout.write(`iperf3 TCP, ${o.seconds} s, ${o.parallel} stream(s), cipher ${o.cipher}, routines ${o.routines}, MTU 1300\n`);
  const results: Result[] = [];
  for (const [label, kinds] of [
    ['go <-> go', ['go', 'go']],
    ['ts <-> ts', ['ts', 'ts']],
    ['ts <-> go', ['ts', 'go']],
  ] as Array<[string, [NodeKind, NodeKind]]>) {
    const r = await measure(label, kinds, o);
    results.push(r);
    process.stdout.write(`  ${label.padEnd(10)} ${r.gbps.toFixed(3)} Gbit/s  (retransmits ${r.retransmits})\n`);
  }
  const go = results[0]!.gbps;
  process.stdout.write('ratios to Go nebula 1.6.1 on this machine:\n');
  for (const r of results.slice(1)) process.stdout.write(`  ${r.label.padEnd(10)} ${(r.gbps / go).toFixed(2)}x\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
