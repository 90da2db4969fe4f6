/**
 * Unary elementwise ops. Each is declared by its kernel, accepted datatypes and its local derivative f'(x), written
 * with ops from x and y = f(x); the VJP is g * f'(x) and the JVP t * f'(x), both through `mul_no_nan` so a zero
 * cotangent never meets a non-finite derivative as NaN. The internal `*_grad` ops are those local derivatives as
 * single kernels, each with its own derivative so second (and higher) derivatives work.
 */
import { z } from 'zod';
import type { UnaryOp } from '../kernels.types.js';
import { kernelTensor } from '../tensor/tensor.js';
import type { Emitter, OpDef, OpSample, Ref } from './types.js';
import { elements, FP, NUMERIC, sameDtype, scaleBy } from './common.js';
import type { DType } from '../tensor/dtype.js';

type Local<A> = (e: Emitter, x: Ref, y: Ref, attrs: A) => Ref;

export interface UnarySpec<A> {
  name: string;
  doc: string;
  attrs?: z.ZodType<A>;
  kernel?: (attrs: A) => UnaryOp;
  /** the kernel's scalar parameter (alpha of leaky_relu, elu, celu) */
  param?: (attrs: A) => number;
  /** attribute constraints beyond the schema (OpDef.check) */
  check?: OpDef<A>['check'];
  dtypes?: readonly DType[];
  /** f'(x) from x and y = f(x); omitted for linear ops (with `linear`) and for ops without gradient */
  local?: Local<A>;
  /** for linear ops: the map applied to a cotangent/tangent (neg: v -> -v) */
  linear?: (e: Emitter, v: Ref) => Ref;
  /** the op's derivative is zero wherever it exists (relu_grad): gradients are null */
  zeroDerivative?: boolean;
  differentiable?: boolean;
  internal?: boolean;
  conventions?: string[];
  /** flops per element */
  cost?: number;
  samples: OpSample<A>[];
}

const noAttrs = z.strictObject({});

/** A unary elementwise op from its spec (also used by the op families of src/ops/unary_math.ts, activations.ts). */
export function unaryOp<A = Record<string, never>>(spec: UnarySpec<A>): OpDef<A> {
  const dtypes = spec.dtypes ?? FP;
  const kernel = spec.kernel ?? (() => spec.name as UnaryOp);
  const differentiable = spec.differentiable ?? true;
  const def: OpDef<A> = {
    name: spec.name,
    inputs: ['x'],
    attrs: (spec.attrs ?? noAttrs) as z.ZodType<A>,
    outputDatatype: 'same as x',
    differentiable,
    doc: spec.doc,
    infer(inputs, _attrs, ctx) {
      const dtype = sameDtype(inputs, ['x'], dtypes, ctx);
      return { shape: [...inputs[0]!.shape], dtype };
    },
    async run([x], attrs, k) {
      const data = spec.param === undefined
        ? await k.unary(kernel(attrs), x!.data)
        : await k.unary(kernel(attrs), x!.data, spec.param(attrs));
      return kernelTensor(x!.dtype, x!.shape, data);
    },
    flops: (_inputs, output) => elements(output) * (spec.cost ?? 1),
    samples: spec.samples,
    elementwise: true,
  };
  if (spec.conventions !== undefined) def.conventions = spec.conventions;
  if (spec.check !== undefined) def.check = spec.check;
  if (spec.internal) def.internal = true;
  if (!differentiable) return def;
  if (spec.zeroDerivative) {
    def.vjp = () => [null];
    def.jvp = () => null;
  } else if (spec.linear !== undefined) {
    const linear = spec.linear;
    def.vjp = ({ e, g }) => [linear(e, g)];
    def.jvp = ({ e, tangents }) => linear(e, tangents[0]!);
  } else {
    const local = spec.local!;
    def.vjp = ({ e, inputs, output, g, attrs }) => [scaleBy(e, g, local(e, inputs[0]!, output, attrs))];
    def.jvp = ({ e, inputs, output, tangents, attrs }) => scaleBy(e, tangents[0]!, local(e, inputs[0]!, output, attrs));
  }
  return def;
}

// Shorthands the local derivatives are written with (shared with the other unary families).
export const c = (e: Emitter, v: number, like: Ref): Ref => e.scalar(v, like.dtype);
export const op1 = (e: Emitter, name: string, x: Ref): Ref => e.op(name, [x]);
export const mul = (e: Emitter, a: Ref, b: Ref): Ref => e.op('mul', [a, b]);
export const add = (e: Emitter, a: Ref, b: Ref): Ref => e.op('add', [a, b]);
export const sub = (e: Emitter, a: Ref, b: Ref): Ref => e.op('sub', [a, b]);

/** sample helpers: FP64 random values in a range, or exact values away from kinks */
export const rand = (shape: number[], range: [number, number] = [-2, 2], note?: string): OpSample<any> =>
  note === undefined ? { inputs: [{ shape, range }] } : { inputs: [{ shape, range }], note };
export const exact = (shape: number[], values: number[], note?: string): OpSample<any> =>
  note === undefined ? { inputs: [{ shape, values }] } : { inputs: [{ shape, values }], note };
export const std = (range: [number, number] = [-2, 2]): OpSample<any>[] => [rand([2, 3], range), rand([], range, 'scalar []')];
const awayFromZero = [
  exact([2, 3], [-1.5, -0.4, 0.3, 0.8, 1.9, -2.2], 'values away from the kink at 0'),
  exact([], [0.7], 'scalar []'),
];

const SQRT_2PI = Math.sqrt(2 * Math.PI);
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_K = 0.044715;

const gelu = z.strictObject({ approximate: z.enum(['none', 'tanh']).default('none') });
type GeluAttrs = z.infer<typeof gelu>;

/** gelu''(x) = phi(x) (2 - x^2) for the exact form, phi the standard normal density */
function geluSecond(e: Emitter, x: Ref): Ref {
  const x2 = e.op('square', [x]);
  const phi = mul(e, op1(e, 'exp', mul(e, x2, c(e, -0.5, x))), c(e, 1 / SQRT_2PI, x));
  return mul(e, phi, sub(e, c(e, 2, x), x2));
}

/**
 * Second derivative of the tanh form f(x) = x/2 (1 + tanh u), u = c (x + k x^3):
 * f'' = sech^2(u) (u' + x/2 (u'' - 2 tanh(u) u'^2)).
 */
function geluTanhSecond(e: Emitter, x: Ref): Ref {
  const x2 = e.op('square', [x]);
  const u = mul(e, add(e, x, mul(e, mul(e, x2, x), c(e, GELU_K, x))), c(e, GELU_C, x));
  const du = mul(e, add(e, c(e, 1, x), mul(e, x2, c(e, 3 * GELU_K, x))), c(e, GELU_C, x));
  const ddu = mul(e, x, c(e, 6 * GELU_K * GELU_C, x));
  const t = op1(e, 'tanh', u);
  const inner = sub(e, ddu, mul(e, mul(e, t, e.op('square', [du])), c(e, 2, x)));
  return mul(e, op1(e, 'tanh_grad', u), add(e, du, mul(e, mul(e, x, c(e, 0.5, x)), inner)));
}

export const ops: OpDef[] = [
  unaryOp({ name: 'neg', doc: 'Elementwise negation -x.', dtypes: NUMERIC, linear: (e, v) => op1(e, 'neg', v), samples: std() }),
  unaryOp({ name: 'exp', doc: 'Elementwise e^x.', cost: 10, local: (_e, _x, y) => y, samples: std() }),
  unaryOp({
    name: 'log', doc: 'Elementwise natural logarithm.', cost: 10, local: (e, x) => op1(e, 'reciprocal', x),
    conventions: ['log(0) = -Infinity, log(x < 0) = NaN'], samples: std([0.5, 3]),
  }),
  unaryOp({
    name: 'log1p', doc: 'Elementwise log(1 + x), accurate near 0.', cost: 10,
    local: (e, x) => op1(e, 'reciprocal', add(e, x, c(e, 1, x))), samples: std([-0.5, 2]),
  }),
  unaryOp({
    name: 'expm1', doc: 'Elementwise e^x - 1, accurate near 0.', cost: 10,
    local: (e, _x, y) => add(e, y, c(e, 1, y)), samples: std(),
  }),
  unaryOp({
    name: 'sqrt', doc: 'Elementwise square root.', cost: 4, local: (e, _x, y) => e.op('div', [c(e, 0.5, y), y]),
    conventions: ["sqrt'(0) = +Infinity", 'a zero cotangent gives a zero gradient even where sqrt\' is not finite'],
    samples: std([0.5, 3]),
  }),
  unaryOp({
    name: 'square', doc: 'Elementwise x^2.', dtypes: NUMERIC, local: (e, x) => mul(e, x, c(e, 2, x)), samples: std(),
  }),
  unaryOp({
    name: 'reciprocal', doc: 'Elementwise 1 / x.', cost: 4, local: (e, _x, y) => op1(e, 'neg', op1(e, 'square', y)),
    samples: [rand([2, 3], [0.5, 2]), rand([3], [-2, -0.5], 'negative values'), rand([], [0.5, 2], 'scalar []')],
  }),
  unaryOp({
    name: 'abs', doc: 'Elementwise |x|.', dtypes: NUMERIC, local: (e, x) => op1(e, 'sign', x),
    conventions: ["abs'(0) = 0"], samples: awayFromZero,
  }),
  unaryOp({
    name: 'sign', doc: 'Elementwise sign: -1, 0 or 1 (NaN stays NaN).', dtypes: NUMERIC, differentiable: false,
    conventions: ['no gradient (zero)'], samples: awayFromZero,
  }),
  unaryOp({ name: 'sin', doc: 'Elementwise sine.', cost: 10, local: (e, x) => op1(e, 'cos', x), samples: std([-3, 3]) }),
  unaryOp({
    name: 'cos', doc: 'Elementwise cosine.', cost: 10, local: (e, x) => op1(e, 'neg', op1(e, 'sin', x)), samples: std([-3, 3]),
  }),
  unaryOp({ name: 'tanh', doc: 'Elementwise hyperbolic tangent.', cost: 10, local: (e, x) => op1(e, 'tanh_grad', x), samples: std() }),
  unaryOp({
    name: 'sigmoid', doc: 'Elementwise logistic 1 / (1 + e^-x).', cost: 10, local: (e, x) => op1(e, 'sigmoid_grad', x),
    conventions: ['stable for |x| up to 1e4 in FP32 (no overflow, no NaN)'], samples: std([-4, 4]),
  }),
  unaryOp({
    name: 'relu', doc: 'Elementwise max(x, 0).', dtypes: NUMERIC, local: (e, x) => op1(e, 'relu_grad', x),
    conventions: ["relu'(0) = 0"], samples: awayFromZero,
  }),
  unaryOp({
    name: 'softplus', doc: 'Elementwise log(1 + e^x), computed stably.', cost: 12, local: (e, x) => op1(e, 'sigmoid', x),
    conventions: ['stable for |x| up to 1e4 in FP32 (softplus(x) = x for large x)'], samples: std([-3, 3]),
  }),
  unaryOp({ name: 'erf', doc: 'Elementwise Gauss error function.', cost: 12, local: (e, x) => op1(e, 'erf_grad', x), samples: std() }),
  unaryOp<GeluAttrs>({
    name: 'gelu', doc: 'Gaussian error linear unit x * Phi(x); `approximate: "tanh"` selects the tanh form.', cost: 20,
    attrs: gelu, kernel: (a) => (a.approximate === 'tanh' ? 'gelu_tanh' : 'gelu'),
    local: (e, x, _y, a) => op1(e, a.approximate === 'tanh' ? 'gelu_tanh_grad' : 'gelu_grad', x),
    conventions: ['exact erf form by default: x/2 (1 + erf(x/sqrt(2)))', 'tanh form: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))'],
    samples: [
      { inputs: [{ shape: [2, 3], range: [-3, 3] }] },
      { inputs: [{ shape: [2, 3], range: [-3, 3] }], attrs: { approximate: 'tanh' }, note: 'tanh form' },
      { inputs: [{ shape: [], range: [-3, 3] }], attrs: { approximate: 'none' }, note: 'scalar []' },
    ],
  }),

  // Local derivatives f'(x) as single kernels, used by the rules above; each differentiates again with ops.
  unaryOp({
    name: 'sigmoid_grad', doc: "sigmoid'(x) = s(x)(1 - s(x)), stable for large |x|.", internal: true, cost: 12,
    local: (e, x, y) => mul(e, y, sub(e, c(e, 1, x), mul(e, op1(e, 'sigmoid', x), c(e, 2, x)))),
    samples: std([-4, 4]),
  }),
  unaryOp({
    name: 'tanh_grad', doc: "tanh'(x) = 1 - tanh(x)^2.", internal: true, cost: 12,
    local: (e, x, y) => mul(e, mul(e, op1(e, 'tanh', x), y), c(e, -2, x)), samples: std(),
  }),
  unaryOp({
    name: 'relu_grad', doc: "relu'(x): 1 where x > 0, else 0 (relu'(0) = 0).", internal: true, dtypes: NUMERIC,
    zeroDerivative: true, conventions: ['derivative zero wherever it exists'], samples: awayFromZero,
  }),
  unaryOp({
    name: 'erf_grad', doc: "erf'(x) = 2/sqrt(pi) e^(-x^2).", internal: true, cost: 12,
    local: (e, x, y) => mul(e, mul(e, x, y), c(e, -2, x)), samples: std(),
  }),
  unaryOp({
    name: 'gelu_grad', doc: "Derivative of the exact gelu: Phi(x) + x phi(x).", internal: true, cost: 24,
    local: (e, x) => geluSecond(e, x), samples: std([-3, 3]),
  }),
  unaryOp({
    name: 'gelu_tanh_grad', doc: 'Derivative of the tanh-approximated gelu.', internal: true, cost: 24,
    local: (e, x) => geluTanhSecond(e, x), samples: std([-3, 3]),
  }),
];
