/**
 * More elementwise functions (op set v2): trigonometric and hyperbolic functions and their inverses, base-2 and
 * base-10 logarithms, exp2, rsqrt, and the rounding ops. Each runs its native unary kernel of the same name; local
 * derivatives are written with ops (square roots of products like (1 - x)(1 + x) instead of 1 - x^2, so they stay
 * accurate near the ends of the domain). The rounding ops have a zero derivative of every order.
 */
import type { Emitter, OpSample, Ref } from './types.js';
import { add, c, exact, mul, op1, rand, std, sub, unaryOp } from './unary.js';

/** (1 - x)(1 + x) = 1 - x^2 without the cancellation near |x| = 1 */
const oneMinusSquare = (e: Emitter, x: Ref): Ref => mul(e, sub(e, c(e, 1, x), x), add(e, c(e, 1, x), x));
/** (x - 1)(x + 1) = x^2 - 1, likewise near x = 1 */
const squareMinusOne = (e: Emitter, x: Ref): Ref => mul(e, sub(e, x, c(e, 1, x)), add(e, x, c(e, 1, x)));

const rounding = (name: string, doc: string, samples: OpSample[]) => unaryOp({
  name, doc, differentiable: false,
  conventions: ['FP only; zero derivative of every order (no gradient flows)'], samples,
});

/** values away from integers (floor/ceil/trunc) and from halves (round) */
const offGrid = [
  exact([2, 3], [-2.3, -1.7, -0.4, 0.2, 1.6, 2.45], 'values away from integers and halves'),
  exact([], [-0.7], 'scalar []'),
];

export const ops = [
  unaryOp({
    name: 'tan', doc: 'Elementwise tangent.', cost: 10, local: (e, _x, y) => add(e, op1(e, 'square', y), c(e, 1, y)),
    conventions: ["tan'(x) = 1 + tan(x)^2"], samples: std([-1.2, 1.2]),
  }),
  unaryOp({
    name: 'asin', doc: 'Elementwise inverse sine (NaN outside [-1, 1]).', cost: 10,
    local: (e, x) => op1(e, 'rsqrt', oneMinusSquare(e, x)), samples: std([-0.9, 0.9]),
  }),
  unaryOp({
    name: 'acos', doc: 'Elementwise inverse cosine (NaN outside [-1, 1]).', cost: 10,
    local: (e, x) => op1(e, 'neg', op1(e, 'rsqrt', oneMinusSquare(e, x))), samples: std([-0.9, 0.9]),
  }),
  unaryOp({
    name: 'atan', doc: 'Elementwise inverse tangent.', cost: 10,
    local: (e, x) => op1(e, 'reciprocal', add(e, op1(e, 'square', x), c(e, 1, x))), samples: std([-3, 3]),
  }),
  unaryOp({ name: 'sinh', doc: 'Elementwise hyperbolic sine.', cost: 10, local: (e, x) => op1(e, 'cosh', x), samples: std() }),
  unaryOp({ name: 'cosh', doc: 'Elementwise hyperbolic cosine.', cost: 10, local: (e, x) => op1(e, 'sinh', x), samples: std() }),
  unaryOp({
    name: 'asinh', doc: 'Elementwise inverse hyperbolic sine.', cost: 10,
    // 1 / sqrt(x^2 + 1) as 1 / hypot(x, 1): no overflow of x^2 for large |x|
    local: (e, x) => op1(e, 'reciprocal', e.op('hypot', [x, c(e, 1, x)])), samples: std([-3, 3]),
  }),
  unaryOp({
    name: 'acosh', doc: 'Elementwise inverse hyperbolic cosine (NaN below 1).', cost: 10,
    local: (e, x) => op1(e, 'rsqrt', squareMinusOne(e, x)), conventions: ["acosh'(1) = +Infinity"],
    samples: std([1.2, 3]),
  }),
  unaryOp({
    name: 'atanh', doc: 'Elementwise inverse hyperbolic tangent (+-Infinity at +-1, NaN beyond).', cost: 10,
    local: (e, x) => op1(e, 'reciprocal', oneMinusSquare(e, x)), samples: std([-0.9, 0.9]),
  }),
  unaryOp({
    name: 'log2', doc: 'Elementwise base-2 logarithm.', cost: 10, local: (e, x) => e.op('div', [c(e, Math.LOG2E, x), x]),
    conventions: ['log2(0) = -Infinity, log2(x < 0) = NaN'], samples: std([0.5, 3]),
  }),
  unaryOp({
    name: 'log10', doc: 'Elementwise base-10 logarithm.', cost: 10, local: (e, x) => e.op('div', [c(e, Math.LOG10E, x), x]),
    conventions: ['log10(0) = -Infinity, log10(x < 0) = NaN'], samples: std([0.5, 3]),
  }),
  unaryOp({ name: 'exp2', doc: 'Elementwise 2^x.', cost: 10, local: (e, _x, y) => mul(e, y, c(e, Math.LN2, y)), samples: std() }),
  unaryOp({
    name: 'rsqrt', doc: 'Elementwise 1 / sqrt(x).', cost: 5,
    local: (e, _x, y) => mul(e, mul(e, y, op1(e, 'square', y)), c(e, -0.5, y)),
    conventions: ['rsqrt(0) = +Infinity, rsqrt(x < 0) = NaN', "rsqrt'(x) = -rsqrt(x)^3 / 2"],
    samples: [rand([2, 3], [0.5, 3]), rand([], [0.5, 3], 'scalar []')],
  }),
  rounding('floor', 'Elementwise floor: the largest integer <= x.', offGrid),
  rounding('ceil', 'Elementwise ceiling: the smallest integer >= x.', offGrid),
  rounding('round', 'Elementwise rounding to the nearest integer, halves to even (0.5 -> 0, 1.5 -> 2, -2.5 -> -2).', offGrid),
  rounding('trunc', 'Elementwise rounding toward zero.', offGrid),
];
