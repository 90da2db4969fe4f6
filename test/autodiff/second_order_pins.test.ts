/**
 * Second derivatives through the zero-cotangent pins (OPS.md "Numerics that tests must pin"): where the first
 * derivative is pinned to 0 rather than 0 * Infinity = NaN, forward-over-reverse (hessian, hvp) and reverse-over-reverse
 * (grad of the grad graph) must not bring the NaN back. Expected values are the analytic second derivatives on the
 * taken branches and 0 on the pinned ones.
 */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, grad, hessian, hvp, tensor, transform } from '../../src/index.js';
import type { DType, Graph } from '../../src/index.js';
import { toNumbers } from './helpers.js';

function whereSqrt(dtype: DType, n: number): Graph {
  const b = new GraphBuilder();
  const x = b.input('x', [n], dtype);
  return b.output(b.where(x.greater(0), x.sqrt(), 0).sum().as('f')).build();
}

/** Hessian by forward-over-reverse, HVP with every basis vector, and reverse-over-reverse rows: all must agree. */
async function secondOrder(g: Graph, x: number[], dtype: DType): Promise<{ hess: number[]; hvps: number[]; rr: number[] }> {
  const n = x.length;
  const inputs = { x: tensor(dtype, [n], x) };
  const hess = toNumbers((await hessian(g, inputs, 'f', ['x'])).hessians.x!.x!);
  const hvps: number[] = [];
  const rr: number[] = [];
  const gg = transform(g, { transform: 'grad', of: 'f', wrt: ['x'] });
  for (let i = 0; i < n; i++) {
    const e = Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));
    hvps.push(...toNumbers((await hvp(g, inputs, 'f', { x: tensor(dtype, [n], e) })).hvp.x!));
    // row i of the Hessian: d/dx of grad:x[i], reverse mode over the grad graph
    rr.push(...await rowByReverse(gg, inputs, e, dtype));
  }
  return { hess, hvps, rr };
}

async function rowByReverse(gg: Graph, inputs: Record<string, ReturnType<typeof tensor>>, e: number[], dtype: DType): Promise<number[]> {
  // sum(grad:x * e) as a new output of the grad graph, then reverse mode again
  const pick = {
    ...gg,
    constants: { ...(gg.constants ?? {}), 'pin:e': { shape: [e.length], datatype: dtype, data: e } },
    nodes: [
      ...gg.nodes,
      { name: 'pin:m', op: 'mul', inputs: ['grad:x', 'pin:e'] },
      { name: 'pin:s', op: 'sum', inputs: ['pin:m'] },
    ],
    outputs: ['pin:s'],
  } as Graph;
  return toNumbers((await grad(pick, inputs, 'pin:s', ['x'])).gradients.x!);
}

describe('second derivatives through the where pin', () => {
  for (const dtype of ['FP64', 'FP32'] as const) {
    test(`${dtype}: where(x > 0, sqrt(x), 0) at -1 has zero Hessian`, async () => {
      const r = await secondOrder(whereSqrt(dtype, 1), [-1], dtype);
      expect(r.hess).toEqual([0]);
      expect(r.hvps).toEqual([0]);
      expect(r.rr).toEqual([0]);
    });

    test(`${dtype}: at [-1, 4] the Hessian is diag(0, -1/32)`, async () => {
      const r = await secondOrder(whereSqrt(dtype, 2), [-1, 4], dtype);
      const want = [0, 0, 0, -1 / 32];
      expect(r.hess).toEqual(want);
      expect(r.hvps).toEqual(want);
      expect(r.rr).toEqual(want);
    });
  }

  test('where(x > 0, log(x), 0) at [0, 2]: Hessian diag(0, -1/4)', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const g = b.output(b.where(x.greater(0), x.log(), 0).sum().as('f')).build();
    const r = await secondOrder(g, [0, 2], 'FP64');
    expect(r.hess).toEqual([0, 0, 0, -0.25]);
    expect(r.hvps).toEqual([0, 0, 0, -0.25]);
    expect(r.rr).toEqual([0, 0, 0, -0.25]);
  });

  test('sqrt(x) * 0 at 0: the pinned zero first derivative has a zero second derivative', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [1], 'FP64');
    const g = b.output(x.sqrt().mul(0).sum().as('f')).build();
    const r = await secondOrder(g, [0], 'FP64');
    expect(r.hess).toEqual([0]);
    expect(r.hvps).toEqual([0]);
    expect(r.rr).toEqual([0]);
  });
});

describe('second derivatives at the other pins', () => {
  test('pow(x, k) at x = 0: k (k-1) x^(k-2) for k = 1, 2, 3', async () => {
    for (const [k, want] of [[1, 0], [2, 2], [3, 0]] as const) {
      const b = new GraphBuilder();
      const x = b.input('x', [1], 'FP64');
      const g = b.output(x.pow(k).sum().as('f')).build();
      const r = await secondOrder(g, [0], 'FP64');
      expect(r.hess, `k = ${k}`).toEqual([want]);
      expect(r.hvps, `k = ${k}`).toEqual([want]);
      expect(r.rr, `k = ${k}`).toEqual([want]);
    }
  });

  test('pow(x, y) at (0, 2): [[2, 0], [0, 0]] with the pinned d/dy = 0 at x = 0', async () => {
    const b = new GraphBuilder();
    const xy = b.input('x', [2], 'FP64');
    const x = xy.slice([0], [1]);
    const y = xy.slice([1], [2]);
    const g = b.output(x.pow(y).sum().as('f')).build();
    const r = await secondOrder(g, [0, 2], 'FP64');
    expect(r.hess).toEqual([2, 0, 0, 0]);
    expect(r.hvps).toEqual([2, 0, 0, 0]);
    expect(r.rr).toEqual([2, 0, 0, 0]);
  });

  test('relu, abs at 0 and logsumexp of all -Infinity have zero (finite) Hessians', async () => {
    const build = (f: (x: ReturnType<GraphBuilder['input']>) => ReturnType<GraphBuilder['input']>) => {
      const b = new GraphBuilder();
      return b.output(f(b.input('x', [2], 'FP64')).as('f')).build();
    };
    const cases: [string, Graph, number[]][] = [
      ['relu', build((x) => x.relu().sum()), [0, 0]],
      ['abs', build((x) => x.abs().sum()), [0, 0]],
      ['logsumexp', build((x) => x.logsumexp()), [-Infinity, -Infinity]],
    ];
    for (const [name, g, x] of cases) {
      const r = await secondOrder(g, x, 'FP64');
      expect(r.hess, name).toEqual([0, 0, 0, 0]);
      expect(r.hvps, name).toEqual([0, 0, 0, 0]);
      expect(r.rr, name).toEqual([0, 0, 0, 0]);
    }
  });
});
