/**
 * Firewall rules as written in the config (nebula-spec §7.1), parsed into a plain, serialisable form.
 *
 * The parsed rule is plain data (no Sets, no class instances) on purpose: it lives inside the frozen config object,
 * travels to routine processes over IPC, and is compared structurally on reload. `compileRules` in table.ts turns a
 * list of them into the lookup structure used on the hot path.
 */
import { IPv4Net, parseCidr } from '../util/ipv4';
import { IPv6Net, parseCidr6 } from '../util/ipv6';

/** IP protocol numbers Nebula's firewall knows; 0 stands for "any protocol". */
export const PROTO_ANY = 0;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
/** ICMPv6: no `proto` value of its own in the config; `icmp` rules match it (Go 1.11 firewall.go FirewallTable.match). */
export const PROTO_ICMPV6 = 58;

/** Port value meaning "any port" (also what a range starting at 0 collapses to). */
export const PORT_ANY = 0;
/** Port value for non-first IP fragments, which carry no L4 header and so no port. */
export const PORT_FRAGMENT = -1;

export interface FirewallRule {
  /** 0 (any), 1 (icmp), 6 (tcp) or 17 (udp). */
  readonly proto: number;
  /** Inclusive range. 0/0 = any port, -1/-1 = fragments. Taken from `port` or, for ICMP rules, `code`. */
  readonly startPort: number;
  readonly endPort: number;
  /** Cert name, `any`, or '' (not constrained by name). */
  readonly host: string;
  /** From `group` or `groups`: the peer cert must carry all of them. Empty = not constrained by groups. */
  readonly groups: readonly string[];
  /**
   * Remote CIDR text as written (trimmed, validated as an IPv4 "a.b.c.d/n" or IPv6 "addr/n" CIDR), `any` (Nebula
   * 1.11), or '' when absent. An IPv4 CIDR only ever matches IPv4 packets and an IPv6 one IPv6 packets.
   */
  readonly cidr: string;
  /**
   * `local_cidr` (Nebula 1.9+): the packet's LOCAL address (destination inbound, source outbound) must lie in this
   * IPv4 or IPv6 CIDR (text as written, trimmed), or `any`. '' or absent: not written, which means "any address of
   * ours" unless our cert has unsafe networks and firewall.default_local_cidr_any is false (table.ts, Nebula 1.10).
   */
  readonly localCidr?: string;
  readonly caName: string;
  readonly caSha: string;
}

/** A problem found while parsing one rule; `path` is relative to the rule (e.g. ['port']) or empty for the rule. */
export interface RuleIssue {
  path: (string | number)[];
  message: string;
}

export interface ParsedRule {
  rule?: FirewallRule;
  errors: RuleIssue[];
  warnings: RuleIssue[];
}

/** A rule's `cidr` / `local_cidr` text, parsed: `any` (both families), an IPv4 or an IPv6 network. */
export type RuleCidr = { readonly family: 'any' } | { readonly family: 4; readonly net: IPv4Net } | { readonly family: 6; readonly net: IPv6Net };

/** Parses `any`, an IPv4 CIDR or an IPv6 CIDR (as Go 1.11's netip.ParsePrefix for IPv6); undefined otherwise. */
export function parseRuleCidr(text: string): RuleCidr | undefined {
  if (text === 'any') return { family: 'any' };
  const net = parseCidr(text);
  if (net !== undefined) return { family: 4, net };
  const net6 = parseCidr6(text);
  return net6 === undefined ? undefined : { family: 6, net: net6 };
}

const PROTOS: Record<string, number> = { any: PROTO_ANY, tcp: PROTO_TCP, udp: PROTO_UDP, icmp: PROTO_ICMP };

/** Nebula stringifies every scalar rule field with %v; null/absent becomes ''. */
function scalarText(v: unknown): string | undefined {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}

function isPortNumber(s: string): boolean {
  return /^\d{1,5}$/.test(s) && Number(s) <= 65535;
}

/**
 * Parses `any`, `0`, `n`, `a-b` or `fragment` into an inclusive range. A range starting at 0 means any, like Go's
 * parsePort. Returns an error message on failure.
 */
export function parsePortSpec(text: string): { start: number; end: number } | string {
  const s = text.trim();
  if (s === 'any') return { start: PORT_ANY, end: PORT_ANY };
  if (s === 'fragment') return { start: PORT_FRAGMENT, end: PORT_FRAGMENT };
  const dash = s.indexOf('-');
  if (dash >= 0) {
    const a = s.slice(0, dash).trim();
    const b = s.slice(dash + 1).trim();
    if (!isPortNumber(a) || !isPortNumber(b)) return `${JSON.stringify(text)} is not a port or range`;
    const start = Number(a);
    const end = Number(b);
    if (start === PORT_ANY) return { start: PORT_ANY, end: PORT_ANY };
    if (start > end) return `${JSON.stringify(text)}: range start is greater than range end`;
    return { start, end };
  }
  if (!isPortNumber(s)) return `${JSON.stringify(text)} is not a port or range`;
  const n = Number(s);
  return { start: n, end: n };
}

const KNOWN_FIELDS = new Set(['port', 'code', 'proto', 'host', 'group', 'groups', 'cidr', 'local_cidr', 'ca_name', 'ca_sha']);

/** Parses one rule map from `firewall.inbound`/`firewall.outbound`. Never throws. */
export function parseFirewallRule(raw: unknown): ParsedRule {
  const errors: RuleIssue[] = [];
  const warnings: RuleIssue[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { errors: [{ path: [], message: 'a firewall rule must be a map' }], warnings };
  }
  const m = raw as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!KNOWN_FIELDS.has(key)) warnings.push({ path: [key], message: 'Unknown config key, ignored' });
  }

  const field = (key: string): string => {
    const s = scalarText(m[key]);
    if (s === undefined) {
      errors.push({ path: [key], message: 'must be a single value' });
      return '';
    }
    return s;
  };

  const port = field('port');
  const code = field('code');
  const protoText = field('proto');
  const host = field('host');
  const cidrText = field('cidr');
  const localCidrText = field('local_cidr');
  const caName = field('ca_name');
  const caSha = field('ca_sha');

  // `group`: one value; a one-element list is accepted with a warning (as Nebula does).
  let group = '';
  const g = m.group;
  if (Array.isArray(g)) {
    if (g.length === 1 && scalarText(g[0]) !== undefined) {
      group = scalarText(g[0]) as string;
      warnings.push({ path: ['group'], message: 'group was an array with a single value, converting to simple value' });
    } else {
      errors.push({ path: ['group'], message: 'must be a single value; use groups for a list' });
    }
  } else {
    group = field('group');
  }

  // `groups`: a list, or a single string.
  let groups: string[] = [];
  const gs = m.groups;
  if (Array.isArray(gs)) {
    gs.forEach((item, i) => {
      const s = scalarText(item);
      if (s === undefined || s === '') errors.push({ path: ['groups', i], message: 'must be a group name' });
      else groups.push(s);
    });
  } else {
    const s = field('groups');
    if (s !== '') groups = [s];
  }
  if (group !== '') {
    if (groups.length > 0) errors.push({ path: [], message: 'only one of group or groups should be defined, both provided' });
    else groups = [group];
  }

  let proto = PROTO_ANY;
  if (protoText === '') errors.push({ path: ['proto'], message: 'required (any, tcp, udp or icmp)' });
  else if (!Object.hasOwn(PROTOS, protoText)) errors.push({ path: ['proto'], message: `${JSON.stringify(protoText)} is not one of any, tcp, udp, icmp` });
  else proto = PROTOS[protoText];

  let startPort = PORT_ANY;
  let endPort = PORT_ANY;
  if (port !== '' && code !== '') {
    errors.push({ path: [], message: 'only one of port or code should be provided' });
  } else if (port === '' && code === '') {
    errors.push({ path: [], message: 'one of port or code is required' });
  } else {
    const key = port !== '' ? 'port' : 'code';
    const r = parsePortSpec(port !== '' ? port : code);
    if (typeof r === 'string') errors.push({ path: [key], message: r });
    else {
      startPort = r.start;
      endPort = r.end;
    }
  }

  let cidr = '';
  if (cidrText !== '') {
    const text = cidrText.trim();
    if (parseRuleCidr(text) === undefined) errors.push({ path: ['cidr'], message: `${JSON.stringify(cidrText)} is not an IPv4 or IPv6 CIDR, or any` });
    else cidr = text;
  }

  let localCidr = '';
  if (localCidrText !== '') {
    const text = localCidrText.trim();
    if (parseRuleCidr(text) !== undefined) localCidr = text;
    else errors.push({ path: ['local_cidr'], message: `${JSON.stringify(localCidrText)} is not an IPv4 or IPv6 CIDR, or any` });
  }

  if (host === '' && groups.length === 0 && cidr === '' && cidrText === '' && localCidrText === '' && caName === '' && caSha === '') {
    errors.push({ path: [], message: 'at least one of host, group, groups, cidr, local_cidr, ca_name, or ca_sha must be provided' });
  }

  if (errors.length > 0) return { errors, warnings };
  const rule: FirewallRule = { proto, startPort, endPort, host, groups, cidr, caName, caSha };
  // Only present when written, so rules without it stay exactly what they were (hash, IPC, comparisons).
  return { rule: localCidr === '' ? rule : { ...rule, localCidr }, errors, warnings };
}
