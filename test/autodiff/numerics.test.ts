/** OPS.md "Numerics that tests must pin", through the engine's grad (so the VJP graphs, not just kernels, are pinned). */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, evaluate, grad, tensor } from '../../src/index.js';
import { toNumbers } from './helpers.js';

describe('numerics pinned by OPS.md', () => {
  test('logsumexp of all -Infinity is -Infinity with zero gradient', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const g = b.output(x.logsumexp().as('f')).build();
    const r = await grad(g, { x: tensor('FP64', [3], [-Infinity, -Infinity, -Infinity]) }, 'f', ['x']);
    expect(r.outputs.f!.data[0]).toBe(-Infinity);
    expect(toNumbers(r.gradients.x!)).toEqual([0, 0, 0]);
  });

  test('large logits (1e4) give finite softmax family values and gradients', async () => {
    const b = new GraphBuilder();
    const z = b.input('z', [2, 3], 'FP32');
    const labels = b.input('y', [2], 'INT64');
    const g = b.output(z.softmaxCrossEntropy(labels).as('ce'), z.logSoftmax().sum().as('ls'), z.logsumexp().as('lse')).build();
    const ins = { z: tensor('FP32', [2, 3], [1e4, -1e4, 0, 5e3, 1e4, 1e4]), y: tensor('INT64', [2], [1n, 0n]) };
    for (const of of ['ce', 'ls', 'lse']) {
      const r = await grad(g, ins, of, ['z']);
      expect(toNumbers(r.outputs[of]!).every(Number.isFinite), of).toBe(true);
      expect(toNumbers(r.gradients.z!).every(Number.isFinite), `${of} gradient`).toBe(true);
    }
    const ce = (await grad(g, ins, 'ce', ['z'])).outputs.ce!.data[0] as number;
    expect(ce).toBeCloseTo((2e4 + 5e3) / 2, 0);
  });

  test('sigmoid, softplus and BCE with logits are stable for |x| up to 1e4 in FP32', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4], 'FP32');
    const t = b.input('t', [4], 'FP32');
    const g = b.output(x.sigmoid().sum().as('s'), x.softplus().sum().as('sp'), x.binaryCrossEntropyWithLogits(t, 'sum').as('bce')).build();
    const ins = { x: tensor('FP32', [4], [-1e4, -50, 50, 1e4]), t: tensor('FP32', [4], [0, 1, 0, 1]) };
    for (const of of ['s', 'sp', 'bce']) {
      const r = await grad(g, ins, of, ['x', 't']);
      expect(Number.isFinite(r.outputs[of]!.data[0] as number), of).toBe(true);
      expect(toNumbers(r.gradients.x!).every(Number.isFinite), `${of} dx`).toBe(true);
    }
    const sp = await grad(g, ins, 'sp', ['x']);
    expect(sp.outputs.sp!.data[0]).toBeCloseTo(50 + 1e4, -1);
    expect(toNumbers(sp.gradients.x!)).toEqual([0, expect.closeTo(0, 6), expect.closeTo(1, 6), 1]);
  });

  test('pow: d/dy at x = 0 is 0, d/dx at x = 0, y = 2 is 0', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const y = b.input('y', [2], 'FP64');
    const g = b.output(x.pow(y).sum().as('f')).build();
    const r = await grad(g, { x: tensor('FP64', [2], [0, 0]), y: tensor('FP64', [2], [2, 3]) }, 'f', ['x', 'y']);
    expect(toNumbers(r.gradients.y!)).toEqual([0, 0]);
    expect(toNumbers(r.gradients.x!)).toEqual([0, 0]);
  });

  test('ties split the gradient equally; relu and abs have zero slope at 0; sqrt\'(0) = +Infinity', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [4], 'FP64');
    const k = b.input('k', [4], 'FP64');
    const g = b.output(
      x.max().as('mx'), x.min().as('mn'), x.maximum(k).sum().as('mxk'), x.relu().sum().as('r'), x.abs().sum().as('a'),
    ).build();
    const ins = { x: tensor('FP64', [4], [3, 0, 3, -1]), k: tensor('FP64', [4], [3, 1, 0, -1]) };
    expect(toNumbers((await grad(g, ins, 'mx', ['x'])).gradients.x!)).toEqual([0.5, 0, 0.5, 0]);
    expect(toNumbers((await grad(g, ins, 'mn', ['x'])).gradients.x!)).toEqual([0, 0, 0, 1]);
    const mk = await grad(g, ins, 'mxk', ['x', 'k']);
    expect(toNumbers(mk.gradients.x!)).toEqual([0.5, 0, 1, 0.5]);
    expect(toNumbers(mk.gradients.k!)).toEqual([0.5, 1, 0, 0.5]);
    expect(toNumbers((await grad(g, ins, 'r', ['x'])).gradients.x!)).toEqual([1, 0, 1, 0]);
    expect(toNumbers((await grad(g, ins, 'a', ['x'])).gradients.x!)).toEqual([1, 0, 1, -1]);
    const s = new GraphBuilder();
    const sx = s.input('x', [2], 'FP64');
    const sg = s.output(sx.sqrt().sum().as('f')).build();
    expect(toNumbers((await grad(sg, { x: tensor('FP64', [2], [0, 4]) }, 'f', ['x'])).gradients.x!)).toEqual([Infinity, 0.25]);
  });

  test('a zero cotangent times a non-finite local derivative is zero', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const g = b.output(x.log().mul(b.constant([0, 1], { datatype: 'FP64' })).sum().as('f')).build();
    const r = await grad(g, { x: tensor('FP64', [2], [0, 2]) }, 'f', ['x']);
    expect(toNumbers(r.gradients.x!)).toEqual([0, 0.5]);
    expect((await evaluate(g, { x: tensor('FP64', [2], [0, 2]) })).outputs.f!.data[0]).toBeNaN();
  });
});
