/**
 * nebula-ts under pm2 (ecosystem.config.js), with an isolated PM2_HOME: start waits for the ready signal, SIGHUP
 * through `pm2 sendSignal` reloads the firewall, `pm2 stop` ends the supervisor and its routines cleanly.
 * The node runs in the root namespace with `tun.disabled: true` (no device) on a random 127.0.0.1 port and no
 * peers, so it sends nothing anywhere.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { makeCA, makeHostCert } from '../../src/testbed/mesh-pki';
import { nodeCommand } from '../../src/testbed/runner-hooks';
import { alive, childrenOf, until } from './helpers';

const ROOT = path.resolve(__dirname, '../..');
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

interface Pm2Proc {
  name: string;
  pid: number;
  pm2_env: { status: string; pm_out_log_path: string; pm_err_log_path: string; restart_time: number; pm_uptime: number; listen_timeout: number };
}

t.test('pm2: start waits for ready, sendSignal SIGHUP reloads the firewall, stop ends supervisor and routines', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-pm2-'));
  const pm2Home = path.join(dir, 'pm2');
  const app = `nebula-ts-e2e-${process.pid}`;
  const configPath = path.join(dir, 'config.yml');
  // pm2's daemon and the app get a clean environment: none of the test runner's loader options (the runner puts
  // its process-info hook back into every child's NODE_OPTIONS, so node runs pm2 through nodeCommand()).
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME ?? dir, PM2_HOME: pm2Home, NEBULA_TS_CONFIG: configPath, NEBULA_TS_APP: app };
  const [node, ...nodeArgs] = nodeCommand();
  const pm2 = (args: string[], timeoutMs = 60_000): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(node!, [...nodeArgs, PM2, ...args], { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`pm2 ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(String(stdout));
      });
    });
  const seenPids = new Set<number>();
  t.teardown(async () => {
    await pm2(['kill'], 30_000).catch((err: Error) => t.comment(`pm2 kill: ${err.message}`));
    for (const pid of seenPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const ca = makeCA(dir);
  makeHostCert(dir, ca, { name: 'pm2-node', ip: '192.168.100.50/24' });
  const port = await freeUdpPort();
  const config = {
    pki: { ca: ca.caPath, cert: path.join(dir, 'pm2-node.crt'), key: path.join(dir, 'pm2-node.key') },
    static_host_map: {},
    lighthouse: { am_lighthouse: false, hosts: [] },
    listen: { host: '127.0.0.1', port },
    punchy: { punch: false },
    tun: { disabled: true, dev: 'nebula1' },
    routines: 2,
    control: { socket: path.join(dir, 'control.sock') },
    logging: { level: 'info', format: 'text' },
    firewall: {
      outbound: [{ port: 'any', proto: 'any', host: 'any' }],
      inbound: [{ port: 'any', proto: 'any', host: 'any' }],
    },
  };
  writeFileSync(configPath, YAML.stringify(config), { mode: 0o600 });

  const jlist = async (): Promise<Pm2Proc[]> => {
    const out = await pm2(['jlist']);
    const start = out.indexOf('[');
    return JSON.parse(out.slice(start)) as Pm2Proc[];
  };
  const logs = (p: Pm2Proc): string =>
    [p.pm2_env.pm_out_log_path, p.pm2_env.pm_err_log_path].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('\n');

  const started = Date.now();
  await pm2(['start', path.join(ROOT, 'ecosystem.config.js')]);
  const returned = Date.now();
  // The control socket listens before 'ready' is sent: it is there the moment start returns.
  t.ok(existsSync(config.control.socket), 'the control socket exists when pm2 start returns');
  const list = await jlist();
  const proc = list.find((p) => p.name === app);
  t.ok(proc, `pm2 jlist has ${app}`);
  if (!proc) return;
  t.equal(proc.pm2_env.status, 'online', 'online');
  t.ok(proc.pid > 0 && alive(proc.pid), `supervisor pid ${proc.pid} alive`);
  seenPids.add(proc.pid);
  // pm2 answers start when the app sends 'ready', or when listen_timeout (counted from the fork, at pm_uptime) runs
  // out. Measured from the fork, not from the command: the pm2 CLI and daemon boot first, which takes seconds of
  // their own on a busy machine (test files run in parallel) and has nothing to do with the ready signal.
  const fromFork = returned - proc.pm2_env.pm_uptime;
  t.ok(
    fromFork < proc.pm2_env.listen_timeout,
    `pm2 start returned ${fromFork} ms after the fork, before listen_timeout (${proc.pm2_env.listen_timeout} ms): it got the ready signal (the command took ${returned - started} ms)`,
  );
  // 'ready' is sent after the interface is active and the control socket listens: by the time start returns, both
  // are in the log.
  const activeLog = await until('the start log', () => logs(proc), (l) => /Nebula interface is active/.test(l), 10_000);
  t.match(activeLog, /Nebula interface is active/, 'the node was active when pm2 start returned');
  const routines = await until('2 routines', () => childrenOf(proc.pid), (c) => c.length === 2, 10_000);
  for (const r of routines) seenPids.add(r);
  t.equal(routines.length, 2, `2 routines: ${routines.join(', ')}`);

  // SIGHUP through pm2, after a firewall change.
  writeFileSync(configPath, YAML.stringify({ ...config, firewall: { ...config.firewall, inbound: [{ port: 'any', proto: 'icmp', host: 'any' }] } }));
  await pm2(['sendSignal', 'SIGHUP', app]);
  const reloaded = await until('the reload log', () => logs(proc), (l) => /New firewall has been installed/.test(l), 10_000);
  t.match(reloaded, /Caught HUP, reloading config/, 'HUP caught');
  t.match(reloaded, /New firewall has been installed/, '"New firewall has been installed" logged');
  const after = (await jlist()).find((p) => p.name === app);
  t.equal(after?.pid, proc.pid, 'same supervisor process after the reload');
  t.equal(after?.pm2_env.restart_time, 0, 'pm2 did not restart it');
  t.same(childrenOf(proc.pid), routines, 'same routines after the reload');

  // Stop: SIGINT to the supervisor only (treekill off); it stops its routines itself.
  await pm2(['stop', app]);
  const pids = [proc.pid, ...routines];
  const left = await until('supervisor and routines to exit', () => pids.filter(alive), (l) => l.length === 0, 5000).catch(() => pids.filter(alive));
  t.same(left, [], `no process left of ${pids.join(', ')}`);
  t.equal((await jlist()).find((p) => p.name === app)?.pm2_env.status, 'stopped', 'pm2 shows it stopped');
  const finalLog = logs(proc);
  t.match(finalLog, /Caught signal, shutting down/, 'shutdown logged');
  t.match(finalLog, /Goodbye/, '"Goodbye" logged');
  t.notMatch(finalLog, /SIGKILL|level=error/, 'no errors, no SIGKILL');
});
