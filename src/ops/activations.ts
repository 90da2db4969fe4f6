/**
 * More activations (op set v2): silu, mish, selu, hardsigmoid, hardswish, softsign, and leaky_relu, elu, celu with
 * their `alpha`. Each runs its native unary kernel of the same name (alpha as the kernel's scalar parameter). Local
 * derivatives are compositions of existing ops, exact and stable: silu' = sigmoid + x sigmoid', mish' through tanh'
 * and sigmoid of softplus; the piecewise ones as `where` of their pieces. At a kink each takes PyTorch's one-sided
 * value (torch 1.13), pinned in test/ops/math.test.ts.
 */
import { z } from 'zod';
import { failNode, attrAt } from './common.js';
import type { Emitter, Ref } from './types.js';
import { add, c, exact, mul, op1, rand, unaryOp } from './unary.js';

/** selu's constants at full precision (Klambauer et al. 2017, as PyTorch) */
export const SELU_ALPHA = 1.6732632423543772;
export const SELU_SCALE = 1.0507009873554805;

const leakyAttrs = z.strictObject({
  alpha: z.number().default(0.01).describe('slope for x <= 0'),
});
const eluAttrs = z.strictObject({
  alpha: z.number().default(1.0).describe('scale of the negative part'),
});
type AlphaAttrs = { alpha: number };

/** where(x > 0, pos, neg): the two pieces of a function that changes formula at 0 (x = 0 takes `neg`, as PyTorch) */
function piecewise(e: Emitter, x: Ref, pos: Ref, neg: Ref): Ref {
  return e.op('where', [e.op('greater', [x, c(e, 0, x)]), pos, neg]);
}

const awayFromZero = [
  exact([2, 3], [-1.5, -0.4, 0.3, 0.8, 1.9, -2.2], 'values away from the kink at 0'),
  exact([], [-0.7], 'scalar []'),
];
/** values in every piece of hardsigmoid/hardswish, away from the kinks at -3 and 3 */
const hardSamples = [
  exact([2, 4], [-4.5, -2.9, -1.2, -0.3, 0.4, 1.7, 2.8, 3.6], 'every piece, away from the kinks at -3 and 3'),
  exact([], [1.3], 'scalar []'),
];

export const ops = [
  unaryOp({
    name: 'silu', doc: 'Sigmoid linear unit (swish) x * sigmoid(x).', cost: 12,
    local: (e, x) => add(e, op1(e, 'sigmoid', x), mul(e, x, op1(e, 'sigmoid_grad', x))),
    conventions: ["silu'(x) = sigmoid(x) + x sigmoid'(x)", 'silu(-Infinity) = 0 (its limit; PyTorch gives NaN)'],
    samples: [rand([2, 3], [-4, 4]), rand([], [-4, 4], 'scalar []')],
  }),
  unaryOp({
    name: 'mish', doc: 'Mish x * tanh(softplus(x)).', cost: 30,
    local: (e, x) => {
      const sp = op1(e, 'softplus', x);
      return add(e, op1(e, 'tanh', sp), mul(e, mul(e, x, op1(e, 'tanh_grad', sp)), op1(e, 'sigmoid', x)));
    },
    conventions: ["mish'(x) = tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x), sp = softplus(x)", 'mish(-Infinity) = 0 (its limit; PyTorch gives NaN)'],
    samples: [rand([2, 3], [-4, 4]), rand([], [-4, 4], 'scalar []')],
  }),
  unaryOp({
    name: 'selu', doc: 'Scaled ELU: scale * (x > 0 ? x : alpha * (e^x - 1)), alpha 1.6732632423543772, scale 1.0507009873554805.', cost: 10,
    local: (e, x) => piecewise(e, x, c(e, SELU_SCALE, x), mul(e, op1(e, 'exp', x), c(e, SELU_SCALE * SELU_ALPHA, x))),
    conventions: ["selu'(0) = scale * alpha (PyTorch's choice: the negative side)"], samples: awayFromZero,
  }),
  unaryOp({
    name: 'hardsigmoid', doc: 'Hard sigmoid relu6(x + 3) / 6.', cost: 3,
    local: (e, x) => e.op('where', [e.op('less', [op1(e, 'abs', x), c(e, 3, x)]), c(e, 1 / 6, x), c(e, 0, x)]),
    conventions: ["hardsigmoid'(x) = 1/6 for -3 < x < 3, else 0 (0 at both kinks, as PyTorch)"], samples: hardSamples,
  }),
  unaryOp({
    name: 'hardswish', doc: 'Hard swish x * relu6(x + 3) / 6.', cost: 4,
    // PyTorch: 0 below -3, x/3 + 1/2 on [-3, 3] (both ends included), 1 above 3
    local: (e, x) => {
      const middle = add(e, e.op('div', [x, c(e, 3, x)]), c(e, 0.5, x));
      const upper = e.op('where', [e.op('less_equal', [x, c(e, 3, x)]), middle, c(e, 1, x)]);
      return e.op('where', [e.op('less', [x, c(e, -3, x)]), c(e, 0, x), upper]);
    },
    conventions: ["hardswish'(-3) = -0.5 and hardswish'(3) = 1.5 (PyTorch's choice: the middle piece x/3 + 1/2 on [-3, 3])"],
    samples: hardSamples,
  }),
  unaryOp({
    name: 'softsign', doc: 'Softsign x / (1 + |x|).', cost: 3,
    local: (e, x) => op1(e, 'reciprocal', op1(e, 'square', add(e, op1(e, 'abs', x), c(e, 1, x)))),
    conventions: ["softsign'(x) = 1 / (1 + |x|)^2 (1 at 0)", 'softsign(+-Infinity) = +-1 (its limits; PyTorch gives NaN)'],
    samples: awayFromZero,
  }),
  unaryOp<AlphaAttrs>({
    name: 'leaky_relu', doc: 'Leaky ReLU: x > 0 ? x : alpha * x.', attrs: leakyAttrs, param: (a) => a.alpha,
    local: (e, x, _y, a) => piecewise(e, x, c(e, 1, x), c(e, a.alpha, x)),
    conventions: ["leaky_relu'(0) = alpha (PyTorch's choice)"],
    samples: [awayFromZero[0]!, { ...awayFromZero[1]!, attrs: { alpha: 0.2 }, note: 'scalar [], alpha 0.2' }],
  }),
  unaryOp<AlphaAttrs>({
    name: 'elu', doc: 'ELU: x > 0 ? x : alpha * (e^x - 1).', attrs: eluAttrs, param: (a) => a.alpha, cost: 10,
    local: (e, x, _y, a) => piecewise(e, x, c(e, 1, x), mul(e, op1(e, 'exp', x), c(e, a.alpha, x))),
    conventions: ["elu'(0) = alpha (PyTorch's choice: the negative side)"],
    samples: [awayFromZero[0]!, { ...awayFromZero[1]!, attrs: { alpha: 0.5 }, note: 'scalar [], alpha 0.5' }],
  }),
  unaryOp<AlphaAttrs>({
    name: 'celu', doc: 'CELU: x > 0 ? x : alpha * (e^(x / alpha) - 1).', attrs: eluAttrs, param: (a) => a.alpha, cost: 10,
    check(a, ctx) {
      if (a.alpha === 0) failNode('INVALID_ATTRS', ctx, 'alpha is 0; celu divides by alpha', attrAt('alpha'));
    },
    local: (e, x, _y, a) => piecewise(e, x, c(e, 1, x), op1(e, 'exp', mul(e, x, c(e, 1 / a.alpha, x)))),
    conventions: ["celu'(0) = 1 (both sides agree)", 'alpha 0 is INVALID_ATTRS'],
    samples: [awayFromZero[0]!, { ...awayFromZero[1]!, attrs: { alpha: 2 }, note: 'scalar [], alpha 2' }],
  }),
];
