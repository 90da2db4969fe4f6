import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { jacobianWith, jacobianWithReport } from '../../src/engine/jacobian.js';
import type { EngineCore } from '../../src/engine/linear.js';
import { GradserveError } from '../../src/errors.js';
import type { RunOptions } from '../../src/engine.types.js';
import type { Graph } from '../../src/graph/types.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { basis, expectClose, randTensor, randomProblem, toNumbers } from '../autodiff/helpers.js';

/** J[of][wrt] stacked from one engine.vjp per element of `of` (the definition the Jacobian must match). */
async function stackedVjps(graph: Graph, inputs: Record<string, Tensor>, of: string[], wrt: string[]): Promise<Record<string, Record<string, Tensor>>> {
  const out: Record<string, Record<string, Tensor>> = {};
  const ofShapes = (await engine.evaluate(graph, inputs, of)).outputs;
  for (const o of of) {
    out[o] = {};
    const n = numel(ofShapes[o]!.shape);
    for (const w of wrt) out[o]![w] = tensor('FP64', [...ofShapes[o]!.shape, ...inputs[w]!.shape]);
    for (let i = 0; i < n; i++) {
      const g = (await engine.vjp(graph, inputs, { [o]: basis(ofShapes[o]!.shape, i) }, wrt)).gradients;
      for (const w of wrt) (out[o]![w]!.data as Float64Array).set(g[w]!.data as Float64Array, i * numel(inputs[w]!.shape));
    }
  }
  return out;
}

const MLP: Graph = {
  inputs: { x: { shape: [1, 6], datatype: 'FP64' }, w: { shape: [6, 5], datatype: 'FP64' }, b: { shape: [5], datatype: 'FP64' } },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'hb', op: 'add', inputs: ['h', 'b'] },
    { name: 'y', op: 'tanh', inputs: ['hb'] },
  ],
  outputs: ['y'],
};

function mlpInputs(seed = 1): Record<string, Tensor> {
  const r = rng(seed);
  return { x: randTensor(r, [1, 6]), w: randTensor(r, [6, 5]), b: randTensor(r, [5]) };
}

describe('jacobian equals stacked VJPs', () => {
  for (let seed = 1; seed <= 24; seed++) {
    it(`random graph #${seed} in all three modes, batched and per vector`, async () => {
      const p = randomProblem(seed);
      const want = await stackedVjps(p.graph, p.inputs, p.of, p.wrt);
      for (const mode of ['auto', 'forward', 'reverse'] as const) {
        for (const maxChunk of [1, 1000]) {
          const { result, report } = await jacobianWithReport(engine, p.graph, p.inputs, p.of, p.wrt, mode, {}, { maxChunk });
          for (const o of p.of) for (const w of p.wrt) expectClose(result.jacobians[o]![w]!, want[o]![w]!, 1e-10);
          if (maxChunk === 1) expect(report.groups.every((g) => !g.batched)).toBe(true);
        }
      }
    });
  }

  it('vectorizes every group of the random graphs (no op of their derivative graphs lacks a batching rule)', async () => {
    const unbatched: string[] = [];
    for (let seed = 1; seed <= 24; seed++) {
      const p = randomProblem(seed);
      for (const mode of ['forward', 'reverse'] as const) {
        const { report } = await jacobianWithReport(engine, p.graph, p.inputs, p.of, p.wrt, mode);
        for (const g of report.groups) if (!g.batched && g.passes > 1) unbatched.push(`#${seed} ${mode} ${g.seed}: ${g.reason}`);
      }
    }
    expect(unbatched).toEqual([]);
  });

  it('chunks the basis when the budget is tight and still gives the same numbers', async () => {
    const inputs = mlpInputs(3);
    const full = await jacobianWith(engine, MLP, inputs, ['y'], ['w'], 'forward');
    // 30 basis vectors; a budget just above result + forward pass leaves room for a few vectors per pass
    const shapes = engine.shapes(MLP, { x: { shape: [1, 6], datatype: 'FP64' }, w: { shape: [6, 5], datatype: 'FP64' }, b: { shape: [5], datatype: 'FP64' } });
    const budget = 5 * 30 * 8 + shapes.peakBytes + 2048;
    const { result, report } = await jacobianWithReport(engine, MLP, inputs, ['y'], ['w'], 'forward', { memoryBudgetBytes: budget });
    expect(report.groups[0]!.batched).toBe(true);
    expect(report.groups[0]!.passes).toBeGreaterThan(1);
    expect(report.groups[0]!.chunk).toBeLessThan(30);
    expectClose(result.jacobians.y!.w!, full.jacobians.y!.w!, 1e-12);
  });
});

describe('run options', () => {
  it('reports to onPlan and onExecuted exactly once per call (admission holds one reservation per request)', async () => {
    const inputs = mlpInputs(8);
    const loss: Graph = { ...MLP, nodes: [...MLP.nodes, { name: 's', op: 'sum', inputs: ['y'] }] };
    const calls = async (fn: (o: RunOptions) => Promise<unknown>): Promise<[number, number, number]> => {
      let plans = 0;
      let execs = 0;
      let peak = 0;
      await fn({ onPlan: (c) => { plans++; peak = c.peakBytes; }, onExecuted: () => { execs++; } });
      return [plans, execs, peak];
    };
    for (const mode of ['forward', 'reverse'] as const) {
      const [p, e, peak] = await calls((o) => engine.jacobian(MLP, inputs, ['y'], ['w', 'x'], mode, o));
      expect([p, e]).toEqual([1, 1]);
      expect(peak).toBeGreaterThanOrEqual(5 * 36 * 8); // at least the result
    }
    expect((await calls((o) => engine.hessian(loss, inputs, 's', ['b'], o))).slice(0, 2)).toEqual([1, 1]);
    expect((await calls((o) => engine.hvp(loss, inputs, 's', { b: inputs.b! }, o)))[0]).toBe(1);
    expect((await calls((o) => engine.gradcheck(loss, inputs, 's', ['b'], {}, o)))[0]).toBe(1);
  });

  it('keeps batched values within maxTensorElements by shrinking the chunk', async () => {
    const inputs = mlpInputs(9);
    const full = await jacobianWith(engine, MLP, inputs, ['y'], ['w'], 'forward');
    const { result, report } = await jacobianWithReport(engine, MLP, inputs, ['y'], ['w'], 'forward', { maxTensorElements: 150 });
    expect(report.groups[0]!.chunk).toBeLessThanOrEqual(5); // the tangent of w alone has 30 elements
    expect(report.groups[0]!.batched).toBe(true);
    expectClose(result.jacobians.y!.w!, full.jacobians.y!.w!, 1e-12);
  });
});

describe('memory budget', () => {
  it('never plans a pass that would take the result plus its working set over the budget', async () => {
    const inputs = mlpInputs(12);
    const full = await jacobianWith(engine, MLP, inputs, ['y'], ['w', 'x'], 'forward');
    const resultBytes = 5 * (30 + 6) * 8;
    const passes: Record<string, number> = {};
    const budgets = [1500, 2500, 3000, 3500, 4000, 6000, 9000, 20000, 1 << 20];
    for (const budget of budgets) {
      for (const mode of ['forward', 'reverse'] as const) {
        const peaks: number[] = [];
        const core: EngineCore = {
          ...engine,
          evaluate: (g, i, o, opts) => {
            const specs = Object.fromEntries(Object.entries(i).map(([k, t]) => [k, { shape: [...t.shape], datatype: t.dtype }]));
            peaks.push(engine.shapes({ ...g, outputs: o ?? g.outputs }, specs).peakBytes);
            return engine.evaluate(g, i, o, opts);
          },
        };
        const res = await jacobianWith(core, MLP, inputs, ['y'], ['w', 'x'], mode, { memoryBudgetBytes: budget }).catch((e: unknown) => e);
        if (res instanceof GradserveError) {
          expect(res.code).toBe('TOO_LARGE');
          continue;
        }
        const r = res as Awaited<ReturnType<typeof jacobianWith>>;
        passes[`${mode}@${budget}`] = peaks.length;
        expect(resultBytes + Math.max(...peaks)).toBeLessThanOrEqual(budget);
        expectClose(r.jacobians.y!.w!, full.jacobians.y!.w!, 1e-12);
      }
    }
    // the tightest budget is refused, the tightest accepted one takes more (smaller) chunks, a roomy one a single pass
    // per group
    expect(passes['forward@1500']).toBeUndefined();
    for (const mode of ['forward', 'reverse']) {
      const tightest = budgets.find((b) => passes[`${mode}@${b}`] !== undefined)!;
      expect(passes[`${mode}@${tightest}`], `${mode} at ${tightest} bytes: ${JSON.stringify(passes)}`).toBeGreaterThan(passes[`${mode}@${1 << 20}`]!);
    }
  });
});

describe('jacobian result', () => {
  it('has shape of.shape ++ wrt.shape, reports the mode and picks reverse only when of is smaller', async () => {
    const inputs = mlpInputs();
    const small = await jacobianWith(engine, MLP, inputs, ['y'], ['w'], 'auto'); // 5 < 30 elements
    expect(small.mode).toBe('reverse');
    expect(small.jacobians.y!.w!.shape).toEqual([1, 5, 6, 5]);
    const big = await jacobianWith(engine, MLP, inputs, ['y'], ['b'], 'auto'); // 5 == 5
    expect(big.mode).toBe('forward');
    expect(big.jacobians.y!.b!.shape).toEqual([1, 5, 5]);
  });

  it('matches the closed form diag(1 - y^2) W^T for a tanh layer', async () => {
    const inputs = mlpInputs(7);
    const r = await jacobianWith(engine, MLP, inputs, ['y'], ['x'], 'reverse');
    const y = r.outputs.y!.data as Float64Array;
    const w = inputs.w!.data as Float64Array;
    const j = r.jacobians.y!.x!.data as Float64Array;
    for (let i = 0; i < 5; i++) for (let k = 0; k < 6; k++) expect(j[i * 6 + k]).toBeCloseTo((1 - y[i]! ** 2) * w[k * 5 + i]!, 12);
  });

  it('returns graph.outputs plus of, equal to evaluate', async () => {
    const inputs = mlpInputs(2);
    const r = await jacobianWith(engine, MLP, inputs, ['hb'], ['b'], 'forward');
    expect(Object.keys(r.outputs).sort()).toEqual(['hb', 'y']);
    const ev = await engine.evaluate(MLP, inputs, ['y', 'hb']);
    expectClose(r.outputs.y!, ev.outputs.y!, 0);
    expectClose(r.outputs.hb!, ev.outputs.hb!, 0);
  });

  it('gives zero blocks for a wrt the output does not depend on, and the identity for of = wrt', async () => {
    const g: Graph = { ...MLP, inputs: { ...MLP.inputs, z: { shape: [2], datatype: 'FP64' } } };
    const inputs = { ...mlpInputs(), z: tensor('FP64', [2], [1, 2]) };
    for (const mode of ['forward', 'reverse'] as const) {
      const r = await jacobianWith(engine, g, inputs, ['y', 'b'], ['z', 'b'], mode);
      expect(toNumbers(r.jacobians.y!.z!)).toEqual(new Array(10).fill(0));
      expect(toNumbers(r.jacobians.b!.b!)).toEqual([1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    }
  });

  it('keeps FP32 results FP32 and agrees with the FP64 Jacobian to float precision', async () => {
    const g32: Graph = { ...MLP, inputs: Object.fromEntries(Object.entries(MLP.inputs!).map(([k, v]) => [k, { ...v, datatype: 'FP32' }])) };
    const in64 = mlpInputs(5);
    const in32 = Object.fromEntries(Object.entries(in64).map(([k, t]) => [k, tensor('FP32', t.shape, Float32Array.from(t.data as Float64Array))]));
    const r32 = await jacobianWith(engine, g32, in32, ['y'], ['w'], 'reverse');
    const r64 = await jacobianWith(engine, MLP, in64, ['y'], ['w'], 'reverse');
    expect(r32.jacobians.y!.w!.dtype).toBe('FP32');
    expectClose(r32.jacobians.y!.w!, r64.jacobians.y!.w!, 1e-5);
  });
});

describe('jacobian of loosely declared graphs', () => {
  const LOOSE: Graph = {
    inputs: { x: { shape: [null, 3], datatype: 'FP64' }, w: { datatype: 'FP64' } },
    nodes: [
      { name: 'h', op: 'matmul', inputs: ['x', 'w'] },
      { name: 'y', op: 'tanh', inputs: ['h'] },
      { name: 's', op: 'sum', inputs: ['y'] },
    ],
    outputs: ['s'],
  };
  const inputs = { x: tensor('FP64', [2, 3], [0.1, 0.2, -0.3, 0.4, 0.5, 0.6]), w: tensor('FP64', [3, 2], [1, -2, 3, 0.5, -1, 0.25]) };
  const pinned: Graph = { ...LOOSE, inputs: { x: { shape: [2, 3], datatype: 'FP64' }, w: { shape: [3, 2], datatype: 'FP64' } } };

  it('works without declared shapes (null dims, no shape at all) in every mode', async () => {
    const want = await stackedVjps(pinned, inputs, ['y', 's'], ['x', 'w']);
    for (const mode of ['auto', 'forward', 'reverse'] as const) {
      const r = await jacobianWith(engine, LOOSE, inputs, ['y', 's'], ['x', 'w'], mode);
      for (const o of ['y', 's']) for (const w of ['x', 'w']) expectClose(r.jacobians[o]![w]!, want[o]![w]!, 1e-12);
    }
    const h = await engine.hessian(LOOSE, inputs, 's', ['w']);
    expect(h.hessians.w!.w!.shape).toEqual([3, 2, 3, 2]);
  });

  it('takes a Jacobian with respect to an intermediate value in reverse mode, which auto picks', async () => {
    const r = await jacobianWith(engine, LOOSE, inputs, ['s'], ['h'], 'auto');
    expect(r.mode).toBe('reverse');
    const y = (await engine.evaluate(LOOSE, inputs, ['y'])).outputs.y!;
    expect(toNumbers(r.jacobians.s!.h!).map((v) => Number(v.toFixed(12)))).toEqual(toNumbers(y).map((t) => Number((1 - t ** 2).toFixed(12))));
    await expect(jacobianWith(engine, LOOSE, inputs, ['s'], ['h'], 'forward')).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'wrt[0]' }] });
  });
});

describe('jacobian errors and the size guard', () => {
  const LINEAR: Graph = {
    inputs: { x: { shape: [64, 4096], datatype: 'FP32' }, w: { shape: [4096, 4096], datatype: 'FP32' } },
    nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }],
    outputs: ['y'],
  };

  /** The engine, recording which entry points ran: a refusal must come before any of them. */
  function spyCore(): { core: EngineCore; calls: string[] } {
    const calls: string[] = [];
    const core: EngineCore = {
      shapes: (...a) => engine.shapes(...a),
      evaluate: (...a) => { calls.push('evaluate'); return engine.evaluate(...a); },
      grad: (...a) => { calls.push('grad'); return engine.grad(...a); },
      vjp: (...a) => { calls.push('vjp'); return engine.vjp(...a); },
      jvp: (...a) => { calls.push('jvp'); return engine.jvp(...a); },
      transform: (...a) => { calls.push('transform'); return engine.transform(...a); },
    };
    return { core, calls };
  }

  // y = x·w with x [64, 4096], w [4096, 4096]: dy/dx is 2^18 x 2^18 FP32 elements = 256 GiB, dy/dw 2^18 x 2^24 = 16 TiB.
  it('refuses the seed linear layer (N=64, D=M=4096) with 413 "256 GiB" before running or allocating anything', async () => {
    const { core, calls } = spyCore();
    const inputs = { x: tensor('FP32', [64, 4096]), w: tensor('FP32', [4096, 4096]) };
    for (const mode of ['auto', 'reverse', 'forward'] as const) {
      for (const [wrt, size, shape] of [['x', '256 GiB', '[64, 4096]'], ['w', '16 TiB', '[4096, 4096]']] as const) {
        const err = await jacobianWith(core, LINEAR, inputs, ['y'], [wrt], mode, { memoryBudgetBytes: 2 * 1024 ** 3 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(GradserveError);
        const e = err as GradserveError;
        expect(e.code).toBe('TOO_LARGE');
        expect(e.status).toBe(413);
        expect(e.detail).toContain(`needs ${size} for the result`);
        expect(e.detail).toContain('y [64, 4096]');
        expect(e.detail).toContain(`${wrt} ${shape}`);
        expect(e.detail).toContain('budget of 2 GiB');
        expect(e.detail).toMatch(/`vjp`/);
        expect(e.detail).toMatch(/`jvp`/);
      }
    }
    expect(calls).toEqual([]);
  });

  it('refuses under the default budget too, and when the working set (not the result) is what overflows', async () => {
    const inputs = { x: tensor('FP32', [64, 4096]), w: tensor('FP32', [4096, 4096]) };
    await expect(jacobianWith(engine, LINEAR, inputs, ['y'], ['w'])).rejects.toMatchObject({ code: 'TOO_LARGE' });
    const inputsSmall = mlpInputs();
    const err = await jacobianWith(engine, MLP, inputsSmall, ['y'], ['w'], 'auto', { memoryBudgetBytes: 5 * 30 * 8 + 8 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TOO_LARGE' });
    expect((err as GradserveError).detail).toMatch(/1\.17 KiB for the result plus .* of working set/);
  });

  it('refuses a block over maxTensorElements', async () => {
    await expect(jacobianWith(engine, MLP, mlpInputs(), ['y'], ['w'], 'auto', { maxTensorElements: 20 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('names unknown of / wrt values, and refuses integer wrt and of', async () => {
    const inputs = mlpInputs();
    await expect(jacobianWith(engine, MLP, inputs, ['nope'], ['x'])).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'of[0]' }] });
    await expect(jacobianWith(engine, MLP, inputs, ['y'], ['x', 'zz'])).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'wrt[1]' }] });
    const gi: Graph = {
      inputs: { x: { shape: [3], datatype: 'FP64' }, k: { shape: [3], datatype: 'INT32' } },
      nodes: [{ name: 'kf', op: 'cast', inputs: ['k'], attrs: { to: 'FP64' } }, { name: 'y', op: 'mul', inputs: ['x', 'kf'] }, { name: 'ki', op: 'argmax', inputs: ['y'] }],
      outputs: ['y'],
    };
    const gin = { x: tensor('FP64', [3], [1, 2, 3]), k: tensor('INT32', [3], [1, 2, 3]) };
    const e1 = await jacobianWith(engine, gi, gin, ['y'], ['k']).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'NOT_DIFFERENTIABLE', errors: [{ path: 'wrt[0]' }] });
    expect((e1 as GradserveError).detail).toContain('INT32');
    await expect(jacobianWith(engine, gi, gin, ['ki'], ['x'])).rejects.toMatchObject({ code: 'NOT_DIFFERENTIABLE', errors: [{ path: 'of[0]' }] });
  });
});

describe('torch fixtures (torch.autograd.functional.jacobian / jvp)', () => {
  const dir = new URL('../fixtures/derivatives/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  it('has fixtures', () => expect(files.length).toBeGreaterThanOrEqual(4));
  for (const f of files) {
    const fx = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Fixture;
    const inputs = Object.fromEntries(Object.entries(fx.inputs).map(([k, v]) => [k, tensor('FP64', v.shape, v.data)]));
    if (fx.jacobian) {
      it(`${fx.name}: jacobian in every mode`, async () => {
        for (const mode of ['auto', 'forward', 'reverse'] as const) {
          const r = await jacobianWith(engine, fx.graph, inputs, fx.jacobian!.of, fx.jacobian!.wrt, mode);
          for (const [o, byW] of Object.entries(fx.jacobian!.expected)) {
            for (const [w, t] of Object.entries(byW)) expectClose(r.jacobians[o]![w]!, tensor('FP64', t.shape, t.data), 1e-9);
          }
        }
      });
    }
    if (fx.jvp) {
      it(`${fx.name}: jvp`, async () => {
        const tangents = Object.fromEntries(Object.entries(fx.jvp!.tangents).map(([k, v]) => [k, tensor('FP64', v.shape, v.data)]));
        const r = await engine.jvp(fx.graph, inputs, tangents, [fx.jvp!.of]);
        expectClose(r.tangents[fx.jvp!.of]!, tensor('FP64', fx.jvp!.expected.shape, fx.jvp!.expected.data), 1e-9);
      });
    }
  }
});

interface FxTensor { shape: number[]; data: number[] }
export interface Fixture {
  name: string;
  graph: Graph;
  inputs: Record<string, FxTensor>;
  jacobian?: { of: string[]; wrt: string[]; expected: Record<string, Record<string, FxTensor>> };
  jvp?: { of: string; tangents: Record<string, FxTensor>; expected: FxTensor };
  hvp?: { of: string; vectors: Record<string, FxTensor>; expected: Record<string, FxTensor> };
  hessian?: { of: string; wrt: string[]; expected: Record<string, Record<string, FxTensor>> };
}
