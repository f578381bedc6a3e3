/**
 * Which Inside the config asks for (DESIGN.md, "Inside"): `tun.disabled` wins, then `tun.userspace`, else a tun
 * device with one queue per routine.
 */
import type { NebulaConfig } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { DisabledInside } from './disabled';
import type { Inside } from './inside';
import { TunInside } from './tun';
import { UserspaceInside } from './userspace';

/** `networks6`: our IPv6 VPN networks ('fd00::1/64'), given to the tun device (the other insides carry any packet). */
export function selectInside(cfg: NebulaConfig, vpnIp: number, vpnMask: number, networks6: readonly string[], log: Logger): Inside {
  const queues = cfg.routines;
  if (cfg.tun.disabled) return new DisabledInside();
  if (cfg.tun.userspace !== '') return new UserspaceInside(cfg.tun.userspace, vpnIp, cfg.tun.mtu, queues, log);
  return new TunInside(cfg, vpnIp, vpnMask, networks6, queues, log);
}
