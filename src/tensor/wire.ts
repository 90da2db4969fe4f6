/**
 * Tensors on the wire (API.md "Tensors"): KServe-v2-style objects `{shape, datatype, data | b64}`, plus the bare
 * shorthands allowed inside `inputs` (a number is a scalar, a nested array carries its shape in its nesting).
 * Every failure is INVALID_TENSOR with a path into the request, so callers can point at the offending field.
 */
import { GradserveError, fmtShape } from '../errors.js';
import { BYTES_PER_ELEMENT, allocArray, parseDType, type DType, type TypedArray } from './dtype.js';
import { PreparsedArray, PreparsedB64 } from './preparsed.js';
import { numel, type Tensor } from './tensor.js';

export type TensorEncoding = 'json' | 'b64';

export interface DeclaredTensor {
  dtype?: DType;
  shape?: (number | null)[];
}

/** JSON form of a tensor in responses. `data` holds numbers, booleans or the non-finite strings. */
export interface WireTensorOut {
  shape: number[];
  datatype: DType;
  data?: (number | boolean | string)[];
  b64?: string;
}

const FP32_MAX = 3.4028234663852886e38;
// Values exactly representable in FP32 round to at most FP32_MAX; anything rounding past it overflows to Infinity.
const FP32_OVERFLOW = 3.4028235677973366e38;
const MAX_RANK = 64;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function invalid(path: string, field: string, message: string): never {
  const where = field === '' ? path : `${path}.${field}`;
  throw new GradserveError('INVALID_TENSOR', `${path}: ${message}`, { errors: [{ path: where, message }] });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Decodes one wire tensor. `path` is where it sits in the request (`inputs.x`, `graph.constants.two`); `declared`
 * supplies the datatype for shorthands and objects without `datatype`. Shape agreement with the declaration is the
 * engine's job (SHAPE_MISMATCH), not this function's.
 */
export function decodeTensor(wire: unknown, path: string, declared?: DeclaredTensor): Tensor {
  if (typeof wire === 'object' && wire !== null) {
    const bound = DECODED.get(wire);
    if (bound !== undefined) return bound;
  }
  const fallback: DType = declared?.dtype ?? 'FP32';
  if (typeof wire === 'number' || typeof wire === 'boolean' || typeof wire === 'string') {
    const data = allocArray(fallback, 1);
    fillFlat(data, fallback, [wire], path, '');
    return { dtype: fallback, shape: [], data };
  }
  if (Array.isArray(wire)) {
    if (wire instanceof PreparsedArray) {
      const shape = preparsedShape(wire, path, '');
      return fromPreparsed(wire, shape, fallback, path, '');
    }
    const shape = nestedShape(wire, path, '');
    return fromJsonData(wire, shape, fallback, path, '', shape);
  }
  if (!isPlainObject(wire)) invalid(path, '', `expected a tensor object {shape, datatype, data | b64}, a number or an array, got ${describe(wire)}`);

  let dtype = fallback;
  if (wire.datatype !== undefined) {
    if (typeof wire.datatype !== 'string') invalid(path, 'datatype', `datatype must be a string, got ${describe(wire.datatype)}`);
    const d = parseDType(wire.datatype);
    if (d === undefined) invalid(path, 'datatype', `unknown datatype "${wire.datatype}" (expected FP32, FP64, INT32, INT64 or BOOL)`);
    dtype = d;
  }

  const hasData = wire.data !== undefined;
  const hasB64 = wire.b64 !== undefined;
  if (hasData && hasB64) invalid(path, 'data', 'give either data or b64, not both');
  if (!hasData && !hasB64) invalid(path, 'data', 'tensor has neither data nor b64');

  let shape: number[] | undefined;
  if (wire.shape !== undefined) shape = checkShape(wire.shape, path);

  if (hasB64) {
    if (shape === undefined) invalid(path, 'shape', 'a b64 tensor needs a shape');
    if (wire.b64 instanceof PreparsedB64) return fromPreparsedB64(wire.b64, shape, dtype, path);
    if (typeof wire.b64 !== 'string') invalid(path, 'b64', `b64 must be a string, got ${describe(wire.b64)}`);
    return fromB64(wire.b64, shape, dtype, path);
  }

  const data = wire.data;
  if (!Array.isArray(data)) {
    // A lone scalar in `data` is common from hand-written clients; it is a scalar unless the shape says otherwise.
    if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'string') {
      return fromJsonData([data], shape ?? [], dtype, path, 'data');
    }
    invalid(path, 'data', `data must be an array, got ${describe(data)}`);
  }
  const nested = data instanceof PreparsedArray ? preparsedShape(data, path, 'data') : nestedShape(data, path, 'data');
  if (shape === undefined) shape = nested;
  // Flat data fits any shape (a scalar's `[5]` too); nesting may add structure but never more levels than the rank.
  else if (nested.length > 1 && nested.length > shape.length) {
    invalid(path, 'data', `data is nested ${nested.length} levels deep but shape ${fmtShape(shape)} has rank ${shape.length}`);
  }
  if (data instanceof PreparsedArray) return fromPreparsed(data, shape, dtype, path, 'data');
  return fromJsonData(data, shape, dtype, path, 'data', nested);
}

function checkShape(s: unknown, path: string): number[] {
  if (!Array.isArray(s)) invalid(path, 'shape', `shape must be an array of non-negative integers, got ${describe(s)}`);
  if (s.length > MAX_RANK) invalid(path, 'shape', `rank ${s.length} is over the limit of ${MAX_RANK}`);
  for (let i = 0; i < s.length; i++) {
    const d = s[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      invalid(path, 'shape', `shape[${i}] must be a non-negative integer, got ${describe(d)}`);
    }
    if (d > Number.MAX_SAFE_INTEGER) invalid(path, `shape[${i}]`, `shape[${i}] is ${d}, over the largest dimension 2^53 - 1`);
  }
  return s as number[];
}

/** Shape read from the nesting; ragged nesting is an error. A flat array gives `[length]`. */
export function nestedShape(a: unknown[], path: string, field: string): number[] {
  const shape: number[] = [a.length];
  let level: unknown = a[0];
  while (Array.isArray(level)) {
    shape.push(level.length);
    // Deeper nesting is never a real tensor, and the raggedness check below recurses once per level.
    if (shape.length > MAX_RANK) invalid(path, field, `nesting is deeper than ${MAX_RANK} dimensions`);
    level = level[0];
  }
  if (shape.length > 1) checkRagged(a, shape, 0, path, field, '');
  return shape;
}

function checkRagged(a: unknown[], shape: number[], depth: number, path: string, field: string, at: string): void {
  const want = shape[depth] as number;
  if (a.length !== want) {
    invalid(path, field, `ragged nesting: ${field || 'value'}${at} has ${a.length} entries where ${want} were expected`);
  }
  const last = depth === shape.length - 1;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (last) {
      if (Array.isArray(v)) invalid(path, field, `ragged nesting: ${field || 'value'}${at}[${i}] is nested deeper than its siblings`);
    } else {
      if (!Array.isArray(v)) invalid(path, field, `ragged nesting: ${field || 'value'}${at}[${i}] is not an array like its siblings`);
      checkRagged(v, shape, depth + 1, path, field, `${at}[${i}]`);
    }
  }
}

function fromJsonData(data: unknown[], shape: number[], dtype: DType, path: string, field: string, nested?: number[]): Tensor {
  const n = numel(shape);
  const flat = nested !== undefined && nested.length > 1 ? (data.flat(nested.length - 1) as unknown[]) : data;
  if (flat.length !== n) {
    invalid(path, field, `data has ${flat.length} elements but shape ${fmtShape(shape)} needs ${n}`);
  }
  const out = allocArray(dtype, n);
  fillFlat(out, dtype, flat, path, field);
  return { dtype, shape: [...shape], data: out };
}

/** The hot loop for JSON data: numbers go straight in; anything else takes the slow path per element. */
export function fillFlat(out: TypedArray, dtype: DType, src: ArrayLike<unknown>, path: string, field: string): void {
  const n = src.length;
  switch (dtype) {
    case 'FP64': {
      const o = out as Float64Array;
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (typeof v === 'number') {
          // A JSON number past the FP64 range parses as ±Infinity: not what it wrote (FP32's range check does the same).
          if (v === Infinity || v === -Infinity) invalid(path, field, `element ${i}: a number beyond the FP64 range (max ${Number.MAX_VALUE}) is not representable; write "Infinity" or "-Infinity" for infinite values`);
          o[i] = v;
        } else {
          o[i] = floatSlow(v, i, dtype, path, field);
        }
      }
      return;
    }
    case 'FP32': {
      const o = out as Float32Array;
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (typeof v === 'number') {
          if (v > FP32_MAX || v < -FP32_MAX) fp32Range(v, i, path, field);
          o[i] = v;
        } else {
          o[i] = floatSlow(v, i, dtype, path, field);
        }
      }
      return;
    }
    case 'INT32': {
      const o = out as Int32Array;
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (typeof v !== 'number' || (v | 0) !== v) intSlow(v, i, dtype, path, field);
        o[i] = v as number;
      }
      return;
    }
    case 'INT64': {
      const o = out as BigInt64Array;
      for (let i = 0; i < n; i++) o[i] = int64Value(src[i], i, path, field);
      return;
    }
    case 'BOOL': {
      const o = out as Uint8Array;
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (v === true || v === 1) o[i] = 1;
        else if (v === false || v === 0) o[i] = 0;
        else invalid(path, field, `element ${i}: ${describe(v)} is not a BOOL (use true or false)`);
      }
      return;
    }
  }
}

function fp32Range(v: number, i: number, path: string, field: string): void {
  if (v >= FP32_OVERFLOW || v <= -FP32_OVERFLOW) {
    invalid(path, field, `element ${i}: ${v} is not representable as FP32 (max ${FP32_MAX}); use FP64 or "Infinity"`);
  }
}

function floatSlow(v: unknown, i: number, dtype: DType, path: string, field: string): number {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  invalid(path, field, `element ${i}: ${describe(v)} is not a ${dtype} number (non-finite values are "NaN", "Infinity", "-Infinity")`);
}

function intSlow(v: unknown, i: number, dtype: DType, path: string, field: string): never {
  if (typeof v === 'number' && Number.isInteger(v)) invalid(path, field, `element ${i}: ${v} is out of range for INT32`);
  invalid(path, field, `element ${i}: ${describe(v)} is not an integer (${dtype})`);
}

function int64Value(v: unknown, i: number, path: string, field: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) invalid(path, field, `element ${i}: ${describe(v)} is not an integer (INT64)`);
    // JSON.parse has already rounded the digits by now: 2^53 + 1 arrives as 2^53. Only safe integers are surely what
    // the client wrote, so anything with |v| > 2^53 - 1 is refused rather than silently changed.
    if (!Number.isSafeInteger(v)) {
      invalid(path, field, `element ${i}: ${v} is outside ±(2^53 - 1), beyond which JSON numbers are not exact; send INT64 values this large as b64 or as decimal strings`);
    }
    return BigInt(v);
  }
  // Decimal strings carry exact 64-bit values for clients that cannot send b64.
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    const b = BigInt(v);
    if (b >= INT64_MIN && b <= INT64_MAX) return b;
    invalid(path, field, `element ${i}: ${v} is out of range for INT64`);
  }
  invalid(path, field, `element ${i}: ${describe(v)} is not an integer (INT64)`);
}

function fromB64(s: string, shape: number[], dtype: DType, path: string): Tensor {
  const n = numel(shape);
  const bytes = n * BYTES_PER_ELEMENT[dtype];
  const unpadded = s.endsWith('==') ? s.length - 2 : s.endsWith('=') ? s.length - 1 : s.length;
  const decodedLen = Math.floor((unpadded * 3) / 4);
  if (unpadded % 4 === 1 || (s.length !== unpadded && s.length % 4 !== 0)) invalid(path, 'b64', 'b64 is not valid base64 (bad length or padding)');
  if (decodedLen !== bytes) {
    invalid(path, 'b64', `b64 decodes to ${decodedLen} bytes but shape ${fmtShape(shape)} of ${dtype} needs ${bytes} (${n} × ${BYTES_PER_ELEMENT[dtype]})`);
  }
  // Decode straight into a fresh, aligned typed array: no intermediate Buffer, no copy. Buffer's decoder skips
  // characters outside the alphabet and stops at a stray '=', so with the length already checked, a short write is
  // exactly the signature of corrupt base64 (a regex over a 90 MB string would cost ~0.5 s).
  const out = allocArray(dtype, n);
  if (bytes > 0) {
    const written = Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(s, 0, bytes, 'base64');
    if (written !== bytes) invalid(path, 'b64', 'b64 is not valid base64 (character outside the alphabet or misplaced padding)');
  }
  if (dtype === 'BOOL') {
    const o = out as Uint8Array;
    for (let i = 0; i < n; i++) if (o[i]! > 1) o[i] = 1;
  }
  return { dtype, shape: [...shape], data: out };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}

// Objects whose `b64` was produced here: pure base64, safe to write into JSON without escaping (server/bigjson.ts).
const ENCODED_B64 = new WeakSet<object>();

export function isEncodedB64(o: object): boolean {
  return ENCODED_B64.has(o);
}

/**
 * How a `json` response writes INT64 values beyond ±(2^53 - 1), which a JSON number cannot carry exactly: `b64`
 * writes that whole tensor as b64 (the v1 API: API.md says "use b64 beyond"), `string` writes just those elements as
 * decimal strings (the Open Inference Protocol has no b64 field; the strings are what requests accept too).
 */
export type UnsafeInt64 = 'b64' | 'string';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function hasUnsafeInt64(t: Tensor): boolean {
  if (t.dtype !== 'INT64') return false;
  const d = t.data as BigInt64Array;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v > MAX_SAFE || v < -MAX_SAFE) return true;
  }
  return false;
}

/** Encodes for a response: upper-case datatype, flat data, non-finite floats as strings (never null). */
export function encodeTensor(t: Tensor, encoding: TensorEncoding, unsafeInt64: UnsafeInt64 = 'b64'): WireTensorOut {
  const shape = [...t.shape];
  if (encoding === 'json' && unsafeInt64 === 'b64' && hasUnsafeInt64(t)) encoding = 'b64';
  if (encoding === 'b64') {
    const d = t.data;
    const out = { shape, datatype: t.dtype, b64: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64') };
    ENCODED_B64.add(out);
    return out;
  }
  return { shape, datatype: t.dtype, data: jsonData(t) };
}

function jsonData(t: Tensor): (number | boolean | string)[] {
  const d = t.data;
  const n = d.length;
  const out = new Array<number | boolean | string>(n);
  switch (t.dtype) {
    case 'FP32':
    case 'FP64': {
      // push keeps the array packed (all doubles unless a non-finite string appears): JSON.stringify is faster on it.
      const f = d as Float32Array | Float64Array;
      const packed: (number | string)[] = [];
      for (let i = 0; i < n; i++) {
        const v = f[i]!;
        // v - v is 0 for finite values and NaN for NaN/±Infinity: one test on the hot path.
        packed.push(v - v === 0 ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
      }
      return packed;
    }
    case 'INT32': {
      const f = d as Int32Array;
      for (let i = 0; i < n; i++) out[i] = f[i]!;
      return out;
    }
    case 'INT64': {
      const f = d as BigInt64Array;
      for (let i = 0; i < n; i++) {
        const v = f[i]!;
        out[i] = v > MAX_SAFE || v < -MAX_SAFE ? v.toString() : Number(v);
      }
      return out;
    }
    case 'BOOL': {
      const f = d as Uint8Array;
      for (let i = 0; i < n; i++) out[i] = f[i] !== 0;
      return out;
    }
  }
}

// Request tensor objects already decoded elsewhere (binary framing): decodeTensor hands back their tensor.
const DECODED = new WeakMap<object, Tensor>();

/** Marks a request's wire tensor object as decoded: decodeTensor(wire) then returns `t` as it is. */
export function bindDecoded(wire: object, t: Tensor): void {
  DECODED.set(wire, t);
}

export interface FromBytesOptions {
  /**
   * View `bytes` in place when their offset suits the element type (no copy; the tensor then keeps the whole
   * underlying buffer alive and BOOL bytes are normalised to 0/1 in place). Otherwise, and by default, the bytes are
   * copied into a fresh typed array, which is aligned and pins nothing.
   */
  view?: boolean;
  /** Field of `path` that holds the byte count, for errors (default `parameters.binary_data_size`, the OIP spelling). */
  sizeField?: string;
}

/** Checks a binary tensor's datatype and shape; returns the datatype and the byte count they need. */
export function binaryTensorSpec(shape: unknown, datatype: unknown, path: string): { dtype: DType; shape: number[]; bytes: number } {
  const dtype = typeof datatype === 'string' ? parseDType(datatype) : undefined;
  if (dtype === undefined) invalid(path, 'datatype', `unknown datatype ${describe(datatype)} (expected FP32, FP64, INT32, INT64 or BOOL)`);
  const s = checkShape(shape, path);
  return { dtype, shape: s, bytes: numel(s) * BYTES_PER_ELEMENT[dtype] };
}

/** A tensor from raw little-endian row-major bytes (binary framing, the Triton binary tensor data extension). */
export function tensorFromBytes(bytes: Uint8Array, shape: unknown, datatype: unknown, path: string, opts: FromBytesOptions = {}): Tensor {
  const spec = binaryTensorSpec(shape, datatype, path);
  const { dtype } = spec;
  const n = numel(spec.shape);
  if (bytes.byteLength !== spec.bytes) {
    invalid(path, opts.sizeField ?? 'parameters.binary_data_size', `binary data has ${bytes.byteLength} bytes but shape ${fmtShape(spec.shape)} of ${dtype} needs ${spec.bytes}`);
  }
  const width = BYTES_PER_ELEMENT[dtype];
  let out: TypedArray;
  if (opts.view === true && bytes.byteOffset % width === 0) {
    out = viewArray(dtype, bytes.buffer, bytes.byteOffset, n);
  } else {
    out = allocArray(dtype, n);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  }
  if (dtype === 'BOOL') {
    const o = out as Uint8Array;
    for (let i = 0; i < n; i++) if (o[i]! > 1) o[i] = 1;
  }
  return { dtype, shape: [...spec.shape], data: out };
}

function viewArray(dtype: DType, buffer: ArrayBufferLike, offset: number, n: number): TypedArray {
  switch (dtype) {
    case 'FP32': return new Float32Array(buffer, offset, n);
    case 'FP64': return new Float64Array(buffer, offset, n);
    case 'INT32': return new Int32Array(buffer, offset, n);
    case 'INT64': return new BigInt64Array(buffer, offset, n);
    case 'BOOL': return new Uint8Array(buffer, offset, n);
  }
}

/** The raw little-endian bytes of a tensor (a view, no copy). */
export function tensorBytes(t: Tensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

// Payloads decoded off the event loop (src/tensor/preparsed.ts): the same checks, order and errors as above.

function preparsedShape(p: PreparsedArray, path: string, field: string): number[] {
  if (p.spec.nestedError !== undefined) invalid(path, field, p.spec.nestedError);
  return p.spec.nested!;
}

/** fromJsonData for a PreparsedArray. */
function fromPreparsed(p: PreparsedArray, shape: number[], dtype: DType, path: string, field: string): Tensor {
  const s = p.spec;
  const n = numel(shape);
  if (s.count !== n) invalid(path, field, `data has ${s.count} elements but shape ${fmtShape(shape)} needs ${n}`);
  let out: TypedArray;
  if (dtype === s.dtype) {
    if (s.error !== undefined) invalid(path, field, s.error);
    out = p.taken ? s.decoded!.slice() : s.decoded!;
    p.taken = true;
    // The exact values were kept in case the datatype was another: it is not.
    s.values = undefined;
    s.outcomes = undefined;
  } else {
    // The datatype was guessed wrong: what was kept for this case.
    const o = s.outcomes?.[dtype];
    if (o !== undefined) {
      if (o.error !== undefined) invalid(path, field, o.error);
      out = o.decoded!;
    } else {
      if (s.values === undefined) throw new Error(`${path}: data decoded as ${s.dtype} is needed as ${dtype}`);
      out = allocArray(dtype, n);
      fillFlat(out, dtype, s.values, path, field);
    }
    // The datatype is decided now: keep its result, for a second decode, and drop the rest.
    Object.assign(s, { dtype, decoded: out, error: undefined, values: undefined, outcomes: undefined });
    p.taken = true;
  }
  return { dtype, shape: [...shape], data: out };
}

/** fromB64 for a PreparsedB64. */
function fromPreparsedB64(p: PreparsedB64, shape: number[], dtype: DType, path: string): Tensor {
  const s = p.spec;
  const n = numel(shape);
  const bytes = n * BYTES_PER_ELEMENT[dtype];
  if (s.unpadded % 4 === 1 || (s.strLen !== s.unpadded && s.strLen % 4 !== 0)) invalid(path, 'b64', 'b64 is not valid base64 (bad length or padding)');
  if (s.decodedLen !== bytes) {
    invalid(path, 'b64', `b64 decodes to ${s.decodedLen} bytes but shape ${fmtShape(shape)} of ${dtype} needs ${bytes} (${n} × ${BYTES_PER_ELEMENT[dtype]})`);
  }
  if (bytes > 0 && s.written !== bytes) invalid(path, 'b64', 'b64 is not valid base64 (character outside the alphabet or misplaced padding)');
  let buffer = s.bytes ?? new ArrayBuffer(0);
  if (p.taken) buffer = buffer.slice(0);
  p.taken = true;
  const out = viewArray(dtype, buffer, 0, n);
  if (dtype === 'BOOL' && !s.boolNormalized) {
    const o = out as Uint8Array;
    for (let i = 0; i < n; i++) if (o[i]! > 1) o[i] = 1;
  }
  return { dtype, shape: [...shape], data: out };
}
