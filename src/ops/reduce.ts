/**
 * Reductions: sum mean max min prod logsumexp (axes int | list | null = all, [] = none; keepdims), argmax/argmin,
 * and the internal `numel_like` that mean-style gradients divide by when a reduced dim is unknown.
 */
import { z } from 'zod';
import { scalarArray, type DType } from '../tensor/dtype.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import type { Emitter, OpDef, Ref, ValueMeta } from './types.js';
import {
  axesOrFail, axesSchema, axisOrFail, broadcastToLike, countOf, failNode, fmt, FP, keepDims, needDtype, normAxes,
  NUMERIC, reducedShape,
} from './common.js';

/** The reductions over axes (each one a native reduce kernel of the same name). */
type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'logsumexp';

interface ReduceAttrs {
  axes: number | number[] | null;
  keepdims: boolean;
}

const reduceAttrs = z.strictObject({
  axes: axesSchema,
  keepdims: z.boolean().default(false).describe('keep reduced axes as size 1'),
});

/** Largest finite value per float datatype: `x < -max` detects -Infinity without putting an infinity in a graph. */
export function negInfMask(e: Emitter, x: Ref): Ref {
  const max = x.dtype === 'FP32' ? 3.4028234663852886e38 : Number.MAX_VALUE;
  return e.op('less', [x, e.scalar(-max, x.dtype)]);
}

/**
 * The axes attr of a node a rule emits: null when every axis is reduced, so the rule stays valid for inputs of any
 * rank (transforms of graphs whose inputs declare no shape; see src/autodiff/rank_free.ts).
 */
function axesAttr(axes: readonly number[], x: Ref): number[] | null {
  return axes.length === x.shape.length ? null : [...axes];
}

/** exp(x - out) with the reduced axes of `out` re-inserted, 0 where x = -Inf (so an all -Inf slice gives 0, not NaN). */
function lseWeights(e: Emitter, x: Ref, out: Ref, axes: number[], keepdims: boolean): Ref {
  const p = e.op('exp', [e.op('sub', [x, keepDims(e, out, axes, keepdims)])]);
  return e.op('where', [negInfMask(e, x), e.op('zeros_like', [x]), p]);
}

/** Equal split of the gradient among the elements that attain the max/min: mask / count, shaped like x. */
function tieWeights(e: Emitter, x: Ref, out: Ref, axes: number[], keepdims: boolean): Ref {
  const hit = e.op('equal', [x, keepDims(e, out, axes, keepdims)]);
  const mask = e.op('where', [hit, e.op('ones_like', [x]), e.op('zeros_like', [x])]);
  const count = e.op('sum', [mask], { axes: axesAttr(axes, x), keepdims: true });
  return e.op('div', [mask, count]);
}

/**
 * d prod / d x_i, exact with zeros, written so its own derivative is exact too (Hessians at zeros):
 *   no zero in the slice:   prod / x_i
 *   x_i nonzero, any zero:  (product of the nonzero entries) * (product of the zero entries) / x_i   (value 0)
 *   x_i the only zero:      product of the other entries
 *   x_i one of two zeros:   (product of the nonzero entries) * (the other zero)                       (value 0)
 *   three or more zeros:    0
 * Every branch is evaluated on "safe" values (zeros replaced by 1) so no branch divides by zero.
 */
function prodPartials(e: Emitter, x: Ref, axes: number[]): Ref {
  const zero = e.op('zeros_like', [x]);
  const one = e.op('ones_like', [x]);
  const isZero = e.op('equal', [x, zero]);
  const safe = e.op('where', [isZero, one, x]);
  const nonzeroProd = e.op('prod', [safe], { axes: axesAttr(axes, x), keepdims: true });
  const zeroProd = e.op('prod', [e.op('where', [isZero, x, one])], { axes: axesAttr(axes, x), keepdims: true });
  const zeros = e.op('sum', [e.op('where', [isZero, one, zero])], { axes: axesAttr(axes, x), keepdims: true });
  const elsewhere = e.op('div', [e.op('mul', [nonzeroProd, zeroProd]), safe]);
  const otherZero = e.op('sub', [e.op('sum', [e.op('where', [isZero, x, zero])], { axes: axesAttr(axes, x), keepdims: true }), x]);
  const twoZeros = e.op('where', [e.op('equal', [zeros, e.scalar(2, x.dtype)]), e.op('mul', [nonzeroProd, otherZero]), zero]);
  const atZero = e.op('where', [e.op('equal', [zeros, e.scalar(1, x.dtype)]), e.op('broadcast_like', [nonzeroProd, x]), twoZeros]);
  return e.op('where', [isZero, atZero, elsewhere]);
}

/** Per-element weights w so that d out = sum(w * dx) over the reduced axes (null for sum: w = 1). */
function localWeights(op: ReduceOp, e: Emitter, x: Ref, out: Ref, axes: number[], keepdims: boolean): Ref | null {
  switch (op) {
    case 'sum': return null;
    case 'mean': return null;
    case 'max':
    case 'min': return tieWeights(e, x, out, axes, keepdims);
    case 'prod': return prodPartials(e, x, axes);
    case 'logsumexp': return lseWeights(e, x, out, axes, keepdims);
  }
}

const REDUCE_DOCS: Record<ReduceOp, { doc: string; dtypes: readonly DType[]; conventions: string[] }> = {
  sum: { doc: 'Sum over axes.', dtypes: NUMERIC, conventions: [] },
  mean: { doc: 'Mean over axes (NaN over a zero-size axis).', dtypes: FP, conventions: [] },
  max: {
    doc: 'Maximum over axes (NaN propagates).', dtypes: NUMERIC,
    conventions: ['the gradient is split equally among tied maxima', 'a zero-size reduced axis is SHAPE_MISMATCH'],
  },
  min: {
    doc: 'Minimum over axes (NaN propagates).', dtypes: NUMERIC,
    conventions: ['the gradient is split equally among tied minima', 'a zero-size reduced axis is SHAPE_MISMATCH'],
  },
  prod: {
    doc: 'Product over axes.', dtypes: NUMERIC,
    conventions: ['gradient exact with zeros (no division by zero): with one zero in a slice only the zero gets the product of the others; with two or more zeros the gradient is 0; second derivatives are exact at zeros too'],
  },
  logsumexp: {
    doc: 'log(sum(exp(x))) over axes, max-shifted.', dtypes: FP,
    conventions: ['max-shifted: finite for logits of 1e4', 'a slice of all -Infinity gives -Infinity with zero gradient'],
  },
};

function reduceOp(op: ReduceOp): OpDef<ReduceAttrs> {
  const info = REDUCE_DOCS[op];
  return {
    name: op,
    inputs: ['x'],
    attrs: reduceAttrs,
    outputDatatype: 'same as x',
    differentiable: true,
    doc: info.doc,
    conventions: ['axes null or omitted reduces every axis; [] reduces none', ...info.conventions],
    infer([x], attrs, ctx) {
      needDtype(x!.dtype, 'x', info.dtypes, ctx);
      const axes = axesOrFail(attrs.axes, x!.shape.length, ctx);
      if (op === 'max' || op === 'min') {
        const empty = axes.find((a) => x!.shape[a] === 0);
        if (empty !== undefined) failNode('SHAPE_MISMATCH', ctx, `cannot reduce the zero-size axis ${empty} of ${fmt(x!.shape)} (no identity)`);
      }
      return { shape: reducedShape(x!.shape, axes, attrs.keepdims), dtype: x!.dtype };
    },
    async run([x], attrs, k) {
      const axes = normAxes(attrs.axes, x!.shape.length);
      const data = await k.reduce(op, x!.data, [...x!.shape], axes);
      return { dtype: x!.dtype, shape: reducedShape(x!.shape, axes, attrs.keepdims), data };
    },
    flops([x]) {
      const n = x!.shape.reduce<number>((p, d) => p * (d ?? 0), 1);
      return op === 'logsumexp' ? 3 * n : n;
    },
    vjp({ e, inputs: [x], output, g, attrs }) {
      const axes = normAxes(attrs.axes, x!.shape.length);
      let gk = keepDims(e, g, axes, attrs.keepdims);
      if (op === 'mean') gk = e.op('div', [gk, countOf(e, x!, axes)]);
      const w = localWeights(op, e, x!, output, axes, attrs.keepdims);
      if (w === null) return [broadcastToLike(e, gk, x!)];
      return [e.op('mul', [w, gk])];
    },
    jvp({ e, inputs: [x], output, tangents: [t], attrs }) {
      const axes = normAxes(attrs.axes, x!.shape.length);
      if (op === 'sum' || op === 'mean') return e.op(op, [t!], { axes: attrs.axes, keepdims: attrs.keepdims });
      const w = localWeights(op, e, x!, output, axes, attrs.keepdims)!;
      return e.op('sum', [e.op('mul', [w, t!])], { axes: axesAttr(axes, x!), keepdims: attrs.keepdims });
    },
    vmap({ b, inputs, attrs }) {
      if (inputs.length !== 1) b.refuse(`${op} takes one input`);
      const x = inputs[0]!;
      b.out(op, [x.name], { ...attrs, axes: b.axes(attrs.axes, x.shape.length).map((a) => a + 1) });
      return true;
    },
    // every axis (null) needs no rank: a whole-tensor reduction, of the operand's rank only with keepdims
    rankFree: (a) => (a.axes === null || a.axes === undefined ? { keepsRank: a.keepdims === true, reducesAll: true } : undefined),
    samples: reduceSamples(op),
  };
}

function reduceSamples(op: ReduceOp): OpDef<ReduceAttrs>['samples'] {
  const distinct = [0.3, -1.2, 1.7, 0.9, -0.4, 1.1, -1.9, 0.6, 1.4, -0.7, 0.2, -1.5];
  const common = [
    { inputs: [{ shape: [2, 3] }], attrs: { axes: null, keepdims: false }, note: 'all axes' },
    { inputs: [{ shape: [2, 3, 2] }], attrs: { axes: -1, keepdims: true }, note: 'negative axis, keepdims' },
    { inputs: [{ shape: [2, 3, 2] }], attrs: { axes: [0, 2], keepdims: false }, note: 'two axes' },
    { inputs: [{ shape: [3] }], attrs: { axes: [], keepdims: false }, note: 'axes [] reduces none' },
  ];
  if (op === 'max' || op === 'min') {
    return [
      { inputs: [{ shape: [2, 3, 2], values: distinct }], attrs: { axes: 1, keepdims: false }, note: 'distinct values, middle axis' },
      { inputs: [{ shape: [2, 3, 2], values: distinct }], attrs: { axes: [-1, 0], keepdims: true }, note: 'negative axes, keepdims' },
      { inputs: [{ shape: [4, 3], values: distinct }], attrs: { axes: null, keepdims: false }, note: 'all axes' },
    ];
  }
  if (op === 'prod') {
    return [
      ...common.map((s) => ({ ...s, inputs: [{ ...s.inputs[0]!, range: [0.5, 1.5] as [number, number] }] })),
      { inputs: [{ shape: [2, 3], values: [0.5, -1.5, 1.2, 0.7, 1.3, -0.8] }], attrs: { axes: 1, keepdims: false }, note: 'mixed signs' },
      { inputs: [{ shape: [3, 3], values: [0.5, 0, 1.2, 0, 0, 0.7, 0, 0, 0] }], attrs: { axes: -1, keepdims: false }, note: 'one, two and three zeros per row' },
    ];
  }
  return common;
}

interface ArgAttrs {
  axis: number | null;
  keepdims: boolean;
}

const argAttrs = z.strictObject({
  axis: z.union([z.number().int(), z.null()]).default(null).describe('axis; null = index into the flattened tensor'),
  keepdims: z.boolean().default(false),
});

function argOp(op: 'argmax' | 'argmin'): OpDef<ArgAttrs> {
  return {
    name: op,
    inputs: ['x'],
    attrs: argAttrs,
    outputDatatype: 'INT64',
    differentiable: false,
    doc: `Index of the ${op === 'argmax' ? 'largest' : 'smallest'} element along axis (flattened when axis is null).`,
    conventions: ['ties go to the first index', 'NaN wins', 'axis null gives the index into the flattened tensor (NumPy)'],
    infer([x], attrs, ctx) {
      needDtype(x!.dtype, 'x', NUMERIC, ctx);
      const rank = x!.shape.length;
      const axes = attrs.axis === null ? Array.from({ length: rank }, (_, i) => i) : [axisOrFail(attrs.axis, rank, ctx)];
      const empty = axes.find((a) => x!.shape[a] === 0);
      if (empty !== undefined) failNode('SHAPE_MISMATCH', ctx, `cannot take ${op} over the zero-size axis ${empty} of ${fmt(x!.shape)}`);
      return { shape: reducedShape(x!.shape, axes, attrs.keepdims), dtype: 'INT64' };
    },
    async run([x], attrs, k) {
      const rank = x!.shape.length;
      const axis = attrs.axis === null ? null : (attrs.axis < 0 ? attrs.axis + rank : attrs.axis);
      const data = await k.argReduce(op, x!.data, [...x!.shape], axis);
      const axes = axis === null ? Array.from({ length: rank }, (_, i) => i) : [axis];
      return { dtype: 'INT64', shape: reducedShape(x!.shape, axes, attrs.keepdims), data };
    },
    flops([x]) {
      return x!.shape.reduce<number>((p, d) => p * (d ?? 0), 1);
    },
    vmap({ b, inputs: [x], output, attrs }) {
      if (attrs.axis === null || attrs.axis === undefined) {
        // NumPy's flattened index: flatten everything but the batch axis.
        const flat = b.reshape(x!, [b.K, x!.shape.reduce((p, d) => p * d, 1)]);
        b.out('reshape', [b.tmp(op, [flat], { axis: 1, keepdims: false })], { shape: [b.K, ...output.shape] });
      } else {
        b.out(op, [x!.name], { ...attrs, axis: b.axis(attrs.axis, x!.shape.length, 0) + 1 });
      }
      return true;
    },
    samples: [
      { inputs: [{ shape: [3, 4] }], attrs: { axis: 1, keepdims: false } },
      { inputs: [{ shape: [3, 4] }], attrs: { axis: null, keepdims: true } },
    ],
  };
}

interface NumelAttrs {
  axes: number | number[] | null;
}

/** Number of elements of x along axes, as a 0-d tensor of x's datatype: the divisor of mean-style gradients. */
const numelLike: OpDef<NumelAttrs> = {
  name: 'numel_like',
  inputs: ['x'],
  attrs: z.strictObject({ axes: axesSchema }),
  outputDatatype: 'same as x',
  differentiable: false,
  internal: true,
  doc: 'Element count of x along axes (a scalar); depends only on the shape of x.',
  infer([x], attrs, ctx): ValueMeta {
    axesOrFail(attrs.axes, x!.shape.length, ctx);
    return { shape: [], dtype: x!.dtype };
  },
  async run([x], attrs, k): Promise<Tensor> {
    const axes = normAxes(attrs.axes, x!.shape.length);
    const n = numel(axes.map((a) => x!.shape[a]!));
    // through a kernel (a copy of one element), so that a native program holds the count as its constant
    return { dtype: x!.dtype, shape: [], data: await k.broadcastTo(scalarArray(x!.dtype, n), [], []) };
  },
  flops: () => 1,
  // depends on the shape only: the batch axis must not be counted
  vmap({ b, inputs: [x], attrs }) {
    b.out('numel_like', [x!.name], { ...attrs, axes: b.axes(attrs.axes, x!.shape.length).map((a) => a + 1) });
    return false;
  },
  samples: [
    { inputs: [{ shape: [2, 3, 4] }], attrs: { axes: [0, 2] }, note: 'axes [0, 2] of [2, 3, 4]' },
    { inputs: [{ shape: [3, 5] }], attrs: { axes: null }, note: 'all axes' },
    { inputs: [{ shape: [2, 3], dtype: 'INT32' }], attrs: { axes: -1 }, note: 'INT32, negative axis' },
  ],
};

export const ops: OpDef[] = [
  reduceOp('sum'), reduceOp('mean'), reduceOp('max'), reduceOp('min'), reduceOp('prod'), reduceOp('logsumexp'),
  argOp('argmax'), argOp('argmin'), numelLike,
];
