/** Reverse and forward mode as graph transforms: pruning, zeros, fan-out, grad of grad, symbolic shapes, naming. */
import { describe, expect, test } from 'vitest';
import { GraphBuilder, evaluate, grad, jvp, tensor, transform, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { toNumbers } from './helpers.js';

const f64 = (shape: number[], data: number[]) => tensor('FP64', shape, data);
const xs = [-1.3, -0.4, 0.2, 0.9, 1.7];

function vec(name = 'x') {
  const b = new GraphBuilder();
  return { b, x: b.input(name, [null], 'FP64') };
}

describe('reverse mode', () => {
  test('fan-out accumulates: d/dx sum(x*x + sin(x)) = 2x + cos(x)', async () => {
    const { b, x } = vec();
    const g = b.output(x.mul(x).add(x.sin()).sum().as('f')).build();
    const r = await grad(g, { x: f64([5], xs) }, 'f', ['x']);
    [...r.gradients.x!.data].forEach((v, i) => expect(v).toBeCloseTo(2 * xs[i]! + Math.cos(xs[i]!), 13));
  });

  test('wrt values the output does not depend on get zeros of their shape', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const unused = b.input('u', [3, 2], 'FP64');
    const cut = b.input('c', [2], 'FP64');
    const f = x.mul(cut.stopGradient()).sum().as('f');
    const side = unused.exp().as('side');
    const g = b.output(f, side).build();
    const r = await grad(g, { x: f64([2], [1, 2]), u: f64([3, 2], [0, 0, 0, 0, 0, 0]), c: f64([2], [3, 4]) }, 'f', ['x', 'u', 'c']);
    expect([...r.gradients.x!.data]).toEqual([3, 4]);
    expect(r.gradients.u!.shape).toEqual([3, 2]);
    expect([...r.gradients.u!.data]).toEqual([0, 0, 0, 0, 0, 0]);
    expect([...r.gradients.c!.data]).toEqual([0, 0]);
    expect(Object.keys(r.outputs).sort()).toEqual(['f', 'side']);
  });

  test('the transformed graph keeps only what the gradients need', () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 3], 'FP32');
    const w = b.input('w', [3, 2], 'FP32');
    const y = x.matmul(w).as('y');
    const loss = y.tanh().sum().as('loss');
    const expensive = y.exp().matmul(w.transpose()).as('report');
    const d = transform(b.output(loss, expensive).build(), { transform: 'grad', of: 'loss', wrt: ['w'] });
    const names = d.nodes.map((n) => n.name);
    expect(names).not.toContain('report');
    expect(d.nodes.some((n) => n.inputs.includes('report'))).toBe(false);
    // no gradient towards x is built when only w is asked for
    expect(d.nodes.filter((n) => n.op === 'matmul_t' || n.op === 'matmul').length).toBeLessThanOrEqual(2);
    expect(d.outputs).toEqual(['grad:w']);
    expect(Object.keys(d.inputs!)).toEqual(['x', 'w']);
  });

  test('common subexpressions are built once: d/dx sum(x*x) multiplies g by x a single time', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const g = b.output(x.mul(x).sum().as('f')).build();
    const d = transform(g, { transform: 'grad', of: 'f', wrt: ['x'] });
    const products = d.nodes.filter((n) => n.name.startsWith('vjp/') && (n.op === 'mul' || n.op === 'mul_no_nan'));
    expect(products).toHaveLength(1);
    const r = await evaluate(d, { x: f64([3], [1, -2, 0.5]) });
    expect([...r.outputs['grad:x']!.data]).toEqual([2, -4, 1]);
  });

  test('integer paths carry no gradient; non-differentiable ops pass zeros', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const f = x.argmax().cast('FP64').add(x.sign().mul(x)).sum().as('f');
    const r = await grad(b.output(f).build(), { x: f64([3], [-2, 0.5, 1]) }, 'f', ['x']);
    expect([...r.gradients.x!.data]).toEqual([-1, 1, 1]);
  });

  test('where does not leak NaN from the untaken branch', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const f = b.where(x.greater(0), x.sqrt(), 0).sum().as('f');
    const r = await grad(b.output(f).build(), { x: f64([3], [-1, 4, 0.25]) }, 'f', ['x']);
    expect([...r.gradients.x!.data]).toEqual([0, 0.25, 1]);
  });

  test('vjp sums over several cotangents', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const g = b.output(x.square().as('a'), x.mul(3).as('c')).build();
    const r = await vjp(g, { x: f64([2], [1, 2]) }, { a: f64([2], [1, 1]), c: f64([2], [2, -1]) }, ['x']);
    expect([...r.gradients.x!.data]).toEqual([2 * 1 + 6, 2 * 2 - 3]);
  });
});

describe('grad of grad', () => {
  test('d²/dx² sum(x³) = 6x through two transforms', async () => {
    const { b, x } = vec();
    const g = b.output(x.mul(x).mul(x).sum().as('f')).build();
    const g1 = transform(g, { transform: 'grad', of: 'f', wrt: ['x'] });
    // keeps grad:x as an output: the second transform must free that name for its own grad:x
    const s = { ...g1, nodes: [...g1.nodes, { name: 's', op: 'sum', inputs: ['grad:x'] }], outputs: ['grad:x', 's'] };
    const g2 = transform(s, { transform: 'grad', of: 's', wrt: ['x'] });
    const out = (await evaluate(g2, { x: f64([5], xs) })).outputs['grad:x']!;
    [...out.data].forEach((v, i) => expect(v).toBeCloseTo(6 * xs[i]!, 12));
    const direct = await grad(s, { x: f64([5], xs) }, 's', ['x']);
    expect([...direct.gradients.x!.data]).toEqual([...out.data]);
    expect(toNumbers(direct.outputs['grad:x']!).map((v) => v.toFixed(10))).toEqual(xs.map((v) => (3 * v * v).toFixed(10)));
  });

  test('d²/dx² of sum(tanh(x)) = -2 tanh(x)(1 - tanh²(x)) and a third derivative', async () => {
    const { b, x } = vec();
    const g = b.output(x.tanh().sum().as('f')).build();
    let cur: Graph = g;
    let of = 'f';
    const values: number[][] = [];
    for (let order = 1; order <= 3; order++) {
      const d = transform(cur, { transform: 'grad', of, wrt: ['x'] });
      values.push(toNumbers((await evaluate(d, { x: f64([5], xs) })).outputs['grad:x']!));
      cur = { ...d, nodes: [...d.nodes, { name: `s${order}`, op: 'sum', inputs: ['grad:x'] }], outputs: [`s${order}`] };
      of = `s${order}`;
    }
    xs.forEach((v, i) => {
      const t = Math.tanh(v);
      expect(values[0]![i]).toBeCloseTo(1 - t * t, 13);
      expect(values[1]![i]).toBeCloseTo(-2 * t * (1 - t * t), 12);
      expect(values[2]![i]).toBeCloseTo(-2 * (1 - t * t) * (1 - 3 * t * t), 11);
    });
  });

  test('a transformed graph that already has grad:w outputs can be differentiated for w again', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2], 'FP64');
    const w = b.input('w', [2], 'FP64');
    const g = b.output(x.mul(w).mul(w).sum().as('f')).build();
    const g1 = transform(g, { transform: 'grad', of: 'f', wrt: ['x', 'w'] }); // grad:w = 2xw
    const g2 = transform(g1, { transform: 'vjp', of: ['grad:w'], wrt: ['w'] });
    expect(g2.outputs).toEqual(['grad:w']);
    const r = await evaluate(g2, { x: f64([2], [3, 5]), w: f64([2], [1, 2]), 'cotangent:grad:w': f64([2], [1, 1]) });
    expect([...r.outputs['grad:w']!.data]).toEqual([6, 10]);
    const viaEngine = await vjp(g1, { x: f64([2], [3, 5]), w: f64([2], [1, 2]) }, { 'grad:w': f64([2], [1, 1]) }, ['w']);
    expect([...viaEngine.gradients.w!.data]).toEqual([6, 10]);
    expect([...viaEngine.outputs['grad:w']!.data]).toEqual([6, 20]);
  });
});

describe('forward mode', () => {
  test('jvp of an MLP equals the directional derivative; zero tangent where nothing flows', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [2, 3], 'FP64');
    const w = b.input('w', [3, 2], 'FP64');
    const k = b.input('k', [2], 'FP64');
    const y = x.matmul(w).tanh().as('y');
    const g = b.output(y, k.exp().as('side')).build();
    const ins = { x: f64([2, 3], [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]), w: f64([3, 2], [1, -1, 0.5, 0.25, -0.3, 0.7]), k: f64([2], [0, 1]) };
    const dir = f64([3, 2], [0.3, -0.1, 0.2, 0.05, -0.4, 0.6]);
    const r = await jvp(g, ins, { w: dir });
    const eps = 1e-6;
    const d = toNumbers(dir);
    const plus = f64([3, 2], toNumbers(ins.w).map((v, i) => v + eps * d[i]!));
    const minus = f64([3, 2], toNumbers(ins.w).map((v, i) => v - eps * d[i]!));
    const yp = toNumbers((await evaluate(g, { ...ins, w: plus })).outputs.y!);
    const ym = toNumbers((await evaluate(g, { ...ins, w: minus })).outputs.y!);
    [...r.tangents.y!.data].forEach((v, i) => expect(v).toBeCloseTo((yp[i]! - ym[i]!) / (2 * eps), 8));
    expect([...r.tangents.side!.data]).toEqual([0, 0]);
    expect(Object.keys(r.outputs).sort()).toEqual(['side', 'y']);
  });

  test('symbolic jvp graph: tangent inputs and outputs named per API.md, evaluated at two batch sizes', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 2], 'FP64');
    const g = b.output(x.square().sum([1]).as('n'), x.exp().as('e')).build();
    const d = transform(g, { transform: 'jvp', wrt: ['x'], of: ['e', 'n', 'x'] });
    expect(d.outputs).toEqual(['tangent:e', 'tangent:n', 'tangent:x']);
    expect(d.inputs!['tangent:x']).toEqual({ shape: [null, 2], datatype: 'FP64' });
    for (const n of [1, 4]) {
      const xv = f64([n, 2], Array.from({ length: 2 * n }, (_, i) => i / 3));
      const t = f64([n, 2], Array.from({ length: 2 * n }, (_, i) => 1 - i / 5));
      const o = (await evaluate(d, { x: xv, 'tangent:x': t })).outputs;
      expect(o['tangent:n']!.shape).toEqual([n]);
      const xa = toNumbers(xv);
      const ta = toNumbers(t);
      for (let r = 0; r < n; r++) {
        expect(o['tangent:n']!.data[r]).toBeCloseTo(2 * (xa[2 * r]! * ta[2 * r]! + xa[2 * r + 1]! * ta[2 * r + 1]!), 12);
      }
      [...o['tangent:x']!.data].forEach((v, i) => expect(v).toBe(t.data[i]));
    }
  });

  test('symbolic grad graph with null batch: same numbers as the direct endpoint', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [null, 3], 'FP32');
    const w = b.input('w', [3, 2], 'FP32');
    const bias = b.input('b', [2], 'FP32');
    const loss = x.matmul(w).add(bias).relu().mean().as('loss');
    const g = b.output(loss).build();
    const d = transform(g, { transform: 'grad', of: 'loss', wrt: ['w', 'b'] });
    expect(d.inputs!.x).toEqual({ shape: [null, 3], datatype: 'FP32' });
    const ins = {
      x: tensor('FP32', [4, 3], [0.5, -1, 2, 1, 1, -1, -0.5, 0.25, 0.75, 2, -2, 0.1]),
      w: tensor('FP32', [3, 2], [0.3, -0.2, 0.1, 0.4, -0.5, 0.6]),
      b: tensor('FP32', [2], [0.05, -0.05]),
    };
    const viaGraph = (await evaluate(d, ins)).outputs;
    const direct = await grad(g, ins, 'loss', ['w', 'b']);
    expect([...viaGraph['grad:w']!.data]).toEqual([...direct.gradients.w!.data]);
    expect([...viaGraph['grad:b']!.data]).toEqual([...direct.gradients.b!.data]);
    expect(direct.gradients.b!.shape).toEqual([2]);
  });
});

describe('composed transforms and transform errors', () => {
  test('forward over reverse: jvp of the grad graph is a Hessian-vector product', async () => {
    const { b, x } = vec();
    const g = b.output(x.mul(x).mul(x).sum().add(x.sin().sum()).as('f')).build();
    const g1 = transform(g, { transform: 'grad', of: 'f', wrt: ['x'] });
    const v = [0.5, -1, 2, 0.25, 1];
    const r = await jvp(g1, { x: f64([5], xs) }, { x: f64([5], v) }, ['grad:x']);
    [...r.tangents['grad:x']!.data].forEach((t, i) => expect(t).toBeCloseTo((6 * xs[i]! - Math.sin(xs[i]!)) * v[i]!, 12));
    const sym = transform(g1, { transform: 'jvp', wrt: ['x'], of: ['grad:x'] });
    expect(sym.outputs).toEqual(['tangent:grad:x']);
    const viaGraph = await evaluate(sym, { x: f64([5], xs), 'tangent:x': f64([5], v) });
    expect([...viaGraph.outputs['tangent:grad:x']!.data]).toEqual([...r.tangents['grad:x']!.data]);
  });

  test('symbolic transforms need declared ranks where a rule uses them; bad specs are request errors', () => {
    const undeclared: Graph = {
      inputs: { x: { datatype: 'FP32' } },
      nodes: [{ name: 'r', op: 'sum', inputs: ['x'], attrs: { axes: [0] } }, { name: 'y', op: 'sum', inputs: ['r'] }],
    };
    expect(() => transform(undeclared, { transform: 'grad', of: 'y', wrt: ['x'] })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', errors: [expect.objectContaining({ path: 'graph.inputs.x' })] }));
    const g: Graph = { inputs: { x: { shape: [null], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'exp', inputs: ['x'] }] };
    expect(() => transform(g, { transform: 'grad', of: 'y', wrt: ['x'] })).toThrow(expect.objectContaining({ code: 'NOT_SCALAR' }));
    expect(() => transform(g, { transform: 'vjp', of: ['y'], wrt: ['q'] })).toThrow(expect.objectContaining({ code: 'UNKNOWN_VALUE', errors: [expect.objectContaining({ path: 'wrt[0]' })] }));
    expect(() => transform(g, { transform: 'jvp', wrt: ['y'] })).toThrow(expect.objectContaining({ code: 'UNKNOWN_VALUE', errors: [expect.objectContaining({ path: 'wrt[0]' })] }));
    const unshaped: Graph = { inputs: { x: {} }, nodes: [{ name: 'y', op: 'exp', inputs: ['x'] }] };
    expect(() => transform(unshaped, { transform: 'grad', of: 'y', wrt: ['x'] })).toThrow(expect.objectContaining({
      code: 'NOT_SCALAR',
      message: '"y" takes its shape from input "x", which declares none, so it may have more than one element; declare the shape of "x" ([] for a scalar) to take a gradient',
      errors: [expect.objectContaining({ path: 'of' }), expect.objectContaining({ path: 'graph.inputs.x' })],
    }));
    expect(() => transform(g, { transform: 'hessian' } as never)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST', errors: [expect.objectContaining({ path: 'transform' })] }));
  });
});
