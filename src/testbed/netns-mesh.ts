/**
 * Testbed: a small Nebula mesh on one machine, shared by the demo, the benchmark and the end-to-end tests: one network namespace per node, all
 * joined by veths to a bridge in a hub namespace (the "underlay", 10.99.0.0/24), fresh certificates, and either
 * nebula-ts or Go nebula running in each namespace. Everything it creates is removed by `destroy()`.
 * Needs root. Traffic stays inside the namespaces it made.
 */
import { spawn, execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { defaultControlSocketBase, defaultControlSocketPath } from '../shared/control-path';
import { nodeConfig } from './mesh-config';
import type { MeshNode, MeshNodeSpec } from './mesh-node';
import { makeCA, makeHostCert, type MeshCA } from './mesh-pki';
import { copyRuntime, type RuntimeCopy } from './runtime-copy';
import { cleanNodeOptionsPrefix, nodeCommand } from './runner-hooks';

export type { MeshNode, MeshNodeSpec, NodeKind } from './mesh-node';

const PORT = 4242;
export const OVERLAY_PREFIX = '192.168.100';

function sh(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

let meshCounter = 0;

/**
 * Mesh namespaces are named `ntm<pid>-<n>-<node index | hub>` (pid and n in base 36): unique to the process that
 * made the mesh, so meshes of parallel test processes never collide, and the owner can be read back.
 */
const MESH_NETNS = /^ntm([0-9a-z]+)-[0-9a-z]+-[0-9a-z]+$/;

/** The pid of the process that made mesh namespace `name`, or undefined for a name of another kind. */
export function meshNetnsOwner(name: string): number | undefined {
  const m = MESH_NETNS.exec(name);
  return m ? parseInt(m[1]!, 36) : undefined;
}

export interface MeshOptions {
  cipher?: 'aes' | 'chachapoly';
  /** Root of the project (for dist/supervisor/main.js). */
  projectRoot: string;
  ca?: MeshCA;
  /** Write node output through as it arrives (the demo), instead of only collecting it. */
  echo?: (node: MeshNode, line: string) => void;
}

export class Mesh {
  readonly id: string;
  readonly dir: string;
  readonly hub: string;
  readonly nodes = new Map<string, MeshNode>();
  readonly ca: MeshCA;
  private created: string[] = [];
  /** The world-readable runtime copy for nodes with `runAs`, made on the first such start. */
  private runtime?: RuntimeCopy;

  constructor(private readonly opts: MeshOptions) {
    this.id = `ntm${process.pid.toString(36)}-${(meshCounter++).toString(36)}`;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-mesh-'));
    this.hub = `${this.id}-hub`;
    this.ca = opts.ca ?? makeCA(this.dir);
  }

  get cipher(): 'aes' | 'chachapoly' {
    return this.opts.cipher ?? 'aes';
  }

  async init(): Promise<void> {
    await sh('ip', ['netns', 'add', this.hub]);
    this.created.push(this.hub);
    await sh('ip', ['-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', this.hub, 'link', 'set', 'br0', 'up']);
  }

  /** Adds a node: its namespace, a veth to the hub bridge, its certificate and config (not started). */
  async add(spec: MeshNodeSpec): Promise<MeshNode> {
    const index = this.nodes.size + 1;
    const ns = `${this.id}-${index}`;
    await sh('ip', ['netns', 'add', ns]);
    this.created.push(ns);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const underlayIp = `10.99.0.${index}`;
    await sh('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `v${index}`, 'netns', this.hub]);
    await sh('ip', ['-n', ns, 'addr', 'add', `${underlayIp}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await sh('ip', ['-n', this.hub, 'link', 'set', `v${index}`, 'master', 'br0']);
    await sh('ip', ['-n', this.hub, 'link', 'set', `v${index}`, 'up']);
    const dir = path.join(this.dir, spec.name);
    const node: MeshNode = {
      ...spec,
      ns,
      underlayIp,
      dir,
      configPath: path.join(dir, 'config.yml'),
      controlSocket: spec.defaultControlSocket
        ? // What the node computes inside its namespace: /run/netns/<ns> is that namespace's nsfs inode.
          defaultControlSocketPath(String((spec.config?.tun as { dev?: unknown } | undefined)?.dev ?? 'nebula1'), {
            netnsInode: statSync(`/run/netns/${ns}`).ino,
            base: defaultControlSocketBase(spec.runAs?.uid ?? 0),
          })
        : path.join(dir, 'control.sock'),
      output: [],
    };
    makeHostCert(dir, this.ca, { name: spec.name, ip: `${spec.overlayIp}/24`, groups: spec.groups, subnets: spec.subnets });
    this.nodes.set(spec.name, node);
    return node;
  }

  node(name: string): MeshNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Writes every node's config: static_host_map lists every other node. */
  writeConfigs(): void {
    for (const n of this.nodes.values()) this.writeConfig(n);
  }

  writeConfig(n: MeshNode): void {
    const config = nodeConfig(n, [...this.nodes.values()], { caPath: this.ca.caPath, cipher: this.cipher, port: PORT });
    writeFileSync(n.configPath, YAML.stringify(config), { mode: 0o600 });
    if (n.runAs) this.grantNodeFiles(n);
  }

  /** A `runAs` node's user must read its config, cert and key, and the CA cert through the mesh directory. */
  private grantNodeFiles(n: MeshNode): void {
    const { uid, gid } = n.runAs!;
    chownSync(n.dir, uid, gid);
    for (const f of readdirSync(n.dir)) chownSync(path.join(n.dir, f), uid, gid);
    chmodSync(this.dir, 0o711);
    chmodSync(this.ca.caPath, 0o644);
  }

  /** The world-readable runtime copy `runAs` nebula-ts nodes run from, made on first use, removed by `destroy()`. */
  runtimeCopy(): RuntimeCopy {
    this.runtime ??= copyRuntime(this.opts.projectRoot);
    return this.runtime;
  }

  /** Starts a node and resolves once it reports its interface is up. */
  async start(name: string, timeoutMs = 15_000): Promise<MeshNode> {
    const n = this.node(name);
    const prefix: string[] = [];
    let root = this.opts.projectRoot;
    if (n.runAs) {
      this.grantNodeFiles(n);
      if (n.kind === 'ts') root = this.runtimeCopy().root;
      // Unset in the exec chain, not in `env`: tap's process-info hook puts its loader back into every child's env.
      prefix.push('env', '-u', 'NODE_OPTIONS', 'setpriv', `--reuid=${n.runAs.uid}`, `--regid=${n.runAs.gid}`, '--clear-groups');
    } else if (n.kind === 'ts') {
      prefix.push(...cleanNodeOptionsPrefix(n.env?.NODE_OPTIONS));
    }
    const cmd =
      n.kind === 'ts'
        ? [process.execPath, path.join(root, 'dist', 'supervisor', 'main.js'), '-config', n.configPath]
        : ['nebula', '-config', n.configPath];
    const child = spawn('ip', ['netns', 'exec', n.ns, ...prefix, ...(n.commandPrefix ?? []), ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...n.env } });
    n.process = child;
    const onLine = (line: string): void => {
      n.output.push(line);
      if (n.output.length > 5000) n.output.splice(0, 1000);
      this.opts.echo?.(n, line);
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) onLine(l);
      });
    }
    await this.waitForOutput(name, /Nebula interface is active/, timeoutMs);
    // Go nebula 1.6.1 logs that line before it configures the device: also wait for the address to be there.
    const tun = (n.config?.tun ?? {}) as { disabled?: boolean; userspace?: string };
    if (!tun.disabled && !tun.userspace) await this.waitForAddress(n, Date.now() + timeoutMs);
    return n;
  }

  private async waitForAddress(n: MeshNode, deadline: number): Promise<void> {
    for (;;) {
      const out = await sh('ip', ['-n', n.ns, '-4', 'addr', 'show', 'dev', 'nebula1']).catch(() => '');
      if (out.includes(`inet ${n.overlayIp}/`)) return;
      // No event tells us when another program has configured its device; poll briefly.
      if (Date.now() > deadline) throw new Error(`${n.name}: ${n.overlayIp} never appeared on nebula1`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves when a line matching `re` appears in the node's output (already seen lines count too). */
  waitForOutput(name: string, re: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const n = this.node(name);
    return new Promise((resolve, reject) => {
      const check = (): string | undefined => n.output.slice(from).find((l) => re.test(l));
      const found = check();
      if (found) return resolve(found);
      const child = n.process;
      const onData = (): void => {
        const f = check();
        if (f) finish(null, f);
      };
      const onExit = (code: number | null): void => finish(new Error(`${name} exited (${code}) before ${re}:\n${n.output.slice(-40).join('\n')}`));
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${re} from ${name}:\n${n.output.slice(-40).join('\n')}`)), timeoutMs);
      const finish = (err: Error | null, line?: string): void => {
        clearTimeout(timer);
        child?.stdout?.off('data', onData);
        child?.stderr?.off('data', onData);
        child?.off('exit', onExit);
        if (err) reject(err);
        else resolve(line!);
      };
      // The line handlers registered in start() run first (same stream, registered earlier).
      child?.stdout?.on('data', onData);
      child?.stderr?.on('data', onData);
      child?.once('exit', onExit);
    });
  }

  /** Stops a node with SIGTERM (SIGKILL after `graceMs`) and waits for it to exit. */
  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    const n = this.node(name);
    const child = n.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      child.kill(signal);
    });
  }

  /** Runs a command inside a node's namespace (node itself, `process.execPath`, without a test runner's hooks). */
  exec(name: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const command = cmd === process.execPath ? nodeCommand() : [cmd];
    return sh('ip', ['netns', 'exec', this.node(name).ns, ...command, ...args], timeoutMs);
  }

  /** Pings `to` (an overlay IP) from node `from`; resolves with the number of replies. */
  ping(from: string, to: string, count = 3, waitSeconds = 2): Promise<number> {
    const args = ['netns', 'exec', this.node(from).ns, 'ping', '-c', String(count), '-W', String(waitSeconds), '-i', '0.2', to];
    return new Promise((resolve, reject) => {
      // ping exits 1 when nothing answered: that is a count of 0, not an error. Anything without a summary line is.
      execFile('ip', args, { timeout: 60_000 }, (err, stdout, stderr) => {
        const m = /(\d+) received/.exec(String(stdout));
        if (m) resolve(Number(m[1]));
        else reject(new Error(`ping ${to} from ${from} failed: ${String(stderr).trim() || err?.message}`));
      });
    });
  }

  /** Pings until one reply arrives (the first packets wait for the handshake) or `timeoutMs` passes. */
  async pingUntilReply(from: string, to: string, timeoutMs = 15_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.ping(from, to, 1, 1)) > 0) return true;
    }
    return false;
  }

  async destroy(): Promise<void> {
    try {
      await Promise.all([...this.nodes.keys()].map((n) => this.stop(n, 'SIGTERM', 3000).catch(() => null)));
      for (const ns of this.created.reverse()) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
      this.created = [];
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
      this.runtime?.remove();
      this.runtime = undefined;
    }
  }
}
