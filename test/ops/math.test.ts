/**
 * The elementwise ops of op set v2 through the engine: derivatives at kinks pinned to torch 1.13's one-sided choices
 * (measured with torch.autograd at the kink), zero derivatives of every order for the rounding ops, the numerics
 * OPS.md asks to pin (round half to even, mod of negatives and of integers, logaddexp of large and infinite operands,
 * hypot without overflow), the accuracy of local derivatives near the ends of their domains, error bodies, and the
 * GraphBuilder methods.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, grad, GraphBuilder, tensor, transform } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { failure } from '../support/errors.js';
import { bool, expectClose, f32, f64, i32, i64, runOp, values, vjpOf } from './elementwise_support.js';

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const grad1 = async (op: string, x: Tensor, attrs: Record<string, unknown> = {}): Promise<number[]> =>
  values((await vjpOf(op, [x], attrs))[0]!);
const data = (t: Tensor | null): number[] => Array.from(t!.data as ArrayLike<number>);

describe("derivatives at kinks: torch 1.13's one-sided choice", () => {
  it.each([
    ['leaky_relu', {}, [0], [0.01]],
    ['leaky_relu', { alpha: 0.2 }, [0], [0.2]],
    ['elu', { alpha: 0.5 }, [0], [0.5]],
    ['elu', { alpha: 2 }, [0], [2]],
    ['celu', { alpha: 2 }, [0], [1]],
    ['selu', {}, [0], [SELU_SCALE * SELU_ALPHA]],
    ['hardsigmoid', {}, [-3, 3], [0, 0]],
    ['hardswish', {}, [-3, 3], [-0.5, 1.5]],
    ['softsign', {}, [0], [1]],
  ])('%s %j at %j', async (op, attrs, xs, expected) => {
    expectClose(await grad1(op, f64([xs.length], xs), attrs), expected, 1e-15, 0, op);
  });

  it('each side of a kink is its own piece', async () => {
    expectClose(await grad1('hardswish', f64([4], [-3.5, -2.5, 2.5, 3.5])), [0, -2.5 / 3 + 0.5, 2.5 / 3 + 0.5, 1], 1e-15);
    expectClose(await grad1('hardsigmoid', f64([4], [-3.5, -2.5, 2.5, 3.5])), [0, 1 / 6, 1 / 6, 0], 1e-15);
    expectClose(await grad1('elu', f64([2], [-1, 1]), { alpha: 0.5 }), [0.5 * Math.exp(-1), 1], 1e-15);
    expectClose(await grad1('selu', f64([2], [-1, 1])), [SELU_SCALE * SELU_ALPHA * Math.exp(-1), SELU_SCALE], 1e-15);
    expectClose(await grad1('celu', f64([2], [-1, 1]), { alpha: 2 }), [Math.exp(-0.5), 1], 1e-15);
  });
});

describe('rounding ops: zero derivatives of every order', () => {
  for (const op of ['floor', 'ceil', 'round', 'trunc']) {
    it(`${op}: gradient and gradient of the gradient are 0 (not NaN), at integers and halves too`, async () => {
      const g: Graph = {
        inputs: { x: { shape: [4], datatype: 'FP64' } },
        nodes: [
          { name: 'r', op, inputs: ['x'] }, { name: 's', op: 'square', inputs: ['x'] },
          { name: 'p', op: 'mul', inputs: ['r', 's'] }, { name: 'f', op: 'sum', inputs: ['p'] },
        ],
        outputs: ['f'],
      };
      const x = f64([4], [1, 2.5, -0.5, 1.3]);
      const r = values(await runOp(op, [x]));
      // d/dx sum(r(x) x^2) = 2 x r(x) and its derivative 2 r(x): the rounding contributes nothing to either
      const first = await grad(g, { x }, 'f', ['x']);
      expect(values(first.gradients.x!)).toEqual(r.map((v, i) => 2 * v * [1, 2.5, -0.5, 1.3][i]! + 0));
      const gg = transform(transform(g, { transform: 'grad', of: 'f', wrt: ['x'] }), { transform: 'jvp', wrt: ['x'] });
      const out = await evaluate(gg, { x, 'tangent:x': f64([4], [1, 1, 1, 1]) });
      const second = Object.entries(out.outputs).find(([k]) => k.startsWith('tangent:'));
      expect(second, Object.keys(out.outputs).join(', ')).toBeDefined();
      expect(values(second![1])).toEqual(r.map((v) => 2 * v + 0));
    });
  }
});

describe('numerics', () => {
  it('round takes halves to even, keeps -0; floor/ceil/trunc as C', async () => {
    const x = f64([9], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -0.4, 2.6]);
    expect(values(await runOp('round', [x]))).toEqual([0, 2, 2, 0, -2, -2, 4, 0, 3]);
    expect(Object.is(data(await runOp('round', [f64([1], [-0.4])]))[0], -0)).toBe(true);
    expect(values(await runOp('round', [f32([3], [0.5, 1.5, -2.5])]))).toEqual([0, 2, -2]);
    expect(values(await runOp('floor', [x]))).toEqual([0, 1, 2, -1, -2, -3, 3, -1, 2]);
    expect(values(await runOp('ceil', [x]))).toEqual([1, 2, 3, 0, -1, -2, 4, 0, 3]);
    expect(values(await runOp('trunc', [x]))).toEqual([0, 1, 2, 0, -1, -2, 3, 0, 2]);
  });

  it('mod has the divisor\'s sign (NumPy), fmod the dividend\'s (C), for FP and INT', async () => {
    const a = [7, -7, 7, -7, 6, -6];
    const b = [3, 3, -3, -3, 3, 3];
    expect(values(await runOp('mod', [f64([6], a), f64([6], b)]))).toEqual([1, 2, -2, -1, 0, 0]);
    expect(values(await runOp('fmod', [f64([6], a), f64([6], b)]))).toEqual([1, -1, 1, -1, 0, 0]);
    expect(values(await runOp('mod', [i64([6], a), i64([6], b)]))).toEqual([1, 2, -2, -1, 0, 0]);
    expect(values(await runOp('fmod', [i32([6], a), i32([6], b)]))).toEqual([1, -1, 1, -1, 0, 0]);
    expectClose(values(await runOp('mod', [f64([2], [5.5, -5.5]), f64([1], [2])])), [1.5, 0.5], 1e-15);
    // a zero result of mod takes the divisor's sign (NumPy); fmod's the dividend's
    expect(data(await runOp('mod', [f64([2], [-4, 4]), f64([2], [2, -2])])).map((v) => Object.is(v, -0))).toEqual([false, true]);
    expect(data(await runOp('fmod', [f64([2], [-4, 4]), f64([2], [2, -2])])).map((v) => Object.is(v, -0))).toEqual([true, false]);
  });

  it('integer mod/fmod by 0 give 0 (NumPy; never an error), INT_MIN by -1 gives 0; FP by 0 is NaN', async () => {
    for (const op of ['mod', 'fmod']) {
      expect(values(await runOp(op, [i32([3], [5, -5, -2147483648]), i32([3], [0, 0, -1])]))).toEqual([0, 0, 0]);
      expect(values(await runOp(op, [i64([2], [5, -5]), i64([2], [0, -1])]))).toEqual([0, 0]);
      expect(values(await runOp(op, [f64([1], [5]), f64([1], [0])]))).toEqual([NaN]);
    }
    const min64 = tensor('INT64', [1], [-(2n ** 63n)]);
    expect(values(await runOp('mod', [min64, tensor('INT64', [1], [-1n])]))).toEqual([0]);
  });

  it('mod/fmod derivatives: 1 for the dividend, -floor(a / b) / -trunc(a / b) for the divisor (PyTorch)', async () => {
    const a = f64([4], [5, -5, 5, -5]);
    const b = f64([4], [3, 3, -3, -3]);
    const [ga, gb] = await vjpOf('mod', [a, b]);
    expect(values(ga!)).toEqual([1, 1, 1, 1]);
    expect(values(gb!)).toEqual([-1, 2, 2, -1]);
    expect(values((await vjpOf('fmod', [a, b]))[1]!)).toEqual([-1, 1, 1, -1]);
    // broadcast divisor: its gradient sums over the broadcast axis
    expect(values((await vjpOf('mod', [f64([2, 2], [5, -5, 7, -7]), f64([2], [3, 3])]))[1]!)).toEqual([-1 - 2, 2 + 3]);
  });

  it('logaddexp is stable: 1e4 in FP32, -Infinity with -Infinity, and never NaN from finite operands', async () => {
    const a = f32([4], [1e4, -1e4, 1e4, -1e4]);
    const b = f32([4], [-1e4, -1e4, 1e4, 1e4]);
    expectClose(values(await runOp('logaddexp', [a, b])), [1e4, Math.fround(-1e4 + Math.LN2), Math.fround(1e4 + Math.LN2), 1e4], 1e-7);
    const [ga, gb] = await vjpOf('logaddexp', [a, b]);
    expect(values(ga!)).toEqual([1, 0.5, 0.5, 0]);
    expect(values(gb!)).toEqual([0, 0.5, 0.5, 1]);
    const ninf = f64([3], [-Infinity, -Infinity, Infinity]);
    const other = f64([3], [-Infinity, 2, Infinity]);
    expect(values(await runOp('logaddexp', [ninf, other]))).toEqual([-Infinity, 2, Infinity]);
    // an operand of -Infinity gets zero gradient, as logsumexp (PyTorch gives NaN when both are -Infinity)
    const [gn, go] = await vjpOf('logaddexp', [f64([2], [-Infinity, -Infinity]), f64([2], [-Infinity, 2])]);
    expect(values(gn!)).toEqual([0, 0]);
    expect(values(go!)).toEqual([0, 1]);
  });

  it('hypot neither overflows nor underflows, and neither does its gradient', async () => {
    expectClose(values(await runOp('hypot', [f64([3], [1e300, 3e-300, -3]), f64([3], [1e300, 4e-300, 4])])), [Math.SQRT2 * 1e300, 5e-300, 5], 1e-15);
    expectClose(values(await runOp('hypot', [f32([2], [1e30, 3e-30]), f32([2], [1e30, 4e-30])])), [Math.SQRT2 * 1e30, 5e-30], 1e-6);
    const [ga, gb] = await vjpOf('hypot', [f64([2], [1e300, -3]), f64([2], [1e300, 4])]);
    expectClose(values(ga!), [Math.SQRT1_2, -0.6], 1e-15);
    expectClose(values(gb!), [Math.SQRT1_2, 0.8], 1e-15);
  });

  it('atan2 keeps the IEEE signed-zero cases and its gradient does not overflow', async () => {
    const y = f64([5], [0, -0, 0, -0, 1]);
    const x = f64([5], [0, 0, -0, -1, 0]);
    expectClose(data(await runOp('atan2', [y, x])), [0, -0, Math.PI, -Math.PI, Math.PI / 2], 1e-16);
    expect(Object.is(data(await runOp('atan2', [y, x]))[1], -0)).toBe(true);
    const [gy, gx] = await vjpOf('atan2', [f64([1], [1e200]), f64([1], [1e200])]);
    expectClose(values(gy!), [0.5e-200], 1e-15);
    expectClose(values(gx!), [-0.5e-200], 1e-15);
  });

  it('silu, mish and softsign take their limits at +-Infinity; silu and mish stay finite at 1e4 in FP32', async () => {
    const x = f64([2], [-Infinity, Infinity]);
    expect(values(await runOp('silu', [x]))).toEqual([0, Infinity]);
    expect(values(await runOp('mish', [x]))).toEqual([0, Infinity]);
    expect(values(await runOp('softsign', [x]))).toEqual([-1, 1]);
    const big = f32([2], [-1e4, 1e4]);
    for (const op of ['silu', 'mish']) {
      expect(values(await runOp(op, [big]))).toEqual([0, 1e4]);
      expect(values((await vjpOf(op, [big]))[0]!)).toEqual([0, 1]);
    }
  });

  it('selu uses the full-precision constants', async () => {
    expectClose(values(await runOp('selu', [f64([2], [1, -1])])), [SELU_SCALE, SELU_SCALE * SELU_ALPHA * Math.expm1(-1)], 1e-15);
  });

  it('local derivatives keep their digits near the ends of the domain and for large |x|', async () => {
    const eps = 2 ** -30;
    // (x - 1)(x + 1) is exact here; x^2 - 1 would lose 2^-60 of 2^-29 (a relative error of 2e-10)
    expectClose(await grad1('acosh', f64([1], [1 + eps])), [1 / Math.sqrt(2 * eps + eps * eps)], 1e-15);
    expectClose(await grad1('atanh', f64([1], [1 - eps])), [1 / (2 * eps - eps * eps)], 1e-15);
    expectClose(await grad1('asin', f64([1], [1 - eps])), [1 / Math.sqrt(2 * eps - eps * eps)], 1e-15);
    // 1 / hypot(x, 1): x^2 + 1 would overflow to Infinity and give 0
    expectClose(await grad1('asinh', f64([2], [1e200, -1e200])), [1e-200, 1e-200], 1e-15);
    expectClose(await grad1('rsqrt', f64([2], [4, 0.25])), [-1 / 16, -4], 1e-15);
  });
});

describe('logic and tests', () => {
  it('logical ops on BOOL, broadcasting: truth tables', async () => {
    const a = bool([2, 1], [1, 0]);
    const b = bool([2], [1, 0]);
    expect(values(await runOp('logical_and', [a, b]))).toEqual([1, 0, 0, 0]);
    expect(values(await runOp('logical_or', [a, b]))).toEqual([1, 1, 1, 0]);
    expect(values(await runOp('logical_xor', [a, b]))).toEqual([0, 1, 1, 0]);
    const not = await runOp('logical_not', [bool([2], [1, 0])]);
    expect(not.dtype).toBe('BOOL');
    expect(values(not)).toEqual([0, 1]);
  });

  it('isnan, isinf, isfinite on NaN, +-Infinity, zeros, subnormals and the largest values (FP32 and FP64)', async () => {
    const xs = [NaN, Infinity, -Infinity, 0, -0, 5e-324, -Number.MAX_VALUE, 1.5];
    for (const [dtype, x] of [['FP64', f64([8], xs)], ['FP32', f32([8], xs.map((v) => (v === 5e-324 ? 1e-45 : v === -Number.MAX_VALUE ? -3.4e38 : v)))]] as const) {
      const run = async (op: string) => { const t = await runOp(op, [x]); expect(t.dtype, `${op} ${dtype}`).toBe('BOOL'); return values(t); };
      expect(await run('isnan')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
      expect(await run('isinf')).toEqual([0, 1, 1, 0, 0, 0, 0, 0]);
      expect(await run('isfinite')).toEqual([0, 0, 0, 1, 1, 1, 1, 1]);
    }
  });
});

describe('errors name the node, the op and what it accepts', () => {
  const one = (op: string, ins: Tensor[], attrs?: Record<string, unknown>): [Graph, Record<string, Tensor>] => [{
    inputs: Object.fromEntries(ins.map((t, i) => [`x${i}`, { shape: [...t.shape], datatype: t.dtype }])),
    nodes: [{ name: 'y', op, inputs: ins.map((_, i) => `x${i}`), ...(attrs ? { attrs } : {}) }],
    outputs: ['y'],
  }, Object.fromEntries(ins.map((t, i) => [`x${i}`, t]))];

  it.each([
    ['tan', [i32([2], [1, 2])], /x is INT32; tan accepts FP32, FP64/],
    ['floor', [i64([1], [3])], /x is INT64; floor accepts FP32, FP64/],
    ['isnan', [bool([1], [1])], /x is BOOL; isnan accepts FP32, FP64/],
    ['logical_not', [f32([1], [1])], /x is FP32; logical_not accepts BOOL/],
    ['logical_and', [f64([1], [1]), f64([1], [0])], /a is FP64; logical_and accepts BOOL/],
    ['atan2', [i32([1], [1]), i32([1], [1])], /y is INT32; atan2 accepts FP32, FP64/],
    ['hypot', [f32([1], [1]), f64([1], [1])], /a is FP32 but b is FP64; inputs must share a datatype/],
    ['mod', [bool([1], [1]), bool([1], [1])], /a is BOOL; mod accepts FP32, FP64, INT32, INT64/],
  ])('%s: DATATYPE_MISMATCH', async (op, ins, message) => {
    const e = await failure(evaluate(...one(op, ins)));
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.message).toContain(`node "y" (${op})`);
    expect(e.message).toMatch(message);
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0]');
  });

  it.each([
    ['celu', { alpha: 0 }, /alpha is 0; celu divides by alpha/],
    ['elu', { alpha: 'big' }, /alpha/],
    ['leaky_relu', { slope: 0.1 }, /slope/],
  ])('%s %j: INVALID_ATTRS at the attribute', async (op, attrs, message) => {
    const e = await failure(evaluate(...one(op, [f64([1], [1])], attrs)));
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.message).toMatch(message);
    expect(e.errors?.[0]?.path).toMatch(/^graph\.nodes\[0\]\.attrs/);
  });
});

describe('GraphBuilder methods', () => {
  it('build every v2 elementwise op and evaluate', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', [3], 'FP64');
    const u = b.input('u', [3], 'FP64'); // in (0, 1): inside every domain below but acosh's
    const p = b.input('p', [3], 'BOOL');
    const unary = [
      u.tan(), u.asin(), u.acos(), u.atan(), x.sinh(), x.cosh(), x.asinh(), x.add(2).acosh(), u.atanh(), u.log2(), u.log10(),
      x.exp2(), u.rsqrt(), x.floor(), x.ceil(), x.round(), x.trunc(), x.silu(), x.mish(), x.selu(), x.hardsigmoid(),
      x.hardswish(), x.softsign(), x.leakyRelu(0.2), x.elu(0.5), x.celu(2),
      x.atan2(u), x.mod(1.5), x.fmod(u), x.logaddexp(u), x.hypot(u),
    ];
    const logic = [p.logicalAnd(p.logicalNot()), p.logicalOr(p), p.logicalXor(p), x.isnan(), x.isinf(), x.isfinite()];
    for (const v of unary) expect(v.dtype).toBe('FP64');
    for (const v of logic) expect([v.dtype, v.shape]).toEqual(['BOOL', [3]]);
    const g = b.output(...unary, ...logic).build();
    expect(g.nodes.find((n) => n.op === 'leaky_relu')!.attrs).toEqual({ alpha: 0.2 });
    expect(new Set(g.nodes.map((n) => n.op))).toEqual(new Set([
      'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'asinh', 'add', 'acosh', 'atanh', 'log2', 'log10', 'exp2', 'rsqrt', 'floor',
      'ceil', 'round', 'trunc', 'silu', 'mish', 'selu', 'hardsigmoid', 'hardswish', 'softsign', 'leaky_relu', 'elu', 'celu',
      'atan2', 'mod', 'fmod', 'logaddexp', 'hypot', 'logical_and', 'logical_not', 'logical_or', 'logical_xor', 'isnan', 'isinf',
      'isfinite',
    ]));
    const { outputs } = await evaluate(g, { x: f64([3], [-1.2, 0.3, 2.7]), u: f64([3], [0.2, 0.5, 0.9]), p: bool([3], [1, 0, 1]) });
    expect(values(outputs[unary[15]!.name]!)).toEqual([-1, 0, 3]);
    expectClose(values(outputs[unary[27]!.name]!), [-1.2 % 1.5 + 1.5, 0.3, 2.7 - 1.5], 1e-15);
    expect(values(outputs[logic[0]!.name]!)).toEqual([0, 0, 0]);
  });
});
