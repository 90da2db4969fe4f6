/**
 * Per-example gradients (`grad` with `per_example`): against PyTorch looping over the examples of an MLP with cross
 * entropy (test/fixtures/per_example, written by scripts/gen_per_example_fixture.py), against our own loop of
 * one-example gradients on random small graphs (fast-check) and on an embedding lookup (batched indices), through
 * every way the batch can run; then N = 0, the validation errors and the memory refusal.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it, test } from 'vitest';
import { engine } from '../../src/index.js';
import type { GradOptions, Tensors } from '../../src/engine.types.js';
import type { GradserveError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/types.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { expectClose, maxDiff, randomProblem, randTensor } from '../autodiff/helpers.js';

interface FxTensor { shape: number[]; datatype?: string; data: number[] }
interface Case {
  name: string;
  graph: Graph;
  inputs: Record<string, FxTensor>;
  per_example: { axis: number; inputs: string[] };
  of: string;
  wrt: string[];
  loss: FxTensor;
  expected: Record<string, FxTensor>;
}

/** The rejection of a call that must fail. */
const unexpected = (): never => expect.unreachable('resolved');

const fixture = JSON.parse(readFileSync(new URL('../fixtures/per_example/mlp_ce.json', import.meta.url), 'utf8')) as { cases: Case[] };

function decode(t: FxTensor, dtype: DType): Tensor {
  return tensor(dtype, t.shape, dtype === 'INT64' ? t.data.map((v) => BigInt(v)) : t.data);
}

/** Relative closeness to a torch value: |a - e| <= tol * max(|e|, floor). */
function expectNear(actual: Tensor, expected: Tensor, tol: number, floor: number): void {
  expect(actual.shape).toEqual(expected.shape);
  for (let i = 0; i < expected.data.length; i++) {
    const a = Number(actual.data[i]);
    const e = Number(expected.data[i]);
    expect(Math.abs(a - e), `element ${i}: ${a} vs torch ${e}`).toBeLessThanOrEqual(tol * Math.max(Math.abs(e), floor));
  }
}

const MODES: [string, GradOptions][] = [['one pass', {}], ['chunks', { batchChunk: 3 }], ['loop', { vectorize: false }]];

describe('per-example gradients of an MLP with cross entropy equal PyTorch looping over the examples', () => {
  for (const c of fixture.cases) {
    for (const dtype of ['FP64', 'FP32'] as const) {
      it(`${c.name}, ${dtype}`, async () => {
        const inputs: Tensors = {};
        for (const [k, v] of Object.entries(c.inputs)) inputs[k] = decode(v, v.datatype === 'INT64' ? 'INT64' : dtype);
        const graph: Graph = JSON.parse(JSON.stringify(c.graph).replaceAll('"FP64"', `"${dtype}"`)) as Graph;
        const tol = dtype === 'FP64' ? 1e-10 : 1e-4;
        for (const [mode, opts] of MODES) {
          const r = await engine.grad(graph, inputs, c.of, c.wrt, { ...opts, per_example: c.per_example });
          expectNear(r.outputs[c.of]!, decode(c.loss, dtype), tol, 1);
          for (const w of c.wrt) {
            expect(r.gradients[w]!.dtype).toBe(dtype);
            expectNear(r.gradients[w]!, decode(c.expected[w]!, dtype), tol, dtype === 'FP64' ? 1e-3 : 1);
          }
          expect(r.batching, mode).toMatchObject({ size: 7, vectorized: mode !== 'loop' });
        }
      });
    }
  }
});

/** The graph with inputs re-declared at the given shapes (a one-example slice). */
function redeclared(graph: Graph, shapes: Record<string, number[]>): Graph {
  const inputs = { ...graph.inputs };
  for (const [k, s] of Object.entries(shapes)) inputs[k] = { ...inputs[k], shape: s };
  return { ...graph, inputs };
}

/** Example i of t along axis (size 1 kept). */
function sliceAt(t: Tensor, axis: number, i: number): Tensor {
  const outer = numel(t.shape.slice(0, axis));
  const inner = numel(t.shape.slice(axis + 1));
  const n = t.shape[axis]!;
  const out: number[] = [];
  for (let o = 0; o < outer; o++) for (let k = 0; k < inner; k++) out.push(Number(t.data[(o * n + i) * inner + k]));
  return tensor(t.dtype, t.shape.map((d, j) => (j === axis ? 1 : d)), t.dtype === 'INT64' ? out.map((v) => BigInt(v)) : out);
}

/** Our own reference: one ordinary gradient per example, laid out as per_example returns them. */
async function loopReference(graph: Graph, inputs: Tensors, of: string, wrt: string[], axis: number, sliced: string[]): Promise<Tensors> {
  const N = inputs[sliced[0]!]!.shape[axis]!;
  const per: Tensors[] = [];
  for (let i = 0; i < N; i++) {
    const ins = { ...inputs };
    for (const s of sliced) ins[s] = sliceAt(inputs[s]!, axis, i);
    const g = redeclared(graph, Object.fromEntries(sliced.map((s) => [s, [...ins[s]!.shape]])));
    per.push((await engine.grad(g, ins, of, wrt)).gradients);
  }
  const out: Tensors = {};
  for (const w of wrt) {
    if (sliced.includes(w)) {
      // concatenate along the axis
      const t = inputs[w]!;
      const outer = numel(t.shape.slice(0, axis));
      const inner = numel(t.shape.slice(axis + 1));
      const data = new Float64Array(numel(t.shape));
      per.forEach((p, i) => {
        for (let o = 0; o < outer; o++) for (let k = 0; k < inner; k++) data[(o * N + i) * inner + k] = Number(p[w]!.data[o * inner + k]);
      });
      out[w] = tensor('FP64', t.shape, data);
    } else {
      const one = per[0]![w]!;
      const data = new Float64Array(N * numel(one.shape));
      per.forEach((p, i) => data.set(p[w]!.data as Float64Array, i * numel(one.shape)));
      out[w] = tensor('FP64', [N, ...one.shape], data);
    }
  }
  return out;
}

describe('per-example gradients equal the loop of one-example gradients', () => {
  test('random small graphs (fast-check), each input sliced along each of its axes', async () => {
    const choices: [string, number][] = [['a', 0], ['a', 1], ['b', 0], ['c', 0], ['c', 1]];
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.constantFrom(...choices), async (seed, [name, axis]) => {
        const p = randomProblem(seed);
        const last = p.graph.outputs![0]!;
        const graph: Graph = { ...p.graph, nodes: [...p.graph.nodes, { name: 'loss', op: 'mean', inputs: [last], attrs: { axes: null } }], outputs: [last, 'loss'] };
        const wrt = [...new Set([...p.wrt, name])];
        let want: Tensors;
        try {
          want = await loopReference(graph, p.inputs, 'loss', wrt, axis, [name]);
        } catch (e) {
          // a graph that cannot run on one example is refused the same way
          await expect(engine.grad(graph, p.inputs, 'loss', wrt, { per_example: { axis, inputs: [name] } })).rejects.toMatchObject({ code: (e as GradserveError).code });
          return;
        }
        for (const opts of [{}, { batchChunk: 1 }]) {
          const got = await engine.grad(graph, p.inputs, 'loss', wrt, { ...opts, per_example: { axis, inputs: [name] } });
          for (const w of wrt) expect(maxDiff(got.gradients[w]!, want[w]!), `${w}`).toBeLessThanOrEqual(1e-12);
          const whole = await engine.evaluate(graph, p.inputs);
          expectClose(got.outputs.loss!, whole.outputs.loss!, 0);
        }
      }),
      { numRuns: 30, seed: 61 },
    );
  });

  const embed: Graph = {
    inputs: { tokens: { shape: [null, 3], datatype: 'INT64' }, table: { shape: [5, 4], datatype: 'FP64' }, w: { shape: [4], datatype: 'FP64' } },
    nodes: [
      { name: 'e', op: 'gather', inputs: ['table', 'tokens'], attrs: { axis: 0 } },
      { name: 'h', op: 'tanh', inputs: ['e'] },
      { name: 's', op: 'matmul', inputs: ['h', 'w'] },
      { name: 'loss', op: 'mean', inputs: ['s'], attrs: { axes: null } },
    ],
    outputs: ['loss'],
  };
  const r = rng(77);
  const embedInputs = () => ({ tokens: tensor('INT64', [4, 3], [0n, 1n, 1n, 4n, 2n, -1n, 3n, 3n, 3n, 0n, 4n, 2n]), table: randTensor(r, [5, 4]), w: randTensor(r, [4]) });

  it('an embedding lookup: batched indices into a shared table (gather, scatter_add_like)', async () => {
    const inputs = embedInputs();
    const want = await loopReference(embed, inputs, 'loss', ['table', 'w'], 0, ['tokens']);
    for (const [mode, opts] of MODES) {
      const got = await engine.grad(embed, inputs, 'loss', ['table', 'w'], { ...opts, per_example: { axis: 0, inputs: ['tokens'] } });
      expect(got.batching!.vectorized, mode).toBe(mode !== 'loop');
      expectClose(got.gradients.table!, want.table!, 1e-14);
      expectClose(got.gradients.w!, want.w!, 1e-14);
    }
  });

  it('an index out of range is INDEX_OUT_OF_RANGE in the vectorized pass too', async () => {
    const inputs = { ...embedInputs(), tokens: tensor('INT64', [2, 3], [0n, 1n, 1n, 4n, 7n, 0n]) };
    const e = await engine.grad(embed, inputs, 'loss', ['table'], { per_example: { axis: 0, inputs: ['tokens'] } }).then(unexpected, (x: unknown) => x as GradserveError);
    expect(e).toMatchObject({ code: 'INDEX_OUT_OF_RANGE' });
    expect(e.detail).toContain('7');
  });
});

const mlp = fixture.cases[0]!;
const mlpInputs = (): Tensors => Object.fromEntries(Object.entries(mlp.inputs).map(([k, v]) => [k, decode(v, v.datatype === 'INT64' ? 'INT64' : 'FP64')]));

describe('N = 0', () => {
  it('gives empty per-example gradients and the (empty) batch\'s outputs', async () => {
    const inputs = { ...mlpInputs(), x: tensor('FP64', [0, 6]), labels: tensor('INT64', [0]) };
    const r = await engine.grad(mlp.graph, inputs, 'loss', ['w1', 'x'], { per_example: { axis: 0, inputs: ['x', 'labels'] } });
    expect(r.gradients.w1!.shape).toEqual([0, 6, 5]);
    expect(r.gradients.x!.shape).toEqual([0, 6]);
    expect(r.outputs.loss!.shape).toEqual([]);
    expect(r.batching).toMatchObject({ size: 0 });
  });
});

describe('validation', () => {
  const pe = (per_example: unknown, wrt = ['w1'], inputs = mlpInputs(), of = 'loss') =>
    engine.grad(mlp.graph, inputs, of, wrt, { per_example: per_example as GradOptions['per_example'] }).then(() => expect.unreachable('resolved'), (e: unknown) => e as GradserveError);

  it('an unknown name is UNKNOWN_VALUE; so is a node', async () => {
    expect(await pe({ axis: 0, inputs: ['x', 'nope'] })).toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'per_example.inputs[1]' }] });
    const e = await pe({ axis: 0, inputs: ['h'] });
    expect(e).toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'per_example.inputs[0]' }] });
    expect(e.detail).toContain('not a graph input');
  });

  it('sizes along the axis that disagree are SHAPE_MISMATCH naming the inputs and sizes', async () => {
    const e = await pe({ axis: 0, inputs: ['x', 'labels'] }, ['w1'], { ...mlpInputs(), labels: tensor('INT64', [6], [0n, 1n, 2n, 3n, 0n, 1n]) });
    // the whole batch does not run either (cross entropy checks labels against logits)
    expect(e).toMatchObject({ code: 'SHAPE_MISMATCH' });
    const e2 = await pe({ axis: 0, inputs: ['x', 'w1'] });
    expect(e2).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'per_example.inputs[1]' }] });
    expect(e2.detail).toContain('inputs.x has 7 examples along axis 0 but inputs.w1 [6, 5] has 6');
  });

  it('an axis out of range is SHAPE_MISMATCH; a malformed spec INVALID_REQUEST', async () => {
    expect(await pe({ axis: 2, inputs: ['x'] })).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'per_example.axis' }] });
    expect(await pe({ axis: 0, inputs: [] })).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'per_example.inputs' }] });
    expect(await pe({ axis: 0.5, inputs: ['x'] })).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'per_example.axis' }] });
  });

  it('of must have one element per example (NOT_SCALAR), wrt must be differentiable', async () => {
    expect(await pe({ axis: 0, inputs: ['x', 'labels'] }, ['w1'], mlpInputs(), 'logits')).toMatchObject({ code: 'NOT_SCALAR' });
    expect(await pe({ axis: 0, inputs: ['x', 'labels'] }, ['labels'])).toMatchObject({ code: 'NOT_DIFFERENTIABLE' });
  });

  it('a graph that cannot run on one example says so', async () => {
    const fixed: Graph = { ...mlp.graph, nodes: [...mlp.graph.nodes, { name: 'r', op: 'reshape', inputs: ['x'], attrs: { shape: [7, 6] } }, { name: 'rs', op: 'sum', inputs: ['r'], attrs: { axes: null } }] };
    const e = await engine.grad(fixed, mlpInputs(), 'rs', ['x'], { per_example: { axis: 0, inputs: ['x'] } }).then(unexpected, (x: unknown) => x as GradserveError);
    expect(e).toMatchObject({ code: 'SHAPE_MISMATCH' });
    expect(e.detail).toMatch(/^per_example: the graph does not run on one example \(x \[1, 6\]\)/);
  });
});

describe('memory', () => {
  it('refuses N over the budget with the bytes needed and the largest N that fits, which runs', async () => {
    const opts = (memoryBudgetBytes: number): GradOptions => ({ per_example: { axis: 0, inputs: ['x', 'labels'] }, memoryBudgetBytes });
    const refusal = (budget: number, inputs = mlpInputs()) =>
      engine.grad(mlp.graph, inputs, 'loss', ['w1', 'w2'], opts(budget)).then(() => expect.unreachable('ran'), (x: unknown) => x as GradserveError);
    const first = await refusal(1);
    expect(first).toMatchObject({ code: 'TOO_LARGE' });
    const need = Number(/per-example gradients of N = 7 needs [\d.]+ [KMG]?i?B \((\d+) bytes/.exec(first.detail)![1]);
    // one byte short: refused, and the largest batch that fits is one example fewer
    const e = await refusal(need - 1);
    expect(e.detail).toContain(`(${need} bytes`);
    expect(e.detail).toContain('the largest batch that fits is N = 6');
    const x = mlpInputs();
    const six = { ...x, x: tensor('FP64', [6, 6], x.x!.data.slice(0, 36) as Float64Array), labels: tensor('INT64', [6], x.labels!.data.slice(0, 6) as BigInt64Array) };
    const ok = await engine.grad(mlp.graph, six, 'loss', ['w1', 'w2'], opts(need - 1));
    expect(ok.gradients.w1!.shape).toEqual([6, 6, 5]);
  });
});
