/**
 * The tensor payloads of a parsed request, lifted out of it in the parse worker and put back on the event loop.
 *
 * liftTensors (worker side) replaces every long JSON array in a tensor position (`inputs.x`, `inputs.x.data`,
 * `cotangents.y.data`, ..., OIP `inputs[i].data`) and every long `b64` string of a tensor object with a spec: the
 * elements already decoded into a typed array (whose buffer is transferred, not copied), plus what decodeTensor needs
 * to give exactly the errors the JSON would have given (src/tensor/preparsed.ts). The request that crosses back to the
 * event loop is then a small skeleton. attachTensors (event-loop side) puts PreparsedArray / PreparsedB64 objects
 * where the payloads were.
 *
 * A shorthand or an object without `datatype` takes its datatype from the graph or from the value it belongs to
 * (src/server/tensors.ts), which the route decides; the worker decodes for its best guess and also keeps the exact
 * values, from which decodeTensor decodes any other datatype.
 */
import { GradserveError } from '../errors.js';
import { allocArray, DTYPES, parseDType, type DType, type TypedArray } from '../tensor/dtype.js';
import { PreparsedArray, PreparsedB64, type ArraySpec, type B64Spec } from '../tensor/preparsed.js';
import { numel } from '../tensor/tensor.js';
import { fillFlat, nestedShape } from '../tensor/wire.js';

export type Lifted = { at: (string | number)[]; array: ArraySpec } | { at: (string | number)[]; b64: B64Spec };

/** Shorter arrays and strings stay in the skeleton: copying them is cheaper than the bookkeeping. */
export const MIN_LIFT_ELEMENTS = 1024;
export const MIN_LIFT_B64 = 4096;

/** Top-level fields of v1 requests that map value names to tensors, besides `inputs`. */
const KEYED_FIELDS = ['cotangents', 'tangents', 'vectors'];

type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Obj, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

function dtypeOf(v: unknown): DType | undefined {
  return typeof v === 'string' ? parseDType(v) : undefined;
}

/** The message decodeTensor's check gave, without the path (which the event loop adds back). */
function tensorMessage(e: unknown): string {
  if (e instanceof GradserveError && e.code === 'INVALID_TENSOR' && e.errors?.[0] !== undefined) return e.errors[0].message;
  throw e;
}

interface Lifter {
  lifted: Lifted[];
  transfer: Set<ArrayBuffer>;
  minElements: number;
  minB64: number;
  decode: B64Decoder | undefined;
  alloc: ((bytes: number) => ArrayBuffer | undefined) | undefined;
}

/**
 * Decodes base64 characters of the standard alphabet, without padding, into `dst`: the bytes written, or -1 for
 * anything else (the native kernel `decodeBase64`).
 */
export type B64Decoder = (src: Uint8Array, dst: Uint8Array) => number;

/**
 * How the event loop's parse decodes B64View strings: the native decoder, and where the decoded bytes go (a buffer of
 * at least the size asked, e.g. recycled for the request by src/server/recycle.ts; undefined: a fresh one).
 */
export interface InlineB64 {
  decode: B64Decoder;
  alloc?: ((bytes: number) => ArrayBuffer | undefined) | undefined;
}

/**
 * A long `b64` string still as the request-body bytes it was cut from (bigjson.ts parsing on the event loop):
 * liftTensors decodes it natively without building the string. Its bytes are a private field, so walks over the
 * parsed request do not visit them.
 */
export class B64View {
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get bytes(): Uint8Array {
    return this.#bytes;
  }

  get length(): number {
    return this.#bytes.length;
  }

  toString(): string {
    return Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.byteLength).toString('latin1');
  }
}

function liftArray(l: Lifter, holder: Obj | unknown[], key: string | number, arr: unknown[], at: (string | number)[], field: string, dtype: DType, exact: boolean): void {
  let nested: number[] | undefined;
  let nestedError: string | undefined;
  try {
    nested = nestedShape(arr, '', field);
  } catch (e) {
    nestedError = tensorMessage(e);
  }
  if (nested === undefined) {
    if (arr.length < l.minElements) return;
    l.lifted.push({ at, array: { field, nestedError, count: 0, dtype } });
    (holder as Obj)[key] = null;
    return;
  }
  const count = nested.length > 1 ? numel(nested) : arr.length;
  if (count < l.minElements && arr.length < l.minElements) return;

  const levels = nested.length - 1;
  // The flat elements as numbers, when the datatype may still change or the nesting must be flattened.
  let values: Float64Array | undefined;
  let allNumbers = true;
  if (!exact || levels > 0) {
    const vals = new Float64Array(count);
    let k = 0;
    const put = (a: unknown[]): void => {
      for (let i = 0; i < a.length; i++, k++) {
        const v = a[i];
        if (typeof v === 'number') vals[k] = v;
        else allNumbers = false;
      }
    };
    const walk = (a: unknown[], d: number): void => {
      if (d === 0) put(a);
      else for (let i = 0; i < a.length; i++) walk(a[i] as unknown[], d - 1);
    };
    walk(arr, levels);
    values = vals;
  }
  // fillFlat on the very elements decodeTensor would flatten (the numbers in `values` are those elements).
  const src: ArrayLike<unknown> = levels === 0 ? arr : allNumbers ? values! : arr.flat(levels);
  const attempt = (dt: DType): { decoded?: TypedArray; error?: string } => {
    if (dt === 'FP64' && src === values) return { decoded: values };
    const out = allocArray(dt, count);
    try {
      fillFlat(out, dt, src, '', field);
      return { decoded: out };
    } catch (e) {
      return { error: tensorMessage(e) };
    }
  };
  const { decoded, error } = attempt(dtype);
  const spec: ArraySpec = { field, nested, count, dtype, decoded, error };
  if (!exact) {
    // Numbers alone: decodeTensor decodes them for another datatype. Anything else: decode for every one now (an
    // element fillFlat refuses ends a datatype's attempt early).
    if (allNumbers) spec.values = values;
    else spec.outcomes = Object.fromEntries(DTYPES.filter((d) => d !== dtype).map((d) => [d, attempt(d)]));
  }
  for (const d of [decoded, spec.values, ...Object.values(spec.outcomes ?? {}).map((o) => o?.decoded)]) {
    if (d !== undefined) l.transfer.add(d.buffer as ArrayBuffer);
  }
  l.lifted.push({ at, array: spec });
  (holder as Obj)[key] = null;
}

function liftB64(l: Lifter, holder: Obj, s: string | B64View, at: (string | number)[], bool: boolean): void {
  const strLen = s.length;
  const code = (k: number): number | undefined => (typeof s === 'string' ? s.charCodeAt(k) : s.bytes[k]);
  const EQ = 0x3d;
  const unpadded = strLen >= 2 && code(strLen - 1) === EQ && code(strLen - 2) === EQ ? strLen - 2 : strLen >= 1 && code(strLen - 1) === EQ ? strLen - 1 : strLen;
  const decodedLen = Math.floor((unpadded * 3) / 4);
  const spec: B64Spec = { strLen, unpadded, decodedLen, written: 0, boolNormalized: false };
  if (!(unpadded % 4 === 1 || (strLen !== unpadded && strLen % 4 !== 0))) {
    const bytes = (typeof s !== 'string' ? l.alloc?.(decodedLen) : undefined) ?? new ArrayBuffer(decodedLen);
    if (decodedLen > 0) {
      // Natively from the body bytes when they are plain base64; Buffer's decoder (and its leniency) otherwise.
      const w = typeof s !== 'string' && l.decode !== undefined ? l.decode(s.bytes.subarray(0, unpadded), new Uint8Array(bytes)) : -1;
      spec.written = w >= 0 ? w : Buffer.from(bytes).write(s.toString(), 0, decodedLen, 'base64');
    }
    if (bool && spec.written === decodedLen) {
      const o = new Uint8Array(bytes);
      for (let i = 0; i < o.length; i++) if (o[i]! > 1) o[i] = 1;
      spec.boolNormalized = true;
    }
    spec.bytes = bytes;
    l.transfer.add(bytes);
  }
  l.lifted.push({ at, b64: spec });
  holder['b64'] = null;
}

/** One value of a tensor position: a bare array, or a tensor object with `data` or `b64`. */
function liftTensor(l: Lifter, holder: Obj | unknown[], key: string | number, w: unknown, at: (string | number)[], guess: DType): void {
  if (Array.isArray(w)) {
    liftArray(l, holder, key, w, at, '', guess, false);
    return;
  }
  if (!isPlainObject(w)) return;
  // An object's own datatype wins over any declaration; an invalid one fails before its data is looked at.
  const exact = w['datatype'] !== undefined;
  const dtype = (exact ? dtypeOf(w['datatype']) : undefined) ?? guess;
  const data = own(w, 'data');
  if (Array.isArray(data)) liftArray(l, w, 'data', data, [...at, 'data'], 'data', dtype, exact);
  const b64 = own(w, 'b64');
  if ((typeof b64 === 'string' || b64 instanceof B64View) && b64.length >= l.minB64) liftB64(l, w, b64, [...at, 'b64'], exact && dtype === 'BOOL');
}

/**
 * Lifts the tensor payloads out of a parsed request (in place: their places become null). Returns them with the
 * buffers to transfer. `inline` decodes B64View strings natively (the event loop's parse, bigjson.ts).
 */
export function liftTensors(root: unknown, minElements = MIN_LIFT_ELEMENTS, minB64 = MIN_LIFT_B64, inline?: InlineB64): { lifted: Lifted[]; transfer: ArrayBuffer[] } {
  const l: Lifter = { lifted: [], transfer: new Set(), minElements, minB64, decode: inline?.decode, alloc: inline?.alloc };
  if (!isPlainObject(root)) return { lifted: [], transfer: [] };
  const inputs = own(root, 'inputs');
  if (Array.isArray(inputs)) {
    // Open Inference Protocol: [{name, shape, datatype, data}], the datatype required.
    inputs.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      const data = own(item, 'data');
      if (Array.isArray(data)) {
        const exact = item['datatype'] !== undefined;
        liftArray(l, item, 'data', data, ['inputs', i, 'data'], 'data', dtypeOf(item['datatype']) ?? 'FP32', exact);
      }
    });
    return { lifted: l.lifted, transfer: [...l.transfer] };
  }
  const graph = own(root, 'graph');
  const specs = isPlainObject(graph) ? own(graph, 'inputs') : undefined;
  const declared = (name: string): DType | undefined => {
    const spec = isPlainObject(specs) ? own(specs, name) : undefined;
    return isPlainObject(spec) ? dtypeOf(spec['datatype']) : undefined;
  };
  // The datatype each input ends up with, as src/server/tensors.ts decides it: its own, else the declared, else FP32.
  const inputDType = new Map<string, DType>();
  if (isPlainObject(inputs)) {
    for (const name of Object.keys(inputs)) {
      const w = inputs[name];
      const d = (isPlainObject(w) ? dtypeOf(w['datatype']) : undefined) ?? declared(name) ?? 'FP32';
      inputDType.set(name, d);
      liftTensor(l, inputs, name, w, ['inputs', name], declared(name) ?? 'FP32');
    }
  }
  // Cotangents and the like take the datatype of the value they belong to: an input's, a declared one, else the
  // graph's (inferred on the event loop); the first input's datatype is the guess for the last.
  const first = inputDType.values().next().value ?? 'FP32';
  for (const field of KEYED_FIELDS) {
    const m = own(root, field);
    if (!isPlainObject(m)) continue;
    for (const name of Object.keys(m)) liftTensor(l, m, name, m[name], [field, name], inputDType.get(name) ?? declared(name) ?? first);
  }
  return { lifted: l.lifted, transfer: [...l.transfer] };
}

/** Puts the lifted payloads back into the skeleton, as the objects decodeTensor finishes. */
export function attachTensors(root: unknown, lifted: readonly Lifted[]): void {
  for (const item of lifted) {
    let holder = root as Record<string | number, unknown>;
    for (let i = 0; i < item.at.length - 1; i++) holder = holder[item.at[i]!] as Record<string | number, unknown>;
    const key = item.at[item.at.length - 1]!;
    if (holder === null || typeof holder !== 'object' || holder[key] !== null) throw new Error(`no lifted payload at ${item.at.join('.')}`);
    holder[key] = 'array' in item ? new PreparsedArray(item.array) : new PreparsedB64(item.b64);
  }
}

/**
 * Any other long string or long array of numbers in the request (in practice: graph constants), lifted as bytes so
 * that it crosses back by transfer: a structured clone would rebuild it on the event loop in one go (~100 ms for a
 * 90 MB string, ~2 s for 5 M numbers). restoreLarge rebuilds them in slices, between other work.
 */
export type Large =
  | { at: (string | number)[]; text: { bytes: Uint8Array; encoding: 'latin1' | 'utf16le' } }
  | { at: (string | number)[]; numbers: { nested: number[]; values: Float64Array } };

export const MIN_LARGE_STRING = 1 << 20;
export const MIN_LARGE_ARRAY = 1 << 16;

/** Lifts long strings and long (nested, non-ragged) arrays of numbers anywhere under `root` (not `root` itself). */
export function liftLarge(root: unknown, minString = MIN_LARGE_STRING, minArray = MIN_LARGE_ARRAY): { large: Large[]; transfer: ArrayBuffer[] } {
  const large: Large[] = [];
  const transfer: ArrayBuffer[] = [];
  const stack: { v: unknown; at: (string | number)[] }[] = [{ v: root, at: [] }];
  const visit = (holder: Obj | unknown[], key: string | number, v: unknown, at: (string | number)[]): void => {
    if (typeof v === 'string') {
      if (v.length < minString) return;
      // Latin-1 when every character fits a byte, else UTF-16: both give back exactly this string (UTF-8 would not,
      // for a lone surrogate).
      const encoding = /[^\u0000-\u00ff]/.test(v) ? 'utf16le' : 'latin1';
      // A buffer of its own, never a slice of Node's shared pool (short strings): the pool cannot be transferred,
      // which Node 21 and later report as a DataCloneError instead of copying.
      const b = Buffer.allocUnsafeSlow(Buffer.byteLength(v, encoding));
      b.write(v, encoding);
      const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      large.push({ at, text: { bytes, encoding } });
      transfer.push(b.buffer as ArrayBuffer);
      (holder as Obj)[key] = null;
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    if (Array.isArray(v) && v.length > 0) {
      let nested: number[] | undefined;
      try {
        nested = nestedShape(v, '', '');
      } catch {
        // ragged or over-deep: its parts are looked at one by one
      }
      const count = nested === undefined ? 0 : numel(nested);
      if (nested !== undefined && count >= minArray) {
        const values = new Float64Array(count);
        let k = 0;
        let numbers = true;
        const walk = (a: unknown[], d: number): void => {
          for (let i = 0; i < a.length && numbers; i++) {
            const x = a[i];
            if (d > 0) walk(x as unknown[], d - 1);
            else if (typeof x === 'number') values[k++] = x;
            else numbers = false;
          }
        };
        walk(v, nested.length - 1);
        if (numbers) {
          large.push({ at, numbers: { nested, values } });
          transfer.push(values.buffer as ArrayBuffer);
          (holder as Obj)[key] = null;
          return;
        }
      }
    }
    stack.push({ v, at });
  };
  while (stack.length > 0) {
    const { v, at } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (v instanceof PreparsedArray || v instanceof PreparsedB64) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (typeof v[i] === 'object' || typeof v[i] === 'string') visit(v, i, v[i], [...at, i]);
    } else {
      for (const k of Object.keys(v)) {
        const x = (v as Obj)[k];
        if (typeof x === 'object' || typeof x === 'string') visit(v as Obj, k, x, [...at, k]);
      }
    }
  }
  return { large, transfer };
}

const SLICE = 1 << 20;
const NUMBERS_SLICE = 1 << 17;
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Puts lifted strings and arrays back, rebuilt a slice at a time with the event loop free in between. */
export async function restoreLarge(root: unknown, large: readonly Large[]): Promise<void> {
  for (const item of large) {
    let holder = root as Record<string | number, unknown>;
    for (let i = 0; i < item.at.length - 1; i++) holder = holder[item.at[i]!] as Record<string | number, unknown>;
    const key = item.at[item.at.length - 1]!;
    if (holder === null || typeof holder !== 'object' || holder[key] !== null) throw new Error(`no lifted value at ${item.at.join('.')}`);
    if ('text' in item) {
      const { bytes, encoding } = item.text;
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // Slices end on a character (UTF-16: an even byte; a surrogate pair split in two joins up again).
      let s = '';
      for (let off = 0; off < buf.length; off += SLICE) {
        s += buf.toString(encoding, off, Math.min(buf.length, off + SLICE));
        await nextTurn();
      }
      holder[key] = s;
      continue;
    }
    const { nested, values } = item.numbers;
    const last = nested.length - 1;
    const top: unknown[] = new Array<unknown>(nested[0]!);
    const stack: { a: unknown[]; d: number; i: number }[] = [{ a: top, d: 0, i: 0 }];
    let k = 0;
    let budget = NUMBERS_SLICE;
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      if (f.i === f.a.length) {
        stack.pop();
        continue;
      }
      if (f.d === last) {
        const end = Math.min(f.a.length, f.i + budget);
        budget -= end - f.i;
        while (f.i < end) f.a[f.i++] = values[k++];
      } else {
        const child = new Array<unknown>(nested[f.d + 1]!);
        f.a[f.i++] = child;
        stack.push({ a: child, d: f.d + 1, i: 0 });
        budget--;
      }
      if (budget <= 0) {
        budget = NUMBERS_SLICE;
        await nextTurn();
      }
    }
    holder[key] = top;
  }
}
