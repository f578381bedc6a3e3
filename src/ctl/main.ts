/**
 * nebula-ctl: talks to a running nebula-ts over its control socket.
 *   nebula-ctl [-socket PATH | -config FILE] reload|status
 * `reload` exits non-zero when the node rejected the new config (the running config is kept).
 */
import net from 'node:net';
import { loadConfig } from '../shared/config';

const DEFAULT_SOCKET = '/run/nebula-ts/nebula.sock';

function usage(): never {
  process.stderr.write('Usage: nebula-ctl [-socket PATH | -config FILE] <reload|status>\n');
  process.exit(2);
}

function request(socketPath: string, cmd: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ cmd }) + '\n'));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        conn.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (err) {
          reject(err as Error);
        }
      }
    });
    conn.on('error', (err) => reject(new Error(`cannot reach nebula-ts at ${socketPath}: ${err.message}`)));
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let socketPath = process.env.NEBULA_TS_SOCKET ?? DEFAULT_SOCKET;
  let cmd: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-socket' || a === '--socket') socketPath = argv[++i] ?? usage();
    else if (a === '-config' || a === '--config') socketPath = loadConfig(argv[++i] ?? usage()).config.control.socket;
    else if (!a.startsWith('-') && cmd === undefined) cmd = a;
    else usage();
  }
  if (cmd !== 'reload' && cmd !== 'status') usage();
  const reply = await request(socketPath, cmd);
  if (cmd === 'status') {
    process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
    return reply.ok === false ? 1 : 0;
  }
  if (reply.ok === true) {
    const changed = (reply.changed as string[] | undefined) ?? [];
    process.stdout.write(`reloaded${changed.length ? `: ${changed.join(', ')} changed` : ': nothing changed'}\n`);
    return 0;
  }
  process.stderr.write(`reload failed, running config kept: ${String(reply.error)}\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nebula-ctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
