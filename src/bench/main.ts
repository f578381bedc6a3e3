/**
 * `npm run bench`: nebula-ts next to Go nebula 1.6.1 on this machine, in one run. For each cipher and routine count,
 * a fresh two-node mesh per implementation (the same certs and config apart from the binary), the implementations
 * alternating A/B/B/A over the repetitions; per run: the first ping after start, ping RTT, iperf3 TCP with 1 and 4
 * streams each way, a 64-byte UDP flood (packets/s, CPU µs and syscalls per packet), CPU-seconds per GB and RSS.
 * Prints medians with ratios to the first implementation (Go by default) and can write every run as JSON.
 * Traffic stays inside the namespaces it creates, which are removed after each run. Needs root, iperf3 and the
 * nebula package; `perf` is optional (syscall counts).
 *
 *   npm run bench [-- --seconds 3 --reps 2 --ciphers aes,chachapoly --routines 1,2 --impls go,ts
 *                     --tests first,ping,tcp1,tcp1r,tcp4,tcp4r,udp --json out.json --baseline /other/checkout --quick]
 *
 * `--baseline DIR` adds implementation `base`: nebula-ts run from DIR/dist (another build, e.g. before a change),
 * measured alternately with the current one. `mix` is a nebula-ts client with a Go server.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './probes';
import { table, summarize, type RunRecord } from './report';
import { ALL_TESTS, runOnce, type Impl, type TestName } from './scenario';

interface Options {
  seconds: number;
  reps: number;
  ciphers: Array<'aes' | 'chachapoly'>;
  routines: number[];
  impls: string[];
  tests: Set<TestName>;
  json?: string;
  baseline?: string;
}

const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

function parse(argv: string[]): Options {
  const o: Options = { seconds: 3, reps: 2, ciphers: ['aes', 'chachapoly'], routines: [1, 2], impls: ['go', 'ts'], tests: new Set(ALL_TESTS) };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const flag = argv[i]!;
    if (flag === '--quick') {
      Object.assign(o, { reps: 1, ciphers: ['aes'], routines: [1] });
      continue;
    }
    i++;
    if (flag === '--seconds') o.seconds = Math.min(60, Math.max(1, Number(v)));
    else if (flag === '--reps') o.reps = Math.min(20, Math.max(1, Number(v)));
    else if (flag === '--ciphers') o.ciphers = list(v).map((c) => (c === 'chachapoly' ? 'chachapoly' : 'aes'));
    else if (flag === '--routines') o.routines = list(v).map((r) => Math.max(1, Number(r)));
    else if (flag === '--impls') o.impls = list(v);
    else if (flag === '--tests') o.tests = new Set(list(v).filter((t): t is TestName => (ALL_TESTS as readonly string[]).includes(t)));
    else if (flag === '--json') o.json = v;
    else if (flag === '--baseline') o.baseline = path.resolve(v ?? '.');
    else throw new Error(`unknown option ${flag}`);
  }
  if (o.baseline && !o.impls.includes('base')) o.impls.push('base');
  return o;
}

function implFor(label: string, o: Options): Impl {
  const root = path.resolve(__dirname, '..', '..');
  switch (label) {
    case 'go':
      return { label, client: 'go', server: 'go', root };
    case 'ts':
      return { label, client: 'ts', server: 'ts', root };
    case 'mix':
      return { label, client: 'ts', server: 'go', root };
    case 'base':
      if (!o.baseline) throw new Error('implementation base needs --baseline DIR');
      return { label, client: 'ts', server: 'ts', root: o.baseline };
    default:
      throw new Error(`unknown implementation ${label} (go, ts, mix, base)`);
  }
}

async function has(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`], 5000).then(
    () => true,
    () => false,
  );
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stdout.write('The benchmark builds network namespaces: run it as root.\n');
    return 1;
  }
  for (const cmd of ['nebula', 'iperf3', 'ping']) {
    if (!(await has(cmd))) {
      process.stdout.write(`The benchmark needs ${cmd} (apt-get install nebula iperf3 iputils-ping).\n`);
      return 1;
    }
  }
  const perf = await run('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter', '--', 'true'], 10_000).then(
    () => true,
    () => false,
  );
  const impls = o.impls.map((l) => implFor(l, o));
  const load0 = os.loadavg();
  process.stdout.write(
    `nebula-ts vs Go nebula 1.6.1: ${o.reps} repetition(s) x ${o.seconds} s, ciphers ${o.ciphers.join(',')}, routines ${o.routines.join(',')}, ` +
      `implementations ${o.impls.join(',')}, MTU 1300, ${os.cpus().length} CPUs, load average ${load0.map((l) => l.toFixed(1)).join(' ')}` +
      `${perf ? '' : ' (no usable perf: no syscall counts)'}\n`,
  );
  const runs: RunRecord[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    for (const cipher of o.ciphers) {
      for (const routines of o.routines) {
        // A/B then B/A: neither implementation always runs first (warmer caches, a load that drifts).
        const order = rep % 2 === 0 ? impls : [...impls].reverse();
        for (const impl of order) {
          const rec: RunRecord = { impl: impl.label, cipher, routines, rep, load1: os.loadavg()[0]!, metrics: {} };
          try {
            rec.metrics = await runOnce({ impl, cipher, routines, seconds: o.seconds, tests: o.tests, perf });
          } catch (err) {
            rec.error = err instanceof Error ? err.message : String(err);
          }
          runs.push(rec);
          const shown = Object.entries(rec.metrics).map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`).join(' ');
          process.stdout.write(`  rep ${rep + 1} ${impl.label} ${cipher} routines ${routines} (load ${rec.load1.toFixed(1)}): ${rec.error ? `FAILED: ${rec.error.split('\n')[0]}` : shown}\n`);
        }
      }
    }
  }
  const summary = summarize(runs.filter((r) => !r.error));
  const load1 = os.loadavg();
  for (const routines of o.routines) {
    process.stdout.write(`\nroutines ${routines}, medians of ${o.reps}; ratios > 1 are better than ${o.impls[0]}:\n\n`);
    process.stdout.write(table(summary, o.impls, o.ciphers, routines) + '\n');
  }
  process.stdout.write(`\nload average at the end: ${load1.map((l) => l.toFixed(1)).join(' ')}\n`);
  if (o.json) {
    const doc = { date: new Date().toISOString(), kernel: os.release(), cpus: os.cpus().length, loadavgStart: load0, loadavgEnd: load1, options: { ...o, tests: [...o.tests] }, runs, summary };
    writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
    process.stdout.write(`results written to ${o.json}\n`);
  }
  return runs.some((r) => r.error) ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
