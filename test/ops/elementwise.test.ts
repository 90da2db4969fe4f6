/**
 * Values of the elementwise ops (unary, binary, comparisons, where, clip, cast, identity, stop_gradient) against plain
 * TypeScript references, run through the engine on the native kernels; datatype/shape/attribute errors with their
 * codes, messages and paths. Derivative rules are pinned in elementwise_grad.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import {
  bool, broadcast2, erfRef, expectClose, f32, f64, i32, i64, opDef, runOp, values,
} from './elementwise_support.js';

const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const C = Math.sqrt(2 / Math.PI);
const K = 0.044715;
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(C * (x + K * x ** 3)));

const GRID = [-3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.25, 0.9, 2.5];
const POS = [0, 1e-3, 0.5, 1, 2.5, 100, -1];

/** op -> [reference, inputs] */
const UNARY: Record<string, [(x: number) => number, number[]]> = {
  neg: [(x) => -x, GRID],
  exp: [Math.exp, [...GRID, 700, -800]],
  log: [Math.log, POS],
  log1p: [Math.log1p, [-1, -0.5, ...GRID.slice(2)]],
  expm1: [Math.expm1, GRID],
  sqrt: [Math.sqrt, POS],
  square: [(x) => x * x, GRID],
  reciprocal: [(x) => 1 / x, [...GRID.filter((x) => x !== 0), 0]],
  abs: [Math.abs, GRID],
  sign: [Math.sign, GRID],
  sin: [Math.sin, GRID],
  cos: [Math.cos, GRID],
  tanh: [Math.tanh, [...GRID, 30, -30]],
  sigmoid: [sig, [...GRID, 50, -50]],
  relu: [(x) => (x > 0 ? x : 0), GRID],
  softplus: [(x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))), [...GRID, 50, -50]],
  erf: [erfRef, [...GRID, 6, -6]],
  gelu: [(x) => 0.5 * x * (1 + erfRef(x / Math.SQRT2)), GRID],
  // local derivatives used by the rules
  sigmoid_grad: [(x) => { const e = Math.exp(-Math.abs(x)); return e / (1 + e) ** 2; }, [...GRID, 50, -50]],
  tanh_grad: [(x) => 1 - Math.tanh(x) ** 2, GRID],
  relu_grad: [(x) => (x > 0 ? 1 : 0), GRID],
  erf_grad: [(x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x), GRID],
  gelu_grad: [(x) => 0.5 * (1 + erfRef(x / Math.SQRT2)) + (x * Math.exp(-x * x / 2)) / Math.sqrt(2 * Math.PI), GRID],
  gelu_tanh_grad: [(x) => {
    const t = Math.tanh(C * (x + K * x ** 3));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * K * x * x);
  }, GRID],
};

describe('unary ops: values vs Math', () => {
  for (const [op, [ref, xs]] of Object.entries(UNARY)) {
    it(`${op} in FP64 and FP32`, async () => {
      const y64 = await runOp(op, [f64([xs.length], xs)]);
      expect(y64.dtype).toBe('FP64');
      expect(y64.shape).toEqual([xs.length]);
      expectClose(values(y64), xs.map(ref), 1e-12, 1e-15, `${op} FP64`);
      const xs32 = xs.map(Math.fround);
      const y32 = await runOp(op, [f32([xs.length], xs32)]);
      expect(y32.dtype).toBe('FP32');
      expectClose(values(y32), xs32.map((x) => Math.fround(ref(x))), 3e-6, 1e-6, `${op} FP32`);
    });
  }

  it('gelu with approximate "tanh" uses the tanh form; the default is the exact erf form', async () => {
    const x = f64([GRID.length], GRID);
    expectClose(values(await runOp('gelu', [x], { approximate: 'tanh' })), GRID.map(geluTanh), 1e-12, 1e-15, 'gelu tanh');
    const exact = values(await runOp('gelu', [f64([], [1])]));
    expectClose(exact, [0.5 * (1 + erfRef(1 / Math.SQRT2))], 1e-12);
    expect(Math.abs(exact[0]! - geluTanh(1))).toBeGreaterThan(1e-5);
  });

  it('keeps shapes, including scalars and zero-size tensors', async () => {
    expect((await runOp('exp', [f64([], [1])])).shape).toEqual([]);
    const empty = await runOp('tanh', [f32([2, 0, 3], [])]);
    expect(empty.shape).toEqual([2, 0, 3]);
    expect(empty.data.length).toBe(0);
  });

  it('sigmoid and softplus stay finite and exact at |x| = 1e4 in FP32', async () => {
    const x = f32([4], [1e4, -1e4, 80, -80]);
    expectClose(values(await runOp('sigmoid', [x])), [1, 0, 1, sig(-80)], 1e-5);
    const sp = values(await runOp('softplus', [x]));
    expectClose(sp, [1e4, 0, 80, Math.exp(-80)], 1e-5);
    expect(sp.every(Number.isFinite)).toBe(true);
  });

  it('neg, abs, square, sign, relu accept integers and stay integers', async () => {
    const xs = [-3, 0, 2, 7];
    for (const [op, f] of [['neg', (x: number) => -x], ['abs', Math.abs], ['square', (x: number) => x * x],
      ['sign', Math.sign], ['relu', (x: number) => Math.max(x, 0)]] as const) {
      const y32 = await runOp(op, [i32([4], xs)]);
      expect(y32.dtype).toBe('INT32');
      expect(values(y32).map((v) => v + 0)).toEqual(xs.map((x) => f(x) + 0));
      const y64 = await runOp(op, [i64([4], xs)]);
      expect(y64.data).toBeInstanceOf(BigInt64Array);
      expect(values(y64).map((v) => v + 0)).toEqual(xs.map((x) => f(x) + 0));
    }
  });
});

const BIN: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  // C/NumPy pow, not JS Math.pow: 1 ** anything and (-1) ** +-Infinity are 1
  pow: (a, b) => (a === 1 || (a === -1 && (b === Infinity || b === -Infinity)) ? 1 : Math.pow(a, b)),
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  mul_no_nan: (a, b) => (a === 0 ? 0 : a * b),
};
const CMP: Record<string, (a: number, b: number) => boolean> = {
  equal: (a, b) => a === b,
  not_equal: (a, b) => a !== b,
  less: (a, b) => a < b,
  less_equal: (a, b) => a <= b,
  greater: (a, b) => a > b,
  greater_equal: (a, b) => a >= b,
};
/** [shape a, a, shape b, b]: same shape, [2, 1] x [3], scalar x [2, 3], [3] x [2, 3] */
const PAIRS: [number[], number[], number[], number[]][] = [
  [[2, 3], [1.5, -2, 0, 3, 0.5, NaN], [2, 3], [0.5, 2, -3, 3, 0.5, 1]],
  [[2, 1], [1.5, -2], [3], [0.5, 2, -3]],
  [[], [2], [2, 3], [0, -1, 1, 2, 0.5, 3]],
  [[3], [0, 1, -1], [2, 3], [0, Infinity, -Infinity, 2, 0.5, 1]],
];

describe('binary ops: values with NumPy broadcasting', () => {
  for (const [op, f] of Object.entries(BIN)) {
    it(`${op} (FP64, FP32)`, async () => {
      for (const [as, a, bs, b] of PAIRS) {
        const ref = broadcast2(as, a, bs, b, f);
        const y = await runOp(op, [f64(as, a), f64(bs, b)]);
        expect(y.shape).toEqual(ref.shape);
        expectClose(values(y), ref.data, 1e-14, 0, `${op} ${JSON.stringify([as, bs])}`);
        const y32 = await runOp(op, [f32(as, a), f32(bs, b)]);
        expect(y32.dtype).toBe('FP32');
        expectClose(values(y32), broadcast2(as, a.map(Math.fround), bs, b.map(Math.fround), (p, q) => Math.fround(f(p, q))).data, 1e-6);
      }
    });
  }
  for (const [op, f] of Object.entries(CMP)) {
    it(`${op} outputs BOOL`, async () => {
      for (const [as, a, bs, b] of PAIRS) {
        const y = await runOp(op, [f64(as, a), f64(bs, b)]);
        expect(y.dtype).toBe('BOOL');
        expect(y.data).toBeInstanceOf(Uint8Array);
        expect(values(y)).toEqual(broadcast2(as, a, bs, b, (p, q) => (f(p, q) ? 1 : 0)).data);
      }
      const yi = await runOp(op, [i32([3], [1, 2, 3]), i32([], [2])]);
      expect(values(yi)).toEqual([1, 2, 3].map((p) => (f(p, 2) ? 1 : 0)));
    });
  }

  it('mul_no_nan is exactly 0 where a == 0, even against Infinity and NaN', async () => {
    const y = await runOp('mul_no_nan', [f64([4], [0, 0, 0, 2]), f64([4], [Infinity, NaN, -Infinity, Infinity])]);
    expect(values(y)).toEqual([0, 0, 0, Infinity]);
  });

  it('integer arithmetic: truncating division with x / 0 = 0, integer powers', async () => {
    expect(values(await runOp('div', [i32([4], [7, -7, 5, 0]), i32([4], [2, 2, 0, 3])]))).toEqual([3, -3, 0, 0]);
    expect(values(await runOp('div', [i64([2], [7, -7]), i64([], [2])]))).toEqual([3, -3]);
    expect(values(await runOp('pow', [i32([4], [2, 2, 1, -1]), i32([4], [3, -1, -2, -3])]))).toEqual([8, 0, 1, -1]);
    expect(values(await runOp('add', [i64([2, 1], [1, 2]), i64([2], [10, 20])]))).toEqual([11, 21, 12, 22]);
    expect(values(await runOp('maximum', [i32([3], [1, 5, -2]), i32([], [0])]))).toEqual([1, 5, 0]);
  });
});

describe('where, clip, cast, identity, stop_gradient', () => {
  it('where broadcasts cond, a and b three ways', async () => {
    const y = await runOp('where', [bool([2, 1], [1, 0]), f64([3], [1, 2, 3]), f64([], [-1])]);
    expect(y.shape).toEqual([2, 3]);
    expect(values(y)).toEqual([1, 2, 3, -1, -1, -1]);
    const yi = await runOp('where', [bool([3], [0, 1, 0]), i32([2, 1], [5, 6]), i32([2, 3], [0, 0, 0, 1, 1, 1])]);
    expect(values(yi)).toEqual([0, 5, 0, 1, 6, 1]);
  });

  it('clip clamps to inclusive bounds, either of which may be null; NaN stays NaN', async () => {
    const x = f64([6], [-2, -1, 0, 1, 2, NaN]);
    expectClose(values(await runOp('clip', [x], { min: -1, max: 1 })), [-1, -1, 0, 1, 1, NaN], 0);
    expectClose(values(await runOp('clip', [x], { min: 0 })), [0, 0, 0, 1, 2, NaN], 0);
    expectClose(values(await runOp('clip', [x], { max: 0, min: null })), [-2, -1, 0, 0, 0, NaN], 0);
    expectClose(values(await runOp('clip', [x], {})), [-2, -1, 0, 1, 2, NaN], 0);
    expect(values(await runOp('clip', [i32([3], [-5, 3, 9])], { min: 0, max: 4 }))).toEqual([0, 3, 4]);
  });

  it('cast truncates toward zero, accepts lower-case aliases, and FP -> FP rounds', async () => {
    const x = f64([4], [1.7, -1.7, 2.5, -0.2]);
    const yi = await runOp('cast', [x], { to: 'INT32' });
    expect(yi.dtype).toBe('INT32');
    expect(values(yi).map((v) => v + 0)).toEqual([1, -1, 2, 0]);
    const yl = await runOp('cast', [x], { to: 'int64' });
    expect(yl.dtype).toBe('INT64');
    expect(values(yl).map((v) => v + 0)).toEqual([1, -1, 2, 0]);
    const yf = await runOp('cast', [f64([2], [0.1, 1e300])], { to: 'float32' });
    expect(yf.dtype).toBe('FP32');
    expect(values(yf)).toEqual([Math.fround(0.1), Infinity]);
    const back = await runOp('cast', [i32([2], [3, -4])], { to: 'FP64' });
    expect(values(back)).toEqual([3, -4]);
  });

  it('cast of NaN or an out-of-range value to an integer is INVALID_CAST naming the node', async () => {
    for (const v of [NaN, 1e20]) {
      const err = await evalGraph(unaryGraph('cast', 'FP64', [1], { to: 'INT32' }), { x: f64([1], [v]) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GradserveError);
      expect((err as GradserveError).code).toBe('INVALID_CAST');
      expect((err as GradserveError).detail).toContain('node "y" (cast)');
    }
  });

  it('identity and stop_gradient pass the value unchanged', async () => {
    for (const op of ['identity', 'stop_gradient']) {
      expect(values(await runOp(op, [f64([2, 2], [1, -2, 3, NaN])]))).toEqual([1, -2, 3, NaN]);
      expect(values(await runOp(op, [bool([2], [1, 0])]))).toEqual([1, 0]);
    }
  });
});

function unaryGraph(op: string, dtype: string, shape: number[], attrs?: Record<string, unknown>): Graph {
  return { inputs: { x: { shape, datatype: dtype } }, nodes: [{ name: 'y', op, inputs: ['x'], ...(attrs ? { attrs } : {}) }], outputs: ['y'] };
}
function binaryGraph(op: string, a: [string, number[]], b: [string, number[]], extra: Record<string, unknown> = {}): Graph {
  return {
    inputs: { a: { shape: a[1], datatype: a[0] }, b: { shape: b[1], datatype: b[0] } },
    nodes: [{ name: 'y', op, inputs: ['a', 'b'], ...extra }],
    outputs: ['y'],
  };
}
const zerosOf = (dtype: string, shape: number[]): Tensor => tensor(dtype as Tensor['dtype'], shape);
async function evalGraph(g: Graph, feeds: Record<string, Tensor>) {
  return evaluate(g, feeds);
}
async function rejection(g: Graph, feeds: Record<string, Tensor>): Promise<GradserveError> {
  const err = await evalGraph(g, feeds).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(GradserveError);
  return err as GradserveError;
}

describe('datatype, shape and attribute errors', () => {
  it('mixed datatypes are DATATYPE_MISMATCH naming node, op and both datatypes (no implicit promotion)', async () => {
    const err = await rejection(binaryGraph('add', ['FP32', [2]], ['FP64', [2]]), { a: zerosOf('FP32', [2]), b: zerosOf('FP64', [2]) });
    expect(err.code).toBe('DATATYPE_MISMATCH');
    expect(err.detail).toMatch(/node "y" \(add\)/);
    expect(err.detail).toContain('FP32');
    expect(err.detail).toContain('FP64');
    expect(err.errors?.[0]?.path).toBe('graph.nodes[0]');
  });

  it('transcendental ops reject integers; arithmetic rejects BOOL; where wants a BOOL cond', async () => {
    const exp = await rejection(unaryGraph('exp', 'INT32', [2]), { x: zerosOf('INT32', [2]) });
    expect(exp.code).toBe('DATATYPE_MISMATCH');
    expect(exp.detail).toMatch(/node "y" \(exp\): x is INT32/);
    const add = await rejection(binaryGraph('less', ['BOOL', [2]], ['BOOL', [2]]), { a: zerosOf('BOOL', [2]), b: zerosOf('BOOL', [2]) });
    expect(add.code).toBe('DATATYPE_MISMATCH');
    const where: Graph = {
      inputs: { c: { shape: [2], datatype: 'FP32' }, a: { shape: [2], datatype: 'FP32' } },
      nodes: [{ name: 'w', op: 'where', inputs: ['c', 'a', 'a'] }],
      outputs: ['w'],
    };
    const werr = await rejection(where, { c: zerosOf('FP32', [2]), a: zerosOf('FP32', [2]) });
    expect(werr.code).toBe('DATATYPE_MISMATCH');
    expect(werr.detail).toMatch(/node "w" \(where\): cond is FP32/);
    expect(werr.errors?.[0]?.path).toBe('graph.nodes[0]');
  });

  it('non-broadcastable shapes are SHAPE_MISMATCH with shapes written [2, 3]', async () => {
    const err = await rejection(binaryGraph('mul', ['FP64', [2, 3]], ['FP64', [4]]), { a: zerosOf('FP64', [2, 3]), b: zerosOf('FP64', [4]) });
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.detail).toBe('node "y" (mul): shapes [2, 3], [4] do not broadcast');
    expect(err.errors?.[0]?.path).toBe('graph.nodes[0].inputs[1]');
  });

  it('unknown (null) dims only fail against a known conflicting size', () => {
    const add = opDef('add');
    const ctx = { node: 'y', op: 'add', path: 'graph.nodes[0]' };
    const m = (shape: (number | null)[]) => ({ shape, dtype: 'FP32' as const });
    expect(add.infer([m([null, 3]), m([4, 3])], {}, ctx).shape).toEqual([4, 3]);
    expect(add.infer([m([null]), m([null])], {}, ctx).shape).toEqual([null]);
    expect(add.infer([m([null, 1]), m([5])], {}, ctx).shape).toEqual([null, 5]);
    expect(opDef('where').infer([{ shape: [null], dtype: 'BOOL' }, m([2, 1]), m([])], {}, ctx).shape).toEqual([2, null]);
    expect(() => add.infer([m([2, null]), m([3, 1])], {}, ctx)).toThrow(/shapes \[2, None\], \[3, 1\] do not broadcast/);
    expect(opDef('equal').infer([m([null]), m([3])], {}, ctx)).toEqual({ shape: [3], dtype: 'BOOL' });
  });

  it('clip with min > max, unknown gelu forms and unknown cast targets are INVALID_ATTRS', async () => {
    const clip = await rejection(unaryGraph('clip', 'FP32', [2], { min: 2, max: 1 }), { x: zerosOf('FP32', [2]) });
    expect(clip.code).toBe('INVALID_ATTRS');
    expect(clip.detail).toContain('min (2) is greater than max (1)');
    expect(clip.errors?.[0]?.path).toBe('graph.nodes[0].attrs.min');
    for (const [op, attrs] of [['gelu', { approximate: 'fast' }], ['cast', { to: 'float16' }], ['cast', {}], ['exp', { alpha: 1 }]] as const) {
      const err = await rejection(unaryGraph(op, 'FP32', [2], attrs), { x: zerosOf('FP32', [2]) });
      expect(err.code).toBe('INVALID_ATTRS');
    }
  });

  it('attr defaults: gelu is exact, clip bounds are null', () => {
    expect(opDef('gelu').attrs.parse({})).toEqual({ approximate: 'none' });
    expect(opDef('clip').attrs.parse({})).toEqual({ min: null, max: null });
  });
});
