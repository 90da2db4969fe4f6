/**
 * The rearranging and sorting kernels (native/rearrange.cpp, native/sorting.cpp) against naive references on random
 * shapes (empty dims included) and every datatype they take, plus their argument checks.
 */
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { fromTyped, kindOf, mismatch, numel, randData, randInt, randShape, ravel, toTyped, unravel } from './reference.js';

const ALL: DType[] = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];
const NUMERIC: DType[] = ['FP32', 'FP64', 'INT32', 'INT64'];
const invalid = expect.objectContaining({ code: 'INVALID_ARGUMENT' });
const k = kernels as unknown as Record<string, (...args: unknown[]) => unknown>;

function rollRef(data: number[], shape: number[], shifts: number[]): number[] {
  return data.map((_, i) => {
    const idx = unravel(i, shape).map((p, d) => {
      const n = shape[d]!;
      return (((p - shifts[d]!) % n) + n) % n;
    });
    return data[ravel(idx, shape)]!;
  });
}

function triangleRef(data: number[], shape: number[], kk: number, upper: boolean): number[] {
  return data.map((v, i) => {
    const idx = unravel(i, shape);
    const d = idx[idx.length - 1]! - idx[idx.length - 2]!;
    return (upper ? d >= kk : d <= kk) ? v : 0;
  });
}

/** Position order of a stable sort with NaN largest (Array.prototype.sort is stable). */
function argsortLine(vals: number[], descending: boolean): number[] {
  const key = (v: number) => (Number.isNaN(v) ? Infinity : v);
  const rank = (v: number) => (Number.isNaN(v) ? 1 : 0);
  return vals.map((_, i) => i).sort((a, b) => {
    const va = vals[a]!, vb = vals[b]!;
    const c = rank(va) - rank(vb) || (key(va) < key(vb) ? -1 : key(va) > key(vb) ? 1 : 0);
    return descending ? -c : c;
  });
}

function sortIndicesRef(data: number[], shape: number[], axis: number, descending: boolean, kk: number): number[] {
  const outShape = shape.map((d, i) => (i === axis ? kk : d));
  const out = new Array<number>(numel(outShape)).fill(0);
  const lines = new Map<string, number[]>();
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, outShape);
    const key = idx.map((p, d) => (d === axis ? '*' : p)).join(',');
    let order = lines.get(key);
    if (order === undefined) {
      const vals = Array.from({ length: shape[axis]! }, (_, a) => data[ravel(idx.map((p, d) => (d === axis ? a : p)), shape)]!);
      order = argsortLine(vals, descending);
      lines.set(key, order);
    }
    out[i] = order[idx[axis]!]!;
  }
  return out;
}

function scatterRef(base: number[] | null, shape: number[], ind: number[], indShape: number[], upd: number[], axis: number): number[] {
  const out = base ? [...base] : new Array<number>(numel(shape)).fill(0);
  ind.forEach((v, i) => {
    const idx = unravel(i, indShape);
    idx[axis] = v < 0 ? v + shape[axis]! : v;
    out[ravel(idx, shape)]! += upd[i]!;
  });
  return out;
}

describe('roll', () => {
  it('matches the reference on random shapes, shifts and every datatype', () => {
    const r = rng(11);
    for (const dtype of ALL) {
      for (let trial = 0; trial < 40; trial++) {
        const shape = randShape(r, 4, 5, 0.05);
        const shifts = shape.map(() => (r() < 0.3 ? 0 : randInt(r, -12, 12)));
        const data = randData(r, numel(shape), dtype);
        const y = kernels.roll(toTyped(dtype, data), shape, shifts);
        expect(kindOf(y)).toBe(dtype);
        expect(mismatch(y, numel(shape) === 0 ? [] : rollRef(data, shape, shifts)), `${JSON.stringify(shape)} ${JSON.stringify(shifts)}`).toBeUndefined();
      }
    }
  });

  it('takes any safe-integer shift and refuses a shift count that is not the rank', () => {
    expect(fromTyped(kernels.roll(Float64Array.from([1, 2, 3]), [3], [2 ** 53 - 1]))).toEqual(rollRef([1, 2, 3], [3], [(2 ** 53 - 1) % 3]));
    expect(fromTyped(kernels.roll(Float64Array.from([1, 2, 3]), [3], [-(2 ** 53 - 1)]))).toEqual(rollRef([1, 2, 3], [3], [-((2 ** 53 - 1) % 3)]));
    expect(() => kernels.roll(new Float64Array(6), [2, 3], [1])).toThrow(invalid);
    expect(() => k.roll(new Float64Array(6), [2, 3], [1, 2 ** 60])).toThrow(invalid);
  });
});

describe('triangle', () => {
  it('matches triu / tril on random batched matrices and every datatype', () => {
    const r = rng(12);
    for (const dtype of ALL) {
      for (let trial = 0; trial < 30; trial++) {
        const shape = [...randShape(r, 2, 3, 0.05), randInt(r, 0, 5), randInt(r, 0, 5)];
        const kk = randInt(r, -6, 6);
        const upper = r() < 0.5;
        const data = randData(r, numel(shape), dtype);
        const y = kernels.triangle(toTyped(dtype, data), shape, kk, upper);
        expect(kindOf(y)).toBe(dtype);
        expect(mismatch(y, triangleRef(data, shape, kk, upper)), `${JSON.stringify(shape)} k ${kk} ${upper}`).toBeUndefined();
      }
    }
  });

  it('takes huge offsets and refuses rank < 2', () => {
    expect(fromTyped(kernels.triangle(Float32Array.from([1, 2, 3, 4]), [2, 2], 2 ** 53 - 1, false))).toEqual([1, 2, 3, 4]);
    expect(fromTyped(kernels.triangle(Float32Array.from([1, 2, 3, 4]), [2, 2], -(2 ** 53 - 1), false))).toEqual([0, 0, 0, 0]);
    expect(() => kernels.triangle(new Float32Array(3), [3], 0, true)).toThrow(invalid);
    expect(() => k.triangle(new Float32Array(4), [2, 2], 0, 1)).toThrow(invalid);
  });
});

describe('sortIndices', () => {
  it('matches a stable NaN-largest sort (and its first k) on random shapes with ties', () => {
    const r = rng(13);
    for (const dtype of NUMERIC) {
      for (let trial = 0; trial < 40; trial++) {
        const shape = randShape(r, 3, 6, 0.05);
        if (shape.length === 0) shape.push(randInt(r, 1, 6));
        const axis = randInt(r, 0, shape.length - 1);
        const descending = r() < 0.5;
        const kk = r() < 0.5 ? shape[axis]! : randInt(r, 0, shape[axis]!);
        // few distinct values, so ties are common; NaN in the float datatypes
        const data = randData(r, numel(shape), dtype, -2, 2).map((v) => (dtype.startsWith('FP') ? (r() < 0.1 ? NaN : Math.round(v)) : v));
        const y = kernels.sortIndices(toTyped(dtype, data), shape, axis, descending, kk);
        expect(y).toBeInstanceOf(BigInt64Array);
        expect(mismatch(y, sortIndicesRef(data, shape, axis, descending, kk)), `${dtype} ${JSON.stringify(shape)} axis ${axis} k ${kk} ${descending}`).toBeUndefined();
      }
    }
  });

  it('sorts INT64 exactly and refuses BOOL, bad axes and k outside the axis', () => {
    const big = BigInt64Array.from([2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n - 2n]);
    expect(fromTyped(kernels.sortIndices(big, [3], 0, false, 3))).toEqual([1, 2, 0]);
    expect(() => k.sortIndices(new Uint8Array(2), [2], 0, false, 2)).toThrow(invalid);
    expect(() => kernels.sortIndices(new Float64Array(2), [2], 1, false, 2)).toThrow(invalid);
    expect(() => kernels.sortIndices(new Float64Array(2), [2], 0, false, 3)).toThrow(invalid);
    expect(() => kernels.sortIndices(new Float64Array(2), [2], 0, false, -1)).toThrow(invalid);
  });
});

describe('scatterAddElements', () => {
  it('matches the reference with and without a base, duplicates and negative indices, every numeric datatype', () => {
    const r = rng(14);
    for (const dtype of NUMERIC) {
      for (let trial = 0; trial < 40; trial++) {
        const shape = randShape(r, 3, 4, 0.05);
        if (shape.length === 0) shape.push(randInt(r, 1, 4));
        const axis = randInt(r, 0, shape.length - 1);
        // an empty axis admits no index
        const indShape = shape.map((d, i) => (i === axis ? (shape[axis] === 0 ? 0 : randInt(r, 0, 5)) : d));
        const A = shape[axis]!;
        const ind = Array.from({ length: numel(indShape) }, () => randInt(r, -A, A - 1));
        const upd = randData(r, numel(indShape), dtype);
        const base = r() < 0.5 ? randData(r, numel(shape), dtype) : null;
        const y = kernels.scatterAddElements(base && toTyped(dtype, base), shape, toTyped(r() < 0.5 ? 'INT32' : 'INT64', ind) as Int32Array, indShape, toTyped(dtype, upd), axis);
        expect(kindOf(y)).toBe(dtype);
        const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-5] : [1e-12, 1e-12];
        expect(mismatch(y, scatterRef(base, shape, ind, indShape, upd, axis), rtol, atol)).toBeUndefined();
      }
    }
  });

  it('throws INDEX_OUT_OF_RANGE naming the index, and INVALID_ARGUMENT for bad arguments', () => {
    expect(() => kernels.scatterAddElements(null, [3], Int32Array.from([3]), [1], Float64Array.from([1]), 0))
      .toThrow(expect.objectContaining({ code: 'INDEX_OUT_OF_RANGE', message: 'index 3 is out of range for axis 0 of size 3' }));
    expect(() => kernels.scatterAddElements(null, [3], Int32Array.from([-4]), [1], Float64Array.from([1]), 0))
      .toThrow(expect.objectContaining({ code: 'INDEX_OUT_OF_RANGE' }));
    // updates' length, x's datatype, BOOL, rank and axis
    expect(() => kernels.scatterAddElements(null, [3], Int32Array.from([0]), [1], Float64Array.from([1, 2]), 0)).toThrow(invalid);
    expect(() => kernels.scatterAddElements(new Float32Array(3), [3], Int32Array.from([0]), [1], Float64Array.from([1]), 0)).toThrow(invalid);
    expect(() => kernels.scatterAddElements(null, [3], Int32Array.from([0]), [1], Uint8Array.from([1]), 0)).toThrow(invalid);
    expect(() => kernels.scatterAddElements(null, [3, 1], Int32Array.from([0]), [1], Float64Array.from([1]), 0)).toThrow(invalid);
    expect(() => kernels.scatterAddElements(null, [3], Int32Array.from([0]), [1], Float64Array.from([1]), 1)).toThrow(invalid);
    expect(() => kernels.scatterAddElements(null, [2, 3], Int32Array.from([0, 0, 0]), [3, 1], Float64Array.from([1, 1, 1]), 1)).toThrow(invalid);
    expect(() => k.scatterAddElements(null, [3], Float64Array.from([0]), [1], Float64Array.from([1]), 0)).toThrow(invalid);
  });
});
