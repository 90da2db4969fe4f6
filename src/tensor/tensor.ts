import { allocArray, type DType, type TypedArray } from './dtype.js';

/** A dense row-major tensor. `data.length` always equals the product of `shape`. */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

/**
 * Element count. Any zero dim makes it 0 whatever the others are: multiplied in order, [2^53 - 1, ..., 0] would pass
 * through Infinity and end as NaN.
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (Number.isFinite(n)) return n;
  return shape.includes(0) ? 0 : n;
}

/**
 * A kernel's output as a tensor, without tensor()'s checks and copies: `data` may also be a native program's slot
 * while a plan is traced (src/engine/program.ts), which must be passed along untouched.
 */
export function kernelTensor(dtype: DType, shape: readonly number[], data: TypedArray): Tensor {
  return { dtype, shape: [...shape], data };
}

export function tensor(dtype: DType, shape: readonly number[], data?: TypedArray | ArrayLike<number> | ArrayLike<bigint>): Tensor {
  const n = numel(shape);
  if (data === undefined) return { dtype, shape: [...shape], data: allocArray(dtype, n) };
  if (ArrayBuffer.isView(data)) {
    if ((data as TypedArray).length !== n) throw new RangeError(`data has ${(data as TypedArray).length} elements, shape [${shape.join(', ')}] needs ${n}`);
    return { dtype, shape: [...shape], data: data as TypedArray };
  }
  const out = allocArray(dtype, n);
  const src = data as ArrayLike<number | bigint>;
  if (src.length !== n) throw new RangeError(`data has ${src.length} elements, shape [${shape.join(', ')}] needs ${n}`);
  if (out instanceof BigInt64Array) for (let i = 0; i < n; i++) out[i] = BigInt(src[i] as number | bigint);
  else for (let i = 0; i < n; i++) (out as Float64Array)[i] = Number(src[i]);
  return { dtype, shape: [...shape], data: out };
}
