/**
 * `nebula-ts -config FILE [-test] [-version]`: runs the supervisor in the foreground, like `nebula`.
 * SIGHUP reloads; SIGINT/SIGTERM stop the routines first, then remove the device. Under pm2 it reports
 * `ready` once every routine is serving (wait_ready).
 */
// First, before any module allocates: caps V8's young generation for the supervisor's life (young-generation.ts).
import './young-generation';
import { loadConfig, ConfigError, formatIssue, vpnNetworkIssues } from '../shared/config';
import { Logger } from '../shared/log';
import { checkHostPki, loadHostCertAndKey } from '../shared/pki';
import { exitOnUnexpectedErrors } from '../shared/fatal';
import http from 'node:http';
import { NodeConsole } from './console';
import { vpnNetworks6Of } from './live-config';
import { lighthouseCommands } from './console-lighthouse';
import { relayCommands } from './console-relays';
import { statsCommand } from './console-stats';
import { ControlSocket } from './control-socket';
import { startGraphite, type GraphiteExporter } from './graphite';
import { metricDefinitions, metricsOptions } from './metrics-catalogue';
import { SupervisorNode } from './node';

export const VERSION = '0.1.0';

interface Args {
  config?: string;
  test: boolean;
  version: boolean;
  help: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { test: false, version: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const [flag, inline] = raw.replace(/^--?/, '').split('=', 2) as [string, string | undefined];
    switch (flag) {
      case 'config':
        args.config = inline ?? argv[++i];
        break;
      case 'test':
        args.test = true;
        break;
      case 'version':
        args.version = true;
        break;
      case 'h':
      case 'help':
        args.help = true;
        break;
      default:
        throw new Error(`flag provided but not defined: ${raw}`);
    }
  }
  return args;
}

const USAGE = `Usage of nebula-ts:
  -config string
    \tPath to either a file or a directory to load configuration from
  -test
    \tTest the config and print the end result. Non zero exit indicates a faulty config (PKI files included)
  -version
    \tPrint version
`;

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.version) {
    process.stdout.write(`Version: ${VERSION}\n`);
    return 0;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!args.config) {
    process.stderr.write(`-config flag must be set\n${USAGE}`);
    return 1;
  }
  if (args.test) {
    try {
      const loaded = loadConfig(args.config);
      // Warnings to stderr, so stdout is exactly the effective config (parseable by scripts).
      const log = new Logger({ level: 'info', write: (line) => process.stderr.write(line + '\n') });
      for (const w of loaded.warnings) log.log(w.level, w.msg, w.fields);
      // What a start would meet: the PKI files must load and the cert verify against the pool (one line per problem).
      const pki = loaded.config.pki;
      const problems = checkHostPki({ ca: pki.ca, cert: pki.cert, key: pki.key, blocklist: pki.blocklist, initiatingVersion: pki.initiating_version });
      if (problems.length === 0) {
        // Keys naming VPN IPs must lie in the network of the cert (now known to load).
        const host = loadHostCertAndKey({ cert: pki.cert, key: pki.key, initiatingVersion: pki.initiating_version }).cert;
        const net = host.details.ips[0]!;
        problems.push(...vpnNetworkIssues(loaded.config, { ip: net.ip >>> 0, mask: net.mask >>> 0 }, vpnNetworks6Of(host)).map(formatIssue));
      }
      if (problems.length > 0) {
        process.stderr.write(problems.map((p) => `${p}\n`).join(''));
        return 1;
      }
      process.stdout.write(JSON.stringify(loaded.config, null, 2) + '\n');
      return 0;
    } catch (err) {
      process.stderr.write(`${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
      return 1;
    }
  }

  const log = new Logger({ level: 'info' });
  exitOnUnexpectedErrors((msg, error) => log.error(msg, { error }));
  let node: SupervisorNode;
  try {
    node = new SupervisorNode(args.config, log);
  } catch (err) {
    log.error('Failed to start', { error: err instanceof Error ? err.message : String(err) });
    return 1;
  }

  let stopping = false;
  // The control socket is claimed before the node starts, so a node that may not have it (another node answers on
  // it) fails before it touches any device or port. Until the node runs, requests get "starting".
  let started = false;
  // Nebula's ssh console commands (console.ts); reload and status are the node's own answers.
  const nodeConsole = new NodeConsole(() => node.reportedParts(), VERSION, {
    ...lighthouseCommands(() => node.reportedParts().lighthouse),
    ...relayCommands(() => node.reportedParts()),
    stats: statsCommand,
  });
  const control = new ControlSocket(
    node.controlSocketPath(),
    (req) => {
      if (!started) return { ok: false, error: 'the node is still starting' };
      switch (req.cmd) {
        case 'reload':
          return node.reload();
        case 'status':
          return node.status();
        default:
          return nodeConsole.run(req.cmd, req.args);
      }
    },
    log,
  );
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('Caught signal, shutting down', { signal });
    control.close();
    metricsServer?.close();
    graphite?.stop();
    await node.stop();
    log.info('Goodbye');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('interrupt'));
  process.on('SIGTERM', () => void shutdown('terminated'));
  process.on('SIGHUP', () => {
    log.info('Caught HUP, reloading config');
    node.reload(); // logs its one-line summary ("Config reloaded") or why it kept the running config
  });

  let metricsServer: http.Server | undefined;
  let graphite: GraphiteExporter | undefined;
  try {
    await control.listen();
    // Loaded only with `stats.type: prometheus` (a restart-only key): prom-client and the @opentelemetry/api it pulls
    // in are ~90 modules and ~1.5 MiB of RSS that other nodes never use. Loaded before the node starts, so the
    // endpoint still listens right after the interface comes up.
    const prometheus = node.statsConfig().type === 'prometheus' ? (require('./metrics') as typeof import('./metrics')) : undefined;
    await node.start();
    started = true;
    const stats = node.statsConfig();
    const metrics = metricsOptions(node.reportedParts().live.config);
    // Like Nebula, the exporters start once the node is up, and failing to listen (or to resolve stats.host) is fatal.
    if (stats.type === 'prometheus' && prometheus) {
      metricsServer = await prometheus.serveMetrics(stats, prometheus.buildRegistry(metrics, node.metricsSource(), `nebula-ts ${VERSION}`), log);
    }
    if (stats.type === 'graphite') graphite = await startGraphite(stats, metricDefinitions(metrics, node.metricsSource()), log);
  } catch (err) {
    log.error('Failed to start', { error: err instanceof Error ? err.message : String(err) });
    await node.stop().catch(() => undefined);
    control.close();
    return 1;
  }
  process.send?.('ready');
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`nebula-ts: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
