/**
 * Testbed pieces for meshes with today's Nebula (issue 12): Go nebula binaries of a given version next to the
 * system's 1.6.1 (as ../shared/tools/fetch-nebula.sh DIR unpacks them: DIR/<version>/nebula and nebula-cert), the
 * command prefix that makes a `go` mesh node run one of them instead of `nebula` from PATH, and certificates made by
 * that version's nebula-cert (v1 or v2, a v1 and a v2 one for the same key) put in place of the mesh's own.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MeshNode } from './mesh-node';

export type GoTool = 'nebula' | 'nebula-cert';

/** Where a fetched Go binary may be: $NEBULA_BIN_DIR/<version>/<tool>, then nebula-bin/<version>/<tool> beside `projectRoot`. */
export function goBinaryCandidates(projectRoot: string, version: string, tool: GoTool): string[] {
  const dirs = [process.env.NEBULA_BIN_DIR, path.resolve(projectRoot, '..', 'nebula-bin')];
  return dirs.filter((d): d is string => !!d).map((d) => path.join(d, version, tool));
}

/** The first candidate that is executable and says it is `version` (`-version`), or undefined. */
export function findGoBinary(projectRoot: string, version: string, tool: GoTool): string | undefined {
  for (const file of goBinaryCandidates(projectRoot, version, tool)) {
    try {
      accessSync(file, constants.X_OK);
      if (execFileSync(file, ['-version'], { encoding: 'utf8', timeout: 10_000 }).includes(`Version: ${version}`)) return file;
    } catch {
      // not there, not executable, or not that version: try the next one
    }
  }
  return undefined;
}

/**
 * A `commandPrefix` for a `go` mesh node that runs `bin` in place of the `nebula` the mesh starts: the shell drops
 * that first word and execs `bin` with the rest, so the node's pid is still the Go process's.
 */
export function goBinaryPrefix(bin: string): string[] {
  return ['sh', '-c', 'shift; exec "$0" "$@"', bin];
}

export type GoCurve = '25519' | 'P256';

export interface GoCA {
  crt: string;
  key: string;
  version: 1 | 2;
  curve: GoCurve;
}

/** nebula-cert (of one version) making files under `dir`. */
export class GoCertMaker {
  constructor(
    readonly bin: string,
    readonly dir: string,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private run(args: string[]): void {
    execFileSync(this.bin, args, { cwd: this.dir, encoding: 'utf8', timeout: 30_000 });
  }

  /** A CA of `version` (1.11's default is 2) and `curve`, valid for a day. */
  ca(name: string, version: 1 | 2, curve: GoCurve = '25519'): GoCA {
    const base = path.join(this.dir, name);
    this.run(['ca', '-name', name, '-version', String(version), '-curve', curve, '-duration', '24h', '-out-crt', `${base}.crt`, '-out-key', `${base}.ca.key`]);
    return { crt: `${base}.crt`, key: `${base}.ca.key`, version, curve };
  }

  /** A host key pair of `curve`: `{ key, pub }` paths. */
  keygen(name: string, curve: GoCurve = '25519'): { key: string; pub: string } {
    const base = path.join(this.dir, name);
    this.run(['keygen', '-curve', curve, '-out-key', `${base}.key`, '-out-pub', `${base}.pub`]);
    return { key: `${base}.key`, pub: `${base}.pub` };
  }

  /** A host certificate for the public key `pub`, in the CA's version; returns its path. */
  sign(ca: GoCA, name: string, networks: string, pub: string, groups: string[] = []): string {
    const crt = path.join(this.dir, `${name}.v${ca.version}.crt`);
    const args = ['sign', '-ca-crt', ca.crt, '-ca-key', ca.key, '-name', name, '-networks', networks, '-in-pub', pub, '-out-crt', crt];
    if (groups.length > 0) args.push('-groups', groups.join(','));
    this.run(args);
    return crt;
  }

  /** A PEM bundle of several files (CA bundles, a v1 and a v2 host certificate), written as `name`. */
  bundle(name: string, files: string[]): string {
    const out = path.join(this.dir, name);
    writeFileSync(out, files.map((f) => readFileSync(f, 'utf8')).join(''), { mode: 0o600 });
    return out;
  }
}

/**
 * Puts the node's cert(s) and key where its generated config points (`<dir>/<name>.crt|.key`), replacing the mesh's
 * own v1 files; the CA bundle is the node's `config: { pki: { ca } }`, given in its spec.
 */
export function installNodePki(node: MeshNode, files: { certs: string[]; key: string }): void {
  writeFileSync(path.join(node.dir, `${node.name}.crt`), files.certs.map((f) => readFileSync(f, 'utf8')).join(''), { mode: 0o600 });
  copyFileSync(files.key, path.join(node.dir, `${node.name}.key`));
}
