/**
 * Batched vjp / jvp / hvp (API.md "Batched derivatives") against the loop of single calls: for every sample of every
 * differentiable op in the registry and for random small graphs (fast-check), through each way a batch can run (one
 * vectorized pass, chunks, the loop), and B = 0; then the validation and memory refusals.
 */
import fc from 'fast-check';
import { describe, expect, it, test } from 'vitest';
import { engine } from '../../src/index.js';
import type { BatchOptions, Tensors } from '../../src/engine.types.js';
import type { GradserveError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/types.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import { isFloat } from '../../src/tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { expectClose, randomProblem, randTensor } from '../autodiff/helpers.js';
import { opGraph, sampleTensor } from '../autodiff/opcheck_support.js';

/** The rejection of a call that must fail. */
const unexpected = (): never => expect.unreachable('resolved');

const B = 3;

/** B random tensors of `shape` stacked on a leading axis. */
function batchOf(r: () => number, shape: readonly number[], n = B): Tensor {
  return randTensor(r, [n, ...shape]);
}

function memberOf(t: Tensor, b: number): Tensor {
  const n = numel(t.shape.slice(1));
  return tensor(t.dtype, t.shape.slice(1), t.data.slice(b * n, (b + 1) * n) as Float64Array);
}

function expectMembers(batched: Tensor, members: Tensor[], tol = 1e-12): void {
  expect(batched.shape).toEqual([members.length, ...members[0]!.shape]);
  members.forEach((m, b) => expectClose(memberOf(batched, b), m, tol));
}

/** The ways a batch may run: one vectorized pass, chunks of two, the loop. */
const MODES: [string, BatchOptions][] = [['one pass', {}], ['chunks', { batchChunk: 2 }], ['loop', { vectorize: false }]];

async function checkVjp(graph: Graph, inputs: Tensors, outs: string[], wrt: string[], r: () => number, modes = MODES): Promise<void> {
  const values = engine.shapes(graph, inputs).values;
  const cot: Tensors = Object.fromEntries(outs.map((o) => [o, batchOf(r, values[o]!.shape)]));
  const loop = [];
  for (let b = 0; b < B; b++) loop.push(await engine.vjp(graph, inputs, Object.fromEntries(outs.map((o) => [o, memberOf(cot[o]!, b)])), wrt));
  for (const [mode, opts] of modes) {
    const res = await engine.vjp(graph, inputs, cot, wrt, { ...opts, batched: true });
    for (const w of wrt) expectMembers(res.gradients[w]!, loop.map((l) => l.gradients[w]!));
    for (const [k, v] of Object.entries(loop[0]!.outputs)) expectClose(res.outputs[k]!, v, 0);
    expect(res.batching, mode).toMatchObject({ size: B, vectorized: mode !== 'loop' });
  }
}

async function checkJvp(graph: Graph, inputs: Tensors, wrt: string[], r: () => number, modes = MODES): Promise<void> {
  const tan: Tensors = Object.fromEntries(wrt.map((x) => [x, batchOf(r, inputs[x]!.shape)]));
  const loop = [];
  for (let b = 0; b < B; b++) loop.push(await engine.jvp(graph, inputs, Object.fromEntries(wrt.map((x) => [x, memberOf(tan[x]!, b)]))));
  for (const [, opts] of modes) {
    const res = await engine.jvp(graph, inputs, tan, undefined, { ...opts, batched: true });
    for (const o of Object.keys(loop[0]!.tangents)) expectMembers(res.tangents[o]!, loop.map((l) => l.tangents[o]!));
    for (const [k, v] of Object.entries(loop[0]!.outputs)) expectClose(res.outputs[k]!, v, 0);
  }
}

async function checkHvp(graph: Graph, inputs: Tensors, of: string, wrt: string[], r: () => number, modes = MODES): Promise<void> {
  const vec: Tensors = Object.fromEntries(wrt.map((x) => [x, batchOf(r, inputs[x]!.shape)]));
  const loop = [];
  for (let b = 0; b < B; b++) loop.push(await engine.hvp(graph, inputs, of, Object.fromEntries(wrt.map((x) => [x, memberOf(vec[x]!, b)]))));
  for (const [, opts] of modes) {
    const res = await engine.hvp(graph, inputs, of, vec, { ...opts, batched: true });
    for (const w of wrt) {
      expectMembers(res.hvp[w]!, loop.map((l) => l.hvp[w]!), 1e-10);
      expectClose(res.gradients[w]!, loop[0]!.gradients[w]!, 1e-12);
    }
    for (const [k, v] of Object.entries(loop[0]!.outputs)) expectClose(res.outputs[k]!, v, 0);
  }
}

const cases = ALL_OPS.filter((op) => op.differentiable).flatMap((op) => op.samples.map((s, k) => ({ op, s, k })));

describe('batched products equal the loop of single calls, for every op sample of the registry', () => {
  for (const { op, s, k } of cases) {
    it(`${op.name} #${k}${s.note ? ` (${s.note})` : ''}`, async () => {
      const r = rng(5000 + k);
      const base = s.inputs.map((si) => sampleTensor(si, r));
      const graph = opGraph(op, s, base);
      const inputs = Object.fromEntries(base.map((t, i) => [`in${i}`, t]));
      const y = (await engine.evaluate(graph, inputs)).outputs.y!;
      const wrt = Object.keys(inputs).filter((n) => isFloat(inputs[n]!.dtype));
      if (!isFloat(y.dtype) || wrt.length === 0) return;
      await checkVjp(graph, inputs, ['y'], wrt, r);
      await checkJvp(graph, inputs, wrt, r);
      if (op.twiceDifferentiable === false) return;
      // a scalar of the op's output for the hvp: sum(y * y)
      const g2: Graph = {
        ...graph,
        nodes: [...graph.nodes, { name: 'y2', op: 'mul', inputs: ['y', 'y'] }, { name: 'loss', op: 'sum', inputs: ['y2'], attrs: { axes: null } }],
        outputs: ['loss'],
      };
      await checkHvp(g2, inputs, 'loss', wrt, r);
    });
  }
});

describe('random small graphs (fast-check)', () => {
  test('batched vjp, jvp and hvp equal the loop', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), async (seed) => {
        const p = randomProblem(seed);
        const r = rng(seed + 1);
        await checkVjp(p.graph, p.inputs, p.of, p.wrt, r);
        await checkJvp(p.graph, p.inputs, p.wrt, r);
        const last = p.graph.outputs![0]!;
        const g2: Graph = { ...p.graph, nodes: [...p.graph.nodes, { name: 'loss', op: 'sum', inputs: [last], attrs: { axes: null } }], outputs: [last, 'loss'] };
        await checkHvp(g2, p.inputs, 'loss', p.wrt, r);
      }),
      { numRuns: 25, seed: 16 },
    );
  });
});

const linear: Graph = {
  inputs: { x: { shape: [2, 3], datatype: 'FP64' }, w: { shape: [3, 4], datatype: 'FP64' } },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 't', op: 'tanh', inputs: ['y'] },
    { name: 's', op: 'sum', inputs: ['t'], attrs: { axes: null } },
  ],
  outputs: ['t', 's'],
};
const r0 = rng(7);
const lin = { x: randTensor(r0, [2, 3]), w: randTensor(r0, [3, 4]) };

describe('B = 0', () => {
  it('gives empty batched results and the ordinary outputs', async () => {
    const plain = await engine.evaluate(linear, lin);
    const v = await engine.vjp(linear, lin, { t: tensor('FP64', [0, 2, 4]) }, ['x', 'w'], { batched: true });
    expect(v.gradients.x!.shape).toEqual([0, 2, 3]);
    expect(v.gradients.w!.shape).toEqual([0, 3, 4]);
    expectClose(v.outputs.t!, plain.outputs.t!, 0);
    expect(v.batching).toMatchObject({ size: 0 });
    const j = await engine.jvp(linear, lin, { w: tensor('FP64', [0, 3, 4]) }, ['t', 's'], { batched: true });
    expect(j.tangents.t!.shape).toEqual([0, 2, 4]);
    expect(j.tangents.s!.shape).toEqual([0]);
    const h = await engine.hvp(linear, lin, 's', { x: tensor('FP64', [0, 2, 3]) }, { batched: true });
    expect(h.hvp.x!.shape).toEqual([0, 2, 3]);
    const g = await engine.grad(linear, lin, 's', ['x']);
    expectClose(h.gradients.x!, g.gradients.x!, 1e-15);
  });
});

describe('validation', () => {
  const err = (p: Promise<unknown>) => p.then(() => expect.unreachable('resolved'), (e: unknown) => e as GradserveError);

  it('leading axes that disagree are SHAPE_MISMATCH naming the tensors and sizes', async () => {
    const e = await err(engine.vjp(linear, lin, { t: tensor('FP64', [2, 2, 4]), s: tensor('FP64', [3]) }, ['x'], { batched: true }));
    expect(e).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'cotangents.s' }] });
    expect(e.detail).toContain('cotangents.t has 2');
    expect(e.detail).toContain('cotangents.s has 3');
    const e2 = await err(engine.jvp(linear, lin, { x: tensor('FP64', [4, 2, 3]), w: tensor('FP64', [5, 3, 4]) }, undefined, { batched: true }));
    expect(e2).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'tangents.w' }] });
    expect(e2.detail).toMatch(/tangents\.x has 4.*tangents\.w has 5/);
    const e3 = await err(engine.hvp(linear, lin, 's', { x: tensor('FP64', [4, 2, 3]), w: tensor('FP64', [1, 3, 4]) }, { batched: true }));
    expect(e3).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'vectors.w' }] });
  });

  it('a tensor without the batch axis, or with the wrong member shape, is SHAPE_MISMATCH', async () => {
    const e = await err(engine.vjp(linear, lin, { t: tensor('FP64', [2, 4]) }, ['x'], { batched: true }));
    expect(e).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'cotangents.t' }] });
    expect(e.detail).toContain('[B, ...[2, 4]] = [2, 2, 4], got [2, 4]');
    const e2 = await err(engine.vjp(linear, lin, { s: tensor('FP64', []) }, ['x'], { batched: true }));
    expect(e2).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'cotangents.s' }] });
    const e3 = await err(engine.hvp(linear, lin, 's', { w: tensor('FP64', [2, 4, 3]) }, { batched: true }));
    expect(e3).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'vectors.w' }] });
    const e4 = await err(engine.jvp(linear, lin, { x: tensor('FP32', [2, 2, 3]) }, undefined, { batched: true }));
    expect(e4).toMatchObject({ code: 'DATATYPE_MISMATCH', errors: [{ path: 'tangents.x' }] });
  });

  it('a batched call without seeds has no B: INVALID_REQUEST', async () => {
    await expect(engine.jvp(linear, lin, {}, undefined, { batched: true })).rejects.toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'tangents' }] });
  });
});

describe('memory', () => {
  const wide: Graph = {
    inputs: { x: { shape: [16, 64], datatype: 'FP64' }, w: { shape: [64, 64], datatype: 'FP64' } },
    nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }, { name: 't', op: 'tanh', inputs: ['y'] }],
    outputs: ['t'],
  };
  const r = rng(9);
  const ins = { x: randTensor(r, [16, 64]), w: randTensor(r, [64, 64]) };

  it('refuses a batch over the budget with the bytes it needs and the largest batch that fits, which runs', async () => {
    const budget = 2 * 1024 * 1024;
    const cot = batchOf(r, [16, 64], 100);
    const e = await engine.vjp(wide, ins, { t: cot }, ['w'], { batched: true, memoryBudgetBytes: budget }).then(unexpected, (x: unknown) => x as GradserveError);
    expect(e).toMatchObject({ code: 'TOO_LARGE' });
    const m = /needs [\d.]+ [KMG]iB \((\d+) bytes.*over the memory budget of 2 MiB; the largest batch that fits is B = (\d+)/.exec(e.detail);
    expect(m, e.detail).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(budget);
    const largest = Number(m![2]);
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(100);
    const fits = await engine.vjp(wide, ins, { t: batchOf(r, [16, 64], largest) }, ['w'], { batched: true, memoryBudgetBytes: budget });
    expect(fits.gradients.w!.shape).toEqual([largest, 64, 64]);
    await expect(engine.vjp(wide, ins, { t: batchOf(r, [16, 64], largest + 1) }, ['w'], { batched: true, memoryBudgetBytes: budget }))
      .rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('splits a batch that fits only in chunks, and reserves its estimate before running', async () => {
    const budget = 2 * 1024 * 1024;
    const cot = batchOf(r, [16, 64], 30);
    const reserved: number[] = [];
    const res = await engine.vjp(wide, ins, { t: cot }, ['x', 'w'], { batched: true, memoryBudgetBytes: budget, onPlan: (c) => void reserved.push(c.peakBytes) });
    expect(res.batching!.vectorized).toBe(true);
    expect(res.batching!.passes).toBeGreaterThan(1);
    expect(reserved.length).toBe(1);
    expect(reserved[0]).toBeLessThanOrEqual(budget);
    const whole = await engine.vjp(wide, ins, { t: cot }, ['x', 'w'], { batched: true });
    expect(whole.batching).toMatchObject({ passes: 1, chunk: 30 });
    expectClose(res.gradients.w!, whole.gradients.w!, 1e-12);
    expectClose(res.gradients.x!, whole.gradients.x!, 1e-12);
  });

  it('refuses a batched result over the element limit, naming it and the largest batch that fits', async () => {
    const e = await engine.jvp(wide, ins, { w: batchOf(r, [64, 64], 10) }, undefined, { batched: true, maxTensorElements: 16 * 64 * 4 })
      .then(unexpected, (x: unknown) => x as GradserveError);
    expect(e).toMatchObject({ code: 'TOO_LARGE' });
    expect(e.detail).toContain('tangents.t [10, 16, 64] would have 10240 elements, over the limit of 4096 per tensor; the largest batch that fits is B = 4');
  });
});
