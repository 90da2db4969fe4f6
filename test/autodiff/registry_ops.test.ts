/**
 * Every op of the registry (no hand-kept list), on each of its samples, in FP64:
 * - its VJP equals central finite differences of <r, y(x)> for a random cotangent r;
 * - its JVP and VJP agree: <u, J v> = <Jᵀ u, v>;
 * - gradient shapes equal input shapes; non-differentiable ops give zero gradients;
 * - second order where the op declares it: the VJP graph itself, differentiated again, matches finite differences.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { evaluate, jvp, transform, vjp } from '../../src/index.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { OpDef, OpSample } from '../../src/ops/types.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { dot, floatInputs, numericGrad, opGraph, randomLike, sampleTensor, worst } from './opcheck_support.js';

const ATOL = 1e-7;
const RTOL = 1e-5;

interface Case {
  op: OpDef;
  sample: OpSample;
  k: number;
}

const checked = { first: 0, second: 0 };
afterAll(() => {
  // the early returns above (integer-only ops, non-float outputs) must not swallow the suite
  expect(checked.first).toBeGreaterThan(cases.length / 2);
  expect(checked.second).toBeGreaterThan(cases.length / 3);
});

const cases: Case[] = ALL_OPS.flatMap((op) => op.samples.map((sample, k) => ({ op, sample, k })));

function setup(c: Case, seed: number): { graph: ReturnType<typeof opGraph>; inputs: Record<string, Tensor>; wrt: string[] } {
  const r = rng(seed);
  const ts = c.sample.inputs.map((s) => sampleTensor(s, r));
  const graph = opGraph(c.op, c.sample, ts);
  const inputs = Object.fromEntries(ts.map((t, i) => [`in${i}`, t]));
  return { graph, inputs, wrt: floatInputs(inputs) };
}

function label(c: Case): string {
  return `${c.op.name} #${c.k}${c.sample.note ? ` (${c.sample.note})` : ''}`;
}

describe('registry ops: first order', () => {
  test('every op, internal ones included (they are in the catalogue too), has at least one sample', () => {
    expect(ALL_OPS.filter((op) => op.samples.length === 0).map((op) => op.name)).toEqual([]);
  });

  test.each(cases.map((c) => [label(c), c] as const))('%s: VJP vs finite differences, shapes, JVP identity', async (_l, c) => {
    const { graph, inputs, wrt } = setup(c, 1234 + c.k);
    const y = (await evaluate(graph, inputs)).outputs.y!;
    if (wrt.length === 0 || !(y.dtype === 'FP64' || y.dtype === 'FP32')) return;
    const r = rng(99);
    const cot = randomLike(y, r);
    const back = await vjp(graph, inputs, { y: cot }, wrt);
    for (const w of wrt) expect(back.gradients[w]!.shape, `${w} gradient shape`).toEqual(inputs[w]!.shape);

    const f = async (ins: Record<string, Tensor>): Promise<number> => dot((await evaluate(graph, ins)).outputs.y!, cot);
    for (const w of wrt) {
      const g = back.gradients[w]!;
      if (!c.op.differentiable) {
        expect([...g.data].every((v) => v === 0), `${w}: non-differentiable op gives zeros`).toBe(true);
        continue;
      }
      const num = await numericGrad(f, inputs, w);
      checked.first++;
      const { ratio, at } = worst(g.data as Float64Array, num, ATOL, RTOL);
      expect(ratio, `${w}[${at}]: analytic ${g.data[at]} vs numeric ${num[at]}`).toBeLessThanOrEqual(1);
    }

    const tangents = Object.fromEntries(wrt.map((w) => [w, randomLike(inputs[w]!, r)]));
    const fwd = await jvp(graph, inputs, tangents, ['y']);
    const lhs = dot(cot, fwd.tangents.y!);
    const rhs = wrt.reduce((s, w) => s + dot(back.gradients[w]!, tangents[w]!), 0);
    expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-10 * (1 + Math.abs(lhs)));
  });
});

describe('registry ops: second order', () => {
  const second = cases.filter((c) => c.op.differentiable && c.op.twiceDifferentiable !== false);
  test.each(second.map((c) => [label(c), c] as const))('%s: VJP of the VJP graph vs finite differences', async (_l, c) => {
    const { graph, inputs, wrt } = setup(c, 777 + c.k);
    const y = (await evaluate(graph, inputs)).outputs.y!;
    if (wrt.length === 0 || y.dtype !== 'FP64') return;
    const r = rng(5);
    const cot = randomLike(y, r);
    const g1 = transform(graph, { transform: 'vjp', of: ['y'], wrt });
    const ins1 = { ...inputs, 'cotangent:y': cot };
    const outs1 = (await evaluate(g1, ins1)).outputs;
    const u = Object.fromEntries(wrt.map((w) => [`grad:${w}`, randomLike(outs1[`grad:${w}`]!, r)]));
    const back = await vjp(g1, ins1, u, wrt);
    const f = async (ins: Record<string, Tensor>): Promise<number> => {
      const o = (await evaluate(g1, ins)).outputs;
      return wrt.reduce((s, w) => s + dot(o[`grad:${w}`]!, u[`grad:${w}`]!), 0);
    };
    for (const w of wrt) {
      const num = await numericGrad(f, ins1, w);
      checked.second++;
      const g = back.gradients[w]!;
      const { ratio, at } = worst(g.data as Float64Array, num, 1e-6, 1e-4);
      expect(ratio, `${w}[${at}]: analytic ${g.data[at]} vs numeric ${num[at]}`).toBeLessThanOrEqual(1);
    }
  });
});
