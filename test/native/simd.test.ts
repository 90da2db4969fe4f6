import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { ADDON_PATH, kernels } from '../../src/kernels.js';
import { mismatch } from './reference.js';

/** String() drops the sign of -0; Number('-0') restores it. */
const str = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/** Runs `body` (which sees the addon as `k` and must return JSON-able data) in a child with GRADSERVE_SIMD=tier. */
function inTier<T>(tier: string, body: string): T {
  const script = `const k = require(${JSON.stringify(ADDON_PATH)}); const run = () => { ${body} };
    process.stdout.write(JSON.stringify({ simd: k.info().simd, result: run() }));`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, GRADSERVE_SIMD: tier }, maxBuffer: 1 << 26 });
  return JSON.parse(out.toString()) as T;
}

const EXP_ERRORS = `
  const n = 200000, x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.fround(-104 + (193 * i) / n);
  const y = k.unary('exp', x);
  let rel = 0, sub = 0, inf = true;
  for (let i = 0; i < n; i++) {
    const e = Math.fround(Math.exp(x[i]));
    if (e === Infinity) inf = inf && y[i] === Infinity;
    else if (e >= 1.1754943508222875e-38) rel = Math.max(rel, Math.abs(y[i] - e) / e);
    else sub = Math.max(sub, Math.abs(y[i] - e));
  }
  return { rel, sub, inf };`;

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 88.72, 88.73, -87.3, -103.3, -104, 1e4, -1e4, 1e-30];
const SPECIAL_COUNT = SPECIAL.length;
function probe(): number[] {
  const xs: number[] = [...SPECIAL];
  for (let i = 0; i < 2000; i++) xs.push(-20 + (40 * i) / 2000);
  for (let i = 0; i < 300; i++) xs.push(0.001 + i / 10);
  return xs;
}

const tiers = ['default', 'avx2'];
/** every unary op of the native table (native/op_tables.h) */
const UNARY_OPS = kernels.info().ops.unary;

describe('SIMD paths', () => {
  for (const tier of tiers) {
    it(`float32 exp is within 1 ulp across its whole range, 1 subnormal ulp below FLT_MIN (tier ${tier})`, () => {
      const r = inTier<{ simd: string; result: { rel: number; sub: number; inf: boolean } }>(tier === 'default' ? '' : tier, EXP_ERRORS);
      if (tier === 'avx2') expect(['avx2+fma', 'sse2']).toContain(r.simd);
      expect(r.result.rel).toBeLessThanOrEqual(2 ** -23);
      expect(r.result.sub).toBeLessThanOrEqual(2 ** -149);
      expect(r.result.inf).toBe(true);
    });
  }

  it('every tier agrees with the scalar path on every unary op, including NaN/Inf and -0', () => {
    const xs = probe();
    const body = `const xs = ${JSON.stringify(xs.map(str))}.map(Number); const out = {};
      for (const op of ${JSON.stringify(UNARY_OPS)})
        out[op] = [Array.from(k.unary(op, Float32Array.from(xs)), String), Array.from(k.unary(op, Float64Array.from(xs)), String)];
      return out;`;
    type R = { simd: string; result: Record<string, [string[], string[]]> };
    const scalar = inTier<R>('off', body);
    expect(scalar.simd).toBe('sse2');
    for (const tier of ['', 'avx2']) {
      const vec = inTier<R>(tier, body);
      for (const op of UNARY_OPS) {
        const [s32, s64] = (scalar.result[op] as [string[], string[]]).map((a) => a.map(Number));
        const [v32, v64] = (vec.result[op] as [string[], string[]]).map((a) => a.map(Number));
        expect(mismatch(Float32Array.from(v32 as number[]), s32 as number[], 3e-6, 1e-6), `${op} FP32 ${vec.simd}`).toBeUndefined();
        expect(mismatch(Float64Array.from(v64 as number[]), s64 as number[], 1e-13, 1e-13), `${op} FP64 ${vec.simd}`).toBeUndefined();
        // On the special inputs (NaN, +-Inf, +-0, ...) even the signs of zero results must match.
        const signs = (a: number[]) => a.slice(0, SPECIAL_COUNT).map((v) => Math.sign(1 / v));
        expect(signs(v32 as number[]), `${op} sign FP32`).toEqual(signs(s32 as number[]));
        expect(signs(v64 as number[]), `${op} sign FP64`).toEqual(signs(s64 as number[]));
      }
    }
    expect(kernels.info().simd).toMatch(/^(avx512f|avx2\+fma|sse2)$/);
  });
});
