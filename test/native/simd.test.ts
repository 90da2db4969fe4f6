import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { ADDON_PATH, UNARY_OPS, kernels } from '../../src/kernels.js';
import { mismatch } from './reference.js';

const FLT_MIN = 1.1754943508222875e-38;
/** String() drops the sign of -0; Number('-0') restores it. */
const str = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

function probe(): number[] {
  const xs: number[] = [NaN, Infinity, -Infinity, 0, -0, 88.72, 88.73, -87.3, -103.3, -104, 1e4, -1e4, 1e-30];
  for (let i = 0; i < 2000; i++) xs.push(-20 + (40 * i) / 2000);
  for (let i = 0; i < 300; i++) xs.push(0.001 + i / 10);
  return xs;
}

describe('SIMD paths', () => {
  it('float32 exp is within 1 ulp across its whole range (1 subnormal ulp below FLT_MIN)', () => {
    const n = 200_000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.fround(-104 + (193 * i) / n);
    const y = kernels.unary('exp', x) as Float32Array;
    let worstRel = 0;
    let worstSub = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.fround(Math.exp(x[i] as number));
      const got = y[i] as number;
      if (e === Infinity) expect(got).toBe(Infinity);
      else if (e >= FLT_MIN) worstRel = Math.max(worstRel, Math.abs(got - e) / e);
      else worstSub = Math.max(worstSub, Math.abs(got - e));
    }
    expect(worstRel).toBeLessThanOrEqual(2 ** -23);
    expect(worstSub).toBeLessThanOrEqual(2 ** -149);
  });

  it('the vector and scalar paths agree on every unary op, including NaN/Inf (GRADSERVE_SIMD=off)', () => {
    const xs = probe();
    const script = `
      const k = require(${JSON.stringify(ADDON_PATH)});
      const xs = ${JSON.stringify(xs.map(str))}.map(Number);
      const out = {};
      for (const op of ${JSON.stringify(UNARY_OPS)}) {
        out[op] = [Array.from(k.unary(op, Float32Array.from(xs)), String), Array.from(k.unary(op, Float64Array.from(xs)), String)];
      }
      out.simd = k.info().simd;
      process.stdout.write(JSON.stringify(out));`;
    const res = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { env: { ...process.env, GRADSERVE_SIMD: 'off' }, maxBuffer: 1 << 26 }).toString(),
    ) as Record<string, [string[], string[]] | string>;
    expect(res.simd).toBe('sse2');
    for (const op of UNARY_OPS) {
      const [f32, f64] = (res[op] as [string[], string[]]).map((a) => a.map(Number));
      expect(mismatch(kernels.unary(op, Float32Array.from(xs)), f32 as number[], 3e-6, 1e-6), `${op} FP32`).toBeUndefined();
      expect(mismatch(kernels.unary(op, Float64Array.from(xs)), f64 as number[], 1e-13, 1e-13), `${op} FP64`).toBeUndefined();
    }
  });
});
