/**
 * Linux tun device: multi-queue open, interface configuration by ioctl, routes through `ip route`, and queue
 * attach/detach. Follows nebula-spec §8.2 (all queues opened before the device is configured and brought up) and
 * platform-notes §1 (raw 40-byte `struct ifreq` Buffers, non-variadic ioctl, routes with MTU need `ip`).
 *
 * The device is not persistent: it exists while at least one queue fd (attached or detached) is open. Its offloads
 * (virtio-net headers, TUNSETOFFLOAD, gso_max_segs) are set up by virtio-net.ts `enableOffloads`.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM, close, ioctl, socket } from './libc';
import { parseIPv4 } from '../util/ipv4';
import { IFF_VNET_HDR, TUNGETIFF } from './virtio-net';

// <linux/if_tun.h>, <linux/sockios.h>, <linux/if.h> (x86_64/arm64 encodings, checked against kernel headers).
const TUNSETIFF = 0x400454ca;
const TUNSETQUEUE = 0x400454d9;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFADDR = 0x8916;
const SIOCSIFNETMASK = 0x891c;
const SIOCGIFMTU = 0x8921;
const SIOCSIFMTU = 0x8922;
const SIOCGIFINDEX = 0x8933;
const SIOCSIFTXQLEN = 0x8943;
const SIOCGIFTXQLEN = 0x8942;

export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;

const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;
/** Offset of the ifreq union (flags, mtu, ifindex, qlen, or a sockaddr_in). */
const IFRU = 16;

/** A zeroed `struct ifreq` with the interface name filled in. */
function ifreq(name: string): Buffer {
  const buf = Buffer.alloc(IFREQ_SIZE);
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length >= IFNAMSIZ) throw new Error(`interface name too long (max ${IFNAMSIZ - 1} bytes): ${name}`);
  bytes.copy(buf, 0);
  return buf;
}

function ifreqName(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
}

export interface OpenTunOptions {
  /** Device name; '' lets the kernel pick (tunN), a pattern such as 'nebula%d' picks the first free number. */
  name: string;
  /** Number of queue fds to open (one per routine). */
  queues: number;
  /** IFF_MULTI_QUEUE; required when queues > 1. */
  multiQueue: boolean;
  /** IFF_VNET_HDR: every read and write carries a virtio-net header (then call virtio-net.ts `enableOffloads`). */
  vnetHeader?: boolean;
}

export interface TunDevice {
  /** The device name the kernel settled on. */
  name: string;
  /**
   * One fd per queue, O_RDWR|O_CLOEXEC, blocking. Each read returns one IPv4/IPv6 packet (no PI header), behind a
   * virtio-net header when opened with `vnetHeader`.
   */
  fds: number[];
}

/**
 * Opens `/dev/net/tun` once per queue and attaches every fd to the same device (created by the first call).
 * Nothing is configured yet. On failure every fd opened so far is closed, so the device does not linger.
 */
export function openTun(opts: OpenTunOptions): TunDevice {
  if (!Number.isInteger(opts.queues) || opts.queues < 1) throw new Error(`queues must be >= 1, got ${opts.queues}`);
  if (opts.queues > 1 && !opts.multiQueue) throw new Error('more than one tun queue needs multiQueue');
  const flags = IFF_TUN | IFF_NO_PI | (opts.multiQueue ? IFF_MULTI_QUEUE : 0) | (opts.vnetHeader ? IFF_VNET_HDR : 0);
  const fds: number[] = [];
  let name = opts.name;
  try {
    for (let i = 0; i < opts.queues; i++) {
      // fs.openSync goes through libuv, which adds O_CLOEXEC: queue fds reach routines only via the stdio array.
      const fd = openSync('/dev/net/tun', fsConstants.O_RDWR);
      fds.push(fd);
      const req = ifreq(name);
      req.writeUInt16LE(flags, IFRU);
      ioctl(fd, TUNSETIFF, req, `TUNSETIFF ${name || '(kernel-chosen)'} queue ${i}`);
      // The first call resolves '' or 'pattern%d' to a concrete name; later queues must attach to that device.
      if (i === 0) name = ifreqName(req);
    }
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
  return { name, fds };
}

/** Closes every queue fd; the device disappears with the last one. */
export function closeTun(dev: TunDevice): void {
  for (const fd of dev.fds) closeSync(fd);
  dev.fds.length = 0;
}

/**
 * Detaches (false) or re-attaches (true) one queue. A detached queue receives nothing, so the kernel spreads flows
 * over the remaining queues (used while a routine is dead). Detaching an already detached queue gives EINVAL.
 */
export function setQueueAttached(fd: number, attached: boolean): void {
  const req = Buffer.alloc(IFREQ_SIZE);
  req.writeUInt16LE(attached ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE, IFRU);
  ioctl(fd, TUNSETQUEUE, req, attached ? 'TUNSETQUEUE attach' : 'TUNSETQUEUE detach');
}

/** TUNGETIFF: the device name and IFF_* flags a queue fd is bound to. */
export function tunInfo(fd: number): { name: string; flags: number } {
  const req = Buffer.alloc(IFREQ_SIZE);
  ioctl(fd, TUNGETIFF, req, 'TUNGETIFF');
  return { name: ifreqName(req), flags: req.readUInt16LE(IFRU) };
}

export interface InterfaceConfig {
  name: string;
  /** Own VPN IP, dotted quad or uint32. */
  ip: string | number;
  /** Netmask, dotted quad or uint32 (e.g. the cert network's mask). */
  mask: string | number;
  mtu?: number;
  /** Per-queue ring length in packets (tun default 500). */
  txQueueLen?: number;
  /** Write disable_ipv6=1 before bringing the device up, so no link-local address and no router solicitations. */
  disableIPv6?: boolean;
}

function ipValue(v: string | number, what: string): number {
  const ip = typeof v === 'number' ? v >>> 0 : parseIPv4(v);
  if (ip === undefined) throw new Error(`${what} is not an IPv4 address: ${JSON.stringify(v)}`);
  return ip;
}

/** Runs `fn` with a short-lived AF_INET datagram socket, the handle the SIOC* ioctls need. */
function withControlSocket<T>(fn: (fd: number) => T): T {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    return fn(fd);
  } finally {
    close(fd);
  }
}

function setSockaddrIn(req: Buffer, ip: number): void {
  req.writeUInt16LE(AF_INET, IFRU);
  req.writeUInt32BE(ip, IFRU + 4);
}

/**
 * Sets address, netmask, MTU and txqueuelen, optionally disables IPv6, then brings the device up
 * (order of nebula-spec §8.2). Throws NativeError naming the failing ioctl.
 */
export function configureInterface(cfg: InterfaceConfig): void {
  const ip = ipValue(cfg.ip, 'ip');
  const mask = ipValue(cfg.mask, 'mask');
  withControlSocket((s) => {
    let req = ifreq(cfg.name);
    setSockaddrIn(req, ip);
    ioctl(s, SIOCSIFADDR, req, `SIOCSIFADDR ${cfg.name}`);

    req = ifreq(cfg.name);
    setSockaddrIn(req, mask);
    ioctl(s, SIOCSIFNETMASK, req, `SIOCSIFNETMASK ${cfg.name}`);

    if (cfg.mtu !== undefined) {
      req = ifreq(cfg.name);
      req.writeInt32LE(cfg.mtu, IFRU);
      ioctl(s, SIOCSIFMTU, req, `SIOCSIFMTU ${cfg.name} ${cfg.mtu}`);
    }
    if (cfg.txQueueLen !== undefined) {
      req = ifreq(cfg.name);
      req.writeInt32LE(cfg.txQueueLen, IFRU);
      ioctl(s, SIOCSIFTXQLEN, req, `SIOCSIFTXQLEN ${cfg.name} ${cfg.txQueueLen}`);
    }
    if (cfg.disableIPv6 ?? true) disableIPv6(cfg.name);

    req = ifreq(cfg.name);
    ioctl(s, SIOCGIFFLAGS, req, `SIOCGIFFLAGS ${cfg.name}`);
    const flags = req.readUInt16LE(IFRU) | IFF_UP | IFF_RUNNING;
    req.writeUInt16LE(flags, IFRU);
    ioctl(s, SIOCSIFFLAGS, req, `SIOCSIFFLAGS ${cfg.name} up`);
  });
}

/**
 * Writes `net.ipv6.conf.<dev>.disable_ipv6 = 1` (in the caller's network namespace). Returns false when the kernel
 * has no IPv6 (the file does not exist), which is fine: then no ICMPv6 can reach the device either.
 */
export function disableIPv6(name: string): boolean {
  const path = `/proc/sys/net/ipv6/conf/${name}/disable_ipv6`;
  if (!existsSync(path)) return false;
  writeFileSync(path, '1');
  return true;
}

export interface InterfaceState {
  flags: number;
  up: boolean;
  mtu: number;
  txQueueLen: number;
  index: number;
}

/** Reads flags, MTU, txqueuelen and ifindex of a device (for checks and logs). */
export function interfaceState(name: string): InterfaceState {
  return withControlSocket((s) => {
    const get = (req: number, what: string): Buffer => {
      const buf = ifreq(name);
      ioctl(s, req, buf, `${what} ${name}`);
      return buf;
    };
    const flags = get(SIOCGIFFLAGS, 'SIOCGIFFLAGS').readUInt16LE(IFRU);
    return {
      flags,
      up: (flags & IFF_UP) !== 0,
      mtu: get(SIOCGIFMTU, 'SIOCGIFMTU').readInt32LE(IFRU),
      txQueueLen: get(SIOCGIFTXQLEN, 'SIOCGIFTXQLEN').readInt32LE(IFRU),
      index: get(SIOCGIFINDEX, 'SIOCGIFINDEX').readInt32LE(IFRU),
    };
  });
}

export interface RouteSpec {
  /** Destination network, "a.b.c.d/nn". */
  cidr: string;
  dev: string;
  mtu?: number;
  /** TCP advertised MSS (Nebula sets MTU-40 when the route MTU differs from the device MTU). */
  advmss?: number;
  /** Route priority (tun.unsafe_routes[].metric). */
  metric?: number;
  /** Preferred source address. */
  src?: string;
  /** 'link' for the connected VPN network route. */
  scope?: 'link' | 'global';
}

/** Argument list for `ip route <action> ...` (exported for tests and logs). */
export function routeArgs(action: 'add' | 'replace' | 'del', r: RouteSpec): string[] {
  const args = ['route', action, r.cidr, 'dev', r.dev];
  if (r.src !== undefined) args.push('src', r.src);
  if (r.scope !== undefined) args.push('scope', r.scope);
  if (r.metric !== undefined) args.push('metric', String(r.metric));
  if (r.mtu !== undefined) args.push('mtu', String(r.mtu));
  if (r.advmss !== undefined) args.push('advmss', String(r.advmss));
  return args;
}

/**
 * Adds, replaces or deletes a route with `ip route` (SIOCADDRT ignores a per-route MTU, platform-notes §1).
 * Rejects with an Error that quotes the command and ip's stderr (e.g. "RTNETLINK answers: File exists").
 */
export function ipRoute(action: 'add' | 'replace' | 'del', r: RouteSpec): Promise<void> {
  const args = routeArgs(action, r);
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const why = String(stderr).trim() || err.message;
      reject(new Error(`ip ${args.join(' ')} failed: ${why}`, { cause: err }));
    });
  });
}
