/**
 * The lighthouse DNS responder (`lighthouse.serve_dns`, nebula-spec §5.7), answering as Go nebula 1.6.1's
 * dns_server.go does over miekg/dns v1.1.48:
 *  - A `<cert name>.` -> the host's VPN IP, TTL 3600, class IN, owner name as the query spelled it;
 *  - TXT `<vpn ip>.` -> Go's text dump of that host's cert, only to sources inside our VPN network or 127.0.0.1;
 *  - every other type, and an unknown name, gets an empty NOERROR answer. (Nebula 1.9+ answers an unknown name with
 *    NXDOMAIN; 1.6.1, which we follow, does not.)
 *  - Reply header as miekg's SetReply makes it: ID, QR, opcode copied, RD and CD copied; AA, RA, AD all clear.
 *  - Refusals as miekg's server makes them: a response (QR set) or a datagram without a whole header gets nothing;
 *    an opcode other than QUERY/NOTIFY gets NOTIMP; more than one question, more than one answer or authority
 *    record, more than two additional records, or a body that does not parse gets FORMERR; a query that ends after
 *    its header gets REFUSED.
 * One difference from Go 1.6.1: names are matched without regard to letter case (Go does so from 1.7.0 on).
 */
import dgram from 'node:dgram';
import type { Logger } from '../shared/log';
import type { Certificate } from '../shared/pki';
import { formatNet, goTimeString } from '../shared/pki/format';
import { parseIPv4 } from '../shared/util/ipv4';
import {
  DEFAULT_TTL,
  DnsParseError,
  encodeReply,
  MAX_QUERY_LEN,
  opcodeOf,
  OPCODE_NOTIFY,
  OPCODE_QUERY,
  parseHeader,
  parseQuery,
  RCODE_FORMAT_ERROR,
  RCODE_NOT_IMPLEMENTED,
  RCODE_REFUSED,
  refusalFlags,
  replyFlags,
  TYPE_A,
  TYPE_TXT,
  FLAG_QR,
  type DnsAnswer,
  type DnsHeader,
  type DnsQuestion,
} from '../shared/protocol/dns';
import { txtStringsFromZoneText } from '../shared/protocol/dns-txt';

export interface DnsRecordSource {
  /** The IPv4 (uint32) recorded for `name`, a lower-cased FQDN with its trailing dot ("host1."). */
  addressOf(name: string): number | undefined;
  /** Go's TXT text for the cert of the host at `vpnIp` (see `dnsCertText`), when that host is known. */
  certText(vpnIp: number): string | undefined;
}

/**
 * Go 1.6.1's TXT text for a cert: `"Name: n" "Ips: [10.1.0.2/16]" "Subnets []" "Groups [a b]" "NotBefore …"
 * "NotAFter …" "PublicKey <hex>" "IsCA false" "Issuer <hex>"` (Go's spelling and capitals, times in the local zone).
 */
export function dnsCertText(cert: Certificate): string {
  const d = cert.details;
  const list = (items: readonly string[]): string => `[${items.join(' ')}]`;
  return (
    `"Name: ${d.name}" "Ips: ${list(d.ips.map(formatNet))}" "Subnets ${list(d.subnets.map(formatNet))}" ` +
    `"Groups ${list(d.groups)}" "NotBefore ${goTimeString(d.notBefore)}" "NotAFter ${goTimeString(d.notAfter)}" ` +
    `"PublicKey ${d.publicKey.toString('hex')}" "IsCA ${d.isCA}" "Issuer ${d.issuer}"`
  );
}

export const DEFAULT_DNS_RECORDS_CAPACITY = 65536;

/**
 * The records: `<cert name>.` (lower-cased) -> VPN IP, and the cert text per VPN IP. Bounded: when full, a new host is
 * refused and counted in `overflows`. A VPN IP carries one name; a host re-added under a new name loses the old one.
 */
export class DnsRecords implements DnsRecordSource {
  private readonly byName = new Map<string, number>();
  private readonly byIp = new Map<number, { name: string; certText: string }>();
  overflows = 0;

  constructor(private readonly capacity = DEFAULT_DNS_RECORDS_CAPACITY) {}

  /** When a tunnel completes: `certName` is the peer cert's name, `vpnIp` its first IP. False when full. */
  add(certName: string, vpnIp: number, certText: string): boolean {
    const name = certName.toLowerCase() + '.';
    const ip = vpnIp >>> 0;
    if (!this.byIp.has(ip) && this.byIp.size >= this.capacity) {
      this.overflows++;
      return false;
    }
    this.remove(ip);
    // A name already held by another host now points here (Go overwrites too); that host keeps its TXT answer.
    this.byName.set(name, ip);
    this.byIp.set(ip, { name, certText });
    return true;
  }

  /**
   * When the host goes: its A record (unless its name now points at another host) and its TXT answer. Go 1.6.1 keeps
   * A records for good and loses only the TXT answer with the host map entry; this follows the project's choice.
   */
  remove(vpnIp: number): void {
    const ip = vpnIp >>> 0;
    const entry = this.byIp.get(ip);
    if (!entry) return;
    this.byIp.delete(ip);
    if (this.byName.get(entry.name) === ip) this.byName.delete(entry.name);
  }

  clear(): void {
    this.byName.clear();
    this.byIp.clear();
  }

  get size(): number {
    return this.byName.size;
  }

  addressOf(name: string): number | undefined {
    return this.byName.get(name.toLowerCase());
  }

  certText(vpnIp: number): string | undefined {
    return this.byIp.get(vpnIp >>> 0)?.certText;
  }
}

const LOCALHOST = parseIPv4('127.0.0.1')!;

/** Go 1.6.1's gate on TXT answers: the source is in our VPN network (vpnIp/vpnMask) or is exactly 127.0.0.1. */
export function txtAllowedFrom(sourceIp: string, vpnIp: number, vpnMask: number): boolean {
  const ip = parseIPv4(sourceIp);
  if (ip === undefined) return false;
  return ip === LOCALHOST || ((ip & vpnMask) >>> 0) === ((vpnIp & vpnMask) >>> 0);
}

/** Go's net.ParseIP for a dotted quad (no leading zeros since Go 1.17). IPv6 spellings are not answered. */
function parseGoIPv4(text: string): number | undefined {
  return /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text) ? parseIPv4(text) : undefined;
}

export interface DnsServerOptions {
  /** `lighthouse.dns.host`; empty means every address. */
  host: string;
  /** `lighthouse.dns.port`; 0 picks a free port (tests). */
  port: number;
  vpnIp: number;
  vpnMask: number;
  records: DnsRecordSource;
  log: Logger;
}

export class DnsServer {
  private socket: dgram.Socket | undefined;
  /** Datagrams that got no reply: no whole header, a response, over 512 bytes, or a reply that could not be built. */
  dropped = 0;
  /** Queries answered FORMERR, NOTIMP or REFUSED. */
  refused = 0;
  /** Replies the socket did not take. */
  sendErrors = 0;

  constructor(private readonly opts: DnsServerOptions) {}

  /** Binds and serves. Rejects, naming `lighthouse.dns.host:port`, when the address cannot be bound. */
  async start(): Promise<void> {
    if (this.socket) return;
    const { host, port, log } = this.opts;
    const bindHost = host === '' ? '0.0.0.0' : host;
    log.info('Starting DNS responder', { dnsListener: `${host}:${port}` });
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(new Error(`DNS responder cannot listen on lighthouse.dns.host:port ${bindHost}:${port}: ${err.message}`));
      });
      socket.bind(port, bindHost, () => resolve());
    });
    socket.removeAllListeners('error');
    socket.on('error', (err) => log.error('DNS responder socket error', { error: err }));
    socket.on('message', (msg, rinfo) => this.onDatagram(socket, msg, rinfo));
    this.socket = socket;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  get address(): { address: string; port: number } {
    if (!this.socket) throw new Error('DNS responder is not listening');
    const { address, port } = this.socket.address();
    return { address, port };
  }

  private onDatagram(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const reply = this.respond(msg, rinfo.address);
    if (!reply) return;
    socket.send(reply, rinfo.port, rinfo.address, (err) => {
      if (!err) return;
      this.sendErrors++;
      this.opts.log.debug('DNS reply not sent', { error: err, to: `${rinfo.address}:${rinfo.port}` });
    });
  }

  /** The reply to one datagram from `sourceIp`, or undefined when it gets none. */
  respond(msg: Buffer, sourceIp: string): Buffer | undefined {
    if (msg.length > MAX_QUERY_LEN) return this.drop(`query of ${msg.length} bytes`);
    let header: DnsHeader;
    try {
      header = parseHeader(msg);
    } catch (err) {
      return this.drop((err as Error).message);
    }
    // miekg ignores responses so that two servers cannot be made to answer each other forever.
    if (header.flags & FLAG_QR) return this.drop('a response, not a query');
    const opcode = opcodeOf(header.flags);
    if (opcode !== OPCODE_QUERY && opcode !== OPCODE_NOTIFY) return this.refuse(header, RCODE_NOT_IMPLEMENTED);
    if (header.qdcount !== 1 || header.ancount > 1 || header.nscount > 1 || header.arcount > 2) {
      return this.refuse(header, RCODE_FORMAT_ERROR);
    }
    let question: DnsQuestion | undefined;
    try {
      question = parseQuery(msg).question;
    } catch (err) {
      if (!(err instanceof DnsParseError)) throw err;
      this.opts.log.debug('Malformed DNS query', { error: err, from: sourceIp });
      return this.refuse(header, RCODE_FORMAT_ERROR, err.question);
    }
    if (!question) {
      // A query that ends after its header: miekg's ServeMux finds no handler for it and answers REFUSED (SetRcode).
      this.refused++;
      return encodeReply({ id: header.id, flags: replyFlags(header.flags) | RCODE_REFUSED, answers: [] });
    }
    const answers = opcode === OPCODE_QUERY ? this.answersFor(question, sourceIp) : [];
    try {
      return encodeReply({ id: header.id, flags: replyFlags(header.flags), question, answers });
    } catch (err) {
      return this.drop(`reply not encodable: ${(err as Error).message}`);
    }
  }

  private answersFor(question: DnsQuestion, sourceIp: string): DnsAnswer[] {
    const { records, log, vpnIp, vpnMask } = this.opts;
    if (question.qtype === TYPE_A) {
      log.debug(`Query for A ${question.name}`);
      const address = records.addressOf(question.name.toLowerCase());
      return address === undefined ? [] : [{ type: TYPE_A, wireName: question.wireName, ttl: DEFAULT_TTL, address }];
    }
    if (question.qtype === TYPE_TXT) {
      if (!txtAllowedFrom(sourceIp, vpnIp, vpnMask)) return [];
      log.debug(`Query for TXT ${question.name}`);
      const ip = parseGoIPv4(question.name.slice(0, -1));
      const text = ip === undefined ? undefined : records.certText(ip);
      // Go skips the record when its zone text does not parse.
      const strings = text ? txtStringsFromZoneText(text) : undefined;
      return strings ? [{ type: TYPE_TXT, wireName: question.wireName, ttl: DEFAULT_TTL, strings }] : [];
    }
    return [];
  }

  private drop(why: string): undefined {
    this.dropped++;
    this.opts.log.debug('DNS datagram dropped', { reason: why });
    return undefined;
  }

  private refuse(header: DnsHeader, rcode: number, question?: DnsQuestion): Buffer {
    this.refused++;
    return encodeReply({ id: header.id, flags: refusalFlags(header.flags, rcode), question, answers: [] });
  }
}
