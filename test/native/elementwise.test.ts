import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import {
  binaryRef, broadcastPair, broadcastRef, fromTyped, kindOf, mismatch, numel, randData, randShape, toTyped,
  unaryRef,
} from './reference.js';

// every op of the native tables (native/op_tables.h)
const { unary: UNARY_OPS, binary: BINARY_OPS } = kernels.info().ops;
const FP: DType[] = ['FP32', 'FP64'];
const INT: DType[] = ['INT32', 'INT64'];
const INT_UNARY = ['neg', 'abs', 'sign', 'square', 'relu', 'relu_grad'];
/** random inputs where the op is defined (default [-6, 6]) */
const DOMAIN: Record<string, [number, number]> = {
  log: [0.01, 6], sqrt: [0.01, 6], reciprocal: [0.01, 6], log1p: [0.01, 6], log2: [0.01, 6], log10: [0.01, 6],
  rsqrt: [0.01, 6], asin: [-1, 1], acos: [-1, 1], atanh: [-1, 1], acosh: [1, 7],
};
/** the kernel's scalar parameter of the ops that take one */
const PARAM: Record<string, number> = { leaky_relu: 0.2, elu: 0.7, celu: 1.3 };
/** FP-only binary ops (the others also take INT32/INT64) */
const FP_BINARY = ['atan2', 'logaddexp', 'hypot'];
const BOOL_OUT = ['equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal', 'logical_and', 'logical_or', 'logical_xor'];
const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 1e4, -1e4, 88, -88, 100, -100, 1e-30, -1e-30, 0.5];
const round = (d: DType, v: number): number => (d === 'FP32' ? Math.fround(v) : v);

describe('unary', () => {
  for (const op of UNARY_OPS) {
    for (const dtype of FP) {
      it(`${op} ${dtype} matches the reference, including NaN/Inf and large |x|`, () => {
        const r = rng(op.length * 31 + dtype.length);
        const [lo, hi] = DOMAIN[op] ?? [-6, 6];
        const p = PARAM[op];
        // Lengths that exercise SIMD bodies and scalar tails.
        for (const n of [0, 1, 7, 8, 9, 33, 1000]) {
          const xs = [...randData(r, n, dtype, lo, hi), ...(n === 1000 ? SPECIAL.map((v) => round(dtype, v)) : [])];
          const x = toTyped(dtype, xs);
          const y = p === undefined ? kernels.unary(op, x) : kernels.unary(op, x, p);
          expect(kindOf(y)).toBe(dtype);
          const expected = xs.map((v) => round(dtype, unaryRef(op, v, false, p === undefined ? 0 : round(dtype, p))));
          const [rtol, atol] = dtype === 'FP32' ? [2e-5, 1e-5] : [1e-11, 1e-12];
          expect(mismatch(y, expected, rtol, atol), `${op} ${dtype} n=${n}`).toBeUndefined();
        }
      });
    }
  }

  for (const dtype of INT) {
    it(`integer ops on ${dtype} (wrapping like the type)`, () => {
      const r = rng(7);
      const xs = [...randData(r, 50, dtype, -100, 100), 0];
      for (const op of INT_UNARY) {
        const y = kernels.unary(op, toTyped(dtype, xs));
        expect(kindOf(y)).toBe(dtype);
        expect(mismatch(y, xs.map((v) => unaryRef(op, v, true) + 0))).toBeUndefined();
      }
      const min = dtype === 'INT32' ? new Int32Array([-2147483648]) : new BigInt64Array([-(2n ** 63n)]);
      expect(kernels.unary('neg', min)[0]).toBe(min[0]);
      expect(kernels.unary('abs', min)[0]).toBe(min[0]);
    });
  }

  it('rejects FP-only ops on integers and everything on BOOL', () => {
    expect(() => kernels.unary('exp', new Int32Array(2))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.unary('neg', new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => kernels.unary('nope' as 'exp', new Float32Array(2))).toThrow(/unknown unary op/);
  });

  it('round is half to even; the scalar parameter reaches leaky_relu/elu/celu (absent: 0)', () => {
    expect(fromTyped(kernels.unary('round', new Float64Array([0.5, 1.5, 2.5, -0.5, -2.5, 2.5000000000000004])))).toEqual([0, 2, 2, -0, -2, 3]);
    expect(fromTyped(kernels.unary('round', new Float32Array([0.5, 1.5, 2.5, -3.5])))).toEqual([0, 2, 2, -4]);
    expect(fromTyped(kernels.unary('leaky_relu', new Float64Array([-2, 3]), 0.25))).toEqual([-0.5, 3]);
    expect(fromTyped(kernels.unary('leaky_relu', new Float64Array([-2, 3])))).toEqual([-0, 3]);
    expect(fromTyped(kernels.unary('elu', new Float64Array([-1]), 2))).toEqual([2 * Math.expm1(-1)]);
    expect(fromTyped(kernels.unary('celu', new Float64Array([-1]), 2))).toEqual([2 * Math.expm1(-0.5)]);
    expect(() => kernels.unary('elu', new Float64Array(1), 'a' as unknown as number)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('sigmoid and softplus stay finite and exact for |x| = 1e4 in FP32', () => {
    const x = new Float32Array([1e4, -1e4, 50, -50]);
    // Exact where the answer is representable; within a few ulp for the tiny tails.
    expect(mismatch(kernels.unary('sigmoid', x), [1, 0, 1, 1 / (1 + Math.exp(50))], 1e-6)).toBeUndefined();
    expect(mismatch(kernels.unary('softplus', x), [1e4, 0, 50, Math.log1p(Math.exp(-50))], 1e-6)).toBeUndefined();
    expect(mismatch(kernels.unary('sigmoid_grad', x), [0, 0, Math.exp(-50), Math.exp(-50)], 1e-6)).toBeUndefined();
    expect(fromTyped(kernels.unary('sigmoid', x)).slice(0, 3)).toEqual([1, 0, 1]);
  });
});

describe('binary', () => {
  for (const dtype of [...FP, ...INT]) {
    it(`every op on ${dtype} with random broadcasting (scalars, zero-size dims)`, () => {
      const r = rng(dtype.length * 101);
      const isInt = INT.includes(dtype);
      for (let trial = 0; trial < 40; trial++) {
        const out = randShape(r, 4, 4, 0.08);
        const pair = broadcastPair(r, out);
        // Every fourth trial uses identical shapes (the same-shape fast path).
        const [as, bs] = trial % 4 === 3 ? [pair[0], pair[0]] : pair;
        for (const op of BINARY_OPS) {
          if (isInt && FP_BINARY.includes(op)) continue;
          const [lo, hi] = op === 'pow' && isInt ? [-3, 4] : [-3, 3];
          const a = randData(r, numel(as), dtype, lo, hi);
          const b = randData(r, numel(bs), dtype, lo, hi);
          if (!isInt && a.length > 2) { a[0] = NaN; a[1] = Infinity; }
          if (!isInt && b.length > 1) { b[b.length - 1] = -Infinity; }
          if (op === 'mul_no_nan' && !isInt && a.length > 2 && b.length > 0) { a[2] = 0; b[0] = NaN; }
          const res = kernels.binary(op, toTyped(dtype, a), as, toTyped(dtype, b), bs);
          const ref = broadcastRef([{ data: a, shape: as }, { data: b, shape: bs }], (x, y) => {
            const v = binaryRef(op, x as number, y as number, isInt);
            return dtype === 'FP32' ? Math.fround(v) : v;
          });
          expect(res.shape).toEqual(ref.shape);
          expect(kindOf(res.data)).toBe(BOOL_OUT.includes(op) ? 'BOOL' : dtype);
          const rtol = dtype === 'FP32' ? 1e-6 : dtype === 'FP64' ? 1e-14 : 0;
          // logaddexp's max + log1p(...) cancels where the result is near 0: compare absolutely there
          const atol = op === 'logaddexp' ? (dtype === 'FP32' ? 1e-6 : 1e-15) : 0;
          expect(mismatch(res.data, ref.data, rtol, atol), `${op} ${JSON.stringify(as)} ${JSON.stringify(bs)}`).toBeUndefined();
        }
      }
    });
  }

  it('integer division truncates toward zero, x / 0 = 0, and INT_MIN / -1 wraps', () => {
    const a = new Int32Array([7, -7, 7, -7, 5, -2147483648]);
    const b = new Int32Array([2, 2, -2, -2, 0, -1]);
    expect(Array.from(kernels.binary('div', a, [6], b, [6]).data as Int32Array)).toEqual([3, -3, -3, 3, 0, -2147483648]);
    const p = kernels.binary('pow', new BigInt64Array([2n, 1n, -1n, -1n, 3n, 0n]), [6], new BigInt64Array([10n, -5n, -3n, -4n, -1n, 0n]), [6]);
    expect(Array.from(p.data as BigInt64Array)).toEqual([1024n, 1n, -1n, 1n, 0n, 1n]);
  });

  it('atan2, logaddexp and hypot refuse integers; logical ops take BOOL (and read any nonzero number as true)', () => {
    for (const op of FP_BINARY) {
      expect(() => kernels.binary(op, new Int32Array(1), [1], new Int32Array(1), [1]), op).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/does not accept INT32/) }),
      );
    }
    const r = kernels.binary('logical_xor', new Uint8Array([1, 0, 1, 0]), [4], new Uint8Array([1, 1, 0, 0]), [4]);
    expect(Array.from(r.data as Uint8Array)).toEqual([0, 1, 1, 0]);
    const f = kernels.binary('logical_and', new Float64Array([NaN, 0, -0, 2]), [4], new Float64Array([1]), []);
    expect(Array.from(f.data as Uint8Array)).toEqual([1, 0, 0, 1]);
  });

  it('integer mod/fmod: x mod 0 = 0 and INT_MIN mod -1 = 0 without trapping', () => {
    const a = new BigInt64Array([7n, -7n, 5n, -(2n ** 63n)]);
    const b = new BigInt64Array([-3n, 3n, 0n, -1n]);
    expect(Array.from(kernels.binary('mod', a, [4], b, [4]).data as BigInt64Array)).toEqual([-2n, 2n, 0n, 0n]);
    expect(Array.from(kernels.binary('fmod', a, [4], b, [4]).data as BigInt64Array)).toEqual([1n, -1n, 0n, 0n]);
  });

  it('comparisons accept BOOL, arithmetic does not', () => {
    const r = kernels.binary('equal', new Uint8Array([1, 0]), [2], new Uint8Array([1, 1]), [2]);
    expect(Array.from(r.data as Uint8Array)).toEqual([1, 0]);
    expect(() => kernels.binary('add', new Uint8Array(1), [1], new Uint8Array(1), [1])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('rejects incompatible shapes and mixed datatypes', () => {
    expect(() => kernels.binary('add', new Float32Array(2), [2], new Float32Array(3), [3])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/do not broadcast/) }),
    );
    expect(() => kernels.binary('add', new Float32Array(2), [2], new Float64Array(2), [2])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('where and clip', () => {
  it('where broadcasts three ways for every datatype', () => {
    const r = rng(99);
    for (const dtype of [...FP, ...INT, 'BOOL'] as DType[]) {
      for (let trial = 0; trial < 25; trial++) {
        const out = randShape(r, 4, 4, 0.05);
        const [cs, as] = broadcastPair(r, out);
        const bs = broadcastPair(r, out)[0];
        const c = randData(r, numel(cs), 'BOOL');
        const a = randData(r, numel(as), dtype);
        const b = randData(r, numel(bs), dtype);
        const res = kernels.where(Uint8Array.from(c), cs, toTyped(dtype, a), as, toTyped(dtype, b), bs);
        const ref = broadcastRef([{ data: c, shape: cs }, { data: a, shape: as }, { data: b, shape: bs }], (cv, av, bv) => (cv ? av : bv) as number);
        expect(res.shape).toEqual(ref.shape);
        expect(kindOf(res.data)).toBe(dtype);
        expect(mismatch(res.data, ref.data)).toBeUndefined();
      }
    }
  });

  it('where needs a Uint8Array condition and same-typed branches', () => {
    expect(() => kernels.where(new Int32Array(1) as unknown as Uint8Array, [1], new Float32Array(1), [1], new Float32Array(1), [1])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => kernels.where(new Uint8Array(1), [1], new Float32Array(1), [1], new Int32Array(1), [1])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('clip with either bound null keeps NaN and handles integers', () => {
    const x = new Float64Array([-5, -1, 0, 1, 5, NaN, Infinity, -Infinity]);
    expect(fromTyped(kernels.clip(x, -1, 2))).toEqual([-1, -1, 0, 1, 2, NaN, 2, -1]);
    expect(fromTyped(kernels.clip(x, null, 2))).toEqual([-5, -1, 0, 1, 2, NaN, 2, -Infinity]);
    expect(fromTyped(kernels.clip(x, 0, null))).toEqual([0, 0, 0, 1, 5, NaN, Infinity, 0]);
    expect(fromTyped(kernels.clip(x, null, null))).toEqual(fromTyped(x));
    expect(fromTyped(kernels.clip(new Int32Array([-5, 0, 5]), -1.5, 2.5))).toEqual([-1, 0, 2]);
    expect(fromTyped(kernels.clip(new BigInt64Array([-5n, 0n, 5n]), -1, 1))).toEqual([-1, 0, 1]);
    expect(kindOf(kernels.clip(new Float32Array([3]), 0, 1))).toBe('FP32');
    expect(() => kernels.clip(x, 2, 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
  it('mul_no_nan on the vector path: 0 wherever a is 0 (also against Inf and NaN), a * b elsewhere, NaN in a kept', () => {
    for (const make of [(xs: number[]) => Float32Array.from(xs), (xs: number[]) => Float64Array.from(xs)]) {
      const n = 1000; // long enough for whole vectors, a ragged tail, and both operands contiguous or scalar
      const a = make(Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : i % 7 === 0 ? NaN : (i % 11) - 5)));
      const b = make(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? Infinity : i % 5 === 0 ? NaN : 0.5 * i)));
      const want = Array.from(a, (x, i) => (x === 0 ? 0 : x * b[i]!));
      expect(fromTyped(kernels.binary('mul_no_nan', a, [n], b, [n]).data)).toEqual(want);
      expect(fromTyped(kernels.binary('mul_no_nan', a, [n], make([Infinity]), []).data)).toEqual(Array.from(a, (x) => (x === 0 ? 0 : x * Infinity)));
      expect(fromTyped(kernels.binary('mul_no_nan', make([0]), [], b, [n]).data)).toEqual(new Array(n).fill(0));
    }
  });
});
