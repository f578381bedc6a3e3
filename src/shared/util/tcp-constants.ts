/**
 * The IP protocol numbers and TCP / UDP header fields that the code building and rewriting packets reads and writes
 * (IANA protocol numbers, RFC 9293 flag bits): the tun offloads (routine/tso.ts, routine/tcp-coalesce.ts) and the
 * firewall's reject packets (firewall/reject-packet.ts). The firewall rules' `proto` values (firewall/rule.ts
 * PROTO_*) are Go's config constants and stay with the rules.
 */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/** Offset of the flags byte in a TCP header. */
export const TCP_FLAGS_AT = 13;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CWR = 0x80;

/** Offset of the checksum field in a TCP header and in a UDP header. */
export const TCP_CSUM_OFFSET = 16;
export const UDP_CSUM_OFFSET = 6;
