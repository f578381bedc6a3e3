/**
 * PEM framing for Nebula's certificate and key files (nebula-spec §4.4), following Go's encoding/pem: text before
 * a block is skipped, a malformed block is skipped in favour of a later one, and the caller gets the remaining text
 * so bundles can be read block by block. Error wording mirrors nebula 1.6.1's cert package.
 */
import { CertError, malformed } from './errors';

export const CERT_BANNER = 'NEBULA CERTIFICATE';
export const X25519_PRIVATE_BANNER = 'NEBULA X25519 PRIVATE KEY';
export const X25519_PUBLIC_BANNER = 'NEBULA X25519 PUBLIC KEY';
export const ED25519_PRIVATE_BANNER = 'NEBULA ED25519 PRIVATE KEY';
export const ED25519_PUBLIC_BANNER = 'NEBULA ED25519 PUBLIC KEY';

export interface PemBlock {
  type: string;
  bytes: Buffer;
}

/** Standard PEM: base64 in 64-column lines, trailing newline (what Go's pem.EncodeToMemory writes). */
export function pemEncode(type: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.map((l) => l + '\n').join('')}-----END ${type}-----\n`;
}

const BEGIN_RE = /-----BEGIN ([^\r\n]*?)-----[ \t]*\r?(?:\n|$)/g;
const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes the first well-formed PEM block in `text`. Returns undefined when there is none (including a block cut
 * off before its END line or with invalid base64), plus the text after the block.
 */
export function pemDecode(text: string): { block: PemBlock; rest: string } | undefined {
  BEGIN_RE.lastIndex = 0;
  for (;;) {
    const m = BEGIN_RE.exec(text);
    if (!m) return undefined;
    // Go requires BEGIN at the start of the input or of a line.
    if (m.index > 0 && text[m.index - 1] !== '\n') continue;
    const type = m[1]!;
    const bodyStart = m.index + m[0].length;
    const endMarker = `-----END ${type}-----`;
    const endIdx = text.indexOf(endMarker, bodyStart);
    if (endIdx < 0) continue;
    const afterEnd = endIdx + endMarker.length;
    const lineEnd = text.indexOf('\n', afterEnd);
    const restOfLine = text.slice(afterEnd, lineEnd < 0 ? text.length : lineEnd);
    if (restOfLine.trim() !== '') continue;
    let body = text.slice(bodyStart, endIdx);
    // Optional RFC 1421 headers ("Key: value" lines ended by a blank line) are ignored, as nebula does.
    const headerEnd = /^(?:[^\r\n:]+:[^\r\n]*\r?\n)+\r?\n/.exec(body);
    if (headerEnd) body = body.slice(headerEnd[0].length);
    const b64 = body.replace(/[ \t\r\n]/g, '');
    if (!STRICT_B64.test(b64)) continue;
    return {
      block: { type, bytes: Buffer.from(b64, 'base64') },
      rest: lineEnd < 0 ? '' : text.slice(lineEnd + 1),
    };
  }
}

/** Decodes one block and checks its banner, with nebula's error wording. */
export function pemDecodeExpect(text: string, banner: string, bannerDesc: string): { bytes: Buffer; rest: string } {
  const d = pemDecode(text);
  if (!d) throw malformed('input did not contain a valid PEM encoded block');
  if (d.block.type !== banner) throw malformed(`bytes did not contain a proper nebula ${bannerDesc} banner`);
  return { bytes: d.block.bytes, rest: d.rest };
}

function fixedLength(bytes: Buffer, len: number, what: string): Buffer {
  if (bytes.length !== len) throw new CertError('malformed', `key was not ${len} bytes, is invalid ${what}`);
  return bytes;
}

export function marshalX25519PrivateKey(key: Uint8Array): string {
  return pemEncode(X25519_PRIVATE_BANNER, key);
}
export function marshalX25519PublicKey(key: Uint8Array): string {
  return pemEncode(X25519_PUBLIC_BANNER, key);
}
export function marshalEd25519PrivateKey(key: Uint8Array): string {
  return pemEncode(ED25519_PRIVATE_BANNER, key);
}
export function marshalEd25519PublicKey(key: Uint8Array): string {
  return pemEncode(ED25519_PUBLIC_BANNER, key);
}

export function unmarshalX25519PrivateKey(text: string): { key: Buffer; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, X25519_PRIVATE_BANNER, 'X25519 private key');
  return { key: fixedLength(bytes, 32, 'X25519 private key'), rest };
}
export function unmarshalX25519PublicKey(text: string): { key: Buffer; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, X25519_PUBLIC_BANNER, 'X25519 public key');
  return { key: fixedLength(bytes, 32, 'X25519 public key'), rest };
}
export function unmarshalEd25519PrivateKey(text: string): { key: Buffer; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, ED25519_PRIVATE_BANNER, 'Ed25519 private key');
  return { key: fixedLength(bytes, 64, 'ed25519 private key'), rest };
}
export function unmarshalEd25519PublicKey(text: string): { key: Buffer; rest: string } {
  const { bytes, rest } = pemDecodeExpect(text, ED25519_PUBLIC_BANNER, 'Ed25519 public key');
  return { key: fixedLength(bytes, 32, 'ed25519 public key'), rest };
}
