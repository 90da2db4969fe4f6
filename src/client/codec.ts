/**
 * Tensor encoding between typed arrays and the wire (API.md "Tensors"). Uses only what Node 20 and browsers both
 * provide as globals, so nothing here imports a Node module. The datatype tables come from src/tensor/dtype.ts, which is
 * plain TypeScript with no imports, so client and server read aliases and widths from one place.
 */
import { allocArray, BYTES_PER_ELEMENT, parseDType } from '../tensor/dtype.js';
import { blobOf, type RequestFrame } from './framing.js';
import type { DType, DTypeAlias, Tensor, TensorInput, TypedArray, WireNested, WireScalar, WireTensor } from './types.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1: the server refuses INT64 JSON numbers past it (JSON.parse may have rounded them)

export function normalizeDType(d: string): DType {
  const t = parseDType(d);
  if (t === undefined) throw new TypeError(`unknown datatype "${d}" (expected FP32, FP64, INT32, INT64 or BOOL)`);
  return t;
}

export function dtypeOf(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'FP32';
  if (a instanceof Float64Array) return 'FP64';
  if (a instanceof Int32Array) return 'INT32';
  if (a instanceof BigInt64Array) return 'INT64';
  if (a instanceof Uint8Array) return 'BOOL';
  throw new TypeError('unsupported typed array: use Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array (BOOL)');
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Build a tensor from a typed array (datatype from its type) and a shape (default: 1-D). */
export function tensor<A extends TypedArray>(data: A, shape?: readonly number[]): Tensor<A> {
  const s = shape === undefined ? [data.length] : [...shape];
  if (numel(s) !== data.length) throw new RangeError(`data has ${data.length} elements, shape [${s.join(', ')}] needs ${numel(s)}`);
  return { shape: s, datatype: dtypeOf(data), data };
}

// ---------------------------------------------------------------- base64

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type B64Bytes = Uint8Array & { toBase64?: () => string };
type BufferLike = { from(b: ArrayBuffer, off: number, len: number): { toString(enc: 'base64'): string }; from(s: string, enc: 'base64'): Uint8Array };

/** Buffer when the host has one (Node, some bundlers): much faster than btoa; reached as a global, never imported. */
function hostBuffer(): BufferLike | undefined {
  return (globalThis as { Buffer?: BufferLike }).Buffer;
}

export function bytesToBase64(bytes: Uint8Array, opts: { portable?: boolean } = {}): string {
  if (!opts.portable) {
    const native = (bytes as B64Bytes).toBase64;
    if (typeof native === 'function') return native.call(bytes);
    const B = hostBuffer();
    if (B) return B.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  }
  const parts: string[] = [];
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]));
  }
  return btoa(parts.join(''));
}

export function base64ToBytes(s: string, opts: { portable?: boolean } = {}): Uint8Array {
  if (!opts.portable) {
    const fromB64 = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64;
    if (typeof fromB64 === 'function') return fromB64(s);
    const B = hostBuffer();
    if (B) {
      const b = B.from(s, 'base64');
      // A pooled Buffer may not be aligned for a Float64Array view: copy into a buffer of our own.
      return new Uint8Array(b);
    }
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The wire is little-endian; swap in place on the rare big-endian host. */
function toLittleEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN || width === 1) return bytes;
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i += width) out.subarray(i, i + width).reverse();
  return out;
}

function typedFromBytes(dtype: DType, bytes: Uint8Array): TypedArray {
  const w = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % w !== 0) throw new RangeError(`b64 payload of ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  const le = toLittleEndian(bytes, w);
  const aligned = le.byteOffset % w === 0 ? le : new Uint8Array(le);
  const n = aligned.byteLength / w;
  switch (dtype) {
    case 'FP32': return new Float32Array(aligned.buffer, aligned.byteOffset, n);
    case 'FP64': return new Float64Array(aligned.buffer, aligned.byteOffset, n);
    case 'INT32': return new Int32Array(aligned.buffer, aligned.byteOffset, n);
    case 'INT64': return new BigInt64Array(aligned.buffer, aligned.byteOffset, n);
    case 'BOOL': return new Uint8Array(aligned.buffer, aligned.byteOffset, n);
  }
}

/** Raw little-endian row-major bytes (a b64 payload, or the OIP binary section) -> tensor. */
export function tensorFromBytes(shape: readonly number[], datatype: string, bytes: Uint8Array): Tensor {
  const dtype = normalizeDType(datatype);
  const data = typedFromBytes(dtype, bytes);
  if (data.length !== numel(shape)) throw new RangeError(`${bytes.byteLength} bytes of ${dtype} give ${data.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`);
  return { shape: [...shape], datatype: dtype, data };
}

// ---------------------------------------------------------------- JSON scalars

export function toWireScalar(v: number): number | 'NaN' | 'Infinity' | '-Infinity' {
  if (Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? 'Infinity' : '-Infinity';
}

export function fromWireNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new TypeError(`not a number on the wire: ${JSON.stringify(v)}`);
}

/** Replace non-finite numbers by their wire strings inside a shorthand number or nested array. */
function shorthandToWire(v: unknown): WireNested {
  if (typeof v === 'number') return toWireScalar(v);
  if (Array.isArray(v)) return v.map(shorthandToWire);
  return v as WireScalar;
}

// ---------------------------------------------------------------- encode

export interface EncodeOptions {
  /** Tensors with more elements than this travel as b64; `Infinity` forces JSON, `0` forces b64 (for non-scalars). */
  b64Threshold: number;
  /** A framed request: typed-array tensors go to its binary section instead (whatever their size). */
  frame?: RequestFrame;
}

function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

export function encodeTyped(shape: readonly number[], dtype: DType, data: TypedArray, opts: EncodeOptions): WireTensor {
  if (dtypeOf(data) !== dtype) throw new TypeError(`datatype ${dtype} does not match a ${data.constructor.name}`);
  if (numel(shape) !== data.length) throw new RangeError(`data has ${data.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`);
  if (opts.frame !== undefined) return opts.frame.add(shape, dtype, data);
  let useB64 = data.length > opts.b64Threshold;
  // INT64 beyond ±(2^53 - 1) cannot be a JSON number (API.md): only b64 carries it exactly.
  if (!useB64 && data instanceof BigInt64Array) useB64 = data.some((x) => x > BigInt(MAX_SAFE) || x < -BigInt(MAX_SAFE));
  if (useB64) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { shape: [...shape], datatype: dtype, b64: bytesToBase64(toLittleEndian(bytes, BYTES_PER_ELEMENT[dtype])) };
  }
  let flat: WireScalar[];
  if (data instanceof BigInt64Array) flat = Array.from(data, (x) => Number(x));
  else if (dtype === 'BOOL') flat = Array.from(data as Uint8Array, (x) => x !== 0);
  else flat = Array.from(data as Float64Array, toWireScalar);
  return { shape: [...shape], datatype: dtype, data: flat };
}

/** Encode any accepted tensor input into its wire form (shorthand numbers and nested arrays stay shorthand). */
export function encodeTensor(input: TensorInput, opts: EncodeOptions): WireTensor | WireNested {
  if (typeof input === 'number' || Array.isArray(input)) return shorthandToWire(input);
  if (isTypedArray(input)) return encodeTyped([input.length], dtypeOf(input), input, opts);
  if (input !== null && typeof input === 'object' && 'shape' in input) {
    const t = input as { shape: number[]; data?: unknown; datatype?: DTypeAlias; b64?: string };
    if (isTypedArray(t.data)) {
      const dtype = t.datatype === undefined ? dtypeOf(t.data) : normalizeDType(t.datatype);
      return encodeTyped(t.shape, dtype, t.data, opts);
    }
    if (Array.isArray(t.data)) return { ...(t as WireTensor), data: t.data.map(shorthandToWire) as WireNested[] };
    return t as WireTensor;
  }
  throw new TypeError('not a tensor: pass a Tensor, {shape, data}, a typed array, a number or a nested number array');
}

/** Bytes a tensor input holds in a typed array (0 for numbers, nested arrays and wire tensors, which stay JSON). */
export function typedBytes(input: TensorInput): number {
  if (isTypedArray(input)) return input.byteLength;
  if (input !== null && typeof input === 'object' && !Array.isArray(input) && isTypedArray((input as { data?: unknown }).data)) {
    return ((input as { data: TypedArray }).data).byteLength;
  }
  return 0;
}

export function encodeTensorMap(m: Record<string, TensorInput> | undefined, opts: EncodeOptions): Record<string, WireTensor | WireNested> | undefined {
  if (m === undefined) return undefined;
  const out: Record<string, WireTensor | WireNested> = {};
  for (const [k, v] of Object.entries(m)) out[k] = encodeTensor(v, opts);
  return out;
}

// ---------------------------------------------------------------- decode

function flattenInto(v: unknown, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) flattenInto(x, out);
  else out.push(v);
}

/**
 * Decode a wire tensor (flat or nested `data`, `b64`, or in a framed answer `binary_data_offset`/`binary_data_size`
 * into `section`) into a typed-array tensor. Binary tensors are views of `section` when aligned (the service aligns
 * them), so no bytes are copied.
 */
export function decodeTensor(w: unknown, section?: Uint8Array): Tensor {
  if (w === null || typeof w !== 'object' || !Array.isArray((w as WireTensor).shape)) {
    throw new TypeError(`not a wire tensor: ${JSON.stringify(w)?.slice(0, 200)}`);
  }
  const wt = w as WireTensor;
  const dtype = normalizeDType(String(wt.datatype));
  const shape = wt.shape.map(Number);
  const n = numel(shape);
  let data: TypedArray;
  if (wt.binary_data_size !== undefined) {
    data = typedFromBytes(dtype, blobOf(wt, section));
  } else if (typeof wt.b64 === 'string') {
    data = typedFromBytes(dtype, base64ToBytes(wt.b64));
  } else {
    const flat: unknown[] = [];
    flattenInto(wt.data ?? [], flat);
    data = allocArray(dtype, flat.length);
    if (data instanceof BigInt64Array) for (let i = 0; i < flat.length; i++) data[i] = BigInt(fromWireNumber(flat[i]));
    else for (let i = 0; i < flat.length; i++) (data as Float64Array)[i] = fromWireNumber(flat[i]);
  }
  if (data.length !== n) throw new RangeError(`response tensor has ${data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  return { shape, datatype: dtype, data };
}

/** Response maps are keyed by value names, which may be anything (`__proto__` too): no prototype. */
export function decodeTensorMap(m: unknown, section?: Uint8Array): Record<string, Tensor> {
  const out = Object.create(null) as Record<string, Tensor>;
  if (m === null || typeof m !== 'object') return out;
  for (const [k, v] of Object.entries(m)) out[k] = decodeTensor(v, section);
  return out;
}

export function decodeTensorMap2(m: unknown, section?: Uint8Array): Record<string, Record<string, Tensor>> {
  const out = Object.create(null) as Record<string, Record<string, Tensor>>;
  if (m === null || typeof m !== 'object') return out;
  for (const [k, v] of Object.entries(m)) out[k] = decodeTensorMap(v, section);
  return out;
}

/** Normalise any tensor input into a typed-array tensor (shorthand defaults to `dtype`, else FP32). */
export function toTensor(input: TensorInput, dtype: DType = 'FP32'): Tensor {
  if (typeof input === 'number' || Array.isArray(input)) {
    const shape: number[] = [];
    let cur: unknown = input;
    while (Array.isArray(cur)) {
      shape.push(cur.length);
      cur = cur[0];
    }
    const flat: unknown[] = [];
    flattenInto(input, flat);
    if (flat.length !== numel(shape)) throw new RangeError('ragged nested array: every row must have the same length');
    return decodeTensor({ shape, datatype: dtype, data: flat });
  }
  if (isTypedArray(input)) return tensor(input);
  const t = input as { shape: number[]; data?: unknown; datatype?: DTypeAlias };
  if (isTypedArray(t.data)) {
    const d = t.datatype === undefined ? dtypeOf(t.data) : normalizeDType(t.datatype);
    if (d !== dtypeOf(t.data)) throw new TypeError(`datatype ${d} does not match a ${t.data.constructor.name}`);
    return { ...tensor(t.data, t.shape), datatype: d };
  }
  const enc = encodeTensor(input, { b64Threshold: Infinity });
  return decodeTensor(enc);
}
