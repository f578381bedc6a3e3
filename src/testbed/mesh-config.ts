/**
 * The YAML config of one testbed mesh node: Nebula's keys with what a local mesh needs (static_host_map entries for
 * the other nodes it may initiate to, an allow-all firewall, MTU 1300), then the node's own `config` merged over it.
 * The same document serves nebula-ts and Go nebula nodes; the nebula-ts extensions are only added for nebula-ts.
 */
import path from 'node:path';
import type { MeshNode } from './mesh-node';

export interface MeshSettings {
  caPath: string;
  cipher: 'aes' | 'chachapoly';
  port: number;
}

export function nodeConfig(n: MeshNode, nodes: MeshNode[], mesh: MeshSettings): Record<string, unknown> {
  const staticHostMap: Record<string, string[]> = {};
  for (const other of nodes) {
    if (other === n || (n.staticHosts && !n.staticHosts.includes(other.name))) continue;
    staticHostMap[other.overlayIp] = [`${other.underlayIp}:${mesh.port}`];
  }
  const base: Record<string, unknown> = {
    pki: { ca: mesh.caPath, cert: path.join(n.dir, `${n.name}.crt`), key: path.join(n.dir, `${n.name}.key`) },
    static_host_map: staticHostMap,
    // No lighthouse.interval: nebula-ts refuses lighthouse keys it cannot honour (and no hosts: nothing to report).
    lighthouse: { am_lighthouse: false, hosts: [] },
    listen: { host: '0.0.0.0', port: mesh.port },
    punchy: { punch: false },
    cipher: mesh.cipher,
    tun: { dev: 'nebula1', mtu: 1300 },
    logging: { level: 'info', format: 'text' },
    firewall: {
      conntrack: { tcp_timeout: '12m', udp_timeout: '3m', default_timeout: '10m' },
      outbound: [{ port: 'any', proto: 'any', host: 'any' }],
      inbound: [{ port: 'any', proto: 'any', host: 'any' }],
    },
  };
  if (n.kind === 'ts') {
    if (!n.defaultControlSocket) base.control = { socket: n.controlSocket };
    if (n.routines !== undefined) base.routines = n.routines;
  }
  return deepMerge(base, n.config ?? {});
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}
