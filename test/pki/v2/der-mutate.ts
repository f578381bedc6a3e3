/**
 * DER-aware mutations for fuzzing the v2 certificate decoder: structural ones on a parsed element tree (wrong tags,
 * odd contents, removed/duplicated/reordered/extra elements) re-serialized with consistent lengths, so the decoder is
 * reached deep inside; and header ones left inconsistent on purpose (huge, over-long, indefinite, non-minimal
 * lengths, high-tag-number form).
 */
import type { Rng } from '../../fuzz/fuzz-helpers';
import { derElement } from '../../../src/shared/pki/v2/der';

interface DerNode {
  tag: number;
  content: Buffer;
  /** Parsed children of a constructed element (tag bit 0x20) whose content parses cleanly. */
  children?: DerNode[];
}

/** Lenient parse of a run of elements (short and long lengths up to 4 octets); undefined when it does not parse. */
function parseRun(buf: Buffer, depth = 0): DerNode[] | undefined {
  const out: DerNode[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 2) return undefined;
    const tag = buf[pos]!;
    let len = buf[pos + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || buf.length - pos < 2 + n) return undefined;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
      header += n;
    }
    if (len > buf.length - pos - header) return undefined;
    const content = buf.subarray(pos + header, pos + header + len);
    const node: DerNode = { tag, content };
    if (tag & 0x20 && depth < 4) node.children = parseRun(content, depth + 1);
    out.push(node);
    pos += header + len;
  }
  return out;
}

function serialize(nodes: readonly DerNode[]): Buffer {
  return Buffer.concat(nodes.map((n) => derElement(n.tag, n.children ? serialize(n.children) : n.content)));
}

/** Every (list, index) position in the tree, for picking a node together with its siblings. */
function positions(nodes: DerNode[], out: Array<[DerNode[], number]> = []): Array<[DerNode[], number]> {
  nodes.forEach((n, i) => {
    out.push([nodes, i]);
    if (n.children) positions(n.children, out);
  });
  return out;
}

const TAGS = [0x30, 0x31, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x04, 0x0c, 0x02, 0x01, 0x00, 0x1f, 0xbf, 0xff];

/** Contents that probe the decoder's field rules: curve/isCA bytes, integers, network and name sizes. */
function oddContent(rng: Rng): Buffer {
  switch (rng.int(7)) {
    case 0:
      return Buffer.from([rng.pick([0, 1, 2, 3, 0x7f, 0x80, 0xff])]);
    case 1:
      return Buffer.from(rng.pick(['', '00', '0001', 'ff80', '7fffffffffffffff', '8000000000000000', '010000000000000000', '00ffffffffffffffff']), 'hex');
    case 2: {
      const len = rng.pick([0, 1, 2, 4, 5, 6, 16, 17, 18]);
      const b = rng.bytes(len);
      if (len > 0) b[len - 1] = rng.pick([0, 8, 24, 32, 33, 64, 128, 129, 255]);
      return b;
    }
    case 3:
      return Buffer.alloc(rng.pick([0, 253, 254, 300]), 0x61);
    case 4:
      return Buffer.from([0xc3, 0x28, 0xff, 0xe2, 0x82]); // invalid UTF-8
    case 5:
      return Buffer.alloc(rng.pick([0, 16, 31, 32, 33, 64, 65, 66]), rng.pick([0, 4, 0xff]));
    default:
      return rng.bytes(rng.size(24));
  }
}

/** One structural mutation, re-serialized with correct lengths; `buf` itself when it has no DER structure. */
export function mutateDerTree(rng: Rng, buf: Buffer): Buffer {
  const root = parseRun(buf);
  if (!root || root.length === 0) return buf;
  const all = positions(root);
  const [list, i] = rng.pick(all);
  const node = list[i]!;
  switch (rng.int(7)) {
    case 0:
      node.tag = rng.pick(TAGS);
      break;
    case 1:
      node.children = undefined;
      node.content = oddContent(rng);
      break;
    case 2:
      list.splice(i, 1);
      break;
    case 3:
      list.splice(i, 0, { ...node });
      break;
    case 4: {
      const j = rng.int(list.length);
      [list[i], list[j]] = [list[j]!, list[i]!];
      break;
    }
    case 5:
      list.splice(rng.int(list.length + 1), 0, { tag: rng.pick(TAGS), content: oddContent(rng) });
      break;
    default:
      if (node.children) node.children.push({ tag: rng.pick([0x88, 0x89, 0xa8, 0x04]), content: rng.bytes(rng.size(8)) });
      else node.content = Buffer.concat([node.content, rng.bytes(rng.range(1, 4))]);
  }
  return serialize(root);
}

/** Where element headers are, by a lenient scan (start of tag, end of length octets). */
function headerSites(buf: Buffer, base = 0, out: Array<{ start: number; end: number }> = []): Array<{ start: number; end: number }> {
  const nodes = parseRun(buf);
  if (!nodes) return out;
  let pos = 0;
  for (const n of nodes) {
    const lenByte = buf[pos + 1]!;
    const header = lenByte & 0x80 ? 2 + (lenByte & 0x7f) : 2;
    out.push({ start: base + pos, end: base + pos + header });
    if (n.tag & 0x20) headerSites(n.content, base + pos + header, out);
    pos += header + n.content.length;
  }
  return out;
}

/** Rewrites one element header into something DER forbids or that overruns, without fixing anything around it. */
export function breakDerHeader(rng: Rng, buf: Buffer): Buffer {
  const sites = headerSites(buf);
  if (sites.length === 0) return buf;
  const site = rng.pick(sites);
  const tag = buf[site.start]!;
  const replacement = rng.pick([
    [tag, 0x84, 0xff, 0xff, 0xff, 0xff],
    [tag, 0x84, 0x7f, 0xff, 0xff, 0xff],
    [tag, 0x85, 0x00, 0x00, 0x00, 0x00, 0x10],
    [tag, 0x80],
    [tag, 0x81, 0x05],
    [tag, 0x82, 0x00, 0x90],
    [tag, 0x83, 0x01, 0x00, 0x01],
    [0x1f, 0x81, 0x01],
    [tag, 0x7f],
  ]);
  return Buffer.concat([buf.subarray(0, site.start), Buffer.from(replacement), buf.subarray(site.end)]);
}
