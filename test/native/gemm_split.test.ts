// Products large enough to be split across threads (native/gemm.cpp: m*n*k >= 2^24 with nothing else running, cut
// into parts over rows of C, or over columns when C is wider) and batches of products split by batch entry
// (native/matmul.cpp), against a reference loop: odd sizes (part boundaries that are not multiples of the alignment,
// remainders in every blocking), every transpose, FP32 and FP64.
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import { rng } from '../support/random.js';

type Float = Float32Array | Float64Array;

function refMatmul(a: Float, b: Float, batch: number, m: number, n: number, k: number, ta: boolean, tb: boolean, bShared: boolean): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    const ao = p * m * k, bo = bShared ? 0 : p * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a[ao + (ta ? q * m + i : i * k + q)]! * b[bo + (tb ? j * k + q : q * n + j)]!;
        out[(p * m + i) * n + j] = s;
      }
  }
  return out;
}

function worst(got: Float, want: Float64Array): number {
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return w;
}

const rand = (r: () => number, n: number, f32: boolean): Float => {
  const a = f32 ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
};

describe('products split across threads', () => {
  // m*n*k ~ 20-27 M multiply-adds: over the threshold; tall (split by rows) and wide (split by columns)
  const shapes: [number, number, number][] = [[517, 301, 131], [131, 771, 263]];
  for (const f32 of [true, false])
    for (const [m, n, k] of shapes)
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        it(`${f32 ? 'FP32' : 'FP64'} ${m}x${n}x${k}${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`, () => {
          const r = rng(m + n + k + (ta ? 1 : 0) + (tb ? 2 : 0));
          const a = rand(r, m * k, f32), b = rand(r, k * n, f32);
          const got = kernels.matmul(a, ta ? [k, m] : [m, k], b, tb ? [n, k] : [k, n], ta, tb);
          expect(got.shape).toEqual([m, n]);
          expect(worst(got.data as Float, refMatmul(a, b, 1, m, n, k, ta, tb, true))).toBeLessThan(f32 ? 1e-5 : 1e-12);
        });
      }

  for (const f32 of [true, false]) {
    it(`${f32 ? 'FP32' : 'FP64'} a batch of 7 products (129x67x513 each, both operands batched) split by batch entry`, () => {
      const [batch, m, n, k] = [7, 129, 67, 513];
      const r = rng(5);
      const a = rand(r, batch * m * k, f32), b = rand(r, batch * k * n, f32);
      const got = kernels.matmul(a, [batch, m, k], b, [batch, n, k], false, true);
      expect(got.shape).toEqual([batch, m, n]);
      expect(worst(got.data as Float, refMatmul(a, b, batch, m, n, k, false, true, false))).toBeLessThan(f32 ? 1e-5 : 1e-12);
    });
  }

  it('a batch broadcast against a shared operand (transposed a: no folding) matches the reference', () => {
    const [batch, m, n, k] = [3, 257, 193, 129];
    const r = rng(6);
    const a = rand(r, batch * m * k, false), b = rand(r, k * n, false);
    const got = kernels.matmul(a, [batch, k, m], b, [k, n], true, false);
    expect(got.shape).toEqual([batch, m, n]);
    expect(worst(got.data as Float, refMatmul(a, b, batch, m, n, k, true, false, true))).toBeLessThan(1e-12);
  });
});
