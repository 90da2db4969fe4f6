/**
 * var, std and norm: values against the NumPy definitions, the pinned zero-gradient cases (std of a constant slice,
 * the norm of a zero vector for every ord, ord 1 at zero, ties of ord "inf"), and error bodies naming the node, the
 * attribute and the shapes.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError, transform, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { f32, f64, runOp, values } from './structural_support.js';

function graphOf(op: string, x: Tensor, attrs: Record<string, unknown>): Graph {
  return {
    inputs: { x: { shape: [...x.shape], datatype: x.dtype } },
    nodes: [
      { name: 'first', op: 'identity', inputs: ['x'] },
      { name: 'y', op, inputs: ['first'], attrs },
    ],
    outputs: ['y'],
  };
}

async function gradOf(op: string, x: Tensor, attrs: Record<string, unknown>, g?: Tensor): Promise<number[]> {
  const y = (await evaluate(graphOf(op, x, attrs), { x })).outputs.y!;
  const cot = g ?? tensor(y.dtype, y.shape, new Array(y.data.length).fill(1));
  return values((await vjp(graphOf(op, x, attrs), { x }, { y: cot }, ['x'])).gradients.x!);
}

async function failure(op: string, x: Tensor, attrs: Record<string, unknown>): Promise<GradserveError> {
  try {
    await evaluate(graphOf(op, x, attrs), { x });
  } catch (e) {
    if (e instanceof GradserveError) return e;
    throw e;
  }
  throw new Error(`${op} did not fail`);
}

const x23 = f64([2, 3], [1, 2, 3, 4, -6, 5]);

describe('var and std values (NumPy: divisor max(N - correction, 0))', () => {
  it('correction 0 and 1, keepdims, every axis', async () => {
    expect(values(await runOp('var', [x23], { axes: 1 }))).toEqual([2 / 3, 74 / 3]);
    expect(values(await runOp('var', [x23], { axes: -1, correction: 1 }))).toEqual([1, 37]);
    const all = await runOp('std', [x23], { keepdims: true });
    expect(all.shape).toEqual([1, 1]);
    const m = 9 / 6;
    const ss = [1, 2, 3, 4, -6, 5].reduce((s, v) => s + (v - m) ** 2, 0);
    expect(values(all)[0]).toBeCloseTo(Math.sqrt(ss / 6), 14);
    const half = values(await runOp('std', [x23], { axes: 0, correction: 0.5 }));
    [1.5, 4, 1].forEach((d, i) => expect(half[i]).toBeCloseTo(Math.sqrt((2 * d * d) / 1.5), 14));
  });

  it('axes [] reduces nothing (each element alone: variance 0)', async () => {
    const v = await runOp('var', [x23], { axes: [] });
    expect(v.shape).toEqual([2, 3]);
    expect(values(v)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('a correction of at least N gives Infinity or NaN, as NumPy', async () => {
    expect(values(await runOp('var', [x23], { axes: 1, correction: 3 }))).toEqual([Infinity, Infinity]);
    expect(values(await runOp('var', [f64([1, 2], [2, 2])], { axes: 1, correction: 2 })).every(Number.isNaN)).toBe(true);
  });

  it('FP32 stays FP32', async () => {
    const v = await runOp('std', [f32([4], [1, 2, 3, 4])], { correction: 1 });
    expect(v.dtype).toBe('FP32');
    expect(values(v)[0]).toBeCloseTo(Math.sqrt(5 / 3), 6);
  });
});

describe('zero-gradient pins', () => {
  it('std of a constant slice has gradient 0 (FP64 and FP32), the other slice its usual gradient', async () => {
    const x = f64([2, 3], [0.5, 0.5, 0.5, -1, 2, 0.25]);
    const g = await gradOf('std', x, { axes: 1, correction: 1 });
    expect(g.slice(0, 3)).toEqual([0, 0, 0]);
    const m = (-1 + 2 + 0.25) / 3;
    const s = Math.sqrt(((-1 - m) ** 2 + (2 - m) ** 2 + (0.25 - m) ** 2) / 2);
    [-1, 2, 0.25].forEach((v, i) => expect(g[3 + i]).toBeCloseTo((v - m) / (2 * s), 14));
    expect(await gradOf('std', f32([4], [3, 3, 3, 3]), {})).toEqual([0, 0, 0, 0]);
  });

  it.each([[1], [2], ['inf']])('norm ord %s of a zero vector has gradient 0', async (ord) => {
    expect(await gradOf('norm', f64([2, 3], [0, 0, 0, 0, 0, 0]), { ord, axes: 1 })).toEqual([0, 0, 0, 0, 0, 0]);
    expect(await gradOf('norm', f32([3], [0, 0, 0]), { ord })).toEqual([0, 0, 0]);
  });

  it('norm ord 2 at a zero row and a nonzero row', async () => {
    const g = await gradOf('norm', f64([2, 2], [0, 0, 3, -4]), { ord: 2, axes: -1 });
    expect(g).toEqual([0, 0, 0.6, -0.8]);
  });

  it('norm ord 1 has gradient sign(x): 0 at 0', async () => {
    expect(await gradOf('norm', f64([4], [0, -1.5, 0.5, 0]), { ord: 1 })).toEqual([0, -1, 1, 0]);
  });

  it('norm ord "inf" splits the gradient equally among tied |x| (as max, and PyTorch), keeping the sign', async () => {
    expect(await gradOf('norm', f64([3], [1, -2, 2]), { ord: 'inf' })).toEqual([0, -0.5, 0.5]);
    expect(await gradOf('norm', f64([2, 2], [-3, 3, 1, 0.5]), { ord: 'inf', axes: 1, keepdims: true }, f64([2, 1], [2, 4]))).toEqual([-1, 1, 4, 0]);
  });
});

describe('norm values', () => {
  it('ord 1, 2 and inf over axes; keepdims', async () => {
    const x = f64([2, 2], [3, -4, -1, 0.5]);
    expect(values(await runOp('norm', [x], { ord: 1, axes: 1 }))).toEqual([7, 1.5]);
    expect(values(await runOp('norm', [x], { axes: -1 }))).toEqual([5, Math.sqrt(1.25)]);
    const inf = await runOp('norm', [x], { ord: 'inf', axes: 0, keepdims: true });
    expect(inf.shape).toEqual([1, 2]);
    expect(values(inf)).toEqual([3, 4]);
    expect(values(await runOp('norm', [x], {}))).toEqual([Math.sqrt(9 + 16 + 1 + 0.25)]);
  });

  it('ord 1 and 2 over a zero-size axis are 0', async () => {
    expect(values(await runOp('norm', [f64([2, 0], [])], { ord: 2, axes: 1 }))).toEqual([0, 0]);
  });
});

describe('transforms of graphs whose input declares no shape', () => {
  it.each([['var', { correction: 1 }], ['std', {}], ['norm', { ord: 2 }], ['norm', { ord: 'inf' }], ['norm', { ord: 1 }]] as const)(
    '%s %j over every axis needs no rank', async (op, attrs) => {
      const g = transform({ inputs: { x: {} }, nodes: [{ name: 's', op, inputs: ['x'], attrs }], outputs: ['s'] }, { transform: 'grad', of: 's', wrt: ['x'] });
      expect(g.inputs!.x).toEqual({});
      for (const shape of [[3], [2, 2]]) {
        const n = shape.reduce((p, d) => p * d, 1);
        const x = tensor('FP32', shape, Array.from({ length: n }, (_, i) => i * 0.7 - 1));
        const r = await evaluate(g, { x });
        expect(r.outputs['grad:x']!.shape).toEqual(shape);
        expect(values(r.outputs['grad:x']!)).toEqual(await gradOf(op, x, attrs));
      }
    });
});

describe('error bodies', () => {
  it('a negative correction is INVALID_ATTRS at attrs.correction', async () => {
    const e = await failure('var', x23, { correction: -1 });
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[1].attrs.correction');
    expect(e.message).toMatch(/node "y" \(var\): correction -1 must be a finite number >= 0/);
  });

  it('an unknown ord is INVALID_ATTRS at attrs.ord', async () => {
    const e = await failure('norm', x23, { ord: 3 });
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toMatch(/^graph\.nodes\[1\]\.attrs(\.ord)?$/);
    expect(e.message).toMatch(/ord/);
  });

  it('axes out of range name the axis and the rank', async () => {
    const e = await failure('std', x23, { axes: [0, 2] });
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[1].attrs.axes');
    expect(e.message).toMatch(/node "y" \(std\): axis 2 is out of range for rank 2/);
  });

  it('ord "inf" over a zero-size axis is SHAPE_MISMATCH naming the shape', async () => {
    const e = await failure('norm', f64([2, 0], []), { ord: 'inf', axes: 1 });
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/node "y" \(norm\): ord "inf" cannot reduce the zero-size axis 1 of \[2, 0\]/);
  });

  it.each(['var', 'std', 'norm'])('%s of INT32 is DATATYPE_MISMATCH', async (op) => {
    const e = await failure(op, tensor('INT32', [2], [1, 2]), {});
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.message).toMatch(new RegExp(`node "y" \\(${op}\\): x is INT32; ${op} accepts FP32, FP64`));
  });
});
