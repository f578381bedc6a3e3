/**
 * Public surface of the firewall: rule parsing, the compiled matcher, the allocation-free packet parser and the reject
 * builder.
 */
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
  PROTO_ICMPV6,
  RuleCidr,
  parseRuleCidr,
  PORT_ANY,
  PORT_FRAGMENT,
} from './rule';
export { FirewallPacket, newFirewallPacket, parseIPv4Packet, parseIPPacket } from './packet';
export { FirewallPeer } from './table';
export { buildRejectPacket, MAX_REJECT_PACKET_LEN } from './reject-packet';
export {
  Firewall,
  FirewallDirection,
  FirewallVerdict,
  FirewallAction,
  FirewallLocal,
  FirewallOptions,
  ConntrackTimeouts,
  bumpRulesVersion,
  describeRules,
} from './firewall';
