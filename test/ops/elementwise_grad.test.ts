/**
 * Derivative rules of the elementwise ops, run through the engine on the native kernels: the numerics OPS.md pins
 * (zero cotangent times a non-finite derivative, where/sqrt, pow at 0, ties, relu'(0), abs'(0), sqrt'(0), inclusive clip
 * bounds, stability at |x| = 1e4), broadcasting cotangents summed back, and central-difference checks of every unary
 * rule and of the internal local-derivative ops (which are the second derivatives of the public ones).
 */
import { describe, expect, it } from 'vitest';
import { grad, transform } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { Emitter, Ref } from '../../src/ops/types.js';
import {
  bool, expectClose, f32, f64, jvpOf, opDef, Recorder, runOp, values, vjpOf,
} from './elementwise_support.js';

describe('the zero-cotangent rule and where', () => {
  it('grad of where(x > 0, sqrt(x), 0) is 0 (not NaN) at x = -1 and x = 0, and 1/(2 sqrt x) inside', async () => {
    const rec = new Recorder();
    const x = rec.input(f64([3], [-1, 0, 4]));
    const zero = rec.scalar(0, 'FP64');
    const cond = rec.op('greater', [x, zero]);
    const s = rec.op('sqrt', [x]);
    const y = rec.op('where', [cond, s, zero]);
    const g = rec.input(f64([3], [1, 1, 1]));
    const [gc, gs] = opDef('where').vjp!({ e: rec, inputs: [cond, s, zero], output: y, g, attrs: {} });
    expect(gc).toBeNull();
    const [gx] = opDef('sqrt').vjp!({ e: rec, inputs: [x], output: s, g: gs!, attrs: {} });
    const [yv, gxv] = await rec.run([y, gx!]);
    expect(values(yv!)).toEqual([0, 0, 2]);
    expect(values(gxv!)).toEqual([0, 0, 0.25]);
  });

  it("sqrt'(0) = +Infinity, and a zero cotangent gives 0 even at non-finite local derivatives", async () => {
    expect(values((await vjpOf('sqrt', [f64([2], [0, 4])]))[0]!)).toEqual([Infinity, 0.25]);
    expect(values((await vjpOf('sqrt', [f64([2], [0, -1])], {}, f64([2], [0, 0])))[0]!)).toEqual([0, 0]);
    expect(values((await vjpOf('log', [f64([2], [0, 2])], {}, f64([2], [0, 1])))[0]!)).toEqual([0, 0.5]);
    expect(values((await vjpOf('exp', [f64([2], [800, 0])], {}, f64([2], [0, 1])))[0]!)).toEqual([0, 1]);
    expect(values((await vjpOf('reciprocal', [f64([1], [0])], {}, f64([1], [0])))[0]!)).toEqual([0]);
    expect(values(await jvpOf('sqrt', [f64([2], [0, 4])], [f64([2], [0, 1])]))).toEqual([0, 0.25]);
  });

  it('where sends the cotangent to the taken branch only, summed back through 3-way broadcasting', async () => {
    const [gc, ga, gb] = await vjpOf('where', [bool([2, 1], [1, 0]), f64([3], [1, 2, 3]), f64([], [9])], {},
      f64([2, 3], [1, 2, 3, 4, 5, 6]));
    expect(gc).toBeNull();
    expect(ga!.shape).toEqual([3]);
    expect(values(ga)).toEqual([1, 2, 3]);
    expect(gb!.shape).toEqual([]);
    expect(values(gb)).toEqual([15]);
    const t = await jvpOf('where', [bool([2, 1], [1, 0]), f64([3], [1, 2, 3]), f64([], [9])], [null, null, f64([], [2])]);
    expect(t!.shape).toEqual([2, 3]);
    expect(values(t)).toEqual([0, 0, 0, 2, 2, 2]);
  });
});

describe('binary rules', () => {
  it('pow: d/dy at x = 0 is 0, d/dx at x = 0, y = 2 is 0, and the usual values elsewhere', async () => {
    const x = f64([6], [0, 2, 0, 0, 0, -2]);
    const y = f64([6], [2, 3, 0, 0.5, 1, 2]);
    const [dx, dy] = await vjpOf('pow', [x, y]);
    expectClose(values(dx), [0, 12, 0, Infinity, 1, -4], 1e-14);
    expectClose(values(dy), [0, 8 * Math.LN2, 0, 0, 0, NaN], 1e-14);
    const t = await jvpOf('pow', [f64([2], [0, 2]), f64([2], [2, 3])], [f64([2], [1, 1]), f64([2], [1, 1])]);
    expectClose(values(t), [0, 12 + 8 * Math.LN2], 1e-14);
  });

  it('maximum and minimum split the gradient equally on ties (and the JVP averages the tangents there)', async () => {
    const a = f64([3], [1, 2, 3]);
    const b = f64([3], [1, 1, 4]);
    const [ma, mb] = await vjpOf('maximum', [a, b]);
    expect([values(ma), values(mb)]).toEqual([[0.5, 1, 0], [0.5, 0, 1]]);
    const [na, nb] = await vjpOf('minimum', [a, b]);
    expect([values(na), values(nb)]).toEqual([[0.5, 0, 1], [0.5, 1, 0]]);
    const t = await jvpOf('maximum', [a, b], [f64([3], [1, 1, 1]), f64([3], [3, 3, 3])]);
    expect(values(t)).toEqual([2, 1, 3]);
    const [, sb] = await vjpOf('maximum', [f64([2, 1], [1, 0]), f64([], [1])]);
    expect(sb!.shape).toEqual([]);
    expect(values(sb)).toEqual([1.5]); // a tie (1/2) plus a strict win over a = 0 (1)
  });

  it('broadcasting cotangents are summed back to each input shape', async () => {
    const a = f64([2, 1], [2, 3]);
    const b = f64([3], [1, 2, 4]);
    const g = f64([2, 3], [1, 1, 1, 1, 1, 1]);
    const cases: [string, number[], number[]][] = [
      ['add', [3, 3], [2, 2, 2]],
      ['sub', [3, 3], [-2, -2, -2]],
      ['mul', [7, 7], [5, 5, 5]],
      ['div', [1.75, 1.75], [-5, -1.25, -0.3125]],
    ];
    for (const [op, da, db] of cases) {
      const [ga, gb] = await vjpOf(op, [a, b], {}, g);
      expect(ga!.shape).toEqual([2, 1]);
      expect(gb!.shape).toEqual([3]);
      expectClose(values(ga), da, 1e-14, 0, `${op} da`);
      expectClose(values(gb), db, 1e-14, 0, `${op} db`);
      const t = await jvpOf(op, [a, b], [f64([2, 1], [1, 0]), null]);
      expect(t!.shape).toEqual([2, 3]);
    }
  });

  it('derivative graphs stay shape-polymorphic: unknown dims always go through sum_to_like / broadcast_like', () => {
    const emitted: string[] = [];
    let n = 0;
    const e: Emitter = {
      op: (op, inputs) => {
        emitted.push(op);
        const d = opDef(op);
        return { name: `v${n++}`, ...d.infer(inputs, d.attrs.parse({}), { node: 'v', op, path: 'p' }) };
      },
      scalar: (_v, dtype) => ({ name: `c${n++}`, shape: [], dtype }),
    };
    const ref = (shape: (number | null)[]): Ref => ({ name: `r${n++}`, shape, dtype: 'FP32' });
    const a = ref([null, 3]);
    const out = ref([null, 3]);
    const grads = opDef('add').vjp!({ e, inputs: [a, ref([null, 3])], output: out, g: ref([null, 3]), attrs: {} });
    expect(emitted).toEqual(['sum_to_like', 'sum_to_like']);
    expect(grads.map((r) => r!.shape)).toEqual([[null, 3], [null, 3]]);
    emitted.length = 0;
    opDef('add').vjp!({ e, inputs: [ref([2, 3]), ref([2, 3])], output: ref([2, 3]), g: ref([2, 3]), attrs: {} });
    expect(emitted).toEqual([]);
    emitted.length = 0;
    opDef('add').jvp!({ e, inputs: [a, ref([3])], output: out, tangents: [ref([null, 3]), null], attrs: {} });
    expect(emitted).toEqual(['broadcast_like']);
  });
});

describe('unary subgradients and stability', () => {
  it("relu'(0) = 0 and abs'(0) = 0", async () => {
    expect(values((await vjpOf('relu', [f64([3], [-1, 0, 2])]))[0]!)).toEqual([0, 0, 1]);
    expect(values((await vjpOf('abs', [f64([3], [-2, 0, 3])]))[0]!)).toEqual([-1, 0, 1]);
    expect(values(await jvpOf('relu', [f64([2], [0, 1])], [f64([2], [5, 5])]))).toEqual([0, 5]);
  });

  it('sigmoid, softplus and tanh gradients are finite at |x| = 1e4 in FP32', async () => {
    const x = f32([2], [1e4, -1e4]);
    expect(values((await vjpOf('sigmoid', [x]))[0]!)).toEqual([0, 0]);
    expect(values((await vjpOf('softplus', [x]))[0]!)).toEqual([1, 0]);
    expect(values((await vjpOf('tanh', [x]))[0]!)).toEqual([0, 0]);
    const [gg] = await vjpOf('sigmoid_grad', [x]);
    expect(values(gg).every((v) => v === 0)).toBe(true);
  });

  it('clip passes the gradient where min <= x <= max, bounds inclusive; a null bound never blocks', async () => {
    const x = f64([5], [-1, 1, -1.5, 1.5, 0]);
    expect(values((await vjpOf('clip', [x], { min: -1, max: 1 }))[0]!)).toEqual([1, 1, 0, 0, 1]);
    expect(values((await vjpOf('clip', [x], { min: -1 }))[0]!)).toEqual([1, 1, 0, 1, 1]);
    expect(values((await vjpOf('clip', [x], { max: 1 }))[0]!)).toEqual([1, 1, 1, 0, 1]);
    expect(values(await jvpOf('clip', [x], [f64([5], [2, 2, 2, 2, 2])], { min: -1, max: 1 }))).toEqual([2, 2, 0, 0, 2]);
  });
});

describe('cast, identity, stop_gradient and non-differentiable ops', () => {
  it('FP -> FP cast passes the gradient back in the input datatype; casts to INT have none', async () => {
    const [g] = await vjpOf('cast', [f32([2], [1.5, -2])], { to: 'float64' }, f64([2], [0.25, 3]));
    expect(g!.dtype).toBe('FP32');
    expect(values(g)).toEqual([0.25, 3]);
    expect(await vjpOf('cast', [f64([2], [1.5, -2])], { to: 'INT32' })).toEqual([null]);
    const t = await jvpOf('cast', [f64([1], [1])], [f64([1], [0.1])], { to: 'FP32' });
    expect(t!.dtype).toBe('FP32');
    expect(values(t)).toEqual([Math.fround(0.1)]);
  });

  it('identity passes the gradient, stop_gradient, sign and comparisons declare none', async () => {
    expect(values((await vjpOf('identity', [f64([2], [1, 2])], {}, f64([2], [3, 4])))[0]!)).toEqual([3, 4]);
    for (const op of ['stop_gradient', 'sign', 'equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal']) {
      expect(opDef(op).differentiable).toBe(false);
      expect(opDef(op).vjp).toBeUndefined();
      expect(opDef(op).jvp).toBeUndefined();
    }
  });
});

/** d/dx of op at xs by central differences of its values, run by the engine. */
async function centralDiff(op: string, xs: number[], attrs: Record<string, unknown> = {}, h = 1e-6): Promise<number[]> {
  const up = values(await runOp(op, [f64([xs.length], xs.map((x) => x + h))], attrs));
  const down = values(await runOp(op, [f64([xs.length], xs.map((x) => x - h))], attrs));
  return up.map((u, i) => (u - down[i]!) / (2 * h));
}

describe('unary rules vs central differences (first derivatives, and second through the *_grad ops)', () => {
  const pts = [-1.7, -0.6, 0.35, 1.2, 2.1];
  const cases: [string, number[], Record<string, unknown>?][] = [
    ['neg', pts], ['exp', pts], ['log', [0.6, 1.1, 2.7]], ['log1p', [-0.4, 0.5, 1.9]], ['expm1', pts],
    ['sqrt', [0.6, 1.1, 2.7]], ['square', pts], ['reciprocal', [-1.4, 0.7, 2.2]], ['abs', pts], ['sin', pts], ['cos', pts],
    ['tanh', pts], ['sigmoid', pts], ['relu', pts], ['softplus', pts], ['erf', pts], ['gelu', pts],
    ['gelu', pts, { approximate: 'tanh' }],
    ['sigmoid_grad', pts], ['tanh_grad', pts], ['erf_grad', pts], ['gelu_grad', pts], ['gelu_tanh_grad', pts], ['relu_grad', pts],
  ];
  for (const [op, xs, attrs] of cases) {
    it(`${op}${attrs ? ' ' + JSON.stringify(attrs) : ''}`, async () => {
      const numeric = await centralDiff(op, xs, attrs);
      const [g] = await vjpOf(op, [f64([xs.length], xs)], attrs);
      const analytic = g === null ? xs.map(() => 0) : values(g);
      expectClose(analytic, numeric, 1e-6, 1e-8, `${op} vjp`);
      const t = await jvpOf(op, [f64([xs.length], xs)], [f64([xs.length], xs.map(() => 1))], attrs);
      expectClose(t === null ? xs.map(() => 0) : values(t), numeric, 1e-6, 1e-8, `${op} jvp`);
    });
  }
});

describe('end to end through the engine: grad of a loss, and a second derivative', () => {
  const x1: Graph['inputs'] = { x: { shape: [3], datatype: 'FP64' } };

  it('grad of sum(where(x > 0, sqrt(x), 0)) is [0, 0, 0.25] at x = [-1, 0, 4]', async () => {
    const g: Graph = {
      inputs: x1,
      constants: { zero: { shape: [], datatype: 'FP64', data: [0] } },
      nodes: [
        { name: 'pos', op: 'greater', inputs: ['x', 'zero'] },
        { name: 'r', op: 'sqrt', inputs: ['x'] },
        { name: 'w', op: 'where', inputs: ['pos', 'r', 'zero'] },
        { name: 'loss', op: 'sum', inputs: ['w'] },
      ],
      outputs: ['loss'],
    };
    const r = await grad(g, { x: f64([3], [-1, 0, 4]) }, 'loss', ['x']);
    expect(values(r.gradients.x!)).toEqual([0, 0, 0.25]);
  });

  it('grad of sum(pow(x, y)) at x = 0, y = 2 is 0 for both; maximum ties split 1/2, 1/2', async () => {
    const g: Graph = {
      inputs: { x: { shape: [2], datatype: 'FP32' }, y: { shape: [2], datatype: 'FP32' } },
      nodes: [
        { name: 'p', op: 'pow', inputs: ['x', 'y'] },
        { name: 'm', op: 'maximum', inputs: ['x', 'y'] },
        { name: 's', op: 'add', inputs: ['p', 'm'] },
        { name: 'loss', op: 'sum', inputs: ['s'] },
      ],
      outputs: ['loss'],
    };
    const r = await grad(g, { x: f32([2], [0, 3]), y: f32([2], [2, 3]) }, 'loss', ['x', 'y']);
    // x: [pow' 0 + max 0, pow' 3*3^2=27 + tie 1/2]; y: [pow'_y 0 + max 1, 27 ln 3 + tie 1/2]
    expectClose(values(r.gradients.x!), [0, 27.5], 1e-6);
    expectClose(values(r.gradients.y!), [1, 27 * Math.log(3) + 0.5], 1e-6);
  });

  it('d2/dx2 of sum(gelu(x)) and sum(tanh(x)) match their closed forms (rules differentiated again)', async () => {
    const xs = [-1.3, 0.2, 2.1];
    const phi = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
    for (const [op, second] of [
      ['gelu', (x: number) => phi(x) * (2 - x * x)],
      ['tanh', (x: number) => -2 * Math.tanh(x) * (1 - Math.tanh(x) ** 2)],
    ] as const) {
      const f: Graph = {
        inputs: x1,
        nodes: [{ name: 'y', op, inputs: ['x'] }, { name: 'loss', op: 'sum', inputs: ['y'] }],
        outputs: ['loss'],
      };
      const d1 = transform(f, { transform: 'grad', of: 'loss', wrt: ['x'] });
      const d2: Graph = { ...d1, nodes: [...d1.nodes, { name: 'gsum', op: 'sum', inputs: ['grad:x'] }], outputs: ['gsum'] };
      const r = await grad(d2, { x: f64([3], xs) }, 'gsum', ['x']);
      expectClose(values(r.gradients.x!), xs.map(second), 1e-12, 1e-15, op);
    }
  });

  it('sigmoid and softplus gradients at |x| = 1e4 in FP32 are finite through grad', async () => {
    const g: Graph = {
      inputs: { x: { shape: [2], datatype: 'FP32' } },
      nodes: [
        { name: 's', op: 'sigmoid', inputs: ['x'] },
        { name: 'p', op: 'softplus', inputs: ['x'] },
        { name: 'a', op: 'add', inputs: ['s', 'p'] },
        { name: 'loss', op: 'sum', inputs: ['a'] },
      ],
      outputs: ['loss'],
    };
    const r = await grad(g, { x: f32([2], [1e4, -1e4]) }, 'loss', ['x']);
    expect(values(r.outputs.loss!)).toEqual([Math.fround(1 + 1e4)]);
    expect(values(r.gradients.x!)).toEqual([1, 0]);
  });
});
