/**
 * Statistics and norms over axes: `var` and `std` (with a `correction`, NumPy's ddof) and the vector `norm` (ord 1, 2
 * or "inf"). Each runs as a short chain of the existing kernels (mean, sub, square, sum, div, sqrt, abs, max); the
 * derivative rules are written with ops and divide only by values masked away from zero, so the norm of a zero vector
 * and the std of a constant slice have zero gradient (OPS.md), and second derivatives hold away from those points.
 */
import { z } from 'zod';
import { scalarArray } from '../tensor/dtype.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import type { Emitter, InferContext, OpDef, OpKernels, OpSample, Ref, ValueMeta, VmapArgs } from './types.js';
import {
  attrAt, axesOrFail, axesSchema, countOf, elements, failNode, fmt, FP, keepDims, needDtype, normAxes, reducedShape,
} from './common.js';

interface ReduceLike {
  axes: number | number[] | null;
  keepdims: boolean;
}

interface VarAttrs extends ReduceLike {
  correction: number;
}

type Ord = 1 | 2 | 'inf';

interface NormAttrs extends ReduceLike {
  ord: Ord;
}

const keepdimsSchema = z.boolean().default(false).describe('keep reduced axes as size 1');

const varAttrs = z.strictObject({
  axes: axesSchema,
  keepdims: keepdimsSchema,
  correction: z.number().default(0).describe('subtracted from the element count in the divisor (NumPy ddof; 1 gives the unbiased estimate)'),
});

const normAttrs = z.strictObject({
  ord: z.union([z.literal(1), z.literal(2), z.literal('inf')]).default(2).describe('1 (sum of |x|), 2 (Euclidean) or "inf" (max |x|)'),
  axes: axesSchema,
  keepdims: keepdimsSchema,
});

// ---- derivative-graph helpers ----

/**
 * The axes attr of a node a rule emits: null when every axis is reduced, so the rule stays valid for inputs of any
 * rank (transforms of graphs whose inputs declare no shape).
 */
function axesAttr(axes: readonly number[], x: Ref): number[] | null {
  return axes.length === x.shape.length ? null : [...axes];
}

/** num / den where den != 0, else 0: no infinity or NaN is ever formed, so second derivatives stay finite too. */
function safeDiv(e: Emitter, num: Ref, den: Ref): Ref {
  const zero = e.op('equal', [den, e.scalar(0, den.dtype)]);
  const safe = e.op('where', [zero, e.scalar(1, den.dtype), den]);
  return e.op('where', [zero, e.scalar(0, num.dtype), e.op('div', [num, safe])]);
}

/** max(N - correction, 0) over the reduced axes of x, as a scalar of x's datatype (NumPy's divisor). */
function divisor(e: Emitter, x: Ref, axes: readonly number[], correction: number): Ref {
  const n = countOf(e, x, axes);
  if (correction === 0) return n;
  return e.op('maximum', [e.op('sub', [n, e.scalar(correction, x.dtype)]), e.scalar(0, x.dtype)]);
}

/** x minus its mean over axes (the mean kept as size-1 axes so it broadcasts). */
function deviations(e: Emitter, x: Ref, axes: readonly number[]): Ref {
  return e.op('sub', [x, e.op('mean', [x], { axes: axesAttr(axes, x), keepdims: true })]);
}

/** Sum of v over axes, the output's keepdims. */
function sumOver(e: Emitter, v: Ref, axes: readonly number[], x: Ref, keepdims: boolean): Ref {
  return e.op('sum', [v], { axes: axesAttr(axes, x), keepdims });
}

// ---- var / std ----

async function runVar(x: Tensor, attrs: VarAttrs, k: OpKernels): Promise<Tensor> {
  const shape = [...x.shape];
  const axes = normAxes(attrs.axes, shape.length);
  const kept = reducedShape(shape, axes, true);
  const mean = await k.reduce('mean', x.data, shape, axes);
  const dev = await k.binary('sub', x.data, shape, mean, kept);
  const sq = await k.unary('square', dev.data);
  const ss = await k.reduce('sum', sq, shape, axes);
  const n = numel(axes.map((a) => shape[a]!));
  const out = reducedShape(shape, axes, false);
  const v = await k.binary('div', ss, out, scalarArray(x.dtype, Math.max(n - attrs.correction, 0)), []);
  return { dtype: x.dtype, shape: reducedShape(shape, axes, attrs.keepdims), data: v.data };
}

function checkCorrection(attrs: VarAttrs, ctx: InferContext): void {
  if (!Number.isFinite(attrs.correction) || attrs.correction < 0) {
    failNode('INVALID_ATTRS', ctx, `correction ${attrs.correction} must be a finite number >= 0 (NumPy's ddof)`, attrAt('correction'));
  }
}

function inferReduceLike(x: ValueMeta, attrs: ReduceLike, ctx: InferContext): { axes: number[]; meta: ValueMeta } {
  needDtype(x.dtype, 'x', FP, ctx);
  const axes = axesOrFail(attrs.axes, x.shape.length, ctx);
  return { axes, meta: { shape: reducedShape(x.shape, axes, attrs.keepdims), dtype: x.dtype } };
}

/** Batching rule shared by the ops here: the reduced axes move past the batch axis. */
function vmapAxes(op: string) {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    if (inputs.length !== 1) b.refuse(`${op} takes one input`);
    const x = inputs[0]!;
    b.out(op, [x.name], { ...attrs, axes: b.axes(attrs.axes, x.shape.length).map((a) => a + 1) });
    return true;
  };
}

/** Every axis (null) needs no rank: a whole-tensor reduction, of the operand's rank only with keepdims. */
const rankFreeAll = (a: ReduceLike) =>
  a.axes === null || a.axes === undefined ? { keepsRank: a.keepdims === true, reducesAll: true } : undefined;

const statSamples: OpSample<VarAttrs>[] = [
  { inputs: [{ shape: [2, 3] }], attrs: { axes: null, keepdims: false, correction: 0 }, note: 'all axes' },
  { inputs: [{ shape: [2, 3, 4] }], attrs: { axes: -1, keepdims: true, correction: 1 }, note: 'negative axis, keepdims, unbiased' },
  { inputs: [{ shape: [3, 2, 4] }], attrs: { axes: [0, 2], keepdims: false, correction: 0 }, note: 'two axes' },
  { inputs: [{ shape: [4, 3] }], attrs: { axes: 0, keepdims: false, correction: 2.5 }, note: 'fractional correction' },
];

function statOp(name: 'var' | 'std'): OpDef<VarAttrs> {
  const isStd = name === 'std';
  return {
    name,
    inputs: ['x'],
    attrs: varAttrs,
    outputDatatype: 'same as x',
    differentiable: true,
    doc: isStd
      ? 'Standard deviation over axes: sqrt(sum((x - mean)²) / (N - correction)), as np.std with ddof.'
      : 'Variance over axes: sum((x - mean)²) / (N - correction), as np.var with ddof.',
    conventions: [
      'axes null or omitted reduces every axis; [] reduces none',
      'the divisor is max(N - correction, 0) (NumPy), so a correction >= N gives Infinity or NaN',
      ...(isStd ? ['a constant slice (std 0) has zero gradient (PyTorch gives the same)'] : []),
    ],
    check: checkCorrection,
    infer([x], attrs, ctx) {
      return inferReduceLike(x!, attrs, ctx).meta;
    },
    async run([x], attrs, k) {
      const v = await runVar(x!, attrs, k);
      if (!isStd) return v;
      return { ...v, data: await k.unary('sqrt', v.data) };
    },
    flops: ([x]) => 5 * elements(x!),
    vjp({ e, inputs: [x], output, g, attrs }) {
      const axes = normAxes(attrs.axes, x!.shape.length);
      const d = deviations(e, x!, axes);
      const n = divisor(e, x!, axes, attrs.correction);
      const gk = keepDims(e, g, axes, attrs.keepdims);
      // d var / dx = 2 (x - mean) / n;  d std / dx = (x - mean) / (n std), zero where std = 0
      const coef = isStd
        ? safeDiv(e, gk, e.op('mul', [keepDims(e, output, axes, attrs.keepdims), n]))
        : e.op('div', [e.op('mul', [gk, e.scalar(2, x!.dtype)]), n]);
      return [e.op('mul', [d, coef])];
    },
    jvp({ e, inputs: [x], output, tangents: [t], attrs }) {
      const axes = normAxes(attrs.axes, x!.shape.length);
      const dt = sumOver(e, e.op('mul', [deviations(e, x!, axes), t!]), axes, x!, attrs.keepdims);
      const n = divisor(e, x!, axes, attrs.correction);
      if (isStd) return safeDiv(e, dt, e.op('mul', [output, n]));
      return e.op('div', [e.op('mul', [dt, e.scalar(2, x!.dtype)]), n]);
    },
    vmap: vmapAxes(name),
    rankFree: rankFreeAll,
    // the zero-gradient case (a constant slice) is pinned by test/ops/stats.test.ts: it is not twice differentiable
    samples: statSamples,
  };
}

// ---- norm ----

async function runNorm(x: Tensor, attrs: NormAttrs, k: OpKernels): Promise<Tensor> {
  const shape = [...x.shape];
  const axes = normAxes(attrs.axes, shape.length);
  const outShape = reducedShape(shape, axes, attrs.keepdims);
  let data;
  if (attrs.ord === 2) {
    data = await k.unary('sqrt', await k.reduce('sum', await k.unary('square', x.data), shape, axes));
  } else {
    data = await k.reduce(attrs.ord === 1 ? 'sum' : 'max', await k.unary('abs', x.data), shape, axes);
  }
  return { dtype: x.dtype, shape: outShape, data };
}

/**
 * Per-element weights w with d norm = sum(w * dx) over the reduced axes: sign(x) for ord 1, x / norm for ord 2 (0 at
 * a zero norm), and for "inf" sign(x) split equally among the elements whose |x| attains the maximum (as `max`).
 */
function normWeights(e: Emitter, x: Ref, out: Ref, axes: number[], attrs: NormAttrs): Ref {
  const ok = keepDims(e, out, axes, attrs.keepdims);
  if (attrs.ord === 2) return safeDiv(e, x, ok);
  const sign = e.op('sign', [x]);
  if (attrs.ord === 1) return sign;
  const hit = e.op('equal', [e.op('abs', [x]), ok]);
  const mask = e.op('where', [hit, e.scalar(1, x.dtype), e.scalar(0, x.dtype)]);
  const count = e.op('sum', [mask], { axes: axesAttr(axes, x), keepdims: true });
  return e.op('mul', [sign, e.op('div', [mask, count])]);
}

const norm: OpDef<NormAttrs> = {
  name: 'norm',
  inputs: ['x'],
  attrs: normAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Vector norm over axes (torch.linalg.vector_norm): ord 1 sum(|x|), ord 2 sqrt(sum(x²)), ord "inf" max(|x|).',
  conventions: [
    'axes null or omitted reduces every axis (the whole tensor as one vector); [] reduces none',
    'the norm of a zero vector has zero gradient (every ord)',
    'ord 1: the gradient is sign(x), 0 at x = 0',
    'ord "inf": the gradient is split equally among the elements whose |x| ties for the maximum (as max, and PyTorch)',
    'ord "inf" over a zero-size axis is SHAPE_MISMATCH (a maximum has no identity)',
  ],
  infer([x], attrs, ctx) {
    const { axes, meta } = inferReduceLike(x!, attrs, ctx);
    if (attrs.ord === 'inf') {
      const empty = axes.find((a) => x!.shape[a] === 0);
      if (empty !== undefined) failNode('SHAPE_MISMATCH', ctx, `ord "inf" cannot reduce the zero-size axis ${empty} of ${fmt(x!.shape)} (a maximum has no identity)`);
    }
    return meta;
  },
  run: ([x], attrs, k) => runNorm(x!, attrs, k),
  flops: ([x]) => 2 * elements(x!),
  vjp({ e, inputs: [x], output, g, attrs }) {
    const axes = normAxes(attrs.axes, x!.shape.length);
    return [e.op('mul', [normWeights(e, x!, output, axes, attrs), keepDims(e, g, axes, attrs.keepdims)])];
  },
  jvp({ e, inputs: [x], output, tangents: [t], attrs }) {
    const axes = normAxes(attrs.axes, x!.shape.length);
    return sumOver(e, e.op('mul', [normWeights(e, x!, output, axes, attrs), t!]), axes, x!, attrs.keepdims);
  },
  vmap: vmapAxes('norm'),
  rankFree: rankFreeAll,
  // zero vectors (zero gradient, not twice differentiable there) are pinned by test/ops/stats.test.ts
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { ord: 2, axes: null, keepdims: false }, note: 'ord 2, every axis' },
    { inputs: [{ shape: [2, 3, 4] }], attrs: { ord: 2, axes: -1, keepdims: true }, note: 'ord 2, negative axis, keepdims' },
    { inputs: [{ shape: [3, 4], range: [0.3, 2] }], attrs: { ord: 1, axes: [0, 1], keepdims: false }, note: 'ord 1 (positive)' },
    { inputs: [{ shape: [2, 3], values: [0.5, -1.2, 0.8, -0.3, 1.7, -0.9] }], attrs: { ord: 1, axes: 1, keepdims: true }, note: 'ord 1, mixed signs' },
    { inputs: [{ shape: [2, 3], values: [0.5, -1.2, 0.8, -0.3, 1.7, -0.9] }], attrs: { ord: 'inf', axes: -1, keepdims: false }, note: 'ord inf, distinct |x|' },
    { inputs: [{ shape: [3, 2, 2], values: [0.4, -1.3, 0.7, 1.1, -0.2, 0.9, 1.6, -0.5, 0.3, -1.8, 0.6, 1.2] }], attrs: { ord: 'inf', axes: [0, 2], keepdims: true }, note: 'ord inf, two axes' },
  ],
};

export const ops: OpDef[] = [statOp('var'), statOp('std'), norm];
