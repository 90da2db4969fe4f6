import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { gradGraphs } from '../../src/engine/hessian.js';
import { wireConstantBytes } from '../../src/graph/validate.js';
import { jacobianWithReport } from '../../src/engine/jacobian.js';
import { GradserveError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/types.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { expectClose, maxDiff, randTensor, toNumbers } from '../autodiff/helpers.js';
import type { Fixture } from './jacobian.test.js';

/** loss = mean((tanh(x·w1 + b1)·w2)^2): a two-layer MLP with tanh. */
const MLP: Graph = {
  inputs: {
    x: { shape: [3, 4], datatype: 'FP64' }, w1: { shape: [4, 3], datatype: 'FP64' },
    b1: { shape: [3], datatype: 'FP64' }, w2: { shape: [3, 2], datatype: 'FP64' },
  },
  nodes: [
    { name: 'xw', op: 'matmul', inputs: ['x', 'w1'] },
    { name: 'pre', op: 'add', inputs: ['xw', 'b1'] },
    { name: 'h', op: 'tanh', inputs: ['pre'] },
    { name: 'out', op: 'matmul', inputs: ['h', 'w2'] },
    { name: 'sq', op: 'square', inputs: ['out'] },
    { name: 'loss', op: 'mean', inputs: ['sq'], attrs: { axes: null, keepdims: false } },
  ],
  outputs: ['out'],
};
const WRT = ['w1', 'b1', 'w2'];

function mlpInputs(seed = 11): Record<string, Tensor> {
  const r = rng(seed);
  return { x: randTensor(r, [3, 4]), w1: randTensor(r, [4, 3]), b1: randTensor(r, [3], -0.3, 0.3), w2: randTensor(r, [3, 2]) };
}

/** Central differences of engine.grad: column k of the Hessian block [wi][wj] is d grad_wi / d wj[k]. */
async function fdHessian(graph: Graph, inputs: Record<string, Tensor>, of: string, wrt: string[], eps = 1e-5): Promise<Record<string, Record<string, Tensor>>> {
  const out: Record<string, Record<string, Tensor>> = {};
  for (const wi of wrt) {
    out[wi] = {};
    for (const wj of wrt) out[wi]![wj] = tensor('FP64', [...inputs[wi]!.shape, ...inputs[wj]!.shape]);
  }
  for (const wj of wrt) {
    const n = numel(inputs[wj]!.shape);
    for (let k = 0; k < n; k++) {
      const shifted = (d: number): Record<string, Tensor> => {
        const data = Float64Array.from(inputs[wj]!.data as Float64Array);
        data[k] = data[k]! + d;
        return { ...inputs, [wj]: tensor('FP64', inputs[wj]!.shape, data) };
      };
      const gp = (await engine.grad(graph, shifted(eps), of, wrt)).gradients;
      const gm = (await engine.grad(graph, shifted(-eps), of, wrt)).gradients;
      for (const wi of wrt) {
        const ni = numel(inputs[wi]!.shape);
        const dst = out[wi]![wj]!.data as Float64Array;
        for (let r = 0; r < ni; r++) dst[r * n + k] = (Number(gp[wi]!.data[r]) - Number(gm[wi]!.data[r])) / (2 * eps);
      }
    }
  }
  return out;
}

describe('hessian', () => {
  it('of an MLP with tanh equals finite differences of the gradient and is symmetric', async () => {
    const inputs = mlpInputs();
    const h = await engine.hessian(MLP, inputs, 'loss', WRT);
    const fd = await fdHessian(MLP, inputs, 'loss', WRT);
    for (const wi of WRT) {
      for (const wj of WRT) {
        expect(h.hessians[wi]![wj]!.shape).toEqual([...inputs[wi]!.shape, ...inputs[wj]!.shape]);
        expect(maxDiff(h.hessians[wi]![wj]!, fd[wi]![wj]!)).toBeLessThan(1e-7);
        // symmetry: H[wi][wj][a, b] == H[wj][wi][b, a]
        const ni = numel(inputs[wi]!.shape);
        const nj = numel(inputs[wj]!.shape);
        const ab = h.hessians[wi]![wj]!.data;
        const ba = h.hessians[wj]![wi]!.data;
        for (let a = 0; a < ni; a++) for (let b = 0; b < nj; b++) expect(Math.abs(Number(ab[a * nj + b]) - Number(ba[b * ni + a]))).toBeLessThan(1e-12);
      }
    }
  });

  it('is vectorized: the forward-mode Jacobian of the grad graph takes one pass per wrt, not one per element', async () => {
    const inputs = mlpInputs(4);
    const g = engine.transform(MLP, { transform: 'grad', of: 'loss', wrt: WRT });
    const { result, report } = await jacobianWithReport(engine, g, inputs, WRT.map((w) => `grad:${w}`), WRT, 'forward');
    expect(report.groups.map((r) => [r.seed, r.batched, r.passes])).toEqual(WRT.map((w) => [`tangent:${w}`, true, 1]));
    const h = await engine.hessian(MLP, inputs, 'loss', WRT);
    for (const wi of WRT) for (const wj of WRT) expectClose(h.hessians[wi]![wj]!, result.jacobians[`grad:${wi}`]![wj]!, 0);
  });

  it('returns graph.outputs plus of, equal to evaluate', async () => {
    const inputs = mlpInputs(3);
    const h = await engine.hessian(MLP, inputs, 'loss', ['b1']);
    const ev = await engine.evaluate(MLP, inputs, ['out', 'loss']);
    expect(Object.keys(h.outputs).sort()).toEqual(['loss', 'out']);
    expectClose(h.outputs.out!, ev.outputs.out!, 0);
    expectClose(h.outputs.loss!, ev.outputs.loss!, 0);
  });

  it('is zero in blocks where the loss is linear, and refuses too large a Hessian pointing to hvp', async () => {
    const g: Graph = {
      inputs: { a: { shape: [2], datatype: 'FP64' }, b: { shape: [2], datatype: 'FP64' } },
      nodes: [{ name: 'ab', op: 'mul', inputs: ['a', 'b'] }, { name: 's', op: 'sum', inputs: ['ab'] }],
      outputs: ['s'],
    };
    const inputs = { a: tensor('FP64', [2], [1, 2]), b: tensor('FP64', [2], [3, 4]) };
    const h = await engine.hessian(g, inputs, 's', ['a', 'b']);
    expect(toNumbers(h.hessians.a!.a!)).toEqual([0, 0, 0, 0]);
    expect(toNumbers(h.hessians.a!.b!)).toEqual([1, 0, 0, 1]);
    const big: Graph = { inputs: { w: { shape: [1024, 1024], datatype: 'FP32' } }, nodes: [{ name: 's', op: 'sum', inputs: ['w'] }], outputs: ['s'] };
    const err = await engine.hessian(big, { w: tensor('FP32', [1024, 1024]) }, 's', ['w'], { memoryBudgetBytes: 1024 ** 3 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOO_LARGE', status: 413 });
    expect((err as GradserveError).detail).toContain('4 TiB');
    expect((err as GradserveError).detail).toContain('`hvp`');
  });
});

describe('hvp', () => {
  it('equals the Hessian times the vector and finite differences of the gradient along it', async () => {
    const inputs = mlpInputs(5);
    const r = rng(9);
    const vectors = Object.fromEntries(WRT.map((w) => [w, randTensor(r, [...inputs[w]!.shape])]));
    const res = await engine.hvp(MLP, inputs, 'loss', vectors);
    const h = await engine.hessian(MLP, inputs, 'loss', WRT);
    const eps = 1e-5;
    const shifted = (s: number): Record<string, Tensor> => Object.fromEntries(Object.entries(inputs).map(([k, t]) => {
      const v = vectors[k];
      return [k, v ? tensor('FP64', t.shape, (t.data as Float64Array).map((x, i) => x + s * eps * Number(v.data[i]))) : t];
    }));
    const gp = (await engine.grad(MLP, shifted(1), 'loss', WRT)).gradients;
    const gm = (await engine.grad(MLP, shifted(-1), 'loss', WRT)).gradients;
    const g0 = (await engine.grad(MLP, inputs, 'loss', WRT)).gradients;
    for (const wi of WRT) {
      const ni = numel(inputs[wi]!.shape);
      const hv = new Float64Array(ni);
      for (const wj of WRT) {
        const nj = numel(inputs[wj]!.shape);
        const hb = h.hessians[wi]![wj]!.data;
        for (let a = 0; a < ni; a++) for (let b = 0; b < nj; b++) hv[a]! += Number(hb[a * nj + b]) * Number(vectors[wj]!.data[b]);
      }
      expectClose(res.hvp[wi]!, tensor('FP64', inputs[wi]!.shape, hv), 1e-12);
      const fd = tensor('FP64', inputs[wi]!.shape, Float64Array.from({ length: ni }, (_, a) => (Number(gp[wi]!.data[a]) - Number(gm[wi]!.data[a])) / (2 * eps)));
      expectClose(res.hvp[wi]!, fd, 1e-7);
      expectClose(res.gradients[wi]!, g0[wi]!, 1e-14);
    }
    expect(Object.keys(res.outputs).sort()).toEqual(['loss', 'out']);
  });

  it('keys gradients and hvp by the names in vectors only', async () => {
    const inputs = mlpInputs(6);
    const res = await engine.hvp(MLP, inputs, 'loss', { b1: tensor('FP64', [3], [1, 0, 0]) });
    expect(Object.keys(res.hvp)).toEqual(['b1']);
    expect(Object.keys(res.gradients)).toEqual(['b1']);
    const h = await engine.hessian(MLP, inputs, 'loss', ['b1']);
    // e_0 picks the first column of H[b1][b1]
    expect(toNumbers(res.hvp.b1!).map((v) => Number(v.toFixed(12)))).toEqual([0, 1, 2].map((i) => Number(Number(h.hessians.b1!.b1!.data[i * 3]).toFixed(12))));
  });

  it('errors: NOT_SCALAR, NOT_DIFFERENTIABLE, SHAPE_MISMATCH, UNKNOWN_VALUE', async () => {
    const inputs = mlpInputs();
    const v = { b1: tensor('FP64', [3], [1, 2, 3]) };
    const e1 = await engine.hvp(MLP, inputs, 'out', v).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'NOT_SCALAR', status: 422, errors: [{ path: 'of' }] });
    expect((e1 as GradserveError).detail).toContain('[3, 2]');
    await expect(engine.hessian(MLP, inputs, 'h', ['b1'])).rejects.toMatchObject({ code: 'NOT_SCALAR' });
    const e2 = await engine.hvp(MLP, inputs, 'loss', { b1: tensor('FP64', [4], [1, 2, 3, 4]) }).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: 'SHAPE_MISMATCH', errors: [{ path: 'vectors.b1' }] });
    expect((e2 as GradserveError).detail).toContain('[4]');
    expect((e2 as GradserveError).detail).toContain('[3]');
    await expect(engine.hvp(MLP, inputs, 'loss', { nope: tensor('FP64', [3], [1, 2, 3]) })).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'vectors.nope' }] });
    await expect(engine.hvp(MLP, inputs, 'loss', { pre: tensor('FP64', [3, 3]) })).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'vectors.pre' }] });
    await expect(engine.hvp(MLP, inputs, 'nope', v)).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'of' }] });
    const gi: Graph = {
      inputs: { x: { shape: [3], datatype: 'FP64' }, k: { shape: [3], datatype: 'INT64' } },
      nodes: [{ name: 'kf', op: 'cast', inputs: ['k'], attrs: { to: 'FP64' } }, { name: 'xk', op: 'mul', inputs: ['x', 'kf'] }, { name: 's', op: 'sum', inputs: ['xk'] }],
      outputs: ['s'],
    };
    const gin = { x: tensor('FP64', [3], [1, 2, 3]), k: tensor('INT64', [3], [1n, 2n, 3n]) };
    const e3 = await engine.hvp(gi, gin, 's', { k: tensor('INT64', [3], [1n, 1n, 1n]) }).catch((e: unknown) => e);
    expect(e3).toMatchObject({ code: 'NOT_DIFFERENTIABLE', errors: [{ path: 'vectors.k' }] });
    await expect(engine.hessian(gi, gin, 's', ['x', 'k'])).rejects.toMatchObject({ code: 'NOT_DIFFERENTIABLE', errors: [{ path: 'wrt[1]' }] });
  });
});

describe('torch fixtures (torch.autograd.functional.hvp / hessian)', () => {
  const dir = new URL('../fixtures/derivatives/', import.meta.url);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const fx = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Fixture;
    const inputs = Object.fromEntries(Object.entries(fx.inputs).map(([k, v]) => [k, tensor('FP64', v.shape, v.data)]));
    if (fx.hvp) {
      it(`${fx.name}: hvp`, async () => {
        const vectors = Object.fromEntries(Object.entries(fx.hvp!.vectors).map(([k, v]) => [k, tensor('FP64', v.shape, v.data)]));
        const r = await engine.hvp(fx.graph, inputs, fx.hvp!.of, vectors);
        for (const [w, t] of Object.entries(fx.hvp!.expected)) expectClose(r.hvp[w]!, tensor('FP64', t.shape, t.data), 1e-9);
      });
    }
    if (fx.hessian) {
      it(`${fx.name}: hessian`, async () => {
        const r = await engine.hessian(fx.graph, inputs, fx.hessian!.of, fx.hessian!.wrt);
        for (const [wi, byJ] of Object.entries(fx.hessian!.expected)) {
          for (const [wj, t] of Object.entries(byJ)) expectClose(r.hessians[wi]![wj]!, tensor('FP64', t.shape, t.data), 1e-9);
        }
      });
    }
  }
});

describe('hvp grad-graph cache', () => {
  it('weighs entries by the bytes of their wire constants, under a byte bound', async () => {
    const w = new Float64Array(1024).map((_, i) => Math.sin(i));
    const b64 = Buffer.from(w.buffer).toString('base64');
    const graph = (name: string): Graph => ({
      inputs: { x: { shape: [1024], datatype: 'FP64' } },
      constants: { w: { shape: [1024], datatype: 'FP64', b64 } },
      nodes: [
        { name, op: 'mul', inputs: ['x', 'w'] },
        { name: 's', op: 'square', inputs: [name] },
        { name: 'loss', op: 'sum', inputs: ['s'], attrs: { axes: null } },
      ],
      outputs: ['loss'],
    });
    const x = tensor('FP64', [1024], Array.from({ length: 1024 }, (_, i) => i / 1024));
    gradGraphs.clear();
    const res = await engine.hvp(graph('p'), { x }, 'loss', { x });
    // d²/dx² sum((x·w)²) · v = 2 w² v
    expectClose(res.hvp.x!, tensor('FP64', [1024], Array.from(w, (wi, i) => 2 * wi * wi * (i / 1024))), 1e-12);
    expect(gradGraphs.size).toBe(1);
    // the grad graph keeps w and may add small scalar constants of its own (8 bytes per JSON number)
    const one = gradGraphs.totalWeight;
    expect(one).toBeGreaterThanOrEqual(b64.length);
    expect(one).toBeLessThan(b64.length + 100);
    await engine.hvp(graph('q'), { x }, 'loss', { x });
    expect(gradGraphs.totalWeight).toBe(2 * one);
    expect(gradGraphs.maxWeight).toBeLessThanOrEqual(1 << 30);
    expect(wireConstantBytes({ constants: { a: { shape: [2, 2], datatype: 'FP64', data: [[1, 2], [3, 4]] }, b: { shape: [], datatype: 'FP32', b64: 'AACAPw==' } } } as unknown as Graph)).toBe(4 * 8 + 8);
  });
});
