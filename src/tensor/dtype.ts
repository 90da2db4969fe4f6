/** Datatypes of the wire contract (API.md "Tensors") and their in-memory typed arrays. */
export const DTYPES = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'] as const;
export type DType = (typeof DTYPES)[number];

/** INT64 lives in a BigInt64Array; BOOL in a Uint8Array of 0/1. */
export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export const DTYPE_ALIASES: Record<string, DType> = {
  FP32: 'FP32', FP64: 'FP64', INT32: 'INT32', INT64: 'INT64', BOOL: 'BOOL',
  float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64', bool: 'BOOL',
};

export function parseDType(s: string): DType | undefined {
  return Object.prototype.hasOwnProperty.call(DTYPE_ALIASES, s) ? DTYPE_ALIASES[s] : undefined;
}

export const BYTES_PER_ELEMENT: Record<DType, number> = { FP32: 4, FP64: 8, INT32: 4, INT64: 8, BOOL: 1 };

export function isFloat(d: DType): d is 'FP32' | 'FP64' {
  return d === 'FP32' || d === 'FP64';
}

export function isInt(d: DType): d is 'INT32' | 'INT64' {
  return d === 'INT32' || d === 'INT64';
}

export function allocArray(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'FP32': return new Float32Array(n);
    case 'FP64': return new Float64Array(n);
    case 'INT32': return new Int32Array(n);
    case 'INT64': return new BigInt64Array(n);
    case 'BOOL': return new Uint8Array(n);
  }
}

/** A view of `n` elements of `dtype` at the start of `buffer` (which must hold them). */
export function arrayOver(dtype: DType, buffer: ArrayBuffer, n: number): TypedArray {
  switch (dtype) {
    case 'FP32': return new Float32Array(buffer, 0, n);
    case 'FP64': return new Float64Array(buffer, 0, n);
    case 'INT32': return new Int32Array(buffer, 0, n);
    case 'INT64': return new BigInt64Array(buffer, 0, n);
    case 'BOOL': return new Uint8Array(buffer, 0, n);
  }
}

/** A one-element array of `dtype` holding `value` (BOOL: 0 or 1). */
export function scalarArray(dtype: DType, value: number): TypedArray {
  const a = allocArray(dtype, 1);
  if (a instanceof BigInt64Array) a[0] = BigInt(value);
  else a[0] = value;
  return a;
}

export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'FP32';
  if (a instanceof Float64Array) return 'FP64';
  if (a instanceof Int32Array) return 'INT32';
  if (a instanceof BigInt64Array) return 'INT64';
  return 'BOOL';
}
