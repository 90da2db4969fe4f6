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
import { attachTensors, B64View, liftTensors, type InlineB64 } from './json_tensors.js';

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
 * The `[start, end)` byte ranges of the long, escape-free string values of `"b64"` keys in a JSON body, in order
 * (what parseBigJsonText cuts out).
 */
export function b64Ranges(buf: Buffer): [number, number][] {
  const out: [number, number][] = [];
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
      out.push([s, e]);
      at = buf.indexOf(KEY, e + 1);
    } else {
      at = buf.indexOf(KEY, at + 1);
    }
  }
  return out;
}

/**
 * parseBigJson, also returning the JSON text that was really parsed (the body without the cut-out strings): every
 * key of the document is in it, so key checks can scan it instead of ~90 MB of base64.
 */
export function parseBigJsonText(buf: Buffer, inline?: InlineB64): { value: unknown; text: string } {
  const lifted: (string | B64View)[] = [];
  const pieces: string[] = [];
  const tag = placeholderTag();
  let copied = 0;
  for (const [s, e] of b64Ranges(buf)) {
    pieces.push(buf.toString('utf8', copied, s - 1), JSON.stringify(`${tag}${lifted.length}`));
    // With a decoder, the strings stay bytes of the body until liftTensors decodes those of tensors natively.
    lifted.push(inline !== undefined ? new B64View(buf.subarray(s, e)) : buf.toString('latin1', s, e));
    copied = e + 1;
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
  if (inline !== undefined) {
    // Tensors' base64 decoded from the bytes (as the parse worker would, into PreparsedB64); any other string (a
    // graph constant's) becomes the string it is.
    const { lifted: tensors } = liftTensors(root, Infinity, undefined, inline);
    attachTensors(root, tensors);
    walk(root, (o) => {
      const v = o['b64'];
      if (v instanceof B64View) o['b64'] = v.toString();
    });
  }
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
 * The `b64` of a response tensor that stringifyBig writes straight from the tensor's bytes into the reply (native
 * base64, no JavaScript string: a 1 MB string per answer is what drove the collector under a b64 load). Anything else
 * that serializes it gets the base64 string.
 */
export class RawB64 {
  /** Set by stringifyBig while it serializes: the placeholder this string stands for. */
  placeholder: string | undefined;

  /** `encode` writes the base64 of `src` into `dst` and returns the characters written (the native kernel). */
  constructor(readonly bytes: ArrayBufferView, readonly encode: (src: ArrayBufferView, dst: Uint8Array) => number) {}

  /** Characters of the base64 text. */
  get length(): number {
    return Math.ceil(this.bytes.byteLength / 3) * 4;
  }

  toString(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString('base64');
  }

  toJSON(): string {
    return this.placeholder ?? this.toString();
  }
}

/**
 * Same bytes as `JSON.stringify(value)`, as a Buffer when long `b64` strings, RawB64 values or natively written
 * number arrays (RawJsonArray) were spliced in directly. Only strings made by encodeTensor are spliced (they are pure
 * base64, so they need no escaping); any other string, such as a constant echoed back from a request, is escaped by
 * JSON.stringify as usual.
 */
export function stringifyBig(value: unknown): string | Buffer {
  const lifted: (string | RawB64)[] = [];
  const raws: RawJsonArray[] = [];
  const tag = placeholderTag();
  const undo: [Record<string, unknown>, string][] = [];
  const rawB64s: RawB64[] = [];
  walk(value, (o) => {
    const v = o['b64'];
    if (v instanceof RawB64) {
      v.placeholder = `${tag}${lifted.length}`;
      lifted.push(v);
      rawB64s.push(v);
    } else if (typeof v === 'string' && v.length >= MIN_LIFT && isEncodedB64(o)) {
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
    for (const r of rawB64s) r.placeholder = undefined;
  }
  // Cut the skeleton at the placeholders, size the reply once, and write every piece straight into it.
  const marker = JSON.stringify(tag).slice(1, -1);
  const pieces: ({ text: string; latin1: boolean } | Buffer | RawB64)[] = [];
  let from = 0;
  for (let at = skeleton.indexOf(marker); at >= 0; at = skeleton.indexOf(marker, from)) {
    const end = skeleton.indexOf('"', at);
    if (skeleton[at + marker.length] === 'r') {
      // A number array: the placeholder's quotes go too.
      pieces.push({ text: skeleton.slice(from, at - 1), latin1: false }, raws[Number(skeleton.slice(at + marker.length + 1, end))]!.text);
      from = end + 1;
    } else {
      // A b64 string: the placeholder's closing quote stays in the output.
      const b = lifted[Number(skeleton.slice(at + marker.length, end))]!;
      pieces.push({ text: skeleton.slice(from, at), latin1: false }, typeof b === 'string' ? { text: b, latin1: true } : b);
      from = end;
    }
  }
  pieces.push({ text: skeleton.slice(from), latin1: false });
  let size = 0;
  for (const p of pieces) size += Buffer.isBuffer(p) || p instanceof RawB64 ? p.length : p.latin1 ? p.text.length : Buffer.byteLength(p.text, 'utf8');
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) {
      p.copy(out, off);
      off += p.length;
    } else if (p instanceof RawB64) {
      off += p.encode(p.bytes, out.subarray(off, off + p.length));
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
