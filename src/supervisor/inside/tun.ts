/**
 * The Linux tun Inside: one `/dev/net/tun` fd per routine, attached as queues of one IFF_MULTI_QUEUE device when
 * there is more than one routine, configured from the cert (address, mask), `tun.mtu`, `tun.tx_queue`,
 * `tun.routes` and `tun.unsafe_routes` (nebula-spec §8.2).
 *
 * With `tun.offloads` (a nebula-ts extension) the queues are opened with IFF_VNET_HDR and the kernel asked for
 * checksum and segmentation offloads; when it refuses any part, the device is reopened without them and a warning
 * names why. A routine learns which kind of queue it got from the fd itself (routine/fd-edges.ts).
 */
import { closeTun, configureInterface, ipRoute, openTun, type TunDevice } from '../../shared/native/tun';
import { enableOffloads, TUN_OFFLOADS_UDP } from '../../shared/native/virtio-net';
import type { Logger } from '../../shared/log';
import { formatCidr, formatIPv4, parseCidr } from '../../shared/util/ipv4';
import { addAddress6, disableLinkLocal, maskedCidr6 } from '../../shared/native/tun-ipv6';
import { parseCidr6, type IPv6Net } from '../../shared/util/ipv6';
import type { NebulaConfig } from '../../shared/config';
import type { Inside } from './inside';

export class TunInside implements Inside {
  readonly kind = 'tun' as const;
  private readonly dev: TunDevice;
  /** The TUNSETOFFLOAD flags the kernel took; 0 = plain packets (offloads off or refused). */
  readonly offloadFlags: number;

  constructor(
    private readonly cfg: NebulaConfig,
    private readonly vpnIp: number,
    private readonly vpnMask: number,
    private readonly networks6: readonly string[],
    queues: number,
    log: Logger,
  ) {
    const opts = { name: cfg.tun.dev, queues, multiQueue: queues > 1 };
    let offloaded: { dev: TunDevice; flags: number } | undefined;
    if (cfg.tun.offloads) {
      offloaded = openOffloaded(opts, log);
      if (offloaded) log.info('tun offloads enabled', { dev: offloaded.dev.name, udp: (offloaded.flags & TUN_OFFLOADS_UDP) !== 0 });
    }
    this.dev = offloaded?.dev ?? openTun(opts);
    this.offloadFlags = offloaded?.flags ?? 0;
  }

  get name(): string {
    return this.dev.name;
  }

  queueFd(i: number): number {
    return this.dev.fds[i] ?? -1;
  }

  async activate(): Promise<void> {
    const tun = this.cfg.tun;
    const routeMtus = [...tun.routes.map((r) => r.mtu), ...tun.unsafe_routes.map((r) => r.mtu)];
    const deviceMtu = Math.max(tun.mtu, ...routeMtus);
    const nets6 = this.networks6.map((t) => parseCidr6(t)).filter((n): n is IPv6Net => n !== undefined);
    // Without IPv6 networks the device has no IPv6 at all; with them, IPv6 but no link-local address.
    if (nets6.length > 0) disableLinkLocal(this.dev.name);
    for (const n of nets6) await addAddress6(this.dev.name, n);
    configureInterface({
      name: this.dev.name,
      ip: this.vpnIp,
      mask: this.vpnMask,
      mtu: deviceMtu,
      txQueueLen: tun.tx_queue,
      disableIPv6: nets6.length === 0,
    });
    const net = formatCidr({ ip: (this.vpnIp & this.vpnMask) >>> 0, mask: this.vpnMask });
    if (deviceMtu !== tun.mtu) {
      await ipRoute('replace', { cidr: net, dev: this.dev.name, mtu: tun.mtu, advmss: tun.mtu - 40, scope: 'link', src: formatIPv4(this.vpnIp) });
      // The IPv6 header is 20 bytes longer than IPv4's, so the MSS that fits is 20 bytes smaller.
      for (const n of nets6) await ipRoute('replace', { cidr: maskedCidr6(n), dev: this.dev.name, mtu: tun.mtu, advmss: tun.mtu - 60 });
    }
    for (const r of tun.routes) {
      await ipRoute('replace', { cidr: normalise(r.route), dev: this.dev.name, mtu: r.mtu, advmss: r.mtu - 40 });
    }
    for (const r of tun.unsafe_routes) {
      await ipRoute('replace', { cidr: normalise(r.route), dev: this.dev.name, mtu: r.mtu, advmss: r.mtu - 40, metric: r.metric || undefined });
    }
  }

  close(): void {
    closeTun(this.dev);
  }
}


/** The device with IFF_VNET_HDR and offloads, or undefined (warned, nothing left open) when the kernel refuses. */
function openOffloaded(opts: Parameters<typeof openTun>[0], log: Logger): { dev: TunDevice; flags: number } | undefined {
  let dev: TunDevice | undefined;
  try {
    dev = openTun({ ...opts, vnetHeader: true });
    return { dev, flags: enableOffloads(dev) };
  } catch (err) {
    if (dev) closeTun(dev);
    // execFileSync's message quotes the command and ip's stderr; a NativeError names the ioctl and errno.
    log.warn('tun offloads refused by the kernel; using plain packets', { error: err instanceof Error ? err.message.trim() : String(err) });
    return undefined;
  }
}

/** `ip route` wants the network address, not a host address with a prefix. */
function normalise(cidr: string): string {
  const net = parseCidr(cidr);
  const net6 = net ? undefined : parseCidr6(cidr);
  if (net6) return maskedCidr6(net6);
  if (!net) return cidr;
  return formatCidr({ ip: (net.ip & net.mask) >>> 0, mask: net.mask });
}
