/**
 * `lighthouse.serve_dns` over the node's life (nebula-spec §5.7): the responder starts once the interface is up, a
 * bind failure is logged and the node runs on (as Go's does), and a reload that changes `lighthouse.dns.host` or
 * `port` moves the responder to the new address with the same records (Go restarts it the same way).
 */
import type { NebulaConfig } from '../shared/config';
import type { Logger } from '../shared/log';
import { DnsServer, type DnsRecords } from './dns-server';

export interface DnsServiceEnv {
  log: Logger;
  records: DnsRecords;
  vpnIp: number;
  vpnMask: number;
  config(): NebulaConfig;
}

export class DnsService {
  private server?: DnsServer;
  private listening?: { host: string; port: number };

  constructor(private readonly env: DnsServiceEnv) {}

  async start(): Promise<void> {
    const { host, port } = this.env.config().lighthouse.dns;
    const server = new DnsServer({ host, port, vpnIp: this.env.vpnIp, vpnMask: this.env.vpnMask, records: this.env.records, log: this.env.log });
    this.listening = { host, port };
    try {
      await server.start();
      this.server = server;
    } catch (err) {
      this.env.log.error('Failed to start server', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** After a reload: a new host or port moves the responder. */
  async reloaded(): Promise<void> {
    const { host, port } = this.env.config().lighthouse.dns;
    if (this.listening && this.listening.host === host && this.listening.port === port) return;
    this.env.log.info('lighthouse.dns.host and/or lighthouse.dns.port has changed, restarting the DNS responder', { dnsListener: `${host}:${port}` });
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  /** Where it answers (undefined when it could not bind). */
  get address(): { address: string; port: number } | undefined {
    return this.server?.address;
  }
}
