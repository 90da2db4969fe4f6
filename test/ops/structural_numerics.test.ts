/**
 * The numerics OPS.md pins for the structural ops: max-shifted softmax family and logsumexp (all -Infinity, logits of
 * 1e4), stable BCE, ties split equally, prod gradients with zeros; and derivative rules built for symbolic shapes
 * (null dims) giving the same numbers as rules built for concrete shapes.
 */
import { describe, expect, it } from 'vitest';
import { hessian } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { f32, f64, i64, jvpOf, opDef, Recorder, runOp, values, vjpOf } from './structural_support.js';

const finite = (t: Tensor | null) => values(t).every(Number.isFinite);

describe('logsumexp and the softmax family', () => {
  it('logsumexp of all -Infinity is -Infinity with a zero (not NaN) gradient', async () => {
    const x = f64([2, 3], [-Infinity, -Infinity, -Infinity, 0, -Infinity, Math.log(3)]);
    const y = await runOp('logsumexp', [x], { axes: 1 });
    expect(values(y)[0]).toBe(-Infinity);
    expect(values(y)[1]).toBeCloseTo(Math.log(4), 14);
    const [g] = await vjpOf('logsumexp', [x], f64([2], [1, 1]), { axes: 1 });
    expect(values(g).slice(0, 3)).toEqual([0, 0, 0]);
    values(g).slice(3).forEach((v, i) => expect(v).toBeCloseTo([0.25, 0, 0.75][i]!, 15));
    const t = await jvpOf('logsumexp', [x], [f64([2, 3], [1, 1, 1, 1, 1, 1])], { axes: 1 });
    expect(values(t)[0]).toBe(0);
  });

  it('FP32 logits of 1e4 give finite values and gradients', async () => {
    const x = f32([2, 2], [1e4, 1e4 - 1, -1e4, 1e4]);
    for (const op of ['logsumexp', 'softmax', 'log_softmax']) {
      const attrs = op === 'logsumexp' ? { axes: -1 } : { axis: -1 };
      const y = await runOp(op, [x], attrs);
      expect(finite(y), op).toBe(true);
      const [g] = await vjpOf(op, [x], f32([...y.shape], new Array(y.data.length).fill(1).map((v, i) => v + i)), attrs);
      expect(finite(g), op).toBe(true);
    }
    const lse = await runOp('logsumexp', [x], { axes: -1 });
    expect(values(lse)[0]).toBeCloseTo(1e4 + Math.log1p(Math.exp(-1)), 2);
    const ce = await runOp('softmax_cross_entropy', [x, i64([2], [1, 0])]);
    expect(finite(ce)).toBe(true);
    expect(values(ce)[0]).toBeCloseTo((1 + Math.log1p(Math.exp(-1)) + 2e4) / 2, 1);
    const [gce] = await vjpOf('softmax_cross_entropy', [x, i64([2], [1, 0])], f32([], [1]));
    expect(finite(gce)).toBe(true);
    const sig = 1 / (1 + Math.exp(-1));
    expect(values(gce)[0]).toBeCloseTo(sig / 2, 5);
    expect(values(gce)[2]).toBeCloseTo(-0.5, 5);
  });

  it('second derivatives stay finite: logsumexp with an all -Infinity row, FP32 cross-entropy at 1e4', async () => {
    const lse = {
      inputs: { x: { shape: [null, 3], datatype: 'FP64' } },
      nodes: [{ name: 'p', op: 'logsumexp', inputs: ['x'], attrs: { axes: 1 } }, { name: 's', op: 'sum', inputs: ['p'] }],
      outputs: ['s'],
    };
    const h = values((await hessian(lse, { x: f64([2, 3], [-Infinity, -Infinity, -Infinity, 0, 1, -Infinity]) }, 's', ['x'])).hessians.x!.x!);
    const q = Math.exp(1) / (1 + Math.exp(1)) / (1 + Math.exp(1)); // p(1 - p) for softmax([0, 1])
    const want = new Array(36).fill(0);
    want[3 * 6 + 3] = q; want[3 * 6 + 4] = -q; want[4 * 6 + 3] = -q; want[4 * 6 + 4] = q;
    h.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
    const ce = {
      inputs: { x: { shape: [2, 2], datatype: 'FP32' }, l: { shape: [2], datatype: 'INT64' } },
      nodes: [{ name: 's', op: 'softmax_cross_entropy', inputs: ['x', 'l'] }],
      outputs: ['s'],
    };
    const hc = values((await hessian(ce, { x: f32([2, 2], [1e4, 1e4 - 1, -1e4, 1e4]), l: i64([2], [1, 0]) }, 's', ['x'])).hessians.x!.x!);
    expect(hc.every(Number.isFinite)).toBe(true);
    expect(hc[0]).toBeCloseTo(q / 2, 6);
    expect(hc[15]).toBe(0);
  });

  it('binary_cross_entropy_with_logits is stable for |x| = 1e4 in FP32', async () => {
    const x = f32([4], [1e4, -1e4, 1e4, -1e4]);
    const t = f32([4], [1, 0, 0, 1]);
    const y = await runOp('binary_cross_entropy_with_logits', [x, t], { reduction: 'none' });
    expect(values(y)).toEqual([0, 0, 1e4, 1e4]);
    const [gx, gt] = await vjpOf('binary_cross_entropy_with_logits', [x, t], f32([4], [1, 1, 1, 1]), { reduction: 'none' });
    expect(values(gx)).toEqual([0, 0, 1, -1]);
    expect(values(gt)).toEqual([-1e4, 1e4, -1e4, 1e4]);
  });
});

describe('subgradients', () => {
  it('max and min split the gradient equally among ties', async () => {
    const [gmax] = await vjpOf('max', [f64([2, 3], [1, 3, 3, 2, 2, 2])], f64([2], [1, 6]), { axes: 1 });
    expect(values(gmax)).toEqual([0, 0.5, 0.5, 2, 2, 2]);
    const [gmin] = await vjpOf('min', [f64([4], [0, 5, 0, 1])], f64([], [1]));
    expect(values(gmin)).toEqual([0.5, 0, 0.5, 0]);
    const t = await jvpOf('max', [f64([3], [4, 4, 1])], [f64([3], [1, 3, 100])]);
    expect(values(t)).toEqual([2]);
  });

  it('prod gradients are exact with zeros', async () => {
    const g = async (xs: number[]) => values((await vjpOf('prod', [f64([xs.length], xs)], f64([], [1])))[0]!);
    expect(await g([2, 4, 3])).toEqual([12, 6, 8]);
    expect(await g([2, 0, 3])).toEqual([0, 6, 0]);
    expect(await g([0, 0, 3])).toEqual([0, 0, 0]);
    const [rows] = await vjpOf('prod', [f64([2, 2], [0, 5, 2, 3])], f64([2], [1, 2]), { axes: -1 });
    expect(values(rows)).toEqual([5, 0, 6, 4]);
    const t = await jvpOf('prod', [f64([3], [2, 0, 3])], [f64([3], [1, 1, 1])]);
    expect(values(t)).toEqual([6]);
  });

  it('prod Hessians are exact at zeros (one and two zeros)', async () => {
    const graph = { inputs: { x: { shape: [3], datatype: 'FP64' } }, nodes: [{ name: 'p', op: 'prod', inputs: ['x'] }], outputs: ['p'] };
    const h = async (xs: number[]) => values((await hessian(graph, { x: f64([3], xs) }, 'p', ['x'])).hessians.x!.x!);
    // H[i][j] = product of the entries other than i and j (0 on the diagonal)
    expect(await h([2, 0, 3])).toEqual([0, 3, 0, 3, 0, 2, 0, 2, 0]);
    expect(await h([0, 0, 5])).toEqual([0, 5, 0, 5, 0, 0, 0, 0, 0]);
    expect(await h([0, 0, 0])).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('rules built for symbolic shapes', () => {
  /** Builds op + VJP + JVP once with `declared` shapes (null dims) and once concretely; both must agree. */
  async function agree(op: string, inputs: Tensor[], declared: (number | null)[][], attrs: Record<string, unknown> = {}): Promise<void> {
    const results: number[][][] = [];
    for (const sym of [true, false]) {
      const def = opDef(op);
      const rec = new Recorder();
      const xs = inputs.map((t, i) => rec.input(t, sym ? declared[i] : undefined));
      const y = rec.op(op, xs, attrs);
      const yv = (await rec.run([y]))[0]!;
      const g = rec.input(f64([...yv.shape], yv.shape.length ? Array.from({ length: yv.data.length }, (_, i) => (i % 3) - 0.5) : [0.7]), sym ? [...y.shape] : undefined);
      const parsed = def.attrs.parse(attrs);
      const grads = def.vjp!({ e: rec, inputs: xs, output: y, g, attrs: parsed });
      const ts = inputs.map((t, i) => (t.dtype === 'FP64' ? rec.input(f64([...t.shape], Array.from({ length: t.data.length }, (_, j) => Math.sin(j + i))), sym ? declared[i] : undefined) : null));
      const tan = def.jvp!({ e: rec, inputs: xs, output: y, tangents: ts, attrs: parsed });
      results.push((await rec.run([...grads, tan])).map(values));
    }
    expect(results[0]).toEqual(results[1]);
  }

  it('mean, max, logsumexp with unknown reduced dims', async () => {
    const x = f64([2, 3], [0.1, -0.4, 0.9, 1.2, -1.1, 0.3]);
    await agree('mean', [x], [[null, null]], { axes: 1 });
    await agree('max', [x], [[null, 3]], { axes: null });
    await agree('logsumexp', [x], [[2, null]], { axes: -1, keepdims: true });
    await agree('prod', [x], [[null, null]], { axes: 0 });
  });

  it('matmul with batch broadcasting and 1-D operands', async () => {
    await agree('matmul', [f64([2, 1, 3], [1, 2, 3, 4, 5, 6]), f64([3, 2], [1, 0, -1, 2, 0.5, 1])], [[null, 1, null], [null, 2]]);
    await agree('matmul', [f64([3], [1, 2, 3]), f64([2, 3, 2], Array.from({ length: 12 }, (_, i) => i / 7))], [[null], [null, null, 2]]);
    await agree('matmul', [f64([2, 3], [1, 2, 3, 4, 5, 6]), f64([3], [1, -1, 2])], [[null, null], [null]]);
  });

  it('concat, pad, slice, reshape, squeeze and gather with unknown dims', async () => {
    const a = f64([2, 3], [1, 2, 3, 4, 5, 6]), b = f64([2, 1], [7, 8]);
    await agree('concat', [a, b], [[2, null], [2, null]], { axis: 1 });
    await agree('pad', [a], [[null, null]], { pads: [[1, 2], [0, 1]] });
    await agree('slice', [a], [[null, null]], { starts: [-1, 0], ends: [-3, 100], steps: [-1, 2] });
    await agree('reshape', [a], [[null, 3]], { shape: [-1] });
    await agree('squeeze', [b], [[null, 1]], { axes: -1 });
    await agree('gather', [a, i64([3], [1, 1, -2])], [[null, 3], [null]], { axis: 0 });
  });

  it('losses with unknown batch dims', async () => {
    const x = f64([3, 4], Array.from({ length: 12 }, (_, i) => Math.cos(i)));
    await agree('softmax_cross_entropy', [x, i64([3], [0, 3, 1])], [[null, 4], [null]]);
    await agree('softmax_cross_entropy', [x, f64([3, 4], Array.from({ length: 12 }, (_, i) => (i % 4) / 6))], [[null, null], [null, null]]);
    await agree('mse', [f64([2, 1], [1, 2]), f64([3], [0, 1, 3])], [[null, 1], [null]]);
    await agree('binary_cross_entropy_with_logits', [x, f64([3, 4], Array.from({ length: 12 }, (_, i) => i / 12))], [[null, 4], [null, 4]]);
  });
});
