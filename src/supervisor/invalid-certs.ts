/**
 * `pki.disconnect_invalid` (Nebula 1.6.1 connection_manager.go, handleInvalidCertificate): when the liveness check
 * looks at a tunnel, a peer certificate that no longer verifies against the CA pool in force (expired, its CA
 * expired or no longer in the pool after a reload, its fingerprint blocklisted, ...) closes the tunnel: the peer is
 * sent a closeTunnel, then the tunnel is removed. Off (the default), such tunnels live on until they die otherwise.
 *
 * As in Go the option is read once at start (it is listed among the keys that need a restart); the CA pool and the
 * blocklist are read at each check, so a reload that drops a CA or blocklists a cert reaches existing tunnels.
 */
import type { CAPool } from '../shared/pki';
import type { Logger } from '../shared/log';
import { formatIPv4 } from '../shared/util/ipv4';
import type { HostInfo } from './hostmap';

export interface InvalidCertEnv {
  /** pki.disconnect_invalid */
  enabled: boolean;
  log: Logger;
  /** The CA pool (with the blocklist applied) in force now. */
  caPool(): CAPool;
  /** Sends closeTunnel to the peer and removes the tunnel. */
  close(h: HostInfo): void;
}

/** Returns true when `h` was closed because its peer certificate is no longer valid at `now` (ms since epoch). */
export function disconnectIfInvalid(env: InvalidCertEnv, h: HostInfo, now: number): boolean {
  if (!env.enabled) return false;
  try {
    env.caPool().verify(h.cert, new Date(now));
    return false;
  } catch (err) {
    env.log.info('Remote certificate is no longer valid, tearing down the tunnel', {
      vpnIp: formatIPv4(h.vpnIp),
      error: err instanceof Error ? err.message : String(err),
      certName: h.cert.details.name,
      fingerprint: h.cert.fingerprint(),
    });
    env.close(h);
    return true;
  }
}
