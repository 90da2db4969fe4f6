/**
 * Property tests (fast-check): broadcasting binary ops over random compatible shapes, and random small graphs, each
 * checked against FP64 central differences and the JVP/VJP identity.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { evaluate, grad, jvp, vjp } from '../../src/index.js';
import type { Graph, NodeSpec } from '../../src/graph/types.js';
import { broadcastShapes } from '../../src/tensor/shape.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { dot, numericGrad, randomLike, worst } from './opcheck_support.js';

const fill = (shape: number[], r: () => number, lo: number, hi: number): Tensor =>
  tensor('FP64', shape, Array.from({ length: numel(shape) }, () => lo + (hi - lo) * r()));

/** A shape and two operand shapes that broadcast to it (leading axes dropped, some axes set to 1). */
const broadcastPair = fc
  .array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 3 })
  .chain((full) =>
    fc.tuple(
      fc.constant(full),
      fc.integer({ min: 0, max: full.length }),
      fc.integer({ min: 0, max: full.length }),
      fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
      fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
    ),
  )
  .map(([full, dropA, dropB, onesA, onesB]) => {
    const a = full.map((d, i) => (onesA[i] ? 1 : d)).slice(dropA);
    const b = full.map((d, i) => (onesB[i] ? 1 : d)).slice(dropB);
    return { a, b };
  });

const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const;

describe('broadcasting binary ops', () => {
  test('VJP matches finite differences; gradients have the operand shapes', async () => {
    await fc.assert(
      fc.asyncProperty(broadcastPair, fc.constantFrom(...BINARY), fc.integer({ min: 1, max: 1e6 }), async ({ a, b }, op, seed) => {
        const r = rng(seed);
        const graph: Graph = {
          inputs: { a: { shape: a, datatype: 'FP64' }, b: { shape: b, datatype: 'FP64' } },
          nodes: [{ name: 'y', op, inputs: ['a', 'b'] }],
        };
        // positive operands keep pow and div smooth; distinct ranges keep maximum/minimum away from ties
        const ins = { a: fill(a, r, 0.5, 1.5), b: fill(b, r, 1.7, 2.5) };
        const y = (await evaluate(graph, ins)).outputs.y!;
        expect(y.shape).toEqual(broadcastShapes(a, b));
        const cot = randomLike(y, r);
        const back = await vjp(graph, ins, { y: cot }, ['a', 'b']);
        const f = async (t: Record<string, Tensor>) => dot((await evaluate(graph, t)).outputs.y!, cot);
        for (const w of ['a', 'b'] as const) {
          expect(back.gradients[w]!.shape).toEqual(ins[w].shape);
          const num = await numericGrad(f, ins, w);
          expect(worst(back.gradients[w]!.data as Float64Array, num, 1e-7, 1e-5).ratio).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 60, seed: 42 },
    );
  });
});

interface Shaped {
  name: string;
  shape: number[];
}

/** Random graphs over a [2, 3] and b [3]: smooth unary ops, broadcasting binary ops, keepdims reductions. */
const program = fc.array(
  fc.tuple(fc.constantFrom('tanh', 'sin', 'sigmoid', 'square', 'softplus', 'add', 'mul', 'sub', 'sum0', 'mean1', 'logsumexp1'), fc.nat(), fc.nat()),
  { minLength: 1, maxLength: 7 },
);

function buildGraph(steps: [string, number, number][]): Graph {
  const values: Shaped[] = [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }];
  const nodes: NodeSpec[] = [];
  steps.forEach(([op, i, j], k) => {
    const x = values[i % values.length]!;
    const y = values[j % values.length]!;
    const name = `v${k}`;
    if (op === 'add' || op === 'mul' || op === 'sub') {
      nodes.push({ name, op, inputs: [x.name, y.name] });
      values.push({ name, shape: broadcastShapes(x.shape, y.shape) as number[] });
    } else if (op === 'sum0' || op === 'mean1' || op === 'logsumexp1') {
      const axis = op === 'sum0' ? 0 : x.shape.length - 1;
      if (x.shape.length === 0) return;
      const real = op === 'sum0' ? 'sum' : op === 'mean1' ? 'mean' : 'logsumexp';
      nodes.push({ name, op: real, inputs: [x.name], attrs: { axes: [axis], keepdims: true } });
      values.push({ name, shape: x.shape.map((d, q) => (q === axis ? 1 : d)) });
    } else {
      nodes.push({ name, op, inputs: [x.name] });
      values.push({ name, shape: x.shape });
    }
  });
  // the loss reads every value, so fan-out is everywhere
  const terms = values.map((v) => v.name);
  terms.forEach((t, k) => nodes.push({ name: `s${k}`, op: 'sum', inputs: [t] }));
  let acc = 's0';
  for (let k = 1; k < terms.length; k++) {
    nodes.push({ name: `acc${k}`, op: 'add', inputs: [acc, `s${k}`] });
    acc = `acc${k}`;
  }
  nodes.push({ name: 'loss', op: 'identity', inputs: [acc] });
  return { inputs: { a: { shape: [2, 3], datatype: 'FP64' }, b: { shape: [3], datatype: 'FP64' } }, nodes: nodes.reverse(), outputs: ['loss'] };
}

describe('random small graphs', () => {
  test('grad matches finite differences and jvp agrees with vjp', async () => {
    await fc.assert(
      fc.asyncProperty(program, fc.integer({ min: 1, max: 1e6 }), async (steps, seed) => {
        const graph = buildGraph(steps);
        const r = rng(seed);
        const ins = { a: fill([2, 3], r, -1, 1), b: fill([3], r, -1, 1) };
        const g = await grad(graph, ins, 'loss', ['a', 'b']);
        const f = async (t: Record<string, Tensor>) => Number((await evaluate(graph, t)).outputs.loss!.data[0]);
        for (const w of ['a', 'b'] as const) {
          const num = await numericGrad(f, ins, w);
          expect(worst(g.gradients[w]!.data as Float64Array, num, 1e-7, 1e-5).ratio).toBeLessThanOrEqual(1);
        }
        const t = { a: randomLike(ins.a, r), b: randomLike(ins.b, r) };
        const fwd = await jvp(graph, ins, t, ['loss']);
        const rhs = dot(g.gradients.a!, t.a) + dot(g.gradients.b!, t.b);
        expect(Math.abs(Number(fwd.tangents.loss!.data[0]) - rhs)).toBeLessThanOrEqual(1e-10 * (1 + Math.abs(rhs)));
      }),
      { numRuns: 60, seed: 7 },
    );
  });
});
