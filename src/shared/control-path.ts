/**
 * Where a node's control socket is by default, and how nebula-ctl finds it: the one rule, used by the node (the
 * config default of `control.socket`) and by nebula-ctl (a bare `nebula-ctl <command>`).
 *
 *   /run/nebula-ts/netns-<inode>.<dev>.sock     (root; another user: see defaultControlSocketBase)
 *
 * <inode> is the inode of the caller's network namespace (`/proc/self/ns/net`), <dev> is `tun.dev` ("nebula" when
 * empty). Why both:
 * - /run is shared by every network namespace of a host (`ip netns exec` remounts /sys, not /run), so a path made
 *   of tun.dev alone is the same for two nodes in two namespaces: they fought over it. The namespace inode makes
 *   the paths of different namespaces differ, and nebula-ctl run in a node's namespace (`ip netns exec NS
 *   nebula-ctl ...`, or simply on the host) computes the very same inode.
 * - tun.dev keeps two nodes of one namespace (two overlays on one host) on separate sockets, as before.
 * nebula-ctl does not know tun.dev, so it lists `netns-<inode>.*.sock`: one socket is the node's; with several it
 * keeps those a node answers on, and asks the user to pick one when more than one does.
 * Where /proc/self/ns/net cannot be read (no /proc), node and nebula-ctl both fall back to `/run/nebula-ts/<dev>.sock`.
 *
 * Nothing here listens or removes anything; `probeControlSocket` only tells a live socket from a stale one.
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const CONTROL_SOCKET_BASE = '/run/nebula-ts';

/**
 * Where the default sockets live for this user: /run/nebula-ts for root; an unprivileged node (a rootless lighthouse,
 * `tun.disabled`) cannot create that, so it uses $XDG_RUNTIME_DIR/nebula-ts, or <tmpdir>/nebula-ts-<uid> without one.
 * nebula-ctl run as the same user computes the same place. The node refuses a directory that another (non-root)
 * user owns (control-socket.ts), so a directory planted in /tmp cannot capture its socket.
 */
export function defaultControlSocketBase(uid = process.getuid?.() ?? 0, env: NodeJS.ProcessEnv = process.env): string {
  if (uid === 0) return CONTROL_SOCKET_BASE;
  // Only a runtime directory of our own: an environment inherited across setpriv/su can name root's.
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && ownedBy(xdg, uid)) return path.join(xdg, 'nebula-ts');
  return path.join(os.tmpdir(), `nebula-ts-${uid}`);
}
const SUFFIX = '.sock';

export interface ControlPathOptions {
  /** Directory of the default sockets (tests use a temporary one). */
  base?: string;
  /** Network namespace inode; default: this process's. null: unknown (no /proc). */
  netnsInode?: number | null;
}

function ownedBy(dir: string, uid: number): boolean {
  try {
    return statSync(dir).uid === uid;
  } catch {
    return false;
  }
}

/** Inode of this process's network namespace, or null when /proc/self/ns/net cannot be read. */
export function currentNetnsInode(): number | null {
  try {
    return statSync('/proc/self/ns/net').ino;
  } catch {
    return null;
  }
}

function resolveOptions(opts: ControlPathOptions): { base: string; prefix: string } {
  const ino = opts.netnsInode === undefined ? currentNetnsInode() : opts.netnsInode;
  return { base: opts.base ?? defaultControlSocketBase(), prefix: ino === null ? '' : `netns-${ino}.` };
}

/** The default `control.socket` of a node whose `tun.dev` is `dev`. */
export function defaultControlSocketPath(dev: string, opts: ControlPathOptions = {}): string {
  const { base, prefix } = resolveOptions(opts);
  return path.join(base, `${prefix}${dev === '' ? 'nebula' : dev}${SUFFIX}`);
}

/** The default paths of every node of the namespace, as one glob (for messages). */
export function defaultControlSocketPattern(opts: ControlPathOptions = {}): string {
  const { base, prefix } = resolveOptions(opts);
  return path.join(base, `${prefix}*${SUFFIX}`);
}

/** Why a control socket path cannot be used: not a socket, permission denied, ... */
export class ControlPathError extends Error {
  constructor(
    readonly code: 'ENOTSOCK' | 'EACCES' | string,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'ControlPathError';
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? '';
}

function accessError(p: string, err: unknown): ControlPathError {
  const code = errCode(err);
  if (code === 'EACCES' || code === 'EPERM') return new ControlPathError('EACCES', p, `permission denied on ${p}`);
  return new ControlPathError(code, p, `${p}: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * The sockets in the default place of this namespace (any tun.dev), sorted. None when the directory does not exist.
 * Throws ControlPathError when the directory cannot be read (EACCES: it is 0700, owned by the nodes' user).
 */
export function defaultControlSocketCandidates(opts: ControlPathOptions = {}): string[] {
  const { base, prefix } = resolveOptions(opts);
  let names: string[];
  try {
    names = readdirSync(base);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return [];
    throw accessError(base, err);
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!name.startsWith(prefix) || !name.endsWith(SUFFIX) || name.length <= prefix.length + SUFFIX.length) continue;
    // The no-/proc layout (empty prefix) must not pick up sockets of namespaced nodes.
    if (prefix === '' && /^netns-\d+\./.test(name)) continue;
    const full = path.join(base, name);
    try {
      if (lstatSync(full).isSocket()) out.push(full);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * What is at a control socket path:
 * - 'absent': nothing;
 * - 'stale': a socket nobody listens on (ECONNREFUSED: its node was killed without removing it);
 * - 'live': a socket a process accepts connections on (connected, or its backlog is full) — never to be removed.
 * Throws ControlPathError 'ENOTSOCK' when something else is there (never to be removed either), 'EACCES' when the
 * path or the socket may not be used by this user.
 */
export function probeControlSocket(p: string, timeoutMs = 2000): Promise<'absent' | 'stale' | 'live'> {
  try {
    if (!lstatSync(p).isSocket()) return Promise.reject(new ControlPathError('ENOTSOCK', p, `${p} exists and is not a socket`));
  } catch (err) {
    if (errCode(err) === 'ENOENT') return Promise.resolve('absent');
    return Promise.reject(accessError(p, err));
  }
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(p);
    // A unix-socket connect completes or fails at once; if it hangs, something holds the socket: treat as live.
    const timer = setTimeout(() => finish(null, 'live'), timeoutMs);
    const finish = (err: Error | null, result?: 'absent' | 'stale' | 'live'): void => {
      clearTimeout(timer);
      conn.removeAllListeners();
      conn.on('error', () => undefined);
      conn.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    conn.once('connect', () => finish(null, 'live'));
    conn.once('error', (err) => {
      switch (errCode(err)) {
        case 'ECONNREFUSED':
          return finish(null, 'stale');
        case 'ENOENT':
          return finish(null, 'absent');
        case 'EAGAIN':
          return finish(null, 'live');
        default:
          return finish(accessError(p, err));
      }
    });
  });
}
