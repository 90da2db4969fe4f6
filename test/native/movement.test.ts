import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { bcastAt, fromTyped, kindOf, mismatch, numel, randData, randInt, randShape, toTyped, unravel } from './reference.js';
import {
  concatRef, gatherRef, oneHotRef, padRef, scatterAddRef, sliceBackwardRef, sliceRef, transposeRef,
} from './reference_ops.js';

const ALL: DType[] = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];
const shuffle = <T>(r: () => number, xs: T[]): T[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randInt(r, 0, i);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
};
const invalid = expect.objectContaining({ code: 'INVALID_ARGUMENT' });

describe('transpose and broadcastTo', () => {
  it('transposes with random permutations on every datatype', () => {
    const r = rng(1);
    for (const dtype of ALL) {
      for (let trial = 0; trial < 30; trial++) {
        const shape = randShape(r, 5, 5, 0.05);
        const perm = shuffle(r, shape.map((_, d) => d));
        const data = randData(r, numel(shape), dtype);
        const y = kernels.transpose(toTyped(dtype, data), shape, perm);
        expect(kindOf(y)).toBe(dtype);
        expect(mismatch(y, transposeRef({ data, shape }, perm).data)).toBeUndefined();
      }
    }
  });

  it('takes the cache-blocked path on large matrices and batched transposes', () => {
    const r = rng(2);
    for (const dtype of ALL) {
      for (const shape of [[300, 257], [3, 70, 90], [64, 3, 65]]) {
        const data = randData(r, numel(shape), dtype);
        for (const perm of [[1, 0], [0, 2, 1], [2, 1, 0], [1, 2, 0]].filter((p) => p.length === shape.length)) {
          const y = kernels.transpose(toTyped(dtype, data), shape, perm);
          expect(mismatch(y, transposeRef({ data, shape }, perm).data), `${dtype} ${JSON.stringify(shape)} ${JSON.stringify(perm)}`).toBeUndefined();
        }
      }
    }
  });

  it('rejects bad perms', () => {
    for (const perm of [[0], [0, 0], [0, 2], [1, -1]]) {
      expect(() => kernels.transpose(new Float32Array(4), [2, 2], perm)).toThrow(invalid);
    }
  });

  it('broadcastTo materializes NumPy broadcasting', () => {
    const r = rng(3);
    for (let trial = 0; trial < 40; trial++) {
      const out = randShape(r, 4, 4, 0.05);
      const shape = out.slice(randInt(r, 0, out.length)).map((d) => (r() < 0.4 ? 1 : d));
      const data = randData(r, numel(shape), 'INT32', -50, 50);
      const y = kernels.broadcastTo(Int32Array.from(data), shape, out);
      const ref = Array.from({ length: numel(out) }, (_, i) => bcastAt(data, shape, unravel(i, out)));
      expect(mismatch(y, ref)).toBeUndefined();
    }
    expect(() => kernels.broadcastTo(new Float32Array(2), [2], [3])).toThrow(invalid);
    expect(() => kernels.broadcastTo(new Float32Array(2), [2, 1], [2])).toThrow(invalid);
  });
});

describe('slice, sliceBackward, pad, concat', () => {
  it('slices with positive and negative steps, and its backward scatters into zeros', () => {
    const r = rng(4);
    for (let trial = 0; trial < 60; trial++) {
      const shape = randShape(r, 4, 6, 0.05);
      const starts: number[] = [];
      const steps: number[] = [];
      const outShape: number[] = [];
      for (const n of shape) {
        const step = (r() < 0.5 ? -1 : 1) * randInt(r, 1, 3);
        const start = n === 0 ? 0 : randInt(r, 0, n - 1);
        const avail = n === 0 ? 0 : step > 0 ? Math.floor((n - 1 - start) / step) + 1 : Math.floor(start / -step) + 1;
        starts.push(start);
        steps.push(step);
        outShape.push(randInt(r, 0, avail));
      }
      const dtype = ALL[trial % ALL.length] as DType;
      const data = randData(r, numel(shape), dtype);
      const y = kernels.slice(toTyped(dtype, data), shape, starts, steps, outShape);
      const ref = sliceRef({ data, shape }, starts, steps, outShape);
      expect(mismatch(y, ref.data), JSON.stringify({ shape, starts, steps, outShape })).toBeUndefined();
      const g = randData(r, numel(outShape), 'FP64');
      const back = kernels.sliceBackward(Float64Array.from(g), outShape, starts, steps, shape);
      expect(mismatch(back, sliceBackwardRef({ data: g, shape: outShape }, starts, steps, shape).data)).toBeUndefined();
    }
  });

  it('rejects slices that read outside the input', () => {
    const x = new Float32Array(5);
    expect(() => kernels.slice(x, [5], [3], [1], [3])).toThrow(invalid);
    expect(() => kernels.slice(x, [5], [1], [-1], [3])).toThrow(invalid);
    expect(() => kernels.slice(x, [5], [0], [0], [1])).toThrow(invalid);
    expect(() => kernels.slice(x, [5], [0], [1], [1, 1])).toThrow(invalid);
    expect(() => kernels.slice(x, [5], [4], [2 ** 52], [2])).toThrow(invalid);
    expect(fromTyped(kernels.slice(x, [5], [99], [1], [0]))).toEqual([]);
  });

  it('pads with a constant on every datatype', () => {
    const r = rng(5);
    for (let trial = 0; trial < 30; trial++) {
      const shape = randShape(r, 3, 4, 0.1);
      const pads = shape.map(() => [randInt(r, 0, 2), randInt(r, 0, 2)] as [number, number]);
      const dtype = ALL[trial % ALL.length] as DType;
      const value = dtype === 'BOOL' ? 1 : dtype.startsWith('INT') ? -7 : 2.5;
      const data = randData(r, numel(shape), dtype);
      const y = kernels.pad(toTyped(dtype, data), shape, pads, value);
      expect(mismatch(y, padRef({ data, shape }, pads, value).data)).toBeUndefined();
    }
    expect(() => kernels.pad(new Float32Array(2), [2], [[-1, 0]], 0)).toThrow(invalid);
    expect(() => kernels.pad(new Float32Array(2), [2], [[0, 0], [0, 0]], 0)).toThrow(invalid);
  });

  it('concatenates along any axis', () => {
    const r = rng(6);
    for (let trial = 0; trial < 30; trial++) {
      const base = randShape(r, 4, 4, 0.05);
      if (base.length === 0) base.push(2);
      const axis = randInt(r, 0, base.length - 1);
      const dtype = ALL[trial % ALL.length] as DType;
      const xs = Array.from({ length: randInt(r, 1, 4) }, () => {
        const shape = [...base];
        shape[axis] = randInt(r, 0, 3);
        return { data: randData(r, numel(shape), dtype), shape };
      });
      const y = kernels.concat(xs.map((x) => toTyped(dtype, x.data)), xs.map((x) => x.shape), axis);
      expect(mismatch(y, concatRef(xs, axis).data)).toBeUndefined();
    }
    expect(() => kernels.concat([new Float32Array(2), new Float32Array(3)], [[2], [1, 3]], 0)).toThrow(invalid);
    expect(() => kernels.concat([new Float32Array(2), new Float64Array(2)], [[2], [2]], 0)).toThrow(invalid);
    expect(() => kernels.concat([], [], 0)).toThrow(invalid);
  });
});

describe('gather, scatterAdd, oneHot', () => {
  it('gather and scatterAdd match the reference with negative and duplicate indices', () => {
    const r = rng(7);
    for (let trial = 0; trial < 40; trial++) {
      const shape = randShape(r, 3, 4).map((d) => Math.max(d, 1));
      if (shape.length === 0) shape.push(3);
      const axis = randInt(r, 0, shape.length - 1);
      const n = shape[axis] as number;
      const indShape = randShape(r, 2, 3, 0.1);
      const ind = Array.from({ length: numel(indShape) }, () => randInt(r, -n, n - 1));
      const indArr = trial % 2 ? Int32Array.from(ind) : BigInt64Array.from(ind.map(BigInt));
      const dtype = ALL[trial % ALL.length] as DType;
      const data = randData(r, numel(shape), dtype);
      const y = kernels.gather(toTyped(dtype, data), shape, indArr, indShape, axis);
      const ref = gatherRef({ data, shape }, { data: ind, shape: indShape }, axis);
      expect(mismatch(y, ref.data)).toBeUndefined();
      const g = randData(r, ref.data.length, 'FP64');
      const s = kernels.scatterAdd(Float64Array.from(g), indArr, indShape, axis, shape);
      expect(mismatch(s, scatterAddRef({ data: g, shape: ref.shape }, { data: ind, shape: indShape }, axis, shape).data, 1e-12, 1e-12)).toBeUndefined();
    }
  });

  it('out-of-range indices throw INDEX_OUT_OF_RANGE naming the index and the axis size', () => {
    const oob = (f: () => unknown, re: RegExp) => expect(f).toThrow(expect.objectContaining({ code: 'INDEX_OUT_OF_RANGE', message: expect.stringMatching(re) }));
    oob(() => kernels.gather(new Float32Array(6), [2, 3], new Int32Array([0, 3]), [2], 1), /index 3 .*axis 1 of size 3/);
    oob(() => kernels.gather(new Float32Array(6), [2, 3], new BigInt64Array([-3n]), [1], 0), /index -3 .*size 2/);
    oob(() => kernels.scatterAdd(new Float32Array(2), new Int32Array([5, 0]), [2], 0, [2]), /index 5/);
    oob(() => kernels.gather(new Float32Array(0), [0], new Int32Array([0]), [1], 0), /size 0/);
    expect(() => kernels.gather(new Float32Array(6), [2, 3], new Float32Array([0]) as unknown as Int32Array, [1], 0)).toThrow(invalid);
  });

  it('oneHot inserts the depth axis; out-of-range rows are all zero', () => {
    const r = rng(8);
    for (let trial = 0; trial < 20; trial++) {
      const indShape = randShape(r, 3, 3);
      const depth = randInt(r, 0, 4);
      const axis = randInt(r, 0, indShape.length);
      const ind = Array.from({ length: numel(indShape) }, () => randInt(r, -1, depth + 1));
      const dtype = ALL[trial % ALL.length] as DType;
      const y = kernels.oneHot(Int32Array.from(ind), indShape, depth, axis, dtype);
      expect(kindOf(y)).toBe(dtype);
      expect(mismatch(y, oneHotRef({ data: ind, shape: indShape }, depth, axis).data)).toBeUndefined();
    }
    expect(() => kernels.oneHot(new Int32Array(1), [1], 3, 2, 'FP32')).toThrow(invalid);
    expect(() => kernels.oneHot(new Int32Array(1), [1], -1, 0, 'FP32')).toThrow(invalid);
    expect(() => kernels.oneHot(new Int32Array(1), [1], 3, 0, 'FP16' as 'FP32')).toThrow(invalid);
  });
});

describe('cast', () => {
  const values = [0, 1, -1, 2.7, -2.7, 1e3, -0, 0.5];
  it('casts between every pair of datatypes (FP -> INT truncates toward zero)', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        const src = from === 'BOOL' ? [0, 1, 1, 0] : from.startsWith('INT') ? values.map(Math.trunc) : values;
        const y = kernels.cast(toTyped(from, src), to);
        expect(kindOf(y)).toBe(to);
        const stored = from === 'FP32' ? src.map(Math.fround) : src;
        const expected = stored.map((v) => (to === 'BOOL' ? (v !== 0 ? 1 : 0) : to.startsWith('INT') ? Math.trunc(v) + 0 : to === 'FP32' ? Math.fround(v) : v));
        expect(mismatch(y, expected), `${from} -> ${to}`).toBeUndefined();
      }
    }
    expect(fromTyped(kernels.cast(new Float64Array([NaN]), 'BOOL'))).toEqual([1]);
    expect(fromTyped(kernels.cast(new Float64Array([2147483647.9, -2147483648.9]), 'INT32'))).toEqual([2147483647, -2147483648]);
    expect(fromTyped(kernels.cast(new BigInt64Array([2n ** 62n]), 'FP64'))).toEqual([2 ** 62]);
    expect(fromTyped(kernels.cast(new Float64Array([1e300]), 'FP32'))).toEqual([Infinity]);
  });

  it('NaN and out-of-range values throw INVALID_CAST', () => {
    const bad = (x: Parameters<typeof kernels.cast>[0], to: DType) => expect(() => kernels.cast(x, to)).toThrow(expect.objectContaining({ code: 'INVALID_CAST' }));
    bad(new Float32Array([1, NaN]), 'INT32');
    bad(new Float64Array([Infinity]), 'INT64');
    bad(new Float64Array([2147483648]), 'INT32');
    bad(new Float64Array([-2147483649]), 'INT32');
    bad(new Float64Array([2 ** 63]), 'INT64');
    bad(new BigInt64Array([2n ** 40n]), 'INT32');
    expect(Array.from(kernels.cast(new Float64Array([-(2 ** 63)]), 'INT64') as BigInt64Array)).toEqual([-(2n ** 63n)]);
    expect(() => kernels.cast(new Float32Array(1), 'nope' as DType)).toThrow(invalid);
  });
});
