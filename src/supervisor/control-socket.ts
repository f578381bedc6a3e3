/**
 * The control socket nebula-ctl talks to: a unix socket, mode 0600 (only root may reload or inspect the node),
 * one JSON request per line, one JSON answer per line.
 */
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../shared/log';

export type ControlHandler = (request: { cmd: string; args?: unknown }) => Promise<unknown> | unknown;

export class ControlSocket {
  private server?: net.Server;

  constructor(
    readonly socketPath: string,
    private readonly handler: ControlHandler,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o700 });
    try {
      unlinkSync(this.socketPath); // a stale socket from a killed run
    } catch {
      /* none */
    }
    const server = net.createServer((conn) => this.serve(conn));
    // Create it 0600 from the start: no window in which another user could connect.
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, 0o600);
    this.server = server;
  }

  private serve(conn: net.Socket): void {
    let buffered = '';
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        void this.answer(conn, line);
      }
      if (buffered.length > 65536) conn.destroy();
    });
    conn.on('error', () => undefined);
  }

  private async answer(conn: net.Socket, line: string): Promise<void> {
    let reply: unknown;
    try {
      const req = JSON.parse(line) as { cmd?: unknown; args?: unknown };
      if (typeof req.cmd !== 'string') throw new Error('request needs a "cmd" string');
      reply = await this.handler({ cmd: req.cmd, args: req.args });
    } catch (err) {
      reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    conn.write(JSON.stringify(reply) + '\n');
  }

  close(): void {
    this.server?.close();
    try {
      unlinkSync(this.socketPath);
    } catch {
      /* gone */
    }
    this.log.debug('Control socket closed', { path: this.socketPath });
  }
}
