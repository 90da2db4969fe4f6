/**
 * cumsum and cumprod: values for every exclusive/reverse combination against a plain reference, cumprod's gradient
 * and Hessian at zeros against the exact polynomial derivatives (no division anywhere), the rules on shapes with
 * unknown dims (including an axis that turns out empty), integer wrapping, and error bodies.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError, hessian, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { f64, jvpOf, opDef, Recorder, runOp, values } from './structural_support.js';

const COMBOS = [
  { exclusive: false, reverse: false },
  { exclusive: true, reverse: false },
  { exclusive: false, reverse: true },
  { exclusive: true, reverse: true },
];

/** The indices of a row whose values output position i combines. */
function members(n: number, i: number, exclusive: boolean, reverse: boolean): number[] {
  const all = Array.from({ length: n }, (_, k) => k);
  return all.filter((k) => (reverse ? (exclusive ? k > i : k >= i) : exclusive ? k < i : k <= i));
}

/** Reference scan of one row. */
function scanRow(row: number[], prod: boolean, exclusive: boolean, reverse: boolean): number[] {
  return row.map((_, i) => members(row.length, i, exclusive, reverse).reduce((a, k) => (prod ? a * row[k]! : a + row[k]!), prod ? 1 : 0));
}

/** d/dx_j of sum_i g_i prod_{k in S_i} x_k, expanded without division. */
function cumprodGrad(x: number[], g: number[], exclusive: boolean, reverse: boolean): number[] {
  return x.map((_, j) => x.reduce((acc, __, i) => {
    const s = members(x.length, i, exclusive, reverse);
    return s.includes(j) ? acc + g[i]! * s.filter((k) => k !== j).reduce((p, k) => p * x[k]!, 1) : acc;
  }, 0));
}

function oneNode(op: string, x: Tensor, attrs: Record<string, unknown>, reduce = false): Graph {
  return {
    inputs: { x: { shape: [...x.shape], datatype: x.dtype } },
    nodes: [
      { name: 'y', op, inputs: ['x'], attrs },
      ...(reduce ? [{ name: 'f', op: 'sum', inputs: ['y'] }] : []),
    ],
    outputs: [reduce ? 'f' : 'y'],
  };
}

describe('values', () => {
  const rows = [[0.5, -1.2, 2, 0.75], [1.5, 0, -0.5, 3]];
  it.each(COMBOS)('cumsum and cumprod along the last axis, %j', async (c) => {
    const x = f64([2, 4], rows.flat());
    for (const op of ['cumsum', 'cumprod'] as const) {
      const y = values(await runOp(op, [x], { axis: -1, ...c }));
      const want = rows.flatMap((r) => scanRow(r, op === 'cumprod', c.exclusive, c.reverse));
      want.forEach((w, i) => expect(y[i]).toBeCloseTo(w, 14));
    }
  });

  it('along a leading axis of a larger tensor (columns in blocks)', async () => {
    const cols = 600;
    const data = Array.from({ length: 3 * cols }, (_, i) => ((i * 7919) % 13) / 4 - 1.5);
    const y = values(await runOp('cumsum', [f64([3, cols], data)], { axis: 0, reverse: true }));
    for (let j = 0; j < cols; j += 97) {
      const col = [data[j]!, data[cols + j]!, data[2 * cols + j]!];
      scanRow(col, false, false, true).forEach((w, i) => expect(y[i * cols + j]).toBeCloseTo(w, 13));
    }
  });

  it('integers wrap around on overflow (two\'s complement, as NumPy)', async () => {
    const y = await runOp('cumsum', [tensor('INT32', [3], [2 ** 31 - 1, 1, 5])], { axis: 0 });
    expect(values(y)).toEqual([2 ** 31 - 1, -(2 ** 31), -(2 ** 31) + 5]);
    const p = await runOp('cumprod', [tensor('INT64', [2], [2n ** 62n, 4n])], { axis: 0 });
    expect(Array.from(p.data as BigInt64Array)).toEqual([2n ** 62n, 0n]);
  });

  it('FP32 accumulates in double', async () => {
    const n = 1 << 14;
    const y = values(await runOp('cumsum', [tensor('FP32', [n], new Array(n).fill(0.1))], { axis: 0 }));
    expect(Math.abs(y[n - 1]! - 0.1 * n)).toBeLessThan(1e-3);
  });

  it('a zero-size axis gives an empty result', async () => {
    const y = await runOp('cumprod', [f64([2, 0], [])], { axis: 1, exclusive: true });
    expect(y.shape).toEqual([2, 0]);
  });
});

describe('cumprod differentiates exactly through zeros', () => {
  const rows = [[0.5, 0, 1.2, -0.7, 0, 0.9], [0, 0, 1.3, -1.1, 0.6, 2], [0.8, 1.4, -0.6, 1.1, 0.7, 0]];
  const g = [0.3, -1.1, 0.7, 1.9, -0.4, 0.6];
  it.each(COMBOS)('gradient, %j', async (c) => {
    const x = f64([3, 6], rows.flat());
    const cot = f64([3, 6], [...g, ...g, ...g]);
    const grad = values((await vjp(oneNode('cumprod', x, { axis: 1, ...c }), { x }, { y: cot }, ['x'])).gradients.x!);
    const want = rows.flatMap((r) => cumprodGrad(r, g, c.exclusive, c.reverse));
    want.forEach((w, i) => expect(grad[i]).toBeCloseTo(w, 14));
  });

  it.each(COMBOS)('Hessian of sum(cumprod(x)) at zeros, %j', async (c) => {
    const row = [0.5, 0, 1.2, 0, -0.7];
    const x = f64([5], row);
    const H = values((await hessian(oneNode('cumprod', x, { axis: 0, ...c }, true), { x }, 'f', ['x'])).hessians.x!.x!);
    for (let a = 0; a < 5; a++) {
      for (let b = 0; b < 5; b++) {
        let want = 0;
        for (let i = 0; i < 5; i++) {
          const s = members(5, i, c.exclusive, c.reverse);
          if (a !== b && s.includes(a) && s.includes(b)) want += s.filter((k) => k !== a && k !== b).reduce((p, k) => p * row[k]!, 1);
        }
        expect(H[a * 5 + b], `H[${a}, ${b}]`).toBeCloseTo(want, 14);
      }
    }
  });
});

describe('rules on unknown dims', () => {
  /** The op's VJP (and JVP) built for `declared` (null dims) and run on `x`. */
  async function rulesOn(op: string, x: Tensor, declared: (number | null)[], attrs: Record<string, unknown>) {
    const def = opDef(op);
    const rec = new Recorder();
    const xr = rec.input(x, declared);
    const y = rec.op(op, [xr], attrs);
    const g = rec.input(x, declared);
    const [gx] = def.vjp!({ e: rec, inputs: [xr], output: y, g, attrs: def.attrs.parse(attrs) });
    const t = def.jvp!({ e: rec, inputs: [xr], output: y, tangents: [g], attrs: def.attrs.parse(attrs) });
    return rec.run([gx!, t]);
  }

  it.each(COMBOS)('cumprod with the scanned axis unknown matches the known-shape rules, %j', async (c) => {
    const x = f64([2, 4], [0.5, 0, 1.2, -0.7, 1.1, 0.9, -1.3, 0.4]);
    const [gx, t] = await rulesOn('cumprod', x, [null, null], { axis: 1, ...c });
    const [gk, tk] = await rulesOn('cumprod', x, [2, 4], { axis: 1, ...c });
    expect(values(gx!)).toEqual(values(gk!));
    expect(values(t!)).toEqual(values(tk!));
    expect(values((await jvpOf('cumprod', [x], [x], { axis: 1, ...c }))!)).toEqual(values(tk!));
  });

  it('an unknown axis that turns out empty stays empty', async () => {
    const [gx, t] = await rulesOn('cumprod', f64([3, 0], []), [3, null], { axis: -1, reverse: true, exclusive: true });
    expect(gx!.shape).toEqual([3, 0]);
    expect(t!.shape).toEqual([3, 0]);
  });
});

describe('error bodies', () => {
  async function failure(op: string, x: Tensor, attrs: Record<string, unknown>): Promise<GradserveError> {
    try {
      await evaluate(oneNode(op, x, attrs), { x });
    } catch (e) {
      if (e instanceof GradserveError) return e;
      throw e;
    }
    throw new Error(`${op} did not fail`);
  }

  it('axis is required', async () => {
    const e = await failure('cumsum', f64([3], [1, 2, 3]), {});
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.message).toMatch(/axis/);
    expect(e.errors?.[0]?.path).toMatch(/^graph\.nodes\[0\]\.attrs/);
  });

  it('an axis out of range names the axis and the rank', async () => {
    const e = await failure('cumprod', f64([2, 3], [1, 2, 3, 4, 5, 6]), { axis: -3 });
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].attrs.axis');
    expect(e.message).toMatch(/node "y" \(cumprod\): axis -3 is out of range for rank 2/);
  });

  it('a scalar has no axis to scan', async () => {
    const e = await failure('cumsum', f64([], [1]), { axis: 0 });
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.message).toMatch(/node "y" \(cumsum\): axis 0 is out of range for rank 0/);
  });

  it('BOOL is DATATYPE_MISMATCH', async () => {
    const e = await failure('cumsum', tensor('BOOL', [2], [1, 0]), { axis: 0 });
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.message).toMatch(/node "y" \(cumsum\): x is BOOL/);
  });
});
