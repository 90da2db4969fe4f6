/**
 * JSON for bodies that carry large `b64` tensors. A seed-scale request is ~90 MB, almost all of it two base64
 * strings; `JSON.parse` would UTF-8-decode the whole body into one string, then scan and copy each base64 string
 * again, and `JSON.stringify` + a string reply would copy and UTF-8-encode ~90 MB twice on the way out.
 *
 * Parsing: every string value of a `"b64"` key is cut out of the body bytes (located with native `indexOf`, taken
 * as latin1, which is a plain copy since base64 is ASCII), and only the small remainder goes through `JSON.parse`.
 * Serializing: long `b64` strings are replaced by placeholders, the small skeleton is stringified, and the response
 * is assembled as one Buffer. Both give exactly what `JSON.parse` / `JSON.stringify` would.
 */
import { randomBytes } from 'node:crypto';
import { isEncodedB64 } from '../tensor/wire.js';

/** Below this size plain JSON.parse / JSON.stringify are as fast. */
export const BIG_BODY_BYTES = 1 << 20;
const MIN_LIFT = 4096;

const KEY = Buffer.from('"b64"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWs(c: number | undefined): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

// A process-wide secret makes placeholders unguessable, so no request can forge one.
const TAG = `\u0000gradserve-b64:${randomBytes(8).toString('hex')}:`;

function placeholderTag(): string {
  return TAG;
}

/** Same result as `JSON.parse(buf.toString('utf8'))`; throws its SyntaxError for invalid JSON. */
export function parseBigJson(buf: Buffer): unknown {
  return parseBigJsonText(buf).value;
}

/**
 * parseBigJson, also returning the JSON text that was really parsed (the body without the cut-out strings): every
 * key of the document is in it, so key checks can scan it instead of ~90 MB of base64.
 */
export function parseBigJsonText(buf: Buffer): { value: unknown; text: string } {
  const lifted: string[] = [];
  const pieces: string[] = [];
  const tag = placeholderTag();
  let copied = 0;
  let at = buf.indexOf(KEY, 0);
  while (at >= 0) {
    // The key's opening quote must be a real delimiter: not escaped by an odd run of backslashes.
    let bs = 0;
    for (let k = at - 1; k >= 0 && buf[k] === BACKSLASH; k--) bs++;
    let j = at + KEY.length;
    let lift = false;
    let s = 0;
    let e = 0;
    if (bs % 2 === 0) {
      while (isWs(buf[j])) j++;
      if (buf[j] === 0x3a) {
        j++;
        while (isWs(buf[j])) j++;
        if (buf[j] === QUOTE) {
          s = j + 1;
          e = buf.indexOf(QUOTE, s);
          // Only escape-free strings are lifted, so the next quote is surely the end; others stay with JSON.parse.
          // The backslash search is bounded by the string: unbounded, it scanned the rest of the body once per tensor.
          lift = e >= 0 && e - s >= MIN_LIFT && buf.subarray(s, e).indexOf(BACKSLASH) < 0;
        }
      }
    }
    if (lift) {
      pieces.push(buf.toString('utf8', copied, s - 1), JSON.stringify(`${tag}${lifted.length}`));
      lifted.push(buf.toString('latin1', s, e));
      copied = e + 1;
      at = buf.indexOf(KEY, copied);
    } else {
      at = buf.indexOf(KEY, at + 1);
    }
  }
  if (lifted.length === 0) return whole(buf);
  pieces.push(buf.toString('utf8', copied));
  const text = pieces.join('');
  const root: unknown = JSON.parse(text);
  let restored = 0;
  walk(root, (o) => {
    const v = o['b64'];
    if (typeof v === 'string' && v.startsWith(tag)) {
      o['b64'] = lifted[Number(v.slice(tag.length))];
      restored++;
    }
  });
  // Every cut-out string was the value of a real "b64" key, or the document was not what it seemed: start over.
  if (restored !== lifted.length) return whole(buf);
  return { value: root, text };
}

function whole(buf: Buffer): { value: unknown; text: string } {
  const text = buf.toString('utf8');
  return { value: JSON.parse(text), text };
}

/**
 * The `data` of a response tensor whose JSON number array was written natively (src/server/tensors.ts): stringifyBig
 * splices its bytes in. Anything else that serializes it gets the plain number array.
 */
export class RawJsonArray {
  /** Set by stringifyBig while it serializes: the placeholder this array stands for. */
  placeholder: string | undefined;

  constructor(readonly text: Buffer, private readonly values: () => unknown[]) {}

  toJSON(): unknown {
    return this.placeholder ?? this.values();
  }
}

/**
 * Same bytes as `JSON.stringify(value)`, as a Buffer when long `b64` strings or natively written number arrays
 * (RawJsonArray) were spliced in directly. Only strings made by encodeTensor are spliced (they are pure base64, so
 * they need no escaping); any other string, such as a constant echoed back from a request, is escaped by
 * JSON.stringify as usual.
 */
export function stringifyBig(value: unknown): string | Buffer {
  const lifted: string[] = [];
  const raws: RawJsonArray[] = [];
  const tag = placeholderTag();
  const undo: [Record<string, unknown>, string][] = [];
  walk(value, (o) => {
    const v = o['b64'];
    if (typeof v === 'string' && v.length >= MIN_LIFT && isEncodedB64(o)) {
      undo.push([o, v]);
      o['b64'] = `${tag}${lifted.length}`;
      lifted.push(v);
    }
    const d = o['data'];
    if (d instanceof RawJsonArray) {
      d.placeholder = `${tag}r${raws.length}`;
      raws.push(d);
    }
  }, 6);
  if (lifted.length === 0 && raws.length === 0) return JSON.stringify(value);
  let skeleton: string;
  try {
    skeleton = JSON.stringify(value);
  } finally {
    for (const [o, v] of undo) o['b64'] = v;
    for (const r of raws) r.placeholder = undefined;
  }
  // Cut the skeleton at the placeholders, size the reply once, and write every piece straight into it.
  const marker = JSON.stringify(tag).slice(1, -1);
  const pieces: ({ text: string; latin1: boolean } | Buffer)[] = [];
  let from = 0;
  for (let at = skeleton.indexOf(marker); at >= 0; at = skeleton.indexOf(marker, from)) {
    const end = skeleton.indexOf('"', at);
    if (skeleton[at + marker.length] === 'r') {
      // A number array: the placeholder's quotes go too.
      pieces.push({ text: skeleton.slice(from, at - 1), latin1: false }, raws[Number(skeleton.slice(at + marker.length + 1, end))]!.text);
      from = end + 1;
    } else {
      // A b64 string: the placeholder's closing quote stays in the output.
      pieces.push({ text: skeleton.slice(from, at), latin1: false }, { text: lifted[Number(skeleton.slice(at + marker.length, end))]!, latin1: true });
      from = end;
    }
  }
  pieces.push({ text: skeleton.slice(from), latin1: false });
  let size = 0;
  for (const p of pieces) size += Buffer.isBuffer(p) ? p.length : p.latin1 ? p.text.length : Buffer.byteLength(p.text, 'utf8');
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) {
      p.copy(out, off);
      off += p.length;
    } else {
      off += out.write(p.text, off, p.latin1 ? 'latin1' : 'utf8');
    }
  }
  return out;
}

/**
 * Visits every plain object, depth first, down to `maxDepth` levels (responses keep tensors within a few levels; a
 * request's tensors sit deeper inside graph constants, so parsing walks everything).
 */
function walk(root: unknown, visit: (o: Record<string, unknown>) => void, maxDepth = Infinity): void {
  const stack: unknown[] = [root];
  const depth: number[] = [0];
  while (stack.length > 0) {
    const v = stack.pop();
    const d = depth.pop()!;
    if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v) || d > maxDepth) continue;
    if (Array.isArray(v)) {
      // Tensor data arrays hold numbers: skip them without looking at every element when the first is a number.
      if (v.length > 0 && typeof v[0] !== 'object') continue;
      for (const x of v) if (typeof x === 'object' && x !== null) { stack.push(x); depth.push(d + 1); }
      continue;
    }
    const o = v as Record<string, unknown>;
    visit(o);
    for (const k in o) {
      const x = o[k];
      if (typeof x === 'object' && x !== null) { stack.push(x); depth.push(d + 1); }
    }
  }
}
