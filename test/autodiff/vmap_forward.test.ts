/**
 * Batching rules used on forward (nonlinear) nodes, as per-example gradients use them: for every sample of every op in
 * the registry and every non-empty subset of its inputs (integer and bool inputs included), the vectorized node over a
 * batch of K members equals the node run on each member alone. Integer inputs that carry given values (class labels,
 * gather indices) vary by rotating those values, so every member stays in range.
 */
import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { Unbatchable, vmapGraph } from '../../src/autodiff/vmap.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { SampleInput } from '../../src/ops/types.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { opGraph, sampleTensor } from './opcheck_support.js';
import { expectClose } from './helpers.js';

const K = 3;

/** Member b of a batched input: the sample itself for b = 0, then fresh random values (or rotated given values). */
function member(s: SampleInput, b: number, r: () => number): Tensor {
  if (b === 0 || s.values === undefined) return sampleTensor(b === 0 ? s : { ...s, values: undefined }, r);
  const v = s.values;
  const rotated = v.map((_, i) => v[(i + b) % v.length]!);
  return sampleTensor({ ...s, values: rotated }, r);
}

function stack(ts: Tensor[]): Tensor {
  const n = numel(ts[0]!.shape);
  const out = tensor(ts[0]!.dtype, [ts.length, ...ts[0]!.shape]);
  ts.forEach((t, b) => (out.data as Float64Array).set(t.data as Float64Array, b * n));
  return out;
}

function row(t: Tensor, b: number, shape: readonly number[]): Tensor {
  const n = numel(shape);
  return { dtype: t.dtype, shape: [...shape], data: t.data.slice(b * n, (b + 1) * n) };
}

const cases = ALL_OPS.flatMap((op) => op.samples.map((s, k) => ({ op, s, k })));

describe('batching rules on forward nodes: every input subset of every op sample', () => {
  const unsupported: string[] = [];
  for (const { op, s, k } of cases) {
    it(`${op.name} #${k}${s.note ? ` (${s.note})` : ''}`, async () => {
      const r = rng(3000 + k);
      const base = s.inputs.map((si) => sampleTensor(si, r));
      const graph = opGraph(op, s, base);
      const names = base.map((_, i) => `in${i}`);
      const shapes = engine.shapes(graph, Object.fromEntries(names.map((n, i) => [n, base[i]!]))).values;
      const n = names.length;
      for (let mask = 1; mask < 1 << n; mask++) {
        const seeds = names.filter((_, i) => mask & (1 << i));
        const members = names.map((_, i) => (mask & (1 << i) ? Array.from({ length: K }, (_, b) => member(s.inputs[i]!, b, r)) : [base[i]!]));
        let vm;
        try {
          vm = vmapGraph(graph, seeds, shapes, K);
        } catch (e) {
          if (!(e instanceof Unbatchable)) throw e;
          unsupported.push(`${op.name}#${k} [${seeds.join(', ')}]: ${e.message}`);
          continue;
        }
        const batchedInputs = Object.fromEntries(names.map((nm, i) => [nm, mask & (1 << i) ? stack(members[i]!) : base[i]!]));
        const y = (await engine.evaluate(vm.graph, batchedInputs)).outputs.y!;
        for (let b = 0; b < K; b++) {
          const one = Object.fromEntries(names.map((nm, i) => [nm, members[i]![mask & (1 << i) ? b : 0]!]));
          const want = (await engine.evaluate(graph, one)).outputs.y!;
          const got = vm.batchedOutputs.y ? row(y, b, want.shape) : y;
          expect(got.shape, `${seeds.join(', ')} batched, member ${b}`).toEqual(want.shape);
          expect(got.dtype).toBe(want.dtype);
          expectClose(got, want, 1e-12);
        }
      }
    });
  }
  it('has a rule for every op, whichever inputs are batched', () => {
    expect(unsupported).toEqual([]);
  });
});
