/**
 * `print`: every certificate of a PEM file (v1 and v2 alike) as nebula-cert 1.11 prints it: one indented JSON
 * object per certificate, each written as soon as it is read (so good certificates before a bad block still
 * print), or with -json a single JSON array written once all have been read.
 */
import type { AnyCert } from './any-cert';
import { readCertFromPem } from './any-cert';
import { IoClaims, readInput } from './fileio';
import { FlagSet } from './flags';
import { certToText111, certsToJson111 } from './print-format';
import { mustFlag, refuseQr, wrap, type Mode, type Output } from './commands';

function printFlags(): FlagSet {
  return new FlagSet()
    .bool('json', false, 'Optional: outputs certificates in json format')
    .string('out-qr', '', 'Optional: output a qr code image (png) of the certificate')
    .string('path', '', 'Required: path to the certificate');
}

function run(args: string[], io: Output): void {
  const f = printFlags().parse(args);
  const path = mustFlag(f, 'path');
  refuseQr(f);
  const claims = new IoClaims().reserveInputs(['path', path]);
  let rest = readInput('path', path, claims, 'unable to read cert; ');
  const json = f.getBool('json');
  const certs: AnyCert[] = [];
  do {
    const r = wrap('error while unmarshaling cert: ', () => readCertFromPem(rest));
    if (json) certs.push(r.view.cert);
    else io.out(certToText111(r.view.cert));
    rest = r.rest;
  } while (rest.trim() !== '');
  if (json) io.out(certsToJson111(certs));
}

export const printMode: Mode = { summary: 'print <flags>: prints details about a certificate', flags: printFlags, run };
