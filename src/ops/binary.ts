/**
 * Binary elementwise ops with NumPy broadcasting: arithmetic, maximum/minimum, comparisons (BOOL out, no gradient) and
 * the internal `mul_no_nan` that derivative rules use to keep zero cotangents from meeting non-finite derivatives.
 * A VJP term is the cotangent times the partial derivative, summed back to the input's shape (`unbroadcast`); a JVP is
 * the sum of tangent-times-partial terms, broadcast to the output's shape.
 */
import { z } from 'zod';
import type { BinaryOp } from '../kernels.types.js';
import { kernelTensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import type { Emitter, OpDef, OpSample, Ref } from './types.js';
import { broadcastOrFail, elements, NUMERIC, sameDtype, scaleBy, sumTerms, unbroadcast } from './common.js';

/** Partial derivatives (d/da, d/db) of y = f(a, b), each with (at most) the output's shape; null = identically zero. */
export type Partials = (e: Emitter, a: Ref, b: Ref, y: Ref) => [Ref | null, Ref | null];

export interface BinarySpec {
  name: BinaryOp;
  doc: string;
  /** input names (default a, b) */
  inputs?: [string, string];
  /** accepted datatypes (default: FP and INT) */
  dtypes?: readonly DType[];
  /** comparisons (and the logical ops) output BOOL and have no gradient */
  comparison?: boolean;
  /** flops per element (default 1) */
  cost?: number;
  partials?: Partials;
  /** linear ops apply signs directly instead of multiplying by a constant partial */
  linear?: [(e: Emitter, v: Ref) => Ref, (e: Emitter, v: Ref) => Ref];
  internal?: boolean;
  conventions?: string[];
  samples: OpSample[];
}

const noAttrs = z.strictObject({});

/** A broadcasting binary op from its spec (also used by src/ops/binary_math.ts and logical.ts). */
export function binaryOp(spec: BinarySpec): OpDef {
  const differentiable = !spec.comparison;
  const names = spec.inputs ?? ['a', 'b'];
  const def: OpDef = {
    name: spec.name,
    inputs: [...names],
    attrs: noAttrs,
    outputDatatype: spec.comparison ? 'BOOL' : `same as ${names[0]} and ${names[1]}`,
    differentiable,
    doc: spec.doc,
    infer(inputs, _attrs, ctx) {
      const dtype = sameDtype(inputs, names, spec.dtypes ?? NUMERIC, ctx);
      return { shape: broadcastOrFail(inputs, ctx), dtype: spec.comparison ? 'BOOL' : dtype };
    },
    async run([a, b], _attrs, k) {
      const out = await k.binary(spec.name, a!.data, a!.shape as number[], b!.data, b!.shape as number[]);
      return kernelTensor(spec.comparison ? 'BOOL' : a!.dtype, out.shape, out.data);
    },
    flops: (_inputs, output) => elements(output) * (spec.cost ?? 1),
    samples: spec.samples,
    elementwise: true,
  };
  if (spec.conventions !== undefined) def.conventions = spec.conventions;
  if (spec.internal) def.internal = true;
  if (spec.linear !== undefined) {
    const [la, lb] = spec.linear;
    def.vjp = ({ e, inputs: [a, b], g }) => [unbroadcast(e, la(e, g), a!), unbroadcast(e, lb(e, g), b!)];
    def.jvp = ({ e, output, tangents: [ta, tb] }) =>
      sumTerms(e, [ta ? la(e, ta) : null, tb ? lb(e, tb) : null], output);
  } else if (spec.partials !== undefined) {
    const partials = spec.partials;
    def.vjp = ({ e, inputs: [a, b], output, g }) => {
      const [da, db] = partials(e, a!, b!, output);
      return [da && unbroadcast(e, scaleBy(e, g, da), a!), db && unbroadcast(e, scaleBy(e, g, db), b!)];
    };
    def.jvp = ({ e, inputs: [a, b], output, tangents: [ta, tb] }) => {
      const [da, db] = partials(e, a!, b!, output);
      return sumTerms(e, [ta && da && scaleBy(e, ta, da), tb && db && scaleBy(e, tb, db)], output);
    };
  }
  return def;
}

const c = (e: Emitter, v: number, like: Ref): Ref => e.scalar(v, like.dtype);
const op = (e: Emitter, name: string, ...xs: Ref[]): Ref => e.op(name, xs);

/** Tie-splitting mask of maximum/minimum: 1 where `a` wins strictly, 1/2 on ties, else 0. */
function winMask(e: Emitter, wins: 'greater' | 'less', a: Ref, b: Ref): Ref {
  const half = op(e, 'where', op(e, 'equal', a, b), c(e, 0.5, a), c(e, 0, a));
  return op(e, 'where', op(e, wins, a, b), c(e, 1, a), half);
}

export const broadcastSamples = (ra: [number, number] = [-2, 2], rb: [number, number] = [-2, 2]): OpSample[] => [
  { inputs: [{ shape: [2, 3], range: ra }, { shape: [2, 3], range: rb }], note: 'same shape [2, 3]' },
  { inputs: [{ shape: [2, 1], range: ra }, { shape: [3], range: rb }], note: 'broadcast [2, 1] x [3]' },
  { inputs: [{ shape: [], range: ra }, { shape: [2, 3], range: rb }], note: 'scalar [] x [2, 3]' },
];

/** maximum/minimum samples with distinct values per position (no ties: the mask is a kink there) */
const minMaxSamples: OpSample[] = [
  {
    inputs: [{ shape: [2, 3], values: [-1.5, 0.5, 2.0, 1.0, -0.25, 0.75] }, { shape: [2, 3], values: [1.0, -0.5, 1.5, 2.0, 0.5, -1.0] }],
    note: 'same shape, no ties',
  },
  { inputs: [{ shape: [2, 1], values: [-0.6, 0.4] }, { shape: [3], values: [-1.1, 0.1, 0.9] }], note: 'broadcast [2, 1] x [3], no ties' },
  { inputs: [{ shape: [], values: [0.3] }, { shape: [2, 2], values: [-1, 0.7, 1.2, -0.2] }], note: 'scalar [] x [2, 2], no ties' },
];

const comparison = (name: BinaryOp, doc: string): OpDef => binaryOp({
  name, doc, comparison: true, conventions: ['output BOOL; no gradient'], samples: broadcastSamples(),
});

export const ops: OpDef[] = [
  binaryOp({
    name: 'add', doc: 'Elementwise a + b with NumPy broadcasting.',
    linear: [(_e, v) => v, (_e, v) => v], samples: broadcastSamples(),
  }),
  binaryOp({
    name: 'sub', doc: 'Elementwise a - b with NumPy broadcasting.',
    linear: [(_e, v) => v, (e, v) => op(e, 'neg', v)], samples: broadcastSamples(),
  }),
  binaryOp({
    name: 'mul', doc: 'Elementwise a * b with NumPy broadcasting.',
    partials: (_e, a, b) => [b, a], samples: broadcastSamples(),
  }),
  binaryOp({
    name: 'div', doc: 'Elementwise a / b with NumPy broadcasting (integers: truncating, x / 0 = 0).',
    // d/da = 1/b, d/db = -a/b^2 = -y/b
    partials: (e, _a, b, y) => [op(e, 'reciprocal', b), op(e, 'neg', op(e, 'div', y, b))],
    samples: broadcastSamples([-2, 2], [0.5, 2]),
  }),
  binaryOp({
    name: 'pow', doc: 'Elementwise a ** b with NumPy broadcasting (integers: integer power).', cost: 10,
    conventions: [
      'd/db at a = 0 is 0 (not NaN)',
      'd/da = b a^(b-1), and 0 where b = 0 (so d/da at a = 0, b = 2 is 0)',
    ],
    partials: (e, a, b, y) => {
      const zero = c(e, 0, a);
      const da = op(e, 'where', op(e, 'equal', b, zero), zero, op(e, 'mul', b, op(e, 'pow', a, op(e, 'sub', b, c(e, 1, b)))));
      const db = op(e, 'where', op(e, 'equal', a, zero), zero, op(e, 'mul', y, op(e, 'log', a)));
      return [da, db];
    },
    samples: [
      ...broadcastSamples([0.5, 2], [-2, 2]),
      { inputs: [{ shape: [3], range: [0.5, 2] }, { shape: [], values: [2] }], note: 'square via an integral exponent' },
    ],
  }),
  binaryOp({
    name: 'maximum', doc: 'Elementwise max(a, b) with NumPy broadcasting; NaN propagates.',
    conventions: ['ties split the gradient equally (1/2 each)'],
    partials: (e, a, b) => [winMask(e, 'greater', a, b), winMask(e, 'greater', b, a)], samples: minMaxSamples,
  }),
  binaryOp({
    name: 'minimum', doc: 'Elementwise min(a, b) with NumPy broadcasting; NaN propagates.',
    conventions: ['ties split the gradient equally (1/2 each)'],
    partials: (e, a, b) => [winMask(e, 'less', a, b), winMask(e, 'less', b, a)], samples: minMaxSamples,
  }),
  comparison('equal', 'Elementwise a == b (BOOL).'),
  comparison('not_equal', 'Elementwise a != b (BOOL).'),
  comparison('less', 'Elementwise a < b (BOOL).'),
  comparison('less_equal', 'Elementwise a <= b (BOOL).'),
  comparison('greater', 'Elementwise a > b (BOOL).'),
  comparison('greater_equal', 'Elementwise a >= b (BOOL).'),
  mulNoNan(),
];

/**
 * y = a * b, pinned to 0 where a == 0. Each derivative term keeps its own zero factor first: the a-term is zero where
 * the tangent/cotangent of a is zero (b may be non-finite there), the b-term is zero where a is zero (y does not depend
 * on b there, so a non-finite tangent of b, e.g. the derivative of sqrt' on the untaken branch of a `where`, must not
 * leak into second derivatives).
 */
function mulNoNan(): OpDef {
  const def = binaryOp({
    name: 'mul_no_nan', doc: 'a * b, but exactly 0 where a == 0 even if b is not finite.', internal: true,
    samples: broadcastSamples(),
  });
  def.vjp = ({ e, inputs: [a, b], g }) => [
    unbroadcast(e, op(e, 'mul_no_nan', g, b!), a!),
    unbroadcast(e, op(e, 'mul_no_nan', a!, g), b!),
  ];
  def.jvp = ({ e, inputs: [a, b], output, tangents: [ta, tb] }) =>
    sumTerms(e, [ta && op(e, 'mul_no_nan', ta, b!), tb && op(e, 'mul_no_nan', a!, tb)], output);
  return def;
}
