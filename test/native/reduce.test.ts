import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { ReduceOp } from '../../src/kernels.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { fromTyped, kindOf, mismatch, numel, randData, randInt, randShape, toTyped } from './reference.js';
import { argReduceRef, matmulRef, reduceRef, softmaxRef } from './reference_ops.js';

const randomAxes = (r: () => number, rank: number): number[] =>
  Array.from({ length: rank }, (_, d) => d).filter(() => r() < 0.5);

describe('reduce', () => {
  const cases: [ReduceOp, DType[]][] = [
    ['sum', ['FP32', 'FP64', 'INT32', 'INT64']],
    ['mean', ['FP32', 'FP64']],
    ['max', ['FP32', 'FP64', 'INT32', 'INT64']],
    ['min', ['FP32', 'FP64', 'INT32', 'INT64']],
    ['prod', ['FP32', 'FP64', 'INT32', 'INT64']],
    ['logsumexp', ['FP32', 'FP64']],
  ];
  for (const [op, dtypes] of cases) {
    for (const dtype of dtypes) {
      it(`${op} ${dtype} over random axes`, () => {
        const r = rng(op.length * 17 + dtype.length);
        for (let trial = 0; trial < 60; trial++) {
          const zero = op === 'max' || op === 'min' ? 0 : 0.1;
          const shape = randShape(r, 4, 5, zero);
          const axes = trial % 7 === 0 ? shape.map((_, d) => d) : randomAxes(r, shape.length);
          const data = randData(r, numel(shape), dtype, op === 'prod' ? -2 : -3, op === 'prod' ? 2 : 3);
          if (dtype.startsWith('FP') && data.length > 3 && trial % 5 === 0) data[randInt(r, 0, data.length - 1)] = NaN;
          const y = kernels.reduce(op, toTyped(dtype, data), shape, axes);
          const ref = reduceRef(op, { data, shape }, axes);
          expect(kindOf(y)).toBe(dtype);
          const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-5] : dtype === 'FP64' ? [1e-12, 1e-12] : [0, 0];
          expect(mismatch(y, ref.data, rtol, atol), `${op} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}`).toBeUndefined();
        }
      });
    }
  }

  it('sums float32 accurately (2^25 ones, and 1e8 + many small values)', () => {
    const n = 1 << 25;
    expect(kernels.reduce('sum', new Float32Array(n).fill(1), [n], [0])[0]).toBe(n);
    const x = new Float32Array(1_000_001).fill(0.1);
    x[0] = 1e8;
    expect(kernels.reduce('sum', x, [x.length], [0])[0]).toBe(Math.fround(1e8 + Math.fround(0.1) * 1_000_000));
    // The column-sum path (reducing a leading axis) is accurate too.
    const c = new Float32Array(2 * 4_000_000).fill(1);
    expect(fromTyped(kernels.reduce('sum', c, [4_000_000, 2], [0]))).toEqual([4_000_000, 4_000_000]);
  });

  it('sums and means over non-adjacent axes in place: per-channel statistics of (N, C, H, W), and kept inner axes', () => {
    const r = rng(5);
    for (const [shape, axes] of [[[3, 5, 4, 6], [0, 2, 3]], [[4, 3, 5, 2], [0, 2]], [[2, 1, 3, 4, 5], [1, 3]], [[6, 2, 7], [0, 2]]] as [number[], number[]][]) {
      for (const dtype of ['FP32', 'FP64', 'INT32', 'INT64'] as DType[]) {
        const data = randData(r, numel(shape), dtype, -3, 3);
        for (const op of (dtype.startsWith('FP') ? ['sum', 'mean'] : ['sum']) as ReduceOp[]) {
          const y = kernels.reduce(op, toTyped(dtype, data), shape, axes);
          const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-5] : dtype === 'FP64' ? [1e-12, 1e-12] : [0, 0];
          expect(mismatch(y, reduceRef(op, { data, shape }, axes).data, rtol, atol), `${op} ${dtype} ${JSON.stringify(shape)} ${JSON.stringify(axes)}`).toBeUndefined();
        }
      }
    }
  });

  it('edge semantics: empty mean is NaN, logsumexp of all -Inf is -Inf, max/min of a zero-size axis throw', () => {
    expect(Number.isNaN(kernels.reduce('mean', new Float32Array(0), [0, 3], [0])[0])).toBe(true);
    expect(fromTyped(kernels.reduce('sum', new Float64Array(0), [0, 3], [0]))).toEqual([0, 0, 0]);
    expect(fromTyped(kernels.reduce('logsumexp', new Float64Array([-Infinity, -Infinity]), [2], [0]))).toEqual([-Infinity]);
    expect(kernels.reduce('logsumexp', new Float32Array([1e4, 1e4]), [2], [0])[0]).toBeCloseTo(1e4 + Math.LN2, 2);
    expect(() => kernels.reduce('max', new Float32Array(0), [2, 0], [1])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(fromTyped(kernels.reduce('max', new Float32Array([1, 2]), [2], []))).toEqual([1, 2]);
    expect(() => kernels.reduce('mean', new Int32Array(2), [2], [0])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    for (const axes of [[2], [1, 0], [0, 0], [-1]]) {
      expect(() => kernels.reduce('sum', new Float32Array(4), [2, 2], axes)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});

describe('argReduce', () => {
  it('matches the reference on every datatype, with ties and NaN', () => {
    const r = rng(5);
    for (const dtype of ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'] as DType[]) {
      for (let trial = 0; trial < 30; trial++) {
        const shape = randShape(r, 3, 4).map((d) => Math.max(d, 1));
        const data = randData(r, numel(shape), dtype, -2, 2).map((v) => (dtype.startsWith('FP') ? Math.round(v) : v));
        if (dtype.startsWith('FP') && trial % 3 === 0 && data.length > 1) data[data.length - 1] = NaN;
        const axis = shape.length === 0 || trial % 4 === 0 ? null : randInt(r, 0, shape.length - 1);
        for (const op of ['argmax', 'argmin'] as const) {
          const y = kernels.argReduce(op, toTyped(dtype, data), shape, axis);
          expect(y).toBeInstanceOf(BigInt64Array);
          expect(mismatch(y, argReduceRef(op, { data, shape }, axis).data)).toBeUndefined();
        }
      }
    }
    expect(() => kernels.argReduce('argmax', new Float32Array(0), [0], null)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.argReduce('argmax', new Float32Array(0), [2, 0], 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('softmax', () => {
  it('softmax and log_softmax along every axis match the reference, stable for large logits', () => {
    const r = rng(11);
    for (const dtype of ['FP32', 'FP64'] as DType[]) {
      for (let trial = 0; trial < 30; trial++) {
        const shape = randShape(r, 4, 5, 0.05);
        if (shape.length === 0) shape.push(3);
        const axis = randInt(r, 0, shape.length - 1);
        const data = randData(r, numel(shape), dtype, -5, 5).map((v, i) => (i % 5 === 0 ? v * 2000 : v));
        for (const log of [false, true]) {
          const y = kernels.softmax(toTyped(dtype, data) as Float32Array, shape, axis, log);
          const ref = softmaxRef({ data, shape }, axis, log);
          const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-6] : [1e-12, 1e-14];
          expect(mismatch(y, ref.data, rtol, atol)).toBeUndefined();
        }
      }
    }
    expect(() => kernels.softmax(new Int32Array(2) as unknown as Float32Array, [2], 0, false)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.softmax(new Float32Array(2), [2], 1, false)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('matmul', () => {
  it('matches np.matmul with broadcast batch dims and transposes for every numeric datatype', () => {
    const r = rng(23);
    for (const dtype of ['FP32', 'FP64', 'INT32', 'INT64'] as DType[]) {
      for (let trial = 0; trial < 40; trial++) {
        const [m, k, n] = [randInt(r, 0, 6), randInt(r, 0, 6), randInt(r, 0, 6)].map((v, i) => (trial % 9 === 0 ? v : Math.max(v, 1) + i));
        const out = randShape(r, 3, 3);
        const batchA = out.slice(randInt(r, 0, out.length)).map((d) => (r() < 0.3 ? 1 : d));
        const batchB = out.slice(randInt(r, 0, out.length)).map((d) => (r() < 0.3 ? 1 : d));
        const ta = r() < 0.5;
        const tb = r() < 0.5;
        const as = [...batchA, ...(ta ? [k, m] : [m, k])] as number[];
        const bs = [...batchB, ...(tb ? [n, k] : [k, n])] as number[];
        const a = randData(r, numel(as), dtype, -4, 4);
        const b = randData(r, numel(bs), dtype, -4, 4);
        const res = kernels.matmul(toTyped(dtype, a), as, toTyped(dtype, b), bs, ta, tb);
        const ref = matmulRef({ data: a, shape: as }, { data: b, shape: bs }, ta, tb);
        expect(res.shape).toEqual(ref.shape);
        expect(kindOf(res.data)).toBe(dtype);
        const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-4] : dtype === 'FP64' ? [1e-12, 1e-12] : [0, 0];
        expect(mismatch(res.data, ref.data, rtol, atol), `${JSON.stringify(as)}${ta ? 'T' : ''} @ ${JSON.stringify(bs)}${tb ? 'T' : ''}`).toBeUndefined();
      }
    }
  });

  it('propagates NaN/Inf and rejects bad operands', () => {
    const y = kernels.matmul(new Float64Array([NaN, 1, Infinity, 1]), [2, 2], new Float64Array([1, 0, 0, 1]), [2, 2], false, false);
    expect(Number.isNaN(y.data[0] as number)).toBe(true);
    expect(y.data[2]).toBe(Infinity);
    const bad = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    bad(() => kernels.matmul(new Float32Array(6), [2, 3], new Float32Array(6), [2, 3], false, false));
    bad(() => kernels.matmul(new Float32Array(3), [3], new Float32Array(3), [3, 1], false, false));
    bad(() => kernels.matmul(new Float32Array(4), [2, 2], new Float64Array(4), [2, 2], false, false));
    bad(() => kernels.matmul(new Float32Array(8), [2, 2, 2], new Float32Array(12), [3, 2, 2], false, false));
    bad(() => kernels.matmul(new Uint8Array(4), [2, 2], new Uint8Array(4), [2, 2], false, false));
  });
});
