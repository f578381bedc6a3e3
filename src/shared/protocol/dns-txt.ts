/**
 * TXT record strings from zone-file text, the way Go nebula 1.6.1 makes them: it formats a host's cert as a line of
 * quoted strings and hands `<name> TXT <line>` to miekg/dns v1.1.48's NewRR, whose zone lexer splits it. Doing the
 * same split here means a cert whose name or groups hold a quote, a backslash, a semicolon or a brace yields the very
 * strings Go sends (or, where Go's parse fails and it answers nothing, nothing).
 *
 * The lexer rules followed (scan.go, scan_rr.go endingToTxtSlice, msg.go packTxtString): outside quotes blanks
 * separate strings, `;` starts a comment to the end of the line, `(`/`)` group lines and vanish, `\r` is dropped and a
 * newline ends the record; inside quotes every byte is literal but `"` and `\`; a backslash keeps itself and the next
 * byte in the token. A token over 2048 bytes fails. Each token is cut into 255-byte chunks (before unescaping, and
 * with miekg's quirk of a trailing empty chunk when the length is a multiple of 255 above 255), then `\DDD` and `\X`
 * are unescaped.
 */

const MAX_TOKEN = 2048;
const TXT_CHUNK = 255;

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;

/** packTxtString's unescaping of one presentation-form chunk. */
function unescapeChunk(chunk: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < chunk.length; i++) {
    let b = chunk[i]!;
    if (b === 0x5c) {
      i++;
      if (i === chunk.length) break;
      if (i + 2 < chunk.length && isDigit(chunk[i]!) && isDigit(chunk[i + 1]!) && isDigit(chunk[i + 2]!)) {
        b = ((chunk[i]! - 0x30) * 100 + (chunk[i + 1]! - 0x30) * 10 + (chunk[i + 2]! - 0x30)) & 0xff;
        i += 2;
      } else {
        b = chunk[i]!;
      }
    }
    out.push(b);
  }
  return Buffer.from(out);
}

/** endingToTxtSlice's chunking of one token, quirk included. */
function chunksOf(token: Buffer): Buffer[] {
  if (token.length <= TXT_CHUNK) return [token];
  const chunks: Buffer[] = [];
  for (let p = 0, i = TXT_CHUNK; ; p += TXT_CHUNK, i += TXT_CHUNK) {
    if (i <= token.length) chunks.push(token.subarray(p, i));
    else {
      chunks.push(token.subarray(p));
      break;
    }
  }
  return chunks;
}

/** The TXT strings miekg would pack for `text`, or undefined where its parse fails (Go then sends no record). */
export function txtStringsFromZoneText(text: string): Buffer[] | undefined {
  const bytes = Buffer.from(text + '\n', 'utf8'); // NewRR appends the closing newline
  const strings: Buffer[] = [];
  let token: number[] = [];
  let quoted = false;
  let escape = false;
  let comment = false;
  let braces = 0;
  let emptyQuote = false; // a quote opened and nothing seen since: `""` is one empty string

  const flush = (): void => {
    if (token.length === 0) return;
    emptyQuote = false;
    for (const chunk of chunksOf(Buffer.from(token))) strings.push(unescapeChunk(chunk));
    token = [];
  };

  for (const x of bytes) {
    if (token.length >= MAX_TOKEN) return undefined;
    if (comment && x !== 0x0a && x !== 0x0d) continue;
    switch (x) {
      case 0x20: // space
      case 0x09: // tab
        if (escape || quoted) {
          token.push(x);
          escape = false;
        } else flush();
        break;
      case 0x3b: // ;
        if (escape || quoted) {
          token.push(x);
          escape = false;
        } else {
          flush();
          comment = true;
        }
        break;
      case 0x0d:
        escape = false;
        if (quoted) token.push(x);
        break;
      case 0x0a:
        escape = false;
        if (quoted) token.push(x);
        else {
          comment = false;
          if (braces === 0) {
            flush();
            return strings; // the record ends here
          }
        }
        break;
      case 0x5c: // backslash
        token.push(x);
        escape = !escape;
        break;
      case 0x22: // "
        if (escape) {
          token.push(x);
          escape = false;
          break;
        }
        flush();
        if (emptyQuote && quoted) strings.push(Buffer.alloc(0));
        quoted = !quoted;
        emptyQuote = true;
        break;
      case 0x28: // (
      case 0x29: // )
        if (escape || quoted) {
          token.push(x);
          escape = false;
        } else if (x === 0x28) braces++;
        else if (--braces < 0) return undefined;
        break;
      default:
        escape = false;
        token.push(x);
    }
  }
  // Only reached with a quote or a brace still open at the end: miekg reports a parse error.
  return undefined;
}
