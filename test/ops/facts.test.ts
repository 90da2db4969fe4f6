/**
 * The facts an op definition states about itself, checked against what the op does on every registry sample:
 * `aliases` (the cost estimate counts no allocation for it, so a false claim would understate peak memory) and
 * `elementwise` (batched by the generic lifting rule and treated as rank-free, so a false claim would give wrong
 * batched Jacobians and wrong transforms of unshaped graphs).
 */
import { describe, expect, it } from 'vitest';
import { loadKernels, makeOpKernels } from '../../src/engine/executor.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import { broadcastShapes, sameShape } from '../../src/tensor/shape.js';
import { sampleTensor } from '../autodiff/opcheck_support.js';
import { rng } from '../support/random.js';

const samples = (pred: (op: (typeof ALL_OPS)[number]) => boolean) =>
  ALL_OPS.filter(pred).flatMap((op) => op.samples.map((s, k) => ({ op, s, k, label: `${op.name} #${k}${s.note ? ` (${s.note})` : ''}` })));

describe('aliases: the output shares the first input\'s buffer whenever the op says so', () => {
  const cases = samples((op) => op.aliases !== undefined);
  it('is claimed by the ops that return their input', () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  for (const { op, s, k, label } of cases) {
    it(label, async () => {
      const k8s = makeOpKernels(await loadKernels());
      const r = rng(500 + k);
      const ins = s.inputs.map((si) => sampleTensor(si, r));
      const attrs = op.attrs.parse(s.attrs ?? {});
      const out = await op.run(ins, attrs, k8s);
      const shares = out.data.buffer === ins[0]!.data.buffer;
      if (op.aliases === 'always' || sameShape(out.shape, ins[0]!.shape)) expect(shares).toBe(true);
    });
  }
});

describe('elementwise: the output shape is the broadcast of the input shapes', () => {
  for (const { op, s, label } of samples((op) => op.elementwise === true)) {
    it(label, () => {
      const ctx = { node: 'y', op: op.name, path: 'graph.nodes[0]' };
      const metas = s.inputs.map((i) => ({ shape: i.shape, dtype: i.dtype ?? 'FP64' as const }));
      const out = op.infer(metas, op.attrs.parse(s.attrs ?? {}), ctx);
      expect(out.shape).toEqual(broadcastShapes(...metas.map((m) => m.shape)));
      expect(op.vmap, 'elementwise ops batch by the generic lifting rule').toBeUndefined();
      expect(op.rankFree, 'elementwise ops are rank-free by the flag alone').toBeUndefined();
    });
  }
});
