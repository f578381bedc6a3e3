/** What a testbed mesh node is: the spec a test gives (mesh.add) and what the mesh adds once it has made it. */
import type { ChildProcess } from 'node:child_process';

export type NodeKind = 'ts' | 'go';

export interface MeshNodeSpec {
  name: string;
  kind: NodeKind;
  /** Overlay address, e.g. "192.168.100.1" (the mesh network is /24). */
  overlayIp: string;
  groups?: string[];
  /** Extra environment variables for the node's process. */
  env?: Record<string, string>;
  /** Unsafe-route subnets the node's cert allows it to serve (cert Subnets). */
  subnets?: string[];
  routines?: number;
  /** Merged over the generated config (e.g. a firewall, tun.disabled). */
  config?: Record<string, unknown>;
  /**
   * Names of the nodes listed in this node's static_host_map (default: every other node). A node left out is
   * unknown to this one until it handshakes in, so this node cannot be the initiator towards it.
   */
  staticHosts?: string[];
  /**
   * Put in front of the node's command inside its namespace, e.g. `['setpriv', '--reuid=nobody', ...]` to run it
   * unprivileged. The wrapper must exec the command (so the node's pid is the started process's pid).
   */
  commandPrefix?: string[];
  /**
   * Run the node as this unprivileged user and group (numeric ids, e.g. `{ uid: 65534, gid: 65534 }` for nobody),
   * through `env -u NODE_OPTIONS setpriv --reuid --regid --clear-groups` (before `commandPrefix`). The harness then
   * makes what the node needs reachable by that user wherever the checkout is and whatever the umask, without
   * touching the checkout: a nebula-ts node runs from a world-readable copy of dist/ and its runtime packages
   * (runtime-copy.ts, one per mesh, removed by `destroy()`) without NODE_OPTIONS (the test runner's loaders live in
   * the checkout); the node's directory and files (config, cert, key: still 0600) belong to the user; the CA cert is
   * made 0644 and the mesh directory 0711. Sockets the node creates outside its directory need a directory the user
   * can write.
   */
  runAs?: { uid: number; gid: number };
  /**
   * nebula-ts only: leave `control.socket` out of the config, so the node uses its default path (per network
   * namespace, src/shared/control-path.ts); `controlSocket` is then that path. Default: a socket in the node's dir.
   */
  defaultControlSocket?: boolean;
}

export interface MeshNode extends MeshNodeSpec {
  ns: string;
  underlayIp: string;
  dir: string;
  configPath: string;
  controlSocket: string;
  process?: ChildProcess;
  output: string[];
}
