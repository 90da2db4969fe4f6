import { describe, expect, it } from 'vitest';
import { engine } from '../../src/index.js';
import { GRADCHECK_DEFAULTS, gradcheckWith, promoteGraph, promoteInputs } from '../../src/engine/gradcheck.js';
import type { EngineCore } from '../../src/engine/linear.js';
import { GradserveError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { randTensor } from '../autodiff/helpers.js';

/** An FP32 MLP with a constant in json and one in b64, a cast and a one_hot: everything promotion must rewrite. */
const F32: Graph = {
  inputs: { x: { shape: [2, 3], datatype: 'FP32' }, w: { shape: [3, 4], datatype: 'float32' }, lab: { shape: [2], datatype: 'INT64' } },
  constants: {
    half: { shape: [], datatype: 'FP32', data: [0.5] },
    bias: { shape: [4], datatype: 'FP32', b64: Buffer.from(Float32Array.of(0.1, -0.2, 0.3, -0.4).buffer).toString('base64') },
  },
  nodes: [
    { name: 'xw', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'pre', op: 'add', inputs: ['xw', 'bias'] },
    { name: 'h', op: 'tanh', inputs: ['pre'] },
    { name: 'hh', op: 'mul', inputs: ['h', 'half'] },
    { name: 'oh', op: 'one_hot', inputs: ['lab'], attrs: { depth: 4 } },
    { name: 'lp', op: 'log_softmax', inputs: ['hh'] },
    { name: 'picked', op: 'mul', inputs: ['lp', 'oh'] },
    { name: 's', op: 'sum', inputs: ['picked'] },
    { name: 'loss', op: 'neg', inputs: ['s'] },
  ],
  outputs: ['loss'],
};

function f32Inputs(seed = 4) {
  const r = rng(seed);
  return { x: randTensor(r, [2, 3], -1, 1, 'FP32'), w: randTensor(r, [3, 4], -1, 1, 'FP32'), lab: tensor('INT64', [2], [1n, 3n]) };
}

describe('gradcheck', () => {
  it('passes on an FP32 graph, checked in FP64 after promotion', async () => {
    const r = await engine.gradcheck(F32, f32Inputs(), 'loss', ['x', 'w']);
    expect(r.ok).toBe(true);
    expect(Object.keys(r.perInput).sort()).toEqual(['w', 'x']);
    // FP64 central differences of a smooth function agree far below the FP32 noise level (~1e-3)
    expect(r.maxAbsError).toBeLessThan(1e-7);
    expect(r.maxAbsError).toBe(Math.max(r.perInput.x!.maxAbsError, r.perInput.w!.maxAbsError));
    expect(r.perInput.x!.ok && r.perInput.w!.ok).toBe(true);
  });

  it('fails where the analytic gradient is wrong on purpose (stop_gradient), with the expected error figures', async () => {
    // s = sum(x * stop_gradient(x)): analytic gradient x, true derivative 2x; z is a correct control
    const g: Graph = {
      inputs: { x: { shape: [3], datatype: 'FP64' }, z: { shape: [3], datatype: 'FP64' } },
      nodes: [
        { name: 'sx', op: 'stop_gradient', inputs: ['x'] },
        { name: 'xx', op: 'mul', inputs: ['x', 'sx'] },
        { name: 'zz', op: 'mul', inputs: ['z', 'z'] },
        { name: 'both', op: 'add', inputs: ['xx', 'zz'] },
        { name: 's', op: 'sum', inputs: ['both'] },
      ],
      outputs: ['s'],
    };
    const x = tensor('FP64', [3], [0.5, -2, 1]);
    const r = await engine.gradcheck(g, { x, z: tensor('FP64', [3], [1, 2, 3]) }, 's', ['x', 'z']);
    expect(r.ok).toBe(false);
    expect(r.perInput.x!.ok).toBe(false);
    expect(r.perInput.z!.ok).toBe(true);
    // |a - n| = |x - 2x| = |x|, largest 2; relative |x| / |2x| = 0.5
    expect(r.perInput.x!.maxAbsError).toBeCloseTo(2, 6);
    expect(r.perInput.x!.maxRelError).toBeCloseTo(0.5, 6);
    expect(r.maxAbsError).toBeCloseTo(2, 6);
  });

  it('fails when a core returns a wrong analytic gradient, and the tolerances decide', async () => {
    const g: Graph = { inputs: { x: { shape: [2], datatype: 'FP64' } }, nodes: [{ name: 'e', op: 'exp', inputs: ['x'] }, { name: 's', op: 'sum', inputs: ['e'] }], outputs: ['s'] };
    const x = tensor('FP64', [2], [0, 1]);
    const off = 1e-2; // above atol + rtol·|n| = 1e-5 + 1e-3·e^x at x in {0, 1}
    const skewed: EngineCore = {
      ...engine,
      grad: async (...a) => {
        const res = await engine.grad(...a);
        const gx = res.gradients.x!;
        return { ...res, gradients: { x: tensor('FP64', gx.shape, (gx.data as Float64Array).map((v) => v + off)) } };
      },
    };
    const bad = await gradcheckWith(skewed, g, { x }, 's', ['x']);
    expect(bad.ok).toBe(false);
    expect(bad.maxAbsError).toBeCloseTo(off, 6);
    // the same error passes once atol covers it
    const loose = await gradcheckWith(skewed, g, { x }, 's', ['x'], { atol: 2e-2 });
    expect(loose.ok).toBe(true);
    expect((await gradcheckWith(engine, g, { x }, 's', ['x'])).ok).toBe(true);
  });

  it('vectorizes the central differences (one pass per input), and falls back to two passes per element', async () => {
    const counting = (): { core: EngineCore; evals: number[] } => {
      const evals: number[] = [];
      return { evals, core: { ...engine, evaluate: (...a) => { evals.push(1); return engine.evaluate(...a); } } };
    };
    const fast = counting();
    const r1 = await gradcheckWith(fast.core, F32, f32Inputs(), 'loss', ['x', 'w']);
    expect(r1.ok).toBe(true);
    expect(fast.evals.length).toBe(2);
    // indices computed from the perturbed input: gather with batched indices, vectorized like the rest (one pass)
    const g: Graph = {
      inputs: { a: { shape: [3], datatype: 'FP64' }, b: { shape: [3], datatype: 'FP64' } },
      nodes: [
        { name: 'i', op: 'argmax', inputs: ['a'], attrs: { axis: 0, keepdims: true } },
        { name: 'bi', op: 'gather', inputs: ['b', 'i'] },
        { name: 'm', op: 'mse', inputs: ['a', 'bi'] },
        { name: 'e', op: 'exp', inputs: ['m'] },
      ],
      outputs: ['e'],
    };
    const indexed = counting();
    const ab = { a: tensor('FP64', [3], [0.1, 0.5, -0.3]), b: tensor('FP64', [3], [1, 0, 2]) };
    const r2 = await gradcheckWith(indexed.core, g, ab, 'e', ['a']);
    expect(r2.ok).toBe(true);
    expect(indexed.evals.length).toBe(1);
    expect(r2.maxAbsError).toBeLessThan(1e-8);
    // a core that rejects the vectorized graph also gets the per-element path, with the same numbers up to rounding
    let loopEvals = 0;
    const noBatches: EngineCore = {
      ...engine,
      evaluate: (g, i, o, opts) => {
        loopEvals++;
        if (i.w && i.w.shape.length !== 2) throw new GradserveError('SHAPE_MISMATCH', 'no batches here');
        return engine.evaluate(g, i, o, opts);
      },
    };
    const viaLoop = await gradcheckWith(noBatches, F32, f32Inputs(), 'loss', ['w'], { atol: 1e-12, rtol: 0 });
    expect(loopEvals).toBe(1 + 2 * 12);
    const viaBatch = await gradcheckWith(engine, F32, f32Inputs(), 'loss', ['w'], { atol: 1e-12, rtol: 0 });
    expect(Math.abs(viaLoop.maxAbsError - viaBatch.maxAbsError)).toBeLessThan(1e-8);
  });

  it('reports NaN errors as failures, never as small errors', async () => {
    const g: Graph = { inputs: { x: { shape: [1], datatype: 'FP64' } }, nodes: [{ name: 'r', op: 'sqrt', inputs: ['x'] }, { name: 's', op: 'sum', inputs: ['r'] }], outputs: ['s'] };
    const r = await engine.gradcheck(g, { x: tensor('FP64', [1], [0]) }, 's', ['x']);
    expect(r.ok).toBe(false);
    expect(Number.isNaN(r.maxAbsError)).toBe(true);
  });

  it('documents PyTorch-like defaults', () => {
    expect(GRADCHECK_DEFAULTS).toEqual({ eps: 1e-6, atol: 1e-5, rtol: 1e-3 });
  });

  it('errors: NOT_SCALAR, NOT_DIFFERENTIABLE, UNKNOWN_VALUE, bad options, non-input wrt', async () => {
    const inputs = f32Inputs();
    await expect(engine.gradcheck(F32, inputs, 'h', ['x'])).rejects.toMatchObject({ code: 'NOT_SCALAR', errors: [{ path: 'of' }] });
    await expect(engine.gradcheck(F32, inputs, 'loss', ['lab'])).rejects.toMatchObject({ code: 'NOT_DIFFERENTIABLE', errors: [{ path: 'wrt[0]' }] });
    await expect(engine.gradcheck(F32, inputs, 'loss', ['x', 'q'])).rejects.toMatchObject({ code: 'UNKNOWN_VALUE', errors: [{ path: 'wrt[1]' }] });
    await expect(engine.gradcheck(F32, inputs, 'loss', ['x'], { eps: 0 })).rejects.toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'eps' }] });
    await expect(engine.gradcheck(F32, inputs, 'loss', ['x'], { atol: -1 })).rejects.toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'atol' }] });
    await expect(engine.gradcheck(F32, inputs, 'loss', ['h'])).rejects.toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'wrt[0]' }] });
  });
});

describe('FP64 promotion', () => {
  it('rewrites declared inputs, constants (json and b64), cast and one_hot targets, and FP32 tensors', async () => {
    const withCast: Graph = { ...F32, nodes: [...F32.nodes, { name: 'c', op: 'cast', inputs: ['loss'], attrs: { to: 'float32' } }] };
    const p = promoteGraph(withCast);
    expect(p.inputs!.x!.datatype).toBe('FP64');
    expect(p.inputs!.w!.datatype).toBe('FP64');
    expect(p.inputs!.lab!.datatype).toBe('INT64');
    expect(p.constants!.half).toEqual({ shape: [], datatype: 'FP64', data: [0.5] });
    const raw = Buffer.from(p.constants!.bias!.b64!, 'base64');
    expect(Array.from(new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)))).toEqual(Array.from(Float32Array.of(0.1, -0.2, 0.3, -0.4)));
    expect(p.nodes.find((n) => n.name === 'oh')!.attrs).toEqual({ depth: 4, datatype: 'FP64' });
    expect(p.nodes.find((n) => n.name === 'c')!.attrs).toEqual({ to: 'FP64' });
    expect(F32.inputs!.x!.datatype).toBe('FP32'); // the caller's graph is untouched
    const xs = promoteInputs(f32Inputs());
    expect(xs.x!.dtype).toBe('FP64');
    expect(xs.lab!.dtype).toBe('INT64');
    const out = await engine.evaluate(p, xs, ['loss', 'oh']);
    expect(out.outputs.loss!.dtype).toBe('FP64');
    expect(out.outputs.oh!.dtype).toBe('FP64');
    const ref = await engine.evaluate(F32, f32Inputs(), ['loss']);
    expect(Number(out.outputs.loss!.data[0])).toBeCloseTo(Number(ref.outputs.loss!.data[0]), 5);
  });
});
