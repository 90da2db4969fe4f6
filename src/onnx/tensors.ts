/**
 * ONNX tensors (TensorProto) as gradserve tensors. Raw little-endian bytes become views when aligned (the decoder's
 * bytes are views of the model buffer, so weights are not copied), else one copy. Types gradserve lacks are widened
 * where that is exact (FP16/BF16 -> FP32, 8/16-bit and UINT32 integers -> INT32, UINT64 -> INT64) and the caller is
 * told; STRING and complex tensors cannot be imported.
 */
import type { DType, TypedArray } from '../tensor/dtype.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { int64, type TensorProto } from './decode.js';

export const ONNX_TYPES: Record<number, string> = {
  1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};

/** The gradserve datatype an ONNX element type maps to exactly, if any. */
export const EXACT: Record<number, DType> = { 1: 'FP32', 11: 'FP64', 6: 'INT32', 7: 'INT64', 9: 'BOOL' };
/** Element types held in a wider gradserve datatype without loss. */
export const WIDENED: Record<number, DType> = { 10: 'FP32', 16: 'FP32', 2: 'INT32', 3: 'INT32', 4: 'INT32', 5: 'INT32', 12: 'INT64', 13: 'INT64' };

export function typeName(t: number | undefined): string {
  return ONNX_TYPES[t ?? 0] ?? `type ${t}`;
}

export class TensorImportError extends Error {}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f === 0 ? s * Infinity : NaN;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function view<T extends TypedArray>(raw: Uint8Array, width: number, make: (b: ArrayBuffer, o: number, n: number) => T): T {
  const n = raw.byteLength / width;
  if (raw.byteOffset % width === 0) return make(raw.buffer as ArrayBuffer, raw.byteOffset, n);
  const copy = new Uint8Array(raw); // a copy (Buffer#slice would be a view again)
  return make(copy.buffer as ArrayBuffer, 0, n);
}

/** A TensorProto as a tensor, and whether it was widened from another type. */
export function tensorFromProto(t: TensorProto): { tensor: Tensor; widenedFrom?: string } {
  const type = t.data_type ?? 0;
  const dtype = EXACT[type] ?? WIDENED[type];
  if (dtype === undefined) throw new TensorImportError(`${typeName(type)} tensors cannot be imported (gradserve has FP32, FP64, INT32, INT64 and BOOL)`);
  const shape = (t.dims ?? []).map(int64);
  const n = numel(shape);
  const raw = t.raw_data !== undefined && t.raw_data.byteLength > 0 ? t.raw_data : undefined;
  let data: TypedArray;
  const bad = (have: number): never => {
    throw new TensorImportError(`tensor "${t.name ?? ''}" of shape [${shape.join(', ')}] holds ${have} values, not ${n}`);
  };
  if (raw !== undefined) {
    const width: Record<number, number> = { 1: 4, 11: 8, 6: 4, 7: 8, 9: 1, 10: 2, 16: 2, 2: 1, 3: 1, 4: 2, 5: 2, 12: 4, 13: 8 };
    if (raw.byteLength !== n * width[type]!) bad(raw.byteLength / width[type]!);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    switch (type) {
      case 1: data = view(raw, 4, (b, o, k) => new Float32Array(b, o, k)); break;
      case 11: data = view(raw, 8, (b, o, k) => new Float64Array(b, o, k)); break;
      case 6: data = view(raw, 4, (b, o, k) => new Int32Array(b, o, k)); break;
      case 7: data = view(raw, 8, (b, o, k) => new BigInt64Array(b, o, k)); break;
      case 9: data = Uint8Array.from(raw, (v) => (v === 0 ? 0 : 1)); break;
      case 10: data = Float32Array.from({ length: n }, (_, i) => halfToFloat(dv.getUint16(2 * i, true))); break;
      case 16: data = Float32Array.from({ length: n }, (_, i) => new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!); break;
      case 2: data = Int32Array.from(raw); break;
      case 3: data = Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n)); break;
      case 4: data = Int32Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true)); break;
      case 5: data = Int32Array.from({ length: n }, (_, i) => dv.getInt16(2 * i, true)); break;
      case 12: data = BigInt64Array.from({ length: n }, (_, i) => BigInt(dv.getUint32(4 * i, true))); break;
      case 13: data = BigInt64Array.from({ length: n }, (_, i) => BigInt.asIntN(64, dv.getBigUint64(8 * i, true))); break;
      default: throw new TensorImportError(`${typeName(type)} tensors cannot be imported`);
    }
  } else {
    switch (type) {
      case 1: { const v = t.float_data ?? []; if (v.length !== n) bad(v.length); data = Float32Array.from(v); break; }
      case 11: { const v = t.double_data ?? []; if (v.length !== n) bad(v.length); data = Float64Array.from(v); break; }
      case 7: { const v = t.int64_data ?? []; if (v.length !== n) bad(v.length); data = BigInt64Array.from(v, (x) => BigInt(typeof x === 'number' ? x : x.toString())); break; }
      case 13: case 12: { const v = t.uint64_data ?? []; if (v.length !== n) bad(v.length); data = BigInt64Array.from(v, (x) => BigInt.asIntN(64, BigInt(typeof x === 'number' ? x : x.toString()))); break; }
      case 10: { const v = t.int32_data ?? []; if (v.length !== n) bad(v.length); data = Float32Array.from(v, (x) => halfToFloat(x & 0xffff)); break; }
      case 16: { const v = t.int32_data ?? []; if (v.length !== n) bad(v.length); data = Float32Array.from(v, (x) => new Float32Array(new Uint32Array([(x & 0xffff) << 16]).buffer)[0]!); break; }
      case 9: { const v = t.int32_data ?? []; if (v.length !== n) bad(v.length); data = Uint8Array.from(v, (x) => (x === 0 ? 0 : 1)); break; }
      default: { const v = t.int32_data ?? []; if (v.length !== n) bad(v.length); data = Int32Array.from(v); break; }
    }
  }
  const tensor: Tensor = { dtype, shape, data };
  return EXACT[type] === undefined ? { tensor, widenedFrom: typeName(type) } : { tensor };
}
