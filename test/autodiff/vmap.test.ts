/**
 * Vectorized (batched basis vectors) Jacobians against one pass per basis vector, for every sample of every op in the
 * registry, in both modes: the batching rules must not change a single number, and ops whose derivative graphs have
 * no rule must fall back rather than fail.
 */
import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { jacobianWithReport } from '../../src/engine/jacobian.js';
import { Unbatchable, vmapGraph } from '../../src/autodiff/vmap.js';
import type { Graph } from '../../src/graph/types.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { SampleInput } from '../../src/ops/types.js';
import { isFloat, type DType } from '../../src/tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { expectClose } from './helpers.js';
import { spdOf } from './opcheck_support.js';

function sampleTensor(s: SampleInput, r: () => number): Tensor {
  if (s.spd) return spdOf(sampleTensor({ ...s, spd: false }, r));
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

describe('vmapGraph of forward graphs: row k of the batched result is the op applied to row k', () => {
  const unsupported: string[] = [];
  for (const { op, s, k } of ALL_OPS.flatMap((o) => o.samples.map((sm, j) => ({ op: o, s: sm, k: j })))) {
    it(`${op.name} #${k}`, async () => {
      const r = rng(2000 + k);
      const names = s.inputs.map((_, i) => `in${i}`);
      const inputs = Object.fromEntries(s.inputs.map((si, i) => [names[i]!, sampleTensor(si, r)]));
      const seed = names.find((n) => isFloat(inputs[n]!.dtype));
      if (seed === undefined) return;
      const graph: Graph = {
        inputs: Object.fromEntries(names.map((n) => [n, { shape: inputs[n]!.shape as number[], datatype: inputs[n]!.dtype }])),
        nodes: [{ name: 'out', op: op.name, inputs: names, attrs: (s.attrs ?? {}) as Record<string, unknown> }],
        outputs: ['out'],
      };
      const K = 3;
      const rows = Array.from({ length: K }, (_, b) => (b === 0 ? inputs[seed]! : sampleTensor({ ...s.inputs[names.indexOf(seed)]!, values: undefined }, r)));
      const shapes = engine.shapes(graph, inputs).values;
      let vm;
      try {
        vm = vmapGraph(graph, [seed], shapes, K);
      } catch (e) {
        if (!(e instanceof Unbatchable)) throw e;
        unsupported.push(op.name);
        return;
      }
      const stacked = tensor('FP64', [K, ...rows[0]!.shape], Float64Array.from(rows.flatMap((t) => Array.from(t.data as Float64Array))));
      const batched = (await engine.evaluate(vm.graph, { ...inputs, [seed]: stacked })).outputs.out!;
      for (let b = 0; b < K; b++) {
        const one = (await engine.evaluate(graph, { ...inputs, [seed]: rows[b]! })).outputs.out!;
        if (vm.batchedOutputs.out) {
          expect(batched.shape).toEqual([K, ...one.shape]);
          const n = numel(one.shape);
          const row = tensor(one.dtype, one.shape, batched.data.slice(b * n, (b + 1) * n) as Float64Array);
          expectClose(row, one, 1e-12);
        } else {
          expectClose(batched, one, 1e-12);
        }
      }
    });
  }
  it('has a rule for every op sample of the registry', () => {
    expect([...new Set(unsupported)].sort()).toEqual([]);
  });
});

describe('vmapGraph', () => {
  it('refuses ops it has no rule for', () => {
    const g: Graph = { inputs: { s: {} }, nodes: [{ name: 'y', op: 'conv_not_in_v1', inputs: ['s', 's'] }], outputs: ['y'] };
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
