/**
 * Indexing, rearranging and sorting ops beyond the registry-wide checks: the problem+json bodies of their shape,
 * datatype and attribute errors, run-time INDEX_OUT_OF_RANGE from the native kernels, the numerics the conventions
 * promise (NaN placement, stable ties in both directions, negative indices, shifts beyond the size, empty axes),
 * GraphBuilder methods, batching with each float input as the batched one, and derivative graphs for an unknown size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engine, evaluate, grad, GraphBuilder, GradserveError, tensor, transform, vjp } from '../../src/index.js';
import { vmapGraph } from '../../src/autodiff/vmap.js';
import type { Graph } from '../../src/graph/types.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { DType } from '../../src/tensor/dtype.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { GradserveApp } from '../../src/server/app.js';
import { sampleTensor } from '../autodiff/opcheck_support.js';
import { rng } from '../support/random.js';
import { makeApp } from '../server/helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

interface Problem { code: string; detail: string; errors: { path: string; message: string }[] }
type Decl = [number[], DType?];

/** POST /v1/shapes of a one-node graph over declared inputs (FP32 unless given): the problem+json body. */
async function problem(op: string, inputs: Record<string, Decl>, attrs: Record<string, unknown> = {}): Promise<{ status: number; body: Problem }> {
  const declared = Object.fromEntries(Object.entries(inputs).map(([k, [shape, datatype]]) => [k, { shape, datatype: datatype ?? 'FP32' }]));
  const graph = { inputs: declared, nodes: [{ name: 'y', op, inputs: Object.keys(inputs), attrs }], outputs: ['y'] };
  const r = await app.inject({ method: 'POST', url: '/v1/shapes', payload: { graph, inputs: declared } });
  expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
  return { status: r.statusCode, body: r.json() as Problem };
}

const f64 = (shape: number[], data: number[]): Tensor => tensor('FP64', shape, data);
const i64 = (shape: number[], data: number[]): Tensor => tensor('INT64', shape, data.map(BigInt));
const nums = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, Number);

/** y = op(inputs...) evaluated; the inputs are named in0, in1, ... */
async function run(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Promise<Tensor> {
  const names = inputs.map((_, i) => `in${i}`);
  const graph: Graph = {
    inputs: Object.fromEntries(inputs.map((t, i) => [names[i]!, { shape: [...t.shape], datatype: t.dtype }])),
    nodes: [{ name: 'y', op, inputs: names, attrs }],
    outputs: ['y'],
  };
  return (await evaluate(graph, Object.fromEntries(inputs.map((t, i) => [names[i]!, t])))).outputs.y!;
}

describe('error bodies', () => {
  it.each([
    ['take_along_axis', { x: [[2, 3]], i: [[3], 'INT64'] }, { axis: 1 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[1]',
      'node "y" (take_along_axis): indices [3] must have the rank of x [2, 3] (2)'],
    ['take_along_axis', { x: [[2, 3]], i: [[3, 5], 'INT32'] }, { axis: 1 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[1]',
      'indices [3, 5] must match x [2, 3] on every axis but axis 1; they differ on axis 0'],
    ['take_along_axis', { x: [[2, 3]], i: [[2, 3], 'INT64'] }, { axis: 2 }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axis',
      'node "y" (take_along_axis): axis 2 is out of range for rank 2'],
    ['take_along_axis', { x: [[]], i: [[], 'INT64'] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0]', 'cannot index along an axis of rank-0 x []'],
    ['take_along_axis', { x: [[2, 3]], i: [[2, 3]] }, {}, 'DATATYPE_MISMATCH', 'graph.nodes[0]', 'indices is FP32; take_along_axis accepts INT32, INT64'],
    ['scatter_add', { x: [[2, 3]], i: [[2, 2], 'INT64'], u: [[2, 3]] }, { axis: 1 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[2]',
      'node "y" (scatter_add): updates [2, 3] must have the shape of indices [2, 2]'],
    ['scatter_add', { x: [[2, 3]], i: [[4, 2], 'INT64'], u: [[4, 2]] }, { axis: 1 }, 'SHAPE_MISMATCH', 'graph.nodes[0].inputs[1]',
      'indices [4, 2] must match x [2, 3] on every axis but axis 1; they differ on axis 0'],
    ['scatter_add', { x: [[2, 3]], i: [[2, 2], 'INT64'], u: [[2, 2], 'FP64'] }, {}, 'DATATYPE_MISMATCH', 'graph.nodes[0]',
      'x is FP32 but updates is FP64'],
    ['scatter_add', { x: [[2], 'BOOL'], i: [[2], 'INT64'], u: [[2], 'BOOL'] }, {}, 'DATATYPE_MISMATCH', 'graph.nodes[0]',
      'x is BOOL; scatter_add accepts FP32, FP64, INT32, INT64'],
    ['tile', { x: [[2, 3]] }, { repeats: [2] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.repeats',
      'node "y" (tile): repeats [2] has 1 entries for x [2, 3] (rank 2); give one per axis'],
    ['flip', { x: [[2, 3]] }, { axes: [1, -1] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axes', 'axis -1 is repeated in axes [1, -1] (rank 2)'],
    ['flip', { x: [[2, 3]] }, { axes: 2 }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axes', 'axis 2 is out of range for rank 2'],
    ['roll', { x: [[2, 3]] }, { shifts: [1, 2], axes: [0] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.shifts',
      'node "y" (roll): shifts has 2 entries but axes has 1; give one shift per axis'],
    ['roll', { x: [[2, 3]] }, { shifts: [1, 2] }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.shifts',
      'shifts [1, 2] has 2 entries; without axes roll takes one shift (of the flattened tensor)'],
    ['roll', { x: [[2, 3]] }, { shifts: 1, axes: -3 }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axes', 'axis -3 is out of range for rank 2'],
    ['triu', { x: [[4]] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0]', 'node "y" (triu): x [4] has rank 1; triu works on the last two axes and needs rank >= 2'],
    ['sort', { x: [[]] }, {}, 'SHAPE_MISMATCH', 'graph.nodes[0]', 'node "y" (sort): x [] has no axis to sort along'],
    ['argsort', { x: [[2, 3]] }, { axis: 2 }, 'INVALID_ATTRS', 'graph.nodes[0].attrs.axis', 'axis 2 is out of range for rank 2'],
    ['sort', { x: [[3], 'BOOL'] }, {}, 'DATATYPE_MISMATCH', 'graph.nodes[0]', 'x is BOOL; sort accepts FP32, FP64, INT32, INT64'],
    ['top_k', { x: [[2, 3]] }, { k: 4 }, 'SHAPE_MISMATCH', 'graph.nodes[0]', 'node "y" (top_k): k 4 is more than the 3 entries of axis 1 of x [2, 3]'],
    ['top_k_indices', { x: [[2, 3]] }, { k: 3, axis: 0 }, 'SHAPE_MISMATCH', 'graph.nodes[0]', 'k 3 is more than the 2 entries of axis 0 of x [2, 3]'],
  ] as const)('%s %j %j', async (op, inputs, attrs, code, path, detail) => {
    const { status, body } = await problem(op, inputs as unknown as Record<string, Decl>, attrs as Record<string, unknown>);
    expect(status).toBe(422);
    expect(body.code).toBe(code);
    expect(body.detail).toContain(detail);
    expect(body.errors[0]!.path).toBe(path);
  });

  it.each([
    ['tile', { repeats: [2, -1] }, 'repeats'],
    ['top_k', { k: -1 }, 'k'],
    ['top_k', {}, 'k'],
    ['triu', { k: 0.5 }, 'k'],
    ['sort', { descending: 'yes' }, 'descending'],
    ['roll', { axes: [0] }, 'shifts'],
  ])('%s %j: INVALID_ATTRS naming the attribute', async (op, attrs, attr) => {
    const { status, body } = await problem(op, { x: [[2, 3]] }, attrs);
    expect(status).toBe(422);
    expect(body.code).toBe('INVALID_ATTRS');
    expect(body.errors[0]!.path).toContain(`graph.nodes[0].attrs`);
    expect(JSON.stringify(body)).toContain(attr);
  });
});

describe('indices outside their axis are INDEX_OUT_OF_RANGE, found by the native kernel', () => {
  it.each([
    ['take_along_axis', [f64([2, 3], [1, 2, 3, 4, 5, 6]), i64([2, 1], [0, 3])], { axis: 1 }, 'index 3 is out of range for axis 1 of size 3'],
    ['take_along_axis', [f64([2, 3], [1, 2, 3, 4, 5, 6]), i64([2, 1], [-4, 0])], { axis: 1 }, 'index -4 is out of range for axis 1 of size 3'],
    ['take_along_axis', [f64([2, 3], [1, 2, 3, 4, 5, 6]), tensor('INT32', [1, 3], [0, 2, 1])], { axis: 0 }, 'index 2 is out of range for axis 0 of size 2'],
    ['scatter_add', [f64([2, 3], [1, 2, 3, 4, 5, 6]), i64([2, 1], [1, 7]), f64([2, 1], [1, 1])], { axis: 1 }, 'index 7 is out of range for axis 1 of size 3'],
    ['scatter_add', [f64([2, 0], []), i64([2, 1], [0, 0]), f64([2, 1], [1, 1])], { axis: 1 }, 'index 0 is out of range for axis 1 of size 0'],
  ] as const)('%s', async (op, inputs, attrs, message) => {
    const e = await run(op, [...inputs], attrs).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(GradserveError);
    expect(e).toMatchObject({ code: 'INDEX_OUT_OF_RANGE', errors: [{ path: 'graph.nodes[0]' }] });
    expect((e as GradserveError).message).toContain(`node "y" (${op}): ${message}`);
  });

  it('is a 422 over HTTP', async () => {
    const r = await app.inject({
      method: 'POST', url: '/v1/evaluate', payload: {
        graph: {
          inputs: { x: { shape: [3], datatype: 'FP32' }, i: { shape: [2], datatype: 'INT64' } },
          nodes: [{ name: 'y', op: 'take_along_axis', inputs: ['x', 'i'] }],
        },
        inputs: { x: [1, 2, 3], i: { shape: [2], datatype: 'INT64', data: [1, 3] } },
      },
    });
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'INDEX_OUT_OF_RANGE', detail: expect.stringContaining('index 3 is out of range for axis 0 of size 3') });
  });
});

describe('sorting numerics', () => {
  const withNaN = f64([7], [1, NaN, 3, 1, NaN, 3, 0]);

  it('puts NaN last ascending and first descending; equal values keep their order both ways', async () => {
    expect(nums(await run('argsort', [withNaN]))).toEqual([6, 0, 3, 2, 5, 1, 4]);
    expect(nums(await run('argsort', [withNaN], { descending: true }))).toEqual([1, 4, 2, 5, 0, 3, 6]);
    expect(nums(await run('sort', [withNaN]))).toEqual([0, 1, 1, 3, 3, NaN, NaN]);
    expect(nums(await run('sort', [withNaN], { descending: true }))).toEqual([NaN, NaN, 3, 3, 1, 1, 0]);
    // -0 equals 0 (a tie), infinities order below NaN
    expect(nums(await run('argsort', [f64([4], [0, -0, 0, -0])], { descending: true }))).toEqual([0, 1, 2, 3]);
    expect(nums(await run('argsort', [f64([4], [NaN, Infinity, -Infinity, 1])]))).toEqual([2, 3, 1, 0]);
    expect(nums(await run('argsort', [tensor('FP32', [4], [NaN, Infinity, -Infinity, 1])], { descending: true }))).toEqual([0, 1, 3, 2]);
  });

  it('top_k: NaN is the largest, ties go to the earlier position, values come sorted', async () => {
    const x = f64([6], [2, NaN, 5, 5, -1, 2]);
    expect(nums(await run('top_k_indices', [x], { k: 3 }))).toEqual([1, 2, 3]);
    expect(nums(await run('top_k', [x], { k: 3 }))).toEqual([NaN, 5, 5]);
    expect(nums(await run('top_k_indices', [x], { k: 3, largest: false }))).toEqual([4, 0, 5]);
    expect(nums(await run('top_k', [x], { k: 6, largest: false }))).toEqual([-1, 2, 2, 5, 5, NaN]);
    expect((await run('top_k', [x], { k: 0 })).shape).toEqual([0]);
  });

  it('sorts INT64 exactly beyond 2^53 and INT32 along a leading axis', async () => {
    const big = tensor('INT64', [3], [2n ** 62n, 2n ** 62n - 1n, -(2n ** 62n)]);
    expect(Array.from((await run('sort', [big])).data as BigInt64Array)).toEqual([-(2n ** 62n), 2n ** 62n - 1n, 2n ** 62n]);
    const m = tensor('INT32', [3, 2], [3, 0, 1, 0, 2, -5]);
    expect(nums(await run('sort', [m], { axis: 0, descending: true }))).toEqual([3, 0, 2, 0, 1, -5]);
    expect(nums(await run('argsort', [m], { axis: 0, descending: true }))).toEqual([0, 0, 2, 1, 1, 2]);
  });

  it('sends the gradient of sort and top_k back to where each value came from, ties included', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4], 'FP64');
    const s = x.sort().as('s');
    const t = x.topK(2, -1, false).as('t');
    const g = b.output(s, t).build();
    const r = await vjp(g, { x: f64([4], [2, 1, 2, 0]) }, { s: f64([4], [1, 10, 100, 1000]), t: f64([2], [5, 7]) }, ['x']);
    // sort: [0, 1, 2, 2] from positions [3, 1, 0, 2]; two smallest: positions [3, 1]
    expect(nums(r.outputs.s!)).toEqual([0, 1, 2, 2]);
    expect(nums(r.gradients.x!)).toEqual([100, 10 + 7, 1000, 1 + 5]);
  });

  it('handles empty axes', async () => {
    expect((await run('sort', [f64([2, 0], [])])).shape).toEqual([2, 0]);
    expect((await run('argsort', [f64([0, 3], [])], { axis: 0 })).shape).toEqual([0, 3]);
    expect((await run('top_k', [f64([2, 0], [])], { k: 0 })).shape).toEqual([2, 0]);
  });
});

describe('indexing and rearranging numerics', () => {
  const x = f64([2, 3], [1, 2, 3, 4, 5, 6]);

  it('take_along_axis and scatter_add count negative indices from the end; duplicates accumulate', async () => {
    expect(nums(await run('take_along_axis', [x, i64([2, 2], [-1, 0, 1, -3])], { axis: 1 }))).toEqual([3, 1, 5, 4]);
    expect(nums(await run('take_along_axis', [x, tensor('INT32', [3, 3], [1, 0, -1, 0, -2, 1, 1, 1, 1])], { axis: 0 }))).toEqual([4, 2, 6, 1, 2, 6, 4, 5, 6]);
    expect(nums(await run('scatter_add', [x, i64([2, 2], [-1, 2, 0, -3]), f64([2, 2], [10, 20, 30, 40])], { axis: 1 }))).toEqual([1, 2, 33, 74, 5, 6]);
    const ints = await run('scatter_add', [tensor('INT32', [3], [1, 1, 1]), i64([4], [0, 0, -1, 0]), tensor('INT32', [4], [5, 6, 7, 8])]);
    expect(ints.dtype).toBe('INT32');
    expect(nums(ints)).toEqual([20, 1, 8]);
    expect((await run('take_along_axis', [x, i64([2, 0], [])], { axis: 1 })).shape).toEqual([2, 0]);
  });

  it('the gradient of take_along_axis scatter-adds; that of scatter_add gathers', async () => {
    const b = new GraphBuilder();
    const xi = b.input('x', [3], 'FP64');
    const idx = b.constant(i64([4], [0, 2, 0, -1]), { name: 'idx' });
    const t = xi.takeAlongAxis(idx).as('t');
    const u = b.input('u', [4], 'FP64');
    const s = xi.scatterAdd(idx, u).as('s');
    const g = b.output(t, s).build();
    const r = await vjp(g, { x: f64([3], [1, 2, 3]), u: f64([4], [0, 0, 0, 0]) }, { t: f64([4], [1, 10, 100, 1000]), s: f64([3], [7, 8, 9]) }, ['x', 'u']);
    expect(nums(r.gradients.x!)).toEqual([101 + 7, 8, 1010 + 9]);
    expect(nums(r.gradients.u!)).toEqual([7, 9, 7, 9]);
  });

  it('roll takes shifts modulo the size, flattens without axes, and adds up a repeated axis', async () => {
    expect(nums(await run('roll', [x], { shifts: 2 ** 40 + 1 }))).toEqual(nums(await run('roll', [x], { shifts: (2 ** 40 + 1) % 6 })));
    expect(nums(await run('roll', [x], { shifts: 1 }))).toEqual([6, 1, 2, 3, 4, 5]);
    expect(nums(await run('roll', [x], { shifts: [-1], axes: [1] }))).toEqual([2, 3, 1, 5, 6, 4]);
    expect(nums(await run('roll', [x], { shifts: [1, 1, -7], axes: [1, 1, 0] }))).toEqual([5, 6, 4, 2, 3, 1]);
    expect(nums(await run('roll', [f64([], [5])], { shifts: 3 }))).toEqual([5]);
  });

  it('flip, tile, triu and tril at the edges', async () => {
    expect(nums(await run('flip', [x]))).toEqual([6, 5, 4, 3, 2, 1]);
    expect(nums(await run('flip', [x], { axes: -1 }))).toEqual([3, 2, 1, 6, 5, 4]);
    expect((await run('flip', [f64([0, 2], [])])).shape).toEqual([0, 2]);
    expect(nums(await run('tile', [x], { repeats: [1, 2] }))).toEqual([1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
    expect((await run('tile', [x], { repeats: [0, 2] })).shape).toEqual([0, 6]);
    expect(nums(await run('tile', [f64([], [7])], { repeats: [] }))).toEqual([7]);
    expect(nums(await run('triu', [x], { k: 1 }))).toEqual([0, 2, 3, 0, 0, 6]);
    expect(nums(await run('tril', [x], { k: -1 }))).toEqual([0, 0, 0, 4, 0, 0]);
    expect(nums(await run('triu', [x], { k: 2 ** 50 }))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(nums(await run('tril', [x], { k: -(2 ** 50) }))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(nums(await run('triu', [x], { k: -(2 ** 50) }))).toEqual([1, 2, 3, 4, 5, 6]);
    // over 21 tiled axes the copy takes several kernel steps (each within 64 dims)
    const rank = 23;
    const ones = Array<number>(rank).fill(1);
    const repeats = ones.map((_, i) => (i === 5 ? 1 : i === 7 ? 3 : 2));
    const b = new GraphBuilder();
    const xi = b.input('x', ones, 'FP32');
    const loss = xi.tile(repeats).mul(xi.tile(repeats)).sum().as('loss');
    const res = await grad(b.output(loss).build(), { x: tensor('FP32', ones, [1.5]) }, 'loss', ['x']);
    expect(nums(res.outputs.loss!)).toEqual([2.25 * 3 * 2 ** 21]);
    expect(nums(res.gradients.x!)).toEqual([3 * 3 * 2 ** 21]);
    // 39 tiled axes of rank 40 (one repeat 0, so nothing is allocated): one broadcast would need 79 dims
    const r40 = Array<number>(40).fill(1);
    const empty = await run('tile', [tensor('FP64', r40, [1])], { repeats: r40.map((_, i) => (i === 39 ? 0 : 2)) });
    expect(empty.shape).toEqual([...Array<number>(39).fill(2), 0]);
    const back = await vjp({ inputs: { x: { shape: r40, datatype: 'FP64' } }, nodes: [{ name: 'y', op: 'tile', inputs: ['x'], attrs: { repeats: r40.map((_, i) => (i === 0 ? 0 : 2)) } }], outputs: ['y'] },
      { x: tensor('FP64', r40, [1]) }, { y: tensor('FP64', [0, ...Array<number>(39).fill(2)], []) }, ['x']);
    expect(nums(back.gradients.x!)).toEqual([0]);
    const bools = await run('tril', [tensor('BOOL', [2, 2], [1, 1, 1, 1])]);
    expect(bools.dtype).toBe('BOOL');
    expect(nums(bools)).toEqual([1, 0, 1, 1]);
  });
});

describe('GraphBuilder', () => {
  it('builds the indexing and sorting ops, and their gradients evaluate', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3, 4], 'FP64');
    const idx = b.constant(i64([3, 2], [0, -1, 2, 2, 1, 3]), { name: 'idx' });
    const h = x.sort(-1, true).takeAlongAxis(idx, 1).tile([1, 2]).flip([0]).roll([1], [1]);
    expect(h.shape).toEqual([3, 4]);
    const m = x.scatterAdd(idx, x.topK(2), 1).matmul(h.triu().tril(1).transpose());
    const loss = m.square().sum().add(x.argsort().cast('FP64').sum()).add(x.topKIndices(1, 0, false).cast('FP64').sum()).as('loss');
    const g = b.output(loss).build();
    expect(g.nodes.map((n) => n.op).filter((o) => !['cast', 'sum', 'add', 'square', 'matmul', 'transpose'].includes(o))).toEqual([
      'sort', 'take_along_axis', 'tile', 'flip', 'roll', 'top_k', 'scatter_add', 'triu', 'tril', 'argsort', 'top_k_indices',
    ]);
    expect(g.nodes[0]!.attrs).toEqual({ axis: -1, descending: true });
    const r = rng(7);
    const xs = f64([3, 4], Array.from({ length: 12 }, () => 2 * r() - 1));
    const res = await grad(g, { x: xs }, 'loss', ['x']);
    expect(res.gradients.x!.shape).toEqual([3, 4]);
    expect(nums(res.gradients.x!).every(Number.isFinite)).toBe(true);
  });
});

describe('batching rules', () => {
  it('batch each float input of every sample: row k is the op on row k', async () => {
    const names = new Set(['take_along_axis', 'take_along_axis_grad', 'scatter_add', 'tile', 'tile_grad', 'flip', 'roll', 'triu', 'tril', 'sort', 'argsort', 'top_k', 'top_k_indices']);
    let checked = 0;
    for (const op of ALL_OPS.filter((o) => names.has(o.name))) {
      for (const [k, s] of op.samples.entries()) {
        const r = rng(60 + k);
        const ins = s.inputs.map((_, i) => `in${i}`);
        const inputs = Object.fromEntries(s.inputs.map((si, i) => [ins[i]!, sampleTensor(si, r)]));
        const graph: Graph = {
          inputs: Object.fromEntries(ins.map((n) => [n, { shape: [...inputs[n]!.shape], datatype: inputs[n]!.dtype }])),
          nodes: [{ name: 'out', op: op.name, inputs: ins, attrs: (s.attrs ?? {}) as Record<string, unknown> }],
          outputs: ['out'],
        };
        const shapes = engine.shapes(graph, inputs).values;
        for (const seed of ins.filter((n) => inputs[n]!.dtype === 'FP64')) {
          const K = 3;
          const rows = [inputs[seed]!, ...[1, 2].map(() => sampleTensor({ ...s.inputs[ins.indexOf(seed)]!, values: undefined }, r))];
          const vm = vmapGraph(graph, [seed], shapes, K);
          const stacked = tensor('FP64', [K, ...rows[0]!.shape], rows.flatMap((t) => Array.from(t.data as Float64Array)));
          const batched = (await engine.evaluate(vm.graph, { ...inputs, [seed]: stacked })).outputs.out!;
          for (let row = 0; row < K; row++) {
            const one = (await engine.evaluate(graph, { ...inputs, [seed]: rows[row]! })).outputs.out!;
            const n = one.data.length;
            const got = vm.batchedOutputs.out ? nums(batched).slice(row * n, (row + 1) * n) : nums(batched);
            expect(got, `${op.name} #${k} seed ${seed} row ${row}`).toEqual(nums(one));
          }
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(25);
  });
});

describe('derivative graphs for an unknown size', () => {
  it('give the same gradients as the direct transform', async () => {
    const r = rng(8);
    const t = (shape: number[]) => f64(shape, Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => 2 * r() - 1));
    const cases: [string, Record<string, unknown>][] = [
      ['sort', { axis: 0, descending: true }], ['top_k', { k: 2, axis: -1 }], ['tile', { repeats: [2, 1, 3] }],
      ['flip', { axes: [0, 2] }], ['roll', { shifts: 5 }], ['roll', { shifts: [1, -1], axes: [0, 1] }], ['triu', { k: -1 }],
      ['tril', { k: 1 }],
    ];
    for (const [op, attrs] of cases) {
      const graph = (batch: number | null): Graph => ({
        inputs: { x: { shape: [batch, 4, 3], datatype: 'FP64' }, w: { shape: [3, 4, 3], datatype: 'FP64' } },
        nodes: [{ name: 'y', op, inputs: ['x'], attrs }, { name: 'p', op: 'mul', inputs: ['y', 'y'] }, { name: 'loss', op: 'sum', inputs: ['p'] }],
        outputs: ['loss'],
      });
      const feeds = { x: t([3, 4, 3]), w: t([3, 4, 3]) };
      const symbolic = transform(graph(null), { transform: 'grad', of: 'loss', wrt: ['x'] });
      const direct = await grad(graph(3), feeds, 'loss', ['x']);
      const viaGraph = (await evaluate(symbolic, feeds)).outputs['grad:x']!;
      nums(viaGraph).forEach((v, i) => expect(v, `${op} ${JSON.stringify(attrs)} [${i}]`).toBeCloseTo(nums(direct.gradients.x!)[i]!, 12));
    }
    // take_along_axis and scatter_add with indices of an unknown leading size
    const graph = (batch: number | null): Graph => ({
      inputs: { x: { shape: [batch, 4], datatype: 'FP64' }, i: { shape: [batch, 2], datatype: 'INT64' }, u: { shape: [batch, 2], datatype: 'FP64' } },
      nodes: [
        { name: 'a', op: 'take_along_axis', inputs: ['x', 'i'], attrs: { axis: 1 } },
        { name: 'b', op: 'scatter_add', inputs: ['x', 'i', 'u'], attrs: { axis: -1 } },
        { name: 'a2', op: 'mul', inputs: ['a', 'u'] }, { name: 'b2', op: 'mul', inputs: ['b', 'b'] },
        { name: 'sa', op: 'sum', inputs: ['a2'] }, { name: 'sb', op: 'sum', inputs: ['b2'] }, { name: 'loss', op: 'add', inputs: ['sa', 'sb'] },
      ],
      outputs: ['loss'],
    });
    const feeds = { x: t([3, 4]), i: i64([3, 2], [0, -1, 2, 2, 3, 1]), u: t([3, 2]) };
    const symbolic = transform(graph(null), { transform: 'grad', of: 'loss', wrt: ['x', 'u'] });
    const direct = await grad(graph(3), feeds, 'loss', ['x', 'u']);
    const out = (await evaluate(symbolic, feeds)).outputs;
    for (const w of ['x', 'u']) nums(out[`grad:${w}`]!).forEach((v, i) => expect(v).toBeCloseTo(nums(direct.gradients[w]!)[i]!, 12));
  });
});
