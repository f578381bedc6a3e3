/** Public surface of the firewall: rule parsing, the compiled matcher and the allocation-free packet parser. */
export {
  FirewallRule,
  ParsedRule,
  RuleIssue,
  parseFirewallRule,
  parsePortSpec,
  PROTO_ANY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  PORT_ANY,
  PORT_FRAGMENT,
} from './rule';
export { FirewallPacket, newFirewallPacket, parseIPv4Packet } from './packet';
export { FirewallPeer } from './table';
export {
  Firewall,
  FirewallDirection,
  FirewallVerdict,
  FirewallLocal,
  FirewallOptions,
  ConntrackTimeouts,
  bumpRulesVersion,
  describeRules,
} from './firewall';
