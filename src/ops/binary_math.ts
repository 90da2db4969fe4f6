/**
 * More binary elementwise functions (op set v2), broadcasting as NumPy: atan2(y, x), mod and fmod (FP and INT),
 * logaddexp and hypot. Each runs its native binary kernel of the same name; derivatives are written with ops.
 *
 * mod/fmod: y = a - b * q with q = floor(a / b) (mod, the divisor's sign, as NumPy/Python) or trunc(a / b) (fmod, the
 * dividend's sign, as C), so dy/da = 1 and dy/db = -q (PyTorch's rule; q is piecewise constant, so its own derivative
 * is zero). logaddexp's partials are sigmoid(a - b) and sigmoid(b - a) (from the operands, so no digits are lost to
 * a large result in FP32), and 0 for an operand of -Infinity, as logsumexp. atan2 divides by hypot(y, x) rather than
 * by y^2 + x^2, so large operands do not overflow.
 */
import { FP, NUMERIC, scaleBy, sumTerms, unbroadcast } from './common.js';
import { binaryOp, broadcastSamples } from './binary.js';
import { negInfMask } from './reduce.js';
import type { Emitter, OpDef, OpSample, Ref } from './types.js';

const op = (e: Emitter, name: string, ...xs: Ref[]): Ref => e.op(name, xs);

/** dy/da = 1, dy/db = -q(a / b) with q = floor (mod) or trunc (fmod) */
function modOp(name: 'mod' | 'fmod', round: 'floor' | 'trunc', doc: string, conventions: string[]): OpDef {
  const def = binaryOp({ name, doc, dtypes: NUMERIC, conventions, samples: modSamples, cost: 4 });
  const db = (e: Emitter, a: Ref, b: Ref): Ref => op(e, 'neg', op(e, round, op(e, 'div', a, b)));
  def.vjp = ({ e, inputs: [a, b], g }) => [unbroadcast(e, g, a!), unbroadcast(e, scaleBy(e, g, db(e, a!, b!)), b!)];
  def.jvp = ({ e, inputs: [a, b], output, tangents: [ta, tb] }) =>
    sumTerms(e, [ta, tb && scaleBy(e, tb, db(e, a!, b!))], output);
  return def;
}

/** quotients away from integers (where mod/fmod jump) by construction: random dividends, divisors of both signs */
const modSamples: OpSample[] = [
  {
    inputs: [{ shape: [2, 3], values: [5.3, -5.3, 2.2, -0.7, 7.9, -3.4] }, { shape: [2, 3], values: [2, 2, -1.5, 1.5, -3, -1.25] }],
    note: 'same shape, both signs',
  },
  { inputs: [{ shape: [2, 1], values: [4.6, -4.6] }, { shape: [3], values: [1.5, -2.5, 0.8] }], note: 'broadcast [2, 1] x [3]' },
];

/** d logaddexp(v, w) / dv = sigmoid(v - w), and 0 where v is -Infinity (logsumexp's convention: also when w is) */
function lseWeight(e: Emitter, v: Ref, w: Ref): Ref {
  return op(e, 'where', negInfMask(e, v), e.scalar(0, v.dtype), op(e, 'sigmoid', op(e, 'sub', v, w)));
}

export const ops: OpDef[] = [
  binaryOp({
    name: 'atan2', doc: 'Elementwise angle of the point (x, y), in [-pi, pi], with NumPy broadcasting.', inputs: ['y', 'x'],
    dtypes: FP, cost: 20,
    conventions: ['atan2(+-0, +0) = +-0, atan2(+-0, -0) = +-pi (IEEE)', 'd/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2); NaN at the origin, as PyTorch'],
    partials: (e, y, x) => {
      const h = op(e, 'hypot', y, x);
      return [op(e, 'div', op(e, 'div', x, h), h), op(e, 'neg', op(e, 'div', op(e, 'div', y, h), h))];
    },
    samples: [
      { inputs: [{ shape: [2, 3], range: [-2, 2] }, { shape: [2, 3], range: [0.5, 2] }], note: 'same shape, x > 0' },
      { inputs: [{ shape: [2, 1], range: [0.5, 2] }, { shape: [3], range: [-2, 2] }], note: 'broadcast [2, 1] x [3], y > 0 (off the branch cut)' },
    ],
  }),
  modOp('mod', 'floor', 'Elementwise remainder of a / b with the sign of b (NumPy mod, Python %), with NumPy broadcasting.', [
    'a - b * floor(a / b); a zero result takes the sign of b (NumPy)',
    'FP: x mod 0 is NaN; INT: x mod 0 = 0 (NumPy; never an error)',
    'd/da = 1, d/db = -floor(a / b) (PyTorch)',
  ]),
  modOp('fmod', 'trunc', 'Elementwise remainder of a / b with the sign of a (C fmod), with NumPy broadcasting.', [
    'a - b * trunc(a / b)',
    'FP: x fmod 0 is NaN; INT: x fmod 0 = 0 (NumPy; never an error)',
    'd/da = 1, d/db = -trunc(a / b) (PyTorch)',
  ]),
  binaryOp({
    name: 'logaddexp', doc: 'Elementwise log(e^a + e^b), computed stably, with NumPy broadcasting.', dtypes: FP, cost: 20,
    conventions: [
      'max(a, b) + log1p(e^-|a - b|): finite for operands up to 1e4 in FP32 and beyond; both -Infinity gives -Infinity',
      'd/da = sigmoid(a - b), d/db = sigmoid(b - a); an operand of -Infinity gets 0 (as logsumexp; PyTorch gives NaN when both are)',
    ],
    partials: (e, a, b) => [lseWeight(e, a, b), lseWeight(e, b, a)],
    samples: broadcastSamples([-3, 3], [-3, 3]).slice(0, 2),
  }),
  binaryOp({
    name: 'hypot', doc: 'Elementwise sqrt(a^2 + b^2) without overflow or underflow, with NumPy broadcasting.', dtypes: FP, cost: 10,
    conventions: ['d/da = a / hypot(a, b), d/db = b / hypot(a, b); NaN at a = b = 0, as PyTorch'],
    partials: (e, a, b, y) => [op(e, 'div', a, y), op(e, 'div', b, y)],
    samples: broadcastSamples([-2, 2], [-2, 2]).slice(0, 2),
  }),
];
