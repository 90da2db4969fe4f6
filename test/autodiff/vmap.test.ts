/**
 * Vectorized (batched basis vectors) Jacobians against one pass per basis vector, for every sample of every op in the
 * registry, in both modes: the batching rules must not change a single number, and ops whose derivative graphs have
 * no rule must fall back rather than fail.
 */
import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { jacobianWithReport } from '../../src/autodiff/jacobian.js';
import { Unbatchable, vmapGraph } from '../../src/autodiff/vmap.js';
import type { Graph } from '../../src/graph/types.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { SampleInput } from '../../src/ops/types.js';
import { isFloat, type DType } from '../../src/tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { expectClose, rng } from './helpers.js';

function sampleTensor(s: SampleInput, r: () => number): Tensor {
  const dtype: DType = s.dtype ?? 'FP64';
  if (s.values) return tensor(dtype, s.shape, dtype === 'INT64' ? s.values.map((v) => BigInt(v)) : s.values);
  const [lo, hi] = s.range ?? [-2, 2];
  const vals = Array.from({ length: numel(s.shape) }, () => lo + (hi - lo) * r());
  if (dtype === 'INT64') return tensor(dtype, s.shape, vals.map((v) => BigInt(Math.round(v))));
  if (dtype === 'INT32') return tensor(dtype, s.shape, vals.map((v) => Math.round(v)));
  if (dtype === 'BOOL') return tensor(dtype, s.shape, vals.map((v) => (v > 0 ? 1 : 0)));
  return tensor(dtype, s.shape, vals);
}

const cases = ALL_OPS.filter((op) => op.differentiable).flatMap((op) => op.samples.map((s, k) => ({ op, s, k })));

describe('batched jacobian equals one pass per basis vector, for every op sample', () => {
  const fallbacks: string[] = [];
  for (const { op, s, k } of cases) {
    it(`${op.name} #${k}${s.note ? ` (${s.note})` : ''}`, async () => {
      const r = rng(1000 + k);
      const names = s.inputs.map((_, i) => `in${i}`);
      const inputs = Object.fromEntries(s.inputs.map((si, i) => [names[i]!, sampleTensor(si, r)]));
      const graph: Graph = {
        inputs: Object.fromEntries(names.map((n) => [n, { shape: inputs[n]!.shape as number[], datatype: inputs[n]!.dtype }])),
        nodes: [{ name: 'out', op: op.name, inputs: names, attrs: (s.attrs ?? {}) as Record<string, unknown> }],
        outputs: ['out'],
      };
      const out = (await engine.evaluate(graph, inputs)).outputs.out!;
      const wrt = names.filter((n) => isFloat(inputs[n]!.dtype));
      if (!isFloat(out.dtype) || wrt.length === 0) return;
      for (const mode of ['forward', 'reverse'] as const) {
        const one = await jacobianWithReport(engine, graph, inputs, ['out'], wrt, mode, {}, { maxChunk: 1 });
        const many = await jacobianWithReport(engine, graph, inputs, ['out'], wrt, mode);
        for (const w of wrt) expectClose(many.result.jacobians.out![w]!, one.result.jacobians.out![w]!, 1e-12);
        for (const g of many.report.groups) if (!g.batched && g.passes > 1) fallbacks.push(`${op.name}#${k} ${mode}: ${g.reason}`);
      }
    });
  }
  it('falls back only for ops listed here (no batching rule yet)', () => {
    const ops = [...new Set(fallbacks.map((f) => f.split('#')[0]))].sort();
    expect(ops).toEqual(KNOWN_UNBATCHED);
  });
});

/** Ops whose derivative graphs contain an op without a batching rule: these Jacobians run one pass per vector. */
const KNOWN_UNBATCHED: string[] = [];

describe('vmapGraph', () => {
  it('refuses ops it has no rule for', () => {
    const g: Graph = { inputs: { s: {} }, nodes: [{ name: 'y', op: 'softmax_cross_entropy', inputs: ['s', 's'] }], outputs: ['y'] };
    expect(() => vmapGraph(g, ['s'], { s: { shape: [2, 3], datatype: 'FP64' }, y: { shape: [], datatype: 'FP64' } }, 4)).toThrow(Unbatchable);
  });

  it('keeps seed-independent nodes unbatched and batches the rest', () => {
    const g: Graph = {
      inputs: { s: {}, c: {} },
      nodes: [{ name: 'cc', op: 'tanh', inputs: ['c'] }, { name: 'y', op: 'mul', inputs: ['s', 'cc'] }, { name: 'z', op: 'zeros_like', inputs: ['y'] }],
      outputs: ['y', 'cc', 'z'],
    };
    const info = { shape: [3], datatype: 'FP64' as const };
    const vm = vmapGraph(g, ['s'], { s: info, c: info, cc: info, y: info, z: info }, 5);
    expect(vm.batchedOutputs).toEqual({ y: true, cc: false, z: false });
    expect(vm.graph.inputs!.s).toEqual({ shape: [5, 3], datatype: 'FP64' });
  });
});
