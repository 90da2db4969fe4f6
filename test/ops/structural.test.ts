/**
 * Values of the structural ops (reductions, matmul/transpose, shape and indexing ops, softmax family, losses) against
 * NumPy-semantics references, the numerics OPS.md pins, and error codes, details and paths.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import {
  concatRef, matmulRef, padRef, REDUCERS, reduceRef, sliceRef, softmaxRef, takeRef, transposeRef, type Arr,
} from './structural_ref.js';
import { rng } from '../support/random.js';
import { f32, f64, i32, i64, runOp, values, vjpOf } from './structural_support.js';

const rand = rng(7);
function randArr(shape: number[]): Arr {
  return { shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.round((rand() * 4 - 2) * 1e6) / 1e6) };
}
const t64 = (a: Arr): Tensor => f64(a.shape, a.data);

function expectArr(t: Tensor, ref: Arr, tol = 1e-12): void {
  expect([...t.shape]).toEqual(ref.shape);
  const v = values(t);
  ref.data.forEach((r, i) => {
    if (!Number.isFinite(r)) expect(v[i]).toBe(r);
    else expect(Math.abs(v[i]! - r)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(r)));
  });
}

describe('reductions', () => {
  const x = randArr([2, 3, 4]);
  const cases: [number | number[] | null, boolean][] = [[null, false], [-1, true], [[0, 2], false], [[], false], [1, true]];
  for (const op of Object.keys(REDUCERS)) {
    it.each(cases)(`${op} axes %j keepdims %s matches NumPy`, async (axes, keepdims) => {
      const y = await runOp(op, [t64(x)], { axes, keepdims });
      expectArr(y, reduceRef(x, axes === null ? null : typeof axes === 'number' ? [axes] : axes, keepdims, REDUCERS[op]!));
    });
  }

  it('sum, max and prod keep integer datatypes', async () => {
    const y = await runOp('sum', [i32([2, 2], [1, 2, 3, 4])], { axes: 0 });
    expect(y.dtype).toBe('INT32');
    expect(values(y)).toEqual([4, 6]);
    const m = await runOp('max', [i64([3], [5, -2, 9])]);
    expect(m.dtype).toBe('INT64');
    expect(values(m)).toEqual([9]);
  });

  it('argmax/argmin: flattened by default, first of ties, INT64', async () => {
    const x2 = f64([2, 3], [1, 5, 5, 7, 0, 7]);
    const flat = await runOp('argmax', [x2]);
    expect(flat.dtype).toBe('INT64');
    expect(flat.shape).toEqual([]);
    expect(values(flat)).toEqual([3]);
    expect(values(await runOp('argmax', [x2], { axis: 1 }))).toEqual([1, 0]);
    const kept = await runOp('argmin', [x2], { axis: -1, keepdims: true });
    expect(kept.shape).toEqual([2, 1]);
    expect(values(kept)).toEqual([0, 1]);
    expect((await runOp('argmin', [x2], { axis: null, keepdims: true })).shape).toEqual([1, 1]);
  });
});

describe('linear algebra', () => {
  const shapes: [number[], number[]][] = [
    [[2, 3], [3, 4]], [[3], [3, 4]], [[2, 3], [3]], [[3], [3]], [[2, 1, 2, 3], [3, 3, 2]], [[3], [2, 3, 2]], [[2, 2, 3], [3]],
  ];
  it.each(shapes)('matmul %j x %j is np.matmul', async (as, bs) => {
    const a = randArr(as), b = randArr(bs);
    expectArr(await runOp('matmul', [t64(a), t64(b)]), matmulRef(a, b));
  });

  it('matmul of 1-D by 1-D is a 0-d dot product', async () => {
    const y = await runOp('matmul', [f64([3], [1, 2, 3]), f64([3], [4, 5, 6])]);
    expect(y.shape).toEqual([]);
    expect(values(y)).toEqual([32]);
  });

  it('transpose: default reverse and explicit perm', async () => {
    const x = randArr([2, 3, 4]);
    expectArr(await runOp('transpose', [t64(x)]), transposeRef(x, [2, 1, 0]));
    expectArr(await runOp('transpose', [t64(x)], { perm: [1, -1, 0] }), transposeRef(x, [1, 2, 0]));
  });

  it('the seed linear layer: dL/dx = dy·wᵀ and dL/dw = xᵀ·dy', async () => {
    const x = f64([1, 2], [1, 2]);
    const w = f64([2, 3], [1, 2, 3, 4, 5, 6]);
    const dy = f64([1, 3], [1, 0, -1]);
    const [dx, dw] = await vjpOf('matmul', [x, w], dy);
    expect(values(dx!)).toEqual([1 - 3, 4 - 6]);
    expect(values(dw!)).toEqual([1, 0, -1, 2, 0, -2]);
  });
});

describe('shape ops', () => {
  it('reshape: -1 inferred, 0 literal, data shared', async () => {
    const x = f64([2, 3], [1, 2, 3, 4, 5, 6]);
    const y = await runOp('reshape', [x], { shape: [3, -1] });
    expect(y.shape).toEqual([3, 2]);
    expect(values(y)).toEqual([1, 2, 3, 4, 5, 6]);
    const z = await runOp('reshape', [f64([0, 3], [])], { shape: [3, 0] });
    expect(z.shape).toEqual([3, 0]);
  });

  it('broadcast_to, squeeze, unsqueeze', async () => {
    const b = await runOp('broadcast_to', [f64([2, 1], [1, 2])], { shape: [3, 2, 2] });
    expect(b.shape).toEqual([3, 2, 2]);
    expect(values(b)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
    expect((await runOp('squeeze', [f64([1, 2, 1], [1, 2])])).shape).toEqual([2]);
    expect((await runOp('squeeze', [f64([1, 2, 1], [1, 2])], { axes: -1 })).shape).toEqual([1, 2]);
    expect((await runOp('unsqueeze', [f64([2, 3], [1, 2, 3, 4, 5, 6])], { axes: [0, -1] })).shape).toEqual([1, 2, 3, 1]);
  });

  const sliceCases: [number[], number[], number[], number[] | null, number[] | null][] = [
    [[4, 5], [1, -1], [3, -6], null, [1, -2]],
    [[3, 4], [-10], [100], [-1], null],
    [[5], [4], [-100], null, [-1]],
    [[6], [-2], [1], null, [-2]],
    [[6], [5], [2], null, [1]],
    [[6], [0], [2 ** 62], null, [4]],
    [[3, 6], [2, 8], [0, -9], [0, 1], [-1, -3]],
    // steps past 2^53 (any integer is accepted) select one element, as in NumPy; the kernel only takes safe integers
    [[6], [1], [6], null, [2 ** 62]],
    [[3, 6], [2, -1], [-100, 0], null, [-(2 ** 60), -1e300]],
  ];
  it.each(sliceCases)('slice %j starts %j ends %j axes %j steps %j (NumPy clamping)', async (shape, starts, ends, axes, steps) => {
    const x = randArr(shape);
    const y = await runOp('slice', [t64(x)], { starts, ends, axes, steps });
    const ax = axes ?? starts.map((_, i) => i);
    expectArr(y, sliceRef(x, starts, ends, ax, steps ?? starts.map(() => 1)));
  });

  it('slice_grad scatters back with a step past 2^53', async () => {
    const [dx] = await vjpOf('slice', [f64([2, 3], [1, 2, 3, 4, 5, 6])], f64([1, 1], [7]), { starts: [1, -1], ends: [2, -9], steps: [1, -(2 ** 62)] });
    expect([...dx!.shape]).toEqual([2, 3]);
    expect(values(dx!)).toEqual([0, 0, 0, 0, 0, 7]);
  });

  it('gather is np.take with negative indices and duplicates', async () => {
    const x = randArr([4, 3]);
    const ind = { shape: [2, 2], data: [1, -1, 1, 0] };
    expectArr(await runOp('gather', [t64(x), i64(ind.shape, ind.data)]), takeRef(x, ind, 0));
    const x3 = randArr([2, 3, 2]);
    const ind3 = { shape: [4], data: [2, 0, -3, 2] };
    expectArr(await runOp('gather', [t64(x3), i32(ind3.shape, ind3.data)], { axis: -2 }), takeRef(x3, ind3, 1));
  });

  it('gather backward scatter-adds duplicates', async () => {
    const [gx, gi] = await vjpOf('gather', [f64([3], [1, 2, 3]), i64([4], [0, 0, 2, -1])], f64([4], [1, 2, 3, 4]));
    expect(values(gx!)).toEqual([3, 0, 7]);
    expect(gi).toBeNull();
  });

  it('pad, concat, stack', async () => {
    const x = randArr([2, 3]);
    expectArr(await runOp('pad', [t64(x)], { pads: [[1, 0], [2, 1]], value: 0.5 }), padRef(x, [[1, 0], [2, 1]], 0.5));
    expectArr(await runOp('pad', [t64(x)], { pads: [[0, 1], [0, 0]] }), padRef(x, [[0, 1], [0, 0]], 0));
    const parts = [randArr([2, 3]), randArr([2, 1]), randArr([2, 2])];
    expectArr(await runOp('concat', parts.map(t64), { axis: -1 }), concatRef(parts, 1));
    const same = [randArr([2, 3]), randArr([2, 3])];
    const st = await runOp('stack', same.map(t64), { axis: 1 });
    expect(st.shape).toEqual([2, 2, 3]);
    expectArr(st, concatRef(same.map((a) => ({ shape: [2, 1, 3], data: a.data })), 1) as Arr);
  });

  it('one_hot: datatype, axis, out-of-range rows are all zero', async () => {
    const y = await runOp('one_hot', [i64([3], [0, 2, 5])], { depth: 3 });
    expect(y.dtype).toBe('FP32');
    expect(values(y)).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0]);
    const z = await runOp('one_hot', [i32([2], [1, -1])], { depth: 2, axis: 0, datatype: 'int64' });
    expect(z.dtype).toBe('INT64');
    expect(z.shape).toEqual([2, 2]);
    expect(values(z)).toEqual([0, 0, 1, 0]);
  });

  it('data movement accepts BOOL', async () => {
    const b = { dtype: 'BOOL' as const, shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) };
    expect(values(await runOp('transpose', [b]))).toEqual([1, 0, 0, 1]);
    expect(values(await runOp('slice', [b], { starts: [1], ends: [2] }))).toEqual([0, 1]);
    expect(values(await runOp('pad', [b], { pads: [[0, 0], [1, 0]], value: 1 }))).toEqual([1, 1, 0, 1, 0, 1]);
  });
});

describe('neural-net ops', () => {
  it('softmax and log_softmax match the reference on every axis', async () => {
    const x = randArr([2, 3, 4]);
    for (const axis of [0, 1, -1]) {
      expectArr(await runOp('softmax', [t64(x)], { axis }), softmaxRef(x, (axis + 3) % 3, false));
      expectArr(await runOp('log_softmax', [t64(x)], { axis }), softmaxRef(x, (axis + 3) % 3, true));
    }
  });

  it('softmax_cross_entropy with class labels: mean, sum, none and a leading class axis', async () => {
    const x = randArr([3, 4]);
    const labels = [0, 3, 1];
    const lsm = softmaxRef(x, 1, true);
    const per = labels.map((c, i) => -lsm.data[i * 4 + c]!);
    const none = await runOp('softmax_cross_entropy', [t64(x), i64([3], labels)], { reduction: 'none' });
    expectArr(none, { shape: [3], data: per });
    expectArr(await runOp('softmax_cross_entropy', [t64(x), i32([3], labels)]), { shape: [], data: [per.reduce((a, b) => a + b) / 3] });
    expectArr(await runOp('softmax_cross_entropy', [t64(x), i64([3], labels)], { reduction: 'sum' }), { shape: [], data: [per.reduce((a, b) => a + b)] });
    const xt = transposeRef(x, [1, 0]);
    expectArr(await runOp('softmax_cross_entropy', [t64(xt), i64([3], labels)], { axis: 0, reduction: 'none' }), { shape: [3], data: per });
  });

  it('softmax_cross_entropy with probability labels: value and d/dlabels = -log_softmax', async () => {
    const x = randArr([2, 3]);
    const p = { shape: [2, 3], data: [0.2, 0.3, 0.5, 1, 0, 0] };
    const lsm = softmaxRef(x, 1, true);
    const per = [0, 1].map((i) => -[0, 1, 2].reduce((s, j) => s + p.data[i * 3 + j]! * lsm.data[i * 3 + j]!, 0));
    expectArr(await runOp('softmax_cross_entropy', [t64(x), t64(p)], { reduction: 'none' }), { shape: [2], data: per });
    const [, dp] = await vjpOf('softmax_cross_entropy', [t64(x), t64(p)], f64([], [1]), { reduction: 'sum' });
    expectArr(dp!, { shape: [2, 3], data: lsm.data.map((v) => -v) });
  });

  it('mse broadcasts like sub; bce_with_logits matches its definition', async () => {
    const a = randArr([2, 1]), b = randArr([3]);
    const sq = [0, 1].flatMap((i) => [0, 1, 2].map((j) => (a.data[i]! - b.data[j]!) ** 2));
    expectArr(await runOp('mse', [t64(a), t64(b)], { reduction: 'none' }), { shape: [2, 3], data: sq });
    expectArr(await runOp('mse', [t64(a), t64(b)]), { shape: [], data: [sq.reduce((s, v) => s + v) / 6] });
    const x = randArr([4]), t = { shape: [4], data: [0, 1, 0.25, 0.9] };
    const bce = x.data.map((v, i) => -(t.data[i]! * Math.log(1 / (1 + Math.exp(-v))) + (1 - t.data[i]!) * Math.log(1 - 1 / (1 + Math.exp(-v)))));
    expectArr(await runOp('binary_cross_entropy_with_logits', [t64(x), t64(t)], { reduction: 'none' }), { shape: [4], data: bce }, 1e-10);
    expectArr(await runOp('binary_cross_entropy_with_logits', [t64(x), t64(t)], { reduction: 'sum' }), { shape: [], data: [bce.reduce((s, v) => s + v)] }, 1e-10);
  });
});
