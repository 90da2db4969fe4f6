/**
 * The scan kernels (native/cumulative.cpp): cumulative (cumsum/cumprod, exclusive, reverse) over every datatype and
 * random shapes against a plain reference, inner sizes past the column block, integer wrapping, the linear
 * recurrence in both directions, sync and async agreeing, and argument errors.
 */
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { fromTyped, kindOf, mismatch, numel, randData, randInt, randShape, toTyped } from './reference.js';

/** Scan along `axis` of a row-major tensor; `link(t)` gives the coefficient index for linear scans. */
function scanRef(data: readonly number[], shape: number[], axis: number, step: (acc: number, v: number, t: number) => number,
  init: number, exclusive: boolean, reverse: boolean): number[] {
  const n = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const out = new Array<number>(data.length).fill(0);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let acc = init;
      for (let k = 0; k < n; k++) {
        const t = reverse ? n - 1 - k : k;
        const at = o * n * inner + t * inner + j;
        if (exclusive) out[at] = acc;
        acc = step(acc, data[at]!, at);
        if (!exclusive) out[at] = acc;
      }
    }
  }
  return out;
}

describe('cumulative', () => {
  const dtypes: DType[] = ['FP32', 'FP64', 'INT32', 'INT64'];
  for (const op of ['cumsum', 'cumprod'] as const) {
    for (const dtype of dtypes) {
      it(`${op} ${dtype}: random shapes, axes, exclusive and reverse`, () => {
        const r = rng(op.length * 13 + dtype.length);
        for (let trial = 0; trial < 50; trial++) {
          const shape = randShape(r, 4, 5, 0.05);
          if (shape.length === 0) shape.push(3);
          const axis = randInt(r, 0, shape.length - 1);
          const exclusive = r() < 0.5, reverse = r() < 0.5;
          const data = randData(r, numel(shape), dtype, op === 'cumprod' ? -2 : -3, op === 'cumprod' ? 2 : 3);
          const y = kernels.cumulative(op, toTyped(dtype, data), shape, axis, exclusive, reverse);
          const ref = op === 'cumsum'
            ? scanRef(data, shape, axis, (a, v) => a + v, 0, exclusive, reverse)
            : scanRef(data, shape, axis, (a, v) => a * v, 1, exclusive, reverse);
          expect(kindOf(y)).toBe(dtype);
          const [rtol, atol] = dtype === 'FP32' ? [1e-5, 1e-5] : dtype === 'FP64' ? [1e-12, 1e-12] : [0, 0];
          expect(mismatch(y, ref, rtol, atol), `${op} ${JSON.stringify(shape)} axis ${axis} ${exclusive} ${reverse}`).toBeUndefined();
        }
      });
    }
  }

  it('inner sizes past the column block and a long axis', () => {
    const shape = [3, 700];
    const data = Array.from({ length: 2100 }, (_, i) => ((i * 37) % 11) - 5);
    for (const reverse of [false, true]) {
      const y = kernels.cumulative('cumsum', toTyped('FP64', data), shape, 0, false, reverse);
      expect(mismatch(y, scanRef(data, shape, 0, (a, v) => a + v, 0, false, reverse))).toBeUndefined();
    }
    const long = Array.from({ length: 5000 }, (_, i) => (i % 3) - 1);
    expect(mismatch(kernels.cumulative('cumsum', toTyped('INT32', long), [5000], 0, true, false),
      scanRef(long, [5000], 0, (a, v) => a + v, 0, true, false))).toBeUndefined();
  });

  it('integers wrap; FP32 accumulates in double', () => {
    expect(fromTyped(kernels.cumulative('cumsum', new Int32Array([2 ** 31 - 1, 1]), [2], 0, false, false))).toEqual([2 ** 31 - 1, -(2 ** 31)]);
    expect(Array.from(kernels.cumulative('cumsum', new BigInt64Array([2n ** 63n - 1n, 1n]), [2], 0, false, false) as BigInt64Array)).toEqual([2n ** 63n - 1n, -(2n ** 63n)]);
    const n = 1 << 16;
    const y = kernels.cumulative('cumsum', new Float32Array(n).fill(0.1), [n], 0, false, false) as Float32Array;
    expect(Math.abs(y[n - 1]! - Math.fround(0.1) * n)).toBeLessThan(1e-2);
  });

  it('sync and async agree; empty tensors are fine', async () => {
    const x = toTyped('FP64', [1, 2, 3, 4, 5, 6]);
    const a = await kernels.async.cumulative('cumprod', x, [2, 3], 1, true, true);
    expect(fromTyped(a)).toEqual(fromTyped(kernels.cumulative('cumprod', x, [2, 3], 1, true, true)));
    expect(fromTyped(kernels.cumulative('cumsum', new Float64Array(0), [0, 3], 1, false, false))).toEqual([]);
  });

  it('refuses BOOL, unknown ops, bad axes and lengths', () => {
    const bad = (f: () => unknown, msg: RegExp) => expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(msg) }));
    bad(() => kernels.cumulative('cumsum', new Uint8Array(2), [2], 0, false, false), /BOOL/);
    bad(() => kernels.cumulative('cummax', new Float64Array(2), [2], 0, false, false), /unknown cumulative op 'cummax'/);
    bad(() => kernels.cumulative('cumsum', new Float64Array(2), [2], 1, false, false), /axis 1 is out of range for rank 1/);
    bad(() => kernels.cumulative('cumsum', new Float64Array(2), [2], -1, false, false), /out of range/);
    bad(() => kernels.cumulative('cumsum', new Float64Array(3), [2], 0, false, false), /3 elements/);
    bad(() => kernels.cumulative('cumsum', new Float64Array(1), [], 0, false, false), /rank 0/);
  });
});

describe('linearScan', () => {
  it('forward h[t] = b[t] + a[t] h[t-1] and reverse h[t] = b[t] + a[t+1] h[t+1], any axis', () => {
    const r = rng(77);
    for (let trial = 0; trial < 40; trial++) {
      const shape = randShape(r, 3, 5, 0.05);
      if (shape.length === 0) shape.push(4);
      const axis = randInt(r, 0, shape.length - 1);
      const reverse = r() < 0.5;
      const dtype: DType = trial % 2 ? 'FP32' : 'FP64';
      const a = randData(r, numel(shape), dtype, -1.5, 1.5);
      const b = randData(r, numel(shape), dtype, -2, 2);
      const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
      const n = shape[axis]!;
      // the coefficient linking t to the position scanned before it: a[t] going forward, a[t + 1] going backward
      // (at the first scanned position h is still 0, so its coefficient does not matter)
      const coef = (at: number): number => (!reverse ? a[at]! : Math.floor(at / inner) % n === n - 1 ? 0 : a[at + inner]!);
      const ref = scanRef(b, shape, axis, (h, v, at) => v + coef(at) * h, 0, false, reverse);
      const y = kernels.linearScan(toTyped(dtype, a) as Float64Array, toTyped(dtype, b) as Float64Array, shape, axis, reverse);
      const [rtol, atol] = dtype === 'FP32' ? [1e-4, 1e-4] : [1e-12, 1e-12];
      expect(mismatch(y, ref, rtol, atol), `${JSON.stringify(shape)} axis ${axis} reverse ${reverse}`).toBeUndefined();
    }
  });

  it('refuses integer or mixed datatypes and mismatched lengths', () => {
    const bad = (f: () => unknown, msg: RegExp) => expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(msg) }));
    const k = kernels as unknown as { linearScan: (...a: unknown[]) => unknown };
    bad(() => k.linearScan(new Int32Array(2), new Int32Array(2), [2], 0, false), /float datatype/);
    bad(() => k.linearScan(new Float32Array(2), new Float64Array(2), [2], 0, false), /FP32 and FP64/);
    bad(() => k.linearScan(new Float64Array(3), new Float64Array(2), [2], 0, false), /3 elements/);
    bad(() => k.linearScan(new Float64Array(2), new Float64Array(2), [2], 3, false), /axis 3/);
  });
});
