/**
 * `npm run demo`: the README's main job. As root, builds a small Nebula mesh in network namespaces with fresh
 * certificates, the way real meshes run: a nebula-ts lighthouse (rootless, no tun device) and nodes that know only
 * the lighthouse — two nebula-ts nodes (one with 2 routines) plus a Go nebula 1.6.1 node when the `nebula` package is
 * installed. Every pair pings; the report shows that each pair found the other through the lighthouse and talks
 * directly (the tunnel's remote is the peer's own address), and what the lighthouse knows. Then it cleans up.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Mesh, type MeshNode } from '../testbed/netns-mesh';

interface Row {
  from: string;
  to: string;
  sent: number;
  received: number;
  ms: number;
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

const LIGHTHOUSE = '192.168.100.1';
const NOBODY = { uid: 65534, gid: 65534 };
const CTL = path.resolve(__dirname, '..', 'ctl', 'main.js');

/** `nebula-ctl <args>` against a nebula-ts node of the mesh (JSON output parsed). */
async function ctl(mesh: Mesh, name: string, args: string[]): Promise<unknown> {
  return JSON.parse(await mesh.exec(name, process.execPath, [CTL, '-socket', mesh.node(name).controlSocket, ...args]));
}

/** For each nebula-ts node's tunnels: "direct to <address>" when the remote is the peer's own underlay address. */
async function directPaths(mesh: Mesh, names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const from of names) {
    const n = mesh.node(from);
    if (n.kind !== 'ts') continue;
    const hosts = (await ctl(mesh, from, ['list-hostmap', '-json'])) as Array<{ vpnIp: string; currentRemote: string | { ip: string; port: number } | null }>;
    for (const to of names) {
      const peer = mesh.node(to);
      const h = hosts.find((x) => x.vpnIp === peer.overlayIp);
      const remote = typeof h?.currentRemote === 'object' && h.currentRemote !== null ? `${h.currentRemote.ip}:${h.currentRemote.port}` : String(h?.currentRemote ?? '');
      if (h) out.set(`${from}>${to}`, remote.startsWith(`${peer.underlayIp}:`) ? `direct to ${remote}` : `via ${remote}`);
    }
  }
  return out;
}

async function lighthouseMap(mesh: Mesh): Promise<string[]> {
  const rows = (await ctl(mesh, 'lighthouse', ['list-lighthouse-addrmap', '-json'])) as Array<{ vpnIp: string; addrs: Record<string, { learned?: Array<{ ip: string; port: number }>; reported?: Array<{ ip: string; port: number }> }> }>;
  return rows.map((r) => {
    const own = r.addrs[r.vpnIp];
    const name = [...mesh.nodes.values()].find((n) => n.overlayIp === r.vpnIp)?.name ?? r.vpnIp;
    const fmt = (l?: Array<{ ip: string; port: number }>): string => (l ?? []).map((a) => `${a.ip}:${a.port}`).join(', ') || '-';
    return `${name.padEnd(10)} ${r.vpnIp.padEnd(16)} learned ${fmt(own?.learned)}; reported ${fmt(own?.reported)}`;
  });
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    say('The demo builds network namespaces and tun devices: run it as root (sudo npm run demo).');
    return 1;
  }
  for (const cmd of ['ip', 'ping']) {
    if (!hasCommand(cmd)) {
      say(`The demo needs \`${cmd}\` (apt-get install iproute2 iputils-ping).`);
      return 1;
    }
  }
  const withGo = hasCommand('nebula');
  const verbose = process.argv.includes('-v') || process.argv.includes('--verbose');
  const mesh = new Mesh({
    projectRoot: path.resolve(__dirname, '..', '..'),
    echo: (n: MeshNode, line: string) => {
      if (verbose || /Handshake message received|Nebula interface is active|error/i.test(line)) say(`  [${n.name}] ${line}`);
    },
  });
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await mesh.destroy();
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    say('nebula-ts demo: building a mesh in network namespaces (underlay 10.99.0.0/24, overlay 192.168.100.0/24)');
    await mesh.init();
    await mesh.add({
      name: 'lighthouse',
      kind: 'ts',
      overlayIp: LIGHTHOUSE,
      staticHosts: [],
      runAs: NOBODY,
      config: { lighthouse: { am_lighthouse: true }, tun: { disabled: true } },
    });
    const client = { lighthouse: { am_lighthouse: false, hosts: [LIGHTHOUSE], interval: 5 }, punchy: { punch: true } };
    await mesh.add({ name: 'alpha', kind: 'ts', overlayIp: '192.168.100.11', staticHosts: ['lighthouse'], config: client });
    await mesh.add({ name: 'beta', kind: 'ts', overlayIp: '192.168.100.12', routines: 2, staticHosts: ['lighthouse'], config: client });
    if (withGo) await mesh.add({ name: 'gamma-go', kind: 'go', overlayIp: '192.168.100.13', staticHosts: ['lighthouse'], config: client });
    else say('(Go nebula is not installed: apt-get install nebula adds a Go nebula 1.6.1 node to this demo)');
    mesh.writeConfigs();
    for (const n of mesh.nodes.values()) {
      const what = n.name === 'lighthouse' ? 'nebula-ts lighthouse, as nobody, no tun device' : n.kind === 'ts' ? `nebula-ts, routines ${n.routines ?? 1}` : 'Go nebula 1.6.1';
      say(`starting ${n.name} (${what}) at ${n.overlayIp}${n.name === 'lighthouse' ? '' : ', knowing only the lighthouse'}`);
      await mesh.start(n.name);
    }
    const rows: Row[] = [];
    const names = [...mesh.nodes.keys()].filter((n) => n !== 'lighthouse');
    for (const from of names) {
      for (const to of names) {
        if (from === to) continue;
        const target = mesh.node(to).overlayIp;
        const started = Date.now();
        const up = await mesh.pingUntilReply(from, target, 15_000);
        const ms = Date.now() - started;
        const received = up ? await mesh.ping(from, target, 5, 2) : 0;
        rows.push({ from, to, sent: 5, received, ms });
      }
    }
    say('\nreport: ping across the overlay (first reply includes the lighthouse query and the handshake)');
    say('  from       to         replies  first reply  path');
    const direct = await directPaths(mesh, names);
    for (const r of rows) {
      // A Go node has no console: its side of a pair is the nebula-ts side's view of the same tunnel.
      const reverse = direct.get(`${r.to}>${r.from}`);
      const path = direct.get(`${r.from}>${r.to}`) ?? (reverse ? `${reverse.split(' to ')[0]} (seen from ${r.to})` : '');
      say(`  ${r.from.padEnd(10)} ${r.to.padEnd(10)} ${`${r.received}/${r.sent}`.padEnd(8)} ${`${r.ms} ms`.padEnd(12)} ${path}`);
    }
    say('\nthe lighthouse (nebula-ctl list-lighthouse-addrmap): where each node said it is');
    for (const line of await lighthouseMap(mesh)) say(`  ${line}`);
    const ok = rows.every((r) => r.received === r.sent);
    say(ok ? '\nall tunnels up, every ping answered: the peers found each other through the lighthouse.' : '\nsome pings were lost: see the log lines above.');
    return ok ? 0 : 1;
  } catch (err) {
    say(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    say('cleaning up namespaces and processes');
    await cleanup();
  }
}

main().then((code) => process.exit(code));
