/** API.md: `outputs` in every derivative response holds graph.outputs plus the `of` values not among them. */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, evaluate, grad, hessian, hvp, jacobian, jvp, tensor, vjp } from '../../src/index.js';
import { toNumbers } from './helpers.js';

function graph() {
  const b = new GraphBuilder();
  const x = b.input('x', [2], 'FP64');
  const a = x.mul(x).as('a');
  a.sum().as('s');
  const c = x.neg().as('c');
  return b.output(c).build();
}

describe('derivative responses add `of` to graph.outputs', () => {
  const g = graph();
  const x = tensor('FP64', [2], [1, 2]);
  const ones = tensor('FP64', [2], [1, 1]);

  test('jvp: outputs are c plus the requested a and s, with forward values', async () => {
    const r = await jvp(g, { x }, { x: ones }, ['a', 's']);
    expect(Object.keys(r.outputs)).toEqual(['c', 'a', 's']);
    const ref = (await evaluate(g, { x }, ['c', 'a', 's'])).outputs;
    for (const n of ['c', 'a', 's']) expect(toNumbers(r.outputs[n]!), n).toEqual(toNumbers(ref[n]!));
    expect(toNumbers(r.tangents.a!)).toEqual([2, 4]);
    expect(toNumbers(r.tangents.s!)).toEqual([6]);
  });

  test('jvp: of already among the outputs, or an input, appears once', async () => {
    const r = await jvp(g, { x }, { x: ones }, ['c', 'x', 'c']);
    expect(Object.keys(r.outputs)).toEqual(['c', 'x']);
    expect(toNumbers(r.outputs.x!)).toEqual([1, 2]);
    expect(Object.keys((await jvp(g, { x }, { x: ones })).outputs)).toEqual(['c']);
  });

  test('grad, hvp, hessian, jacobian add of; vjp (no of) keeps graph.outputs', async () => {
    expect(Object.keys((await grad(g, { x }, 's', ['x'])).outputs)).toEqual(['c', 's']);
    expect(Object.keys((await hvp(g, { x }, 's', { x: ones })).outputs)).toEqual(['c', 's']);
    expect(Object.keys((await hessian(g, { x }, 's', ['x'])).outputs)).toEqual(['c', 's']);
    for (const mode of ['forward', 'reverse'] as const) {
      const r = await jacobian(g, { x }, ['a'], ['x'], mode);
      expect(Object.keys(r.outputs), mode).toEqual(['c', 'a']);
      expect(toNumbers(r.outputs.a!)).toEqual([1, 4]);
    }
    expect(Object.keys((await vjp(g, { x }, { a: ones }, ['x'])).outputs)).toEqual(['c']);
  });
});
