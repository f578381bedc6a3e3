/** Shared fixtures for the PKI tests: temp dirs, running the compiled CLIs, and certs built in-process. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CAPool,
  CertError,
  generateEd25519KeyPair,
  generateX25519KeyPair,
  signCert,
  type CertDetails,
  type NebulaCertificate,
} from '../../src/shared/pki';
import { parseCidr, type IPv4Net } from '../../src/shared/util/ipv4';
import { nodeCommand } from '../../src/testbed/runner-hooks';

export const CLI = path.resolve(__dirname, '../../dist/cert-cli/main.js');

export function cliBuilt(): boolean {
  return existsSync(CLI);
}

export function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nebula-ts-pki-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runIn(cmd: string, args: string[], cwd: string): RunResult {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs dist/cert-cli/main.js (nebula-ts-cert) in `cwd` (without the test runner's hooks: they cost each run ~0.5 s of CPU). */
export function tsCert(cwd: string, ...args: string[]): RunResult {
  const [node, ...nodeArgs] = nodeCommand();
  return runIn(node!, [...nodeArgs, CLI, ...args], cwd);
}

/** Runs Debian's nebula-cert 1.6.1 in `cwd`. */
export function goCert(cwd: string, ...args: string[]): RunResult {
  return runIn('nebula-cert', args, cwd);
}

const net = (cidr: string): IPv4Net => parseCidr(cidr)!;

export interface Made {
  cert: NebulaCertificate;
  privateKey: Buffer;
}

const now = (): number => Math.floor(Date.now() / 1000);

/** A self-signed CA; `opts` override details (times relative to now by default: valid for an hour either way). */
export function makeCA(opts: Partial<Omit<CertDetails, 'ips' | 'subnets'>> & { ips?: string[]; subnets?: string[] } = {}): Made {
  const keys = generateEd25519KeyPair();
  const details: CertDetails = {
    name: 'test ca',
    groups: [],
    notBefore: now() - 3600,
    notAfter: now() + 3600,
    publicKey: keys.publicKey,
    isCA: true,
    issuer: '',
    ...opts,
    ips: (opts.ips ?? []).map(net),
    subnets: (opts.subnets ?? []).map(net),
  };
  return { cert: signCert(details, keys.privateKey), privateKey: keys.privateKey };
}

/** A host cert signed by `ca` (defaults within the CA's window); overrides may break any rule on purpose. */
export function makeHost(
  ca: Made,
  opts: Partial<Omit<CertDetails, 'ips' | 'subnets'>> & { ips?: string[]; subnets?: string[] } = {},
): Made {
  const keys = generateX25519KeyPair();
  const details: CertDetails = {
    name: 'host',
    groups: [],
    notBefore: ca.cert.details.notBefore + 1,
    notAfter: ca.cert.details.notAfter - 1,
    publicKey: keys.publicKey,
    isCA: false,
    issuer: ca.cert.fingerprint(),
    ...opts,
    ips: (opts.ips ?? ['10.1.2.3/16']).map(net),
    subnets: (opts.subnets ?? []).map(net),
  };
  return { cert: signCert(details, ca.privateKey), privateKey: keys.privateKey };
}

/** A CA, a pool trusting only it, and a host certificate it signed. */
export function trustedHost(): { ca: Made; pool: CAPool; host: Made } {
  const ca = makeCA();
  const pool = new CAPool();
  pool.addCA(ca.cert);
  return { ca, pool, host: makeHost(ca) };
}

/**
 * What `fn` throws: a CertError as `code: message` (or its code alone with `codeOnly`), anything else as
 * `other: ...`; undefined when it returns.
 */
export function certError(fn: () => unknown, codeOnly = false): string | undefined {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CertError)) return `other: ${String(err)}`;
    return codeOnly ? err.code : `${err.code}: ${err.message}`;
  }
  return undefined;
}
