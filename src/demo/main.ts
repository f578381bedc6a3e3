/**
 * `npm run demo`: the README's main job. As root, builds a small mesh in network namespaces with fresh
 * certificates: two nebula-ts nodes (one with 2 routines), plus a Go nebula 1.6.1 node when the `nebula` package is
 * installed. Shows tunnels coming up, pings across every pair, prints a short report, and cleans up.
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
    await mesh.add({ name: 'alpha', kind: 'ts', overlayIp: '192.168.100.1' });
    await mesh.add({ name: 'beta', kind: 'ts', overlayIp: '192.168.100.2', routines: 2 });
    if (withGo) await mesh.add({ name: 'gamma-go', kind: 'go', overlayIp: '192.168.100.3' });
    else say('(Go nebula is not installed: apt-get install nebula adds a Go nebula 1.6.1 node to this demo)');
    mesh.writeConfigs();
    for (const n of mesh.nodes.values()) {
      say(`starting ${n.name} (${n.kind === 'ts' ? `nebula-ts, routines ${n.routines ?? 1}` : 'Go nebula 1.6.1'}) at ${n.overlayIp}`);
      await mesh.start(n.name);
    }
    const rows: Row[] = [];
    const names = [...mesh.nodes.keys()];
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
    say('\nreport: ping across the overlay (first reply includes the handshake)');
    say('  from       to         replies  first reply');
    for (const r of rows) say(`  ${r.from.padEnd(10)} ${r.to.padEnd(10)} ${`${r.received}/${r.sent}`.padEnd(8)} ${r.ms} ms`);
    const ok = rows.every((r) => r.received === r.sent);
    say(ok ? '\nall tunnels up, every ping answered.' : '\nsome pings were lost: see the log lines above.');
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
