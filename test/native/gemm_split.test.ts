// Products large enough to be split across threads (native/gemm.cpp: m*n*k >= 2^24 with nothing else running, cut
// into parts over rows of C at multiples of 48 rows) and batches of products split by batch entry (native/matmul.cpp),
// against a reference loop: odd sizes (remainders in every blocking), every transpose, FP32 and FP64; and the same
// bits as on one thread (OPENBLAS_NUM_THREADS=1, in a child process).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { ADDON_PATH, kernels } from '../../src/kernels.js';
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
  // m*n*k ~ 20-27 M multiply-adds: over the threshold; tall (split by rows) and wide (too few rows to split)
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

  it('gives the bits of the same products on one thread', () => {
    // A checksum of the result's bits for each product, here and in a child limited to one thread.
    const script = `
      const k = require(${JSON.stringify(ADDON_PATH)});
      let s = 7;
      const r = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 - 0.5; };
      const out = [];
      for (const [F, m, n, kk, ta, tb] of [[Float32Array, 1024, 256, 256, false, false], [Float32Array, 517, 301, 131, true, false],
                                            [Float32Array, 700, 400, 97, false, true], [Float64Array, 611, 333, 129, false, false]]) {
        const a = F.from({ length: m * kk }, r), b = F.from({ length: kk * n }, r);
        const c = k.matmul(a, ta ? [kk, m] : [m, kk], b, tb ? [n, kk] : [kk, n], ta, tb).data;
        const u = new Uint32Array(c.buffer, c.byteOffset, c.byteLength / 4);
        let h = 0;
        for (let i = 0; i < u.length; i++) h = (Math.imul(h, 31) + u[i]) | 0;
        out.push(h);
      }
      console.log(JSON.stringify(out));
    `;
    const run = (env: Record<string, string>): number[] => {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout.trim()) as number[];
    };
    // GRADSERVE_LOAD_AWARE=0: split whatever else the machine runs
    expect(run({ GRADSERVE_LOAD_AWARE: '0' })).toEqual(run({ OPENBLAS_NUM_THREADS: '1' }));
  });
});
