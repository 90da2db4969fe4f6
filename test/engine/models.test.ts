// The three models of bench/models (graphs.mjs) at small sizes: the gradient of the loss w.r.t. every parameter and
// the input against central differences in FP64 (engine.gradcheck), and the FP32 run against the FP64 one, so the
// benchmark times a computation whose derivatives are right in both datatypes.
import { describe, expect, it } from 'vitest';
import { lenet, modelInputs, resblock, transformer, type Model } from '../../bench/models/graphs.mjs';
import { engine, GraphBuilder } from '../../src/index.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';

function inputsOf(model: Model, dtype: 'FP32' | 'FP64'): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, a] of Object.entries(modelInputs(model, 11))) {
    const shape = model.shapes[k]!;
    out[k] = a instanceof BigInt64Array ? tensor('INT64', shape, a) : tensor(dtype, shape, dtype === 'FP32' ? Float32Array.from(a) : a);
  }
  return out;
}

/** max |a - b| over max |b| (b's scale, floored so a zero gradient compares absolutely) */
function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let num = 0;
  let den = floor;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

const SMALL: [string, (dtype: 'FP32' | 'FP64') => Model][] = [
  ['LeNet-style CNN', (d) => lenet(GraphBuilder, { N: 3, H: 12, C1: 2, C2: 3, F1: 5, F2: 4, classes: 3 }, d)],
  ['ResNet basic block (batch_norm in training mode)', (d) => resblock(GraphBuilder, { N: 2, C: 3, H: 5 }, d)],
  ['transformer encoder block (2 heads, GELU MLP)', (d) => transformer(GraphBuilder, { B: 2, T: 3, D: 8, heads: 2, hidden: 16 }, d)],
];

describe('bench/models graphs at small sizes', () => {
  for (const [label, build] of SMALL) {
    it(`${label}: FP64 gradient of the loss w.r.t. every parameter and x matches central differences`, async () => {
      const m = build('FP64');
      expect(m.wrt).toContain('x');
      const r = await engine.gradcheck(m.graph, inputsOf(m, 'FP64'), 'loss', m.wrt, { eps: 1e-6, atol: 1e-6, rtol: 1e-4 });
      for (const w of m.wrt) expect(r.perInput[w]!.ok, `${w}: max abs error ${r.perInput[w]!.maxAbsError}`).toBe(true);
      expect(r.ok).toBe(true);
    });

    it(`${label}: the FP32 gradients agree with the FP64 ones`, async () => {
      const m64 = build('FP64');
      const m32 = build('FP32');
      const g64 = await engine.grad(m64.graph, inputsOf(m64, 'FP64'), 'loss', m64.wrt);
      const g32 = await engine.grad(m32.graph, inputsOf(m32, 'FP32'), 'loss', m32.wrt);
      const scale = Math.max(...m64.wrt.map((w) => Math.max(...Array.from(g64.gradients[w]!.data as Float64Array, Math.abs))));
      expect(scale).toBeGreaterThan(0);
      for (const w of m64.wrt) {
        const a = g32.gradients[w]!;
        expect(a.shape).toEqual(m64.shapes[w]);
        expect(relError(a.data as Float32Array, g64.gradients[w]!.data as Float64Array, 1e-3 * scale), w).toBeLessThan(1e-4);
      }
      expect(Math.abs(Number(g32.outputs.loss!.data[0]) - Number(g64.outputs.loss!.data[0]))).toBeLessThan(1e-5 * Math.abs(Number(g64.outputs.loss!.data[0])) + 1e-6);
    });
  }
});
