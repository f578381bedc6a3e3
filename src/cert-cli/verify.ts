/**
 * `verify`: each certificate of -crt against the CA bundle of -ca (v1 and v2 CAs mixed), as nebula-cert 1.11 does:
 * an expired CA in the bundle is no error by itself (a certificate it signed then fails with "root certificate is
 * expired"), and every certificate of -crt is checked. Errors stay on one line: where Go embeds the certificate's
 * indented JSON, this names it by version, name and issuer (Go's wording for an unknown CA), and several failures
 * are joined with "; ". Trailing blank lines after the last certificate are ignored (1.11 refuses them), and an
 * empty -crt file is an error (1.11 passes it).
 */
import { CertError } from '../shared/pki';
import { readCertFromPem, type CertView } from './any-cert';
import { CAPool111 } from './ca-pool-111';
import { CliError } from './errors';
import { IoClaims, readInput } from './fileio';
import { FlagSet } from './flags';
import { mustFlag, wrap, type Mode } from './commands';

function verifyFlags(): FlagSet {
  return new FlagSet()
    .string('ca', '', 'Required: path to a file containing one or more ca certificates')
    .string('crt', '', 'Required: path to a file containing a single certificate');
}

function describe(cert: CertView): string {
  return cert.issuer === '' ? `v${cert.version} ${cert.name}` : `v${cert.version} ${cert.name} with issuer ${cert.issuer}`;
}

function run(args: string[]): void {
  const f = verifyFlags().parse(args);
  const caPath = mustFlag(f, 'ca');
  const crtPath = mustFlag(f, 'crt');
  const claims = new IoClaims().reserveInputs(['ca', caPath], ['crt', crtPath]);
  const now = new Date();
  const caText = readInput('ca', caPath, claims, 'error while reading ca: ');
  const pool = wrap('error while adding ca cert to pool: ', () => CAPool111.fromPem(caText, now));
  let rest = readInput('crt', crtPath, claims, 'unable to read crt: ');
  const errors: string[] = [];
  // Go passes an empty -crt file (nothing verified); here at least one certificate must be there.
  do {
    const r = wrap('error while parsing crt: ', () => readCertFromPem(rest));
    rest = r.rest;
    try {
      pool.verify(r.view, now);
    } catch (err) {
      if (!(err instanceof CertError)) throw err;
      errors.push(`error while verifying certificate ${describe(r.view)}: ${err.message}`);
    }
  } while (rest.trim() !== '');
  if (errors.length > 0) throw new CliError(errors.join('; '));
}

export const verifyMode: Mode = {
  summary: "verify <flags>: verifies a certificate isn't expired and was signed by a trusted authority.",
  flags: verifyFlags,
  run,
};
