/**
 * Testbed: puts a mesh node behind its own NAT router, for the hole-punching tests. The node keeps its namespace, but
 * its link to the hub moves into a new router namespace, which keeps the node's public 10.99.0.x address (its WAN
 * side); the node gets a private LAN (172.16.<index>.2/24) with a default route via the router (172.16.<index>.1).
 * The router forwards, masquerades what leaves its WAN side and drops unsolicited WAN packets addressed to itself
 * (nftables; see natRuleset for why the drop matters). Linux masquerade keeps the source port
 * when it is free and picks the mapping per source, whatever the destination (endpoint-independent mapping), while
 * conntrack only lets in replies to flows the inside opened (endpoint-dependent filtering): a port-restricted cone
 * NAT, the case hole punching is for.
 *
 * Call it after `mesh.add` and before `mesh.start`. The router namespace is named like the mesh's own
 * (`<mesh id>-r<index>`), so a test process that dies leaves nothing the stale-namespace sweep does not recognise;
 * in a live process it is deleted by the cleanup registered with `owner.teardown` as soon as it exists, so a failure
 * anywhere later (in this function or in the test) still removes it and its nftables state with it.
 * Needs root and nft (Debian's nftables package).
 */
import { execFile } from 'node:child_process';
import type { Mesh } from './netns-mesh';

/** What a test registers cleanups with (tap's Test fits). */
export interface CleanupOwner {
  teardown(fn: () => unknown): void;
}

export interface NatRouter {
  /** The router's namespace. */
  ns: string;
  /** The router's WAN address on the hub: the node's former underlay address, what the rest of the mesh sees. */
  publicIp: string;
  /** The node's own (LAN) address, now its `underlayIp`. */
  privateIp: string;
  /** The router's LAN address, the node's default gateway. */
  gatewayIp: string;
  /** The router's WAN interface (the former eth0 of the node, renamed). */
  wanIf: string;
}

const WAN_IF = 'wan0';
const LAN_IF = 'lan0';

function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

/**
 * The router's ruleset: masquerade on the WAN side, and, as every home router has, a drop for unsolicited packets
 * from the WAN to the router itself. That drop is not decoration: conntrack only inserts an entry when the packet
 * survives its last hook, so a dropped packet leaves nothing behind; accepted (and answered with ICMP port
 * unreachable), a peer's early handshake would leave an entry peer:4242 -> public:4242 whose tuple is the very reply
 * tuple our node's own later punch to that peer needs, and masquerade would then map the punch to a random port:
 * symmetric NAT for that peer, and punching fails (seen in this testbed before the drop was added). Forwarding is
 * open both ways (no port forwards: what gets in from the WAN is decided by conntrack alone). The masquerade counter
 * lets a test show that traffic really was translated.
 */
function natRuleset(wanIf: string): string {
  return [
    'add table ip nat',
    'add chain ip nat postrouting { type nat hook postrouting priority srcnat; policy accept; }',
    `add rule ip nat postrouting oifname "${wanIf}" counter masquerade`,
    'add table ip filter',
    'add chain ip filter input { type filter hook input priority filter; policy accept; }',
    `add rule ip filter input iifname "${wanIf}" ct state new counter drop`,
  ].join('; ');
}

/** Puts node `name` of `mesh` (added, not started) behind its own NAT router; see the file comment. */
export async function putBehindNat(mesh: Mesh, name: string, owner: CleanupOwner): Promise<NatRouter> {
  const node = mesh.node(name);
  if (node.process) throw new Error(`putBehindNat(${name}): the node is already started`);
  const index = /-(\d+)$/.exec(node.ns)?.[1];
  if (!index || !node.underlayIp.startsWith('10.99.0.')) throw new Error(`putBehindNat(${name}): ${node.ns} / ${node.underlayIp} is not a flat-hub mesh node (already behind a NAT?)`);
  const ns = `${mesh.id}-r${index}`;
  const publicIp = node.underlayIp;
  const lan = `172.16.${index}`;
  const router: NatRouter = { ns, publicIp, privateIp: `${lan}.2`, gatewayIp: `${lan}.1`, wanIf: WAN_IF };

  await run('ip', ['netns', 'add', ns]);
  // Deleting the namespace deletes its veths (so the node's LAN end and the hub's end of the WAN link) and its nftables.
  owner.teardown(() => run('ip', ['netns', 'del', ns]).catch(() => undefined));
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

  // WAN: the node's veth to the hub bridge moves into the router (it arrives down and without addresses).
  await run('ip', ['-n', node.ns, 'link', 'set', 'eth0', 'netns', ns]);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'name', WAN_IF]);
  await run('ip', ['-n', ns, 'addr', 'add', `${publicIp}/24`, 'dev', WAN_IF]);
  await run('ip', ['-n', ns, 'link', 'set', WAN_IF, 'up']);

  // LAN: a new veth, named eth0 on the node's side as before (tests read its counters by that name).
  await run('ip', ['link', 'add', LAN_IF, 'netns', ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns]);
  await run('ip', ['-n', ns, 'addr', 'add', `${router.gatewayIp}/24`, 'dev', LAN_IF]);
  await run('ip', ['-n', ns, 'link', 'set', LAN_IF, 'up']);
  await run('ip', ['-n', node.ns, 'addr', 'add', `${router.privateIp}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', node.ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', node.ns, 'route', 'add', 'default', 'via', router.gatewayIp]);

  await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await run('ip', ['netns', 'exec', ns, 'nft', natRuleset(WAN_IF)]);

  // The node's own address is now the private one (what it binds and reports); its public face is the router's.
  node.underlayIp = router.privateIp;
  return router;
}

/** Packets the router's masquerade rule has translated (its rule counter): > 0 shows the NAT was in the path. */
export async function masqueradedPackets(router: NatRouter): Promise<number> {
  const out = await run('ip', ['netns', 'exec', router.ns, 'nft', 'list', 'chain', 'ip', 'nat', 'postrouting']);
  const m = /counter packets (\d+) bytes \d+ masquerade/.exec(out);
  if (!m) throw new Error(`no masquerade counter in the ruleset of ${router.ns}:\n${out}`);
  return Number(m[1]);
}
