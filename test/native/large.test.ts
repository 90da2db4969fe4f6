// Large inputs take the streaming-store paths (outputs >= 2 MiB) and the malloc-backed output buffers.
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import { rng } from '../support/random.js';
import { fromTyped } from './reference.js';

const N = (1 << 20) + 13; // not a multiple of any vector width

function randomF(Ctor: Float32ArrayConstructor | Float64ArrayConstructor, n: number, seed: number): Float32Array | Float64Array {
  const r = rng(seed);
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = (r() - 0.5) * 8;
  a[5] = NaN;
  a[7] = Infinity;
  a[n - 2] = -Infinity;
  return a;
}

describe('large arrays', () => {
  for (const Ctor of [Float32Array, Float64Array]) {
    it(`${Ctor.name} add/sub/mul/div are exact IEEE results, same-shape and scalar, aligned or not`, () => {
      const round = Ctor === Float32Array ? Math.fround : (v: number) => v;
      const a = randomF(Ctor, N + 1, 1).subarray(1); // misaligned view
      const b = randomF(Ctor, N, 2);
      const c = new Ctor([1.75]);
      const f = {
        add: (x: number, y: number) => x + y,
        sub: (x: number, y: number) => x - y,
        mul: (x: number, y: number) => x * y,
        div: (x: number, y: number) => x / y,
      };
      for (const op of ['add', 'sub', 'mul', 'div'] as const) {
        const same = kernels.binary(op, a, [N], b, [N]).data as Float32Array;
        const left = kernels.binary(op, c, [], b, [N]).data as Float32Array;
        const right = kernels.binary(op, a, [N], c, [1]).data as Float32Array;
        let bad = -1;
        for (let i = 0; i < N && bad < 0; i++) {
          const ok = (got: number, want: number) => Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));
          if (!ok(same[i] as number, round(f[op](a[i] as number, b[i] as number)))) bad = i;
          if (!ok(left[i] as number, round(f[op](1.75, b[i] as number)))) bad = i;
          if (!ok(right[i] as number, round(f[op](a[i] as number, 1.75)))) bad = i;
        }
        expect(bad, `${op} first mismatch`).toBe(-1);
      }
    });

    it(`${Ctor.name} unary ops give the same values in one large call as in small calls`, () => {
      const x = randomF(Ctor, N, 3);
      for (const op of ['exp', 'tanh', 'sigmoid', 'log', 'gelu', 'neg'] as const) {
        const big = kernels.unary(op, x);
        const parts: number[] = [];
        for (let i = 0; i < N; i += 1000) parts.push(...(kernels.unary(op, x.subarray(i, Math.min(N, i + 1000))) as Float32Array));
        expect(Array.from(big as Float32Array), op).toEqual(parts);
      }
    });
  }

  it('reductions and matmul on large inputs', () => {
    const x = new Float32Array(3 * N).fill(0.5);
    expect(fromTyped(kernels.reduce('sum', x, [3, N], [1]))).toEqual([N / 2, N / 2, N / 2]);
    const a = new Float64Array(300 * 400).fill(1);
    const m = kernels.matmul(a, [300, 400], a, [300, 400], false, true);
    expect(m.shape).toEqual([300, 300]);
    expect((m.data as Float64Array).every((v) => v === 400)).toBe(true);
  });
});
