/**
 * Normalization: layer_norm, rms_norm, batch_norm and group_norm. Forward passes run the fused row kernel
 * (`normalize`: statistics and scaling in one pass per row) or a few broadcasting kernels; derivative rules are
 * written with ops (mean, sub, mul, sqrt, reciprocal, ...), so they differentiate again.
 *
 * Every rule rests on one identity: with xhat = (x - mean) * r and r = 1 / sqrt(var + epsilon) over the normalized
 * axes (n elements), the Jacobian of xhat is the symmetric r * (I - 1/n - xhat xhatᵀ / n); without centering (rms)
 * it is r * (I - xhat xhatᵀ / n). So one helper serves as JVP (applied to a tangent) and as VJP (to a cotangent).
 */
import { z } from 'zod';
import { GradserveError } from '../errors.js';
import type { FloatArray } from '../kernels.types.js';
import { scalarArray, type DType } from '../tensor/dtype.js';
import type { SymShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { normVmap } from './batching_nn.js';
import type { Emitter, InferContext, OpDef, OpKernels, Ref, ValueMeta } from './types.js';
import {
  axisOrFail, broadcastToLike, failNode, FP, fmt, inputAt, intSchema, normAxis, provablySame, reshapeToLike, sameDtype, unbroadcast as sumTo,
} from './common.js';

export const epsilonSchema = (d: number) => z.number().min(0).default(d).describe('added to the variance (mean square) before the square root');

const elements = (s: readonly (number | null)[]): number => s.reduce<number>((p, d) => p * (d ?? 0), 1);
const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

interface Moments {
  xhat: Ref;
  /** 1 / sqrt(var + epsilon), the normalized axes kept as size 1 */
  r: Ref;
}

/** xhat and r of x over `axes`, written with ops. */
function moments(e: Emitter, x: Ref, axes: number[], epsilon: number, center: boolean): Moments {
  const keep = { axes, keepdims: true };
  const xc = center ? e.op('sub', [x, e.op('mean', [x], keep)]) : x;
  const v = e.op('mean', [e.op('square', [xc])], keep);
  const r = e.op('reciprocal', [e.op('sqrt', [e.op('add', [v, e.scalar(epsilon, x.dtype)])])]);
  return { xhat: e.op('mul', [xc, r]), r };
}

/** The (symmetric) Jacobian of xhat applied to t: a tangent of x, or a cotangent of xhat. */
function throughNormalize(e: Emitter, m: Moments, t: Ref, axes: number[], center: boolean): Ref {
  const keep = { axes, keepdims: true };
  let d = e.op('sub', [t, e.op('mul', [m.xhat, e.op('mean', [e.op('mul', [t, m.xhat])], keep)])]);
  if (center) d = e.op('sub', [d, e.op('mean', [t], keep)]);
  return e.op('mul', [m.r, d]);
}

/** The sum of the given tangent terms, broadcast to the output's shape (a bias tangent alone is smaller). */
function sumTerms(e: Emitter, output: Ref, terms: (Ref | null)[]): Ref | null {
  const given = terms.filter((t): t is Ref => t !== null);
  if (given.length === 0) return null;
  const sum = given.reduce((a, b) => e.op('add', [a, b]));
  return provablySame(sum, output) ? sum : broadcastToLike(e, sum, output);
}

function sameShapeAs(a: SymShape, b: SymShape): boolean {
  return a.length === b.length && a.every((d, i) => d === null || b[i] === null || d === b[i]);
}

export function needShape(v: ValueMeta, want: SymShape, name: string, i: number, why: string, ctx: InferContext): void {
  if (!sameShapeAs(v.shape, want)) failNode('SHAPE_MISMATCH', ctx, `${name} ${fmt(v.shape)} must have shape ${fmt(want)} (${why})`, inputAt(i));
}

// ---- layer_norm, rms_norm ----

interface RowNormAttrs { axis: number; epsilon: number }

function rowNorm(rms: boolean): OpDef<RowNormAttrs> {
  const name: 'rms_norm' | 'layer_norm' = rms ? 'rms_norm' : 'layer_norm';
  const names = rms ? ['x', 'scale'] : ['x', 'scale', 'bias'];
  return {
    name,
    vmap: normVmap(name),
    inputs: rms ? ['x', 'scale?'] : ['x', 'scale?', 'bias?'],
    attrs: z.strictObject({
      axis: intSchema.default(-1).describe('first normalized axis: x is normalized over the axes from axis to the last'),
      epsilon: epsilonSchema(rms ? 1e-6 : 1e-5),
    }),
    outputDatatype: 'same as x',
    differentiable: true,
    doc: rms
      ? 'x * rsqrt(mean(x²) + epsilon) * scale over the axes from axis to the last; scale has shape x.shape[axis:].'
      : '(x - mean) / sqrt(var + epsilon) * scale + bias over the axes from axis to the last (biased variance); scale and bias have shape x.shape[axis:].',
    conventions: [rms ? 'scale is optional' : 'scale and bias are optional (leave them off from the end)'],
    infer(inputs, attrs, ctx) {
      const x = inputs[0]!;
      const dtype = sameDtype(inputs, names, FP, ctx);
      if (x.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} has no axis to normalize over`, inputAt(0));
      const axis = axisOrFail(attrs.axis, x.shape.length, ctx);
      const want = x.shape.slice(axis);
      inputs.slice(1).forEach((p, i) => needShape(p, want, names[i + 1]!, i + 1, `x.shape[${attrs.axis}:] of x ${fmt(x.shape)}`, ctx));
      return { shape: [...x.shape], dtype };
    },
    async run(inputs, attrs, k) {
      const x = inputs[0]!;
      const shape = [...x.shape];
      let y = await k.normalize(x.data as FloatArray, shape, normAxis(attrs.axis, shape.length), attrs.epsilon, !rms);
      for (const [i, op] of [[1, 'mul'], [2, 'add']] as const) {
        const p = inputs[i];
        if (p !== undefined) y = (await k.binary(op, y, shape, p.data, [...p.shape])).data as FloatArray;
      }
      return { dtype: x.dtype, shape, data: y };
    },
    flops: ([x]) => 8 * elements(x!.shape),
    vjp({ e, inputs: [x, scale, bias], g, attrs }) {
      const axes = range(normAxis(attrs.axis, x!.shape.length), x!.shape.length);
      const m = moments(e, x!, axes, attrs.epsilon, !rms);
      const gh = scale ? e.op('mul', [g, scale]) : g;
      const out: (Ref | null)[] = [throughNormalize(e, m, gh, axes, !rms)];
      if (scale) out.push(sumTo(e, e.op('mul', [g, m.xhat]), scale));
      if (bias) out.push(sumTo(e, g, bias));
      return out;
    },
    jvp({ e, inputs: [x, scale], output, tangents: [tx, ts, tb], attrs }) {
      const axes = range(normAxis(attrs.axis, x!.shape.length), x!.shape.length);
      const m = moments(e, x!, axes, attrs.epsilon, !rms);
      let dx = tx ? throughNormalize(e, m, tx, axes, !rms) : null;
      if (dx && scale) dx = e.op('mul', [dx, scale]);
      return sumTerms(e, output, [dx, ts ? e.op('mul', [m.xhat, ts]) : null, tb ?? null]);
    },
    samples: rms
      ? [
        { inputs: [{ shape: [2, 5] }, { shape: [5] }], attrs: { axis: -1, epsilon: 1e-6 }, note: 'last axis, scale' },
        { inputs: [{ shape: [2, 3, 2] }], attrs: { axis: 1, epsilon: 1e-3 }, note: 'two axes, no scale' },
      ]
      : [
        { inputs: [{ shape: [2, 3, 4] }, { shape: [4] }, { shape: [4] }], attrs: { axis: -1, epsilon: 1e-5 }, note: 'last axis, scale and bias' },
        { inputs: [{ shape: [2, 3, 4] }, { shape: [3, 4] }], attrs: { axis: 1, epsilon: 1e-3 }, note: 'two axes, scale only' },
        { inputs: [{ shape: [3, 5] }], attrs: { axis: -1, epsilon: 1e-5 }, note: 'no scale, no bias' },
      ],
  };
}

// ---- batch_norm ----

interface BatchNormAttrs { epsilon: number; training: boolean }

/** A (C,) parameter as (C, 1, ..., 1), broadcasting against x (N, C, *spatial). */
export function perChannel(e: Emitter, p: Ref, rank: number): Ref {
  return rank > 2 ? e.op('unsqueeze', [p], { axes: range(1, rank - 1) }) : p;
}

/** The shape a (C,) parameter's data is read with by the broadcasting kernels. */
const channelShape = (c: number, rank: number): number[] => [c, ...new Array<number>(Math.max(0, rank - 2)).fill(1)];

/** Axes of x (N, C, *spatial) that per-channel statistics reduce: all but the channel axis. */
export const nonChannelAxes = (rank: number): number[] => [0, ...range(2, rank)];

async function applyPerChannel(
  k: OpKernels, x: Tensor, xs: FloatArray, alpha: FloatArray, beta: FloatArray,
): Promise<FloatArray> {
  const shape = [...x.shape];
  const cs = channelShape(shape[1]!, shape.length);
  const scaled = await k.binary('mul', xs, shape, alpha, cs);
  return (await k.binary('add', scaled.data, shape, beta, cs)).data as FloatArray;
}

/** 1 / sqrt(v + epsilon) for a (C,) array, with kernels. */
async function invStd(k: OpKernels, v: FloatArray, c: number, epsilon: number, dtype: DType): Promise<FloatArray> {
  const plus = await k.binary('add', v, [c], scalarArray(dtype, epsilon), []);
  return (await k.unary('sqrt', plus.data)) as FloatArray;
}

const batchNorm: OpDef<BatchNormAttrs> = {
  name: 'batch_norm',
  vmap: normVmap('batch_norm'),
  inputs: ['x', 'scale', 'bias', 'mean', 'var'],
  attrs: z.strictObject({
    epsilon: epsilonSchema(1e-5),
    training: z.boolean().default(false).describe('false: normalize with the given mean and var; true: with the batch statistics (biased variance)'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: '(x - mean) / sqrt(var + epsilon) * scale + bias per channel of x (N, C, *spatial), 0 to 3 spatial axes; scale, bias, mean and var have shape (C,).',
  conventions: [
    'training: true normalizes with the mean and biased variance of the batch over N and the spatial axes; mean and var are then ignored and get zero gradient',
  ],
  infer(inputs, _attrs, ctx) {
    const names = ['x', 'scale', 'bias', 'mean', 'var'];
    const dtype = sameDtype(inputs, names, FP, ctx);
    const x = inputs[0]!;
    if (x.shape.length < 2 || x.shape.length > 5) {
      failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} must be (N, C) followed by 0 to 3 spatial axes`, inputAt(0));
    }
    inputs.slice(1).forEach((p, i) => needShape(p, [x.shape[1]!], names[i + 1]!, i + 1, `one value per channel of x ${fmt(x.shape)}`, ctx));
    return { shape: [...x.shape], dtype };
  },
  async run([x, scale, bias, mean, variance], attrs, k) {
    const shape = [...x!.shape];
    const c = shape[1]!;
    if (attrs.training) {
      // one kernel: per-channel statistics and the affine map, channel by channel in cache
      const data = await k.batchNormTrain(x!.data as FloatArray, shape, scale!.data as FloatArray, bias!.data as FloatArray, attrs.epsilon);
      return { dtype: x!.dtype, shape, data };
    }
    const mu = mean!.data as FloatArray;
    const xs = x!.data as FloatArray;
    const v = variance!.data as FloatArray;
    const alpha = (await k.binary('div', scale!.data, [c], await invStd(k, v, c, attrs.epsilon, x!.dtype), [c])).data as FloatArray;
    // As PyTorch: y = x * alpha + beta with alpha = scale / sqrt(var + epsilon) and beta = bias - mean * alpha
    const shift = await k.binary('mul', mu, [c], alpha, [c]);
    const beta = (await k.binary('sub', bias!.data, [c], shift.data, [c])).data as FloatArray;
    return { dtype: x!.dtype, shape, data: await applyPerChannel(k, x!, xs, alpha, beta) };
  },
  flops: ([x]) => 8 * elements(x!.shape),
  vjp({ e, inputs: [x, scale, bias, mean, variance], g, attrs }) {
    const rank = x!.shape.length;
    const axes = nonChannelAxes(rank);
    const sum = (v: Ref): Ref => e.op('sum', [v], { axes, keepdims: false });
    const gb = sum(g);
    if (attrs.training) {
      // fused ops (batch_norm_grad.ts), each one kernel, with their own derivative rules
      const eps = { epsilon: attrs.epsilon };
      return [e.op('batch_norm_grad', [x!, scale!, g], eps), e.op('batch_norm_scale_grad', [x!, g], eps), gb, null, null];
    }
    const r = e.op('reciprocal', [e.op('sqrt', [e.op('add', [variance!, e.scalar(attrs.epsilon, x!.dtype)])])]);
    const sr = e.op('mul', [scale!, r]);
    const xc = e.op('sub', [x!, perChannel(e, mean!, rank)]);
    const gxc = sum(e.op('mul', [g, xc]));
    const dx = e.op('mul', [g, perChannel(e, sr, rank)]);
    const dmean = e.op('neg', [e.op('mul', [gb, sr])]);
    // d r / d var = -r³ / 2
    const dvar = e.op('mul', [gxc, e.op('mul', [sr, e.op('mul', [e.op('square', [r]), e.scalar(-0.5, x!.dtype)])])]);
    return [dx, e.op('mul', [gxc, r]), gb, dmean, dvar];
  },
  jvp({ e, inputs: [x, scale, , mean, variance], output, tangents: [tx, ts, tb, tm, tv], attrs }) {
    const rank = x!.shape.length;
    const pc = (v: Ref | null | undefined): Ref | null => (v ? perChannel(e, v, rank) : null);
    if (attrs.training) {
      const axes = nonChannelAxes(rank);
      const m = moments(e, x!, axes, attrs.epsilon, true);
      const dx = tx ? e.op('mul', [throughNormalize(e, m, tx, axes, true), pc(scale!)!]) : null;
      return sumTerms(e, output, [dx, ts ? e.op('mul', [m.xhat, pc(ts)!]) : null, pc(tb)]);
    }
    const r = e.op('reciprocal', [e.op('sqrt', [e.op('add', [variance!, e.scalar(attrs.epsilon, x!.dtype)])])]);
    const sr = e.op('mul', [scale!, r]);
    const tc = tx && tm ? e.op('sub', [tx, pc(tm)!]) : tx ?? (tm ? e.op('neg', [pc(tm)!]) : null);
    // the slope of y in xc = x - mean is scale * r; its tangent is ts * r + scale * dr, dr = -r³ tv / 2
    const dr = tv ? e.op('mul', [tv, e.op('mul', [e.op('mul', [r, e.op('square', [r])]), e.scalar(-0.5, x!.dtype)])]) : null;
    const dslope = sumTerms(e, r, [ts ? e.op('mul', [ts, r]) : null, dr ? e.op('mul', [scale!, dr]) : null]);
    const xc = dslope ? e.op('sub', [x!, pc(mean!)!]) : null;
    return sumTerms(e, output, [
      tc ? e.op('mul', [tc, pc(sr)!]) : null,
      dslope ? e.op('mul', [xc!, pc(dslope)!]) : null,
      pc(tb),
    ]);
  },
  samples: [
    {
      inputs: [{ shape: [3, 2, 4] }, { shape: [2] }, { shape: [2] }, { shape: [2] }, { shape: [2], range: [0.5, 1.5] }],
      attrs: { epsilon: 1e-5, training: false }, note: 'given statistics, 1 spatial axis',
    },
    {
      inputs: [{ shape: [4, 3] }, { shape: [3] }, { shape: [3] }, { shape: [3] }, { shape: [3], range: [0.5, 1.5] }],
      attrs: { epsilon: 1e-5, training: true }, note: 'batch statistics, no spatial axis',
    },
    {
      inputs: [{ shape: [2, 2, 3, 3] }, { shape: [2] }, { shape: [2] }, { shape: [2] }, { shape: [2], range: [0.5, 1.5] }],
      attrs: { epsilon: 1e-3, training: true }, note: 'batch statistics, 2 spatial axes',
    },
    {
      inputs: [{ shape: [2, 2, 2, 2, 2] }, { shape: [2] }, { shape: [2] }, { shape: [2] }, { shape: [2], range: [0.5, 1.5] }],
      attrs: { epsilon: 1e-5, training: false }, note: 'given statistics, 3 spatial axes',
    },
  ],
};

// ---- group_norm ----

interface GroupNormAttrs { groups: number; epsilon: number }

/**
 * x (N, C, *spatial) viewed as (N, groups, C / groups, *spatial), for the derivative rules: a reshape with at most one
 * unknown size (N or a spatial size) written as -1.
 */
function groupedShape(x: Ref, c: number | null, groups: number): number[] {
  const unknown = x.shape.filter((d, i) => i !== 1 && d === null).length;
  if (c === null || unknown > 1) {
    throw new GradserveError('SHAPE_MISMATCH', `group_norm derivatives need the channel count and all but one of the batch and spatial sizes of x ${fmt(x.shape)}; declare them`);
  }
  return [x.shape[0] ?? -1, groups, c / groups, ...x.shape.slice(2).map((d) => d ?? -1)];
}

const groupNorm: OpDef<GroupNormAttrs> = {
  name: 'group_norm',
  vmap: normVmap('group_norm'),
  inputs: ['x', 'scale', 'bias'],
  attrs: z.strictObject({
    groups: intSchema.min(1).describe('number of groups of contiguous channels (C for instance norm, 1 for layer norm over C and spatial)'),
    epsilon: epsilonSchema(1e-5),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'x (N, C, *spatial) normalized over each group of C / groups contiguous channels and the spatial axes, then * scale + bias per channel ((C,) each).',
  conventions: ['groups must divide the channel count; groups = C is instance norm'],
  infer(inputs, attrs, ctx) {
    const dtype = sameDtype(inputs, ['x', 'scale', 'bias'], FP, ctx);
    const x = inputs[0]!;
    if (x.shape.length < 2) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} must be (N, C) followed by the spatial axes`, inputAt(0));
    const c = x.shape[1]!;
    if (c !== null && c % attrs.groups !== 0) {
      failNode('SHAPE_MISMATCH', ctx, `the ${c} channels of x ${fmt(x.shape)} are not divisible by groups ${attrs.groups}`, inputAt(0));
    }
    inputs.slice(1).forEach((p, i) => needShape(p, [c], ['scale', 'bias'][i]!, i + 1, `one value per channel of x ${fmt(x.shape)}`, ctx));
    return { shape: [...x.shape], dtype };
  },
  async run([x, scale, bias], attrs, k) {
    const shape = [...x!.shape];
    const rows = [shape[0]!, attrs.groups, elements(shape.slice(1)) / attrs.groups];
    const n = await k.normalize(x!.data as FloatArray, rows, 2, attrs.epsilon, true);
    return { dtype: x!.dtype, shape, data: await applyPerChannel(k, x!, n, scale!.data as FloatArray, bias!.data as FloatArray) };
  },
  flops: ([x]) => 8 * elements(x!.shape),
  vjp({ e, inputs: [x, scale], g, attrs }) {
    const rank = x!.shape.length;
    const view = groupedShape(x!, x!.shape[1] ?? scale!.shape[0] ?? null, attrs.groups);
    const axes = range(2, view.length);
    const m = moments(e, e.op('reshape', [x!], { shape: view }), axes, attrs.epsilon, true);
    const gh = e.op('reshape', [e.op('mul', [g, perChannel(e, scale!, rank)])], { shape: view });
    const dx = reshapeToLike(e, throughNormalize(e, m, gh, axes, true), x!);
    const sum = (v: Ref): Ref => e.op('sum', [v], { axes: nonChannelAxes(rank), keepdims: false });
    return [dx, sum(e.op('mul', [g, reshapeToLike(e, m.xhat, x!)])), sum(g)];
  },
  jvp({ e, inputs: [x, scale], output, tangents: [tx, ts, tb], attrs }) {
    const rank = x!.shape.length;
    const view = groupedShape(x!, x!.shape[1] ?? scale!.shape[0] ?? null, attrs.groups);
    const axes = range(2, view.length);
    const m = moments(e, e.op('reshape', [x!], { shape: view }), axes, attrs.epsilon, true);
    const dx = tx
      ? e.op('mul', [reshapeToLike(e, throughNormalize(e, m, e.op('reshape', [tx], { shape: view }), axes, true), x!), perChannel(e, scale!, rank)])
      : null;
    const dscale = ts ? e.op('mul', [reshapeToLike(e, m.xhat, x!), perChannel(e, ts, rank)]) : null;
    return sumTerms(e, output, [dx, dscale, tb ? perChannel(e, tb, rank) : null]);
  },
  samples: [
    { inputs: [{ shape: [2, 4, 3] }, { shape: [4] }, { shape: [4] }], attrs: { groups: 2, epsilon: 1e-5 }, note: '2 groups, 1 spatial axis' },
    { inputs: [{ shape: [2, 6, 2, 2] }, { shape: [6] }, { shape: [6] }], attrs: { groups: 3, epsilon: 1e-3 }, note: '3 groups, 2 spatial axes' },
    { inputs: [{ shape: [1, 3, 4] }, { shape: [3] }, { shape: [3] }], attrs: { groups: 3, epsilon: 1e-5 }, note: 'instance norm (groups = C)' },
  ],
};

export const ops: OpDef[] = [rowNorm(false), rowNorm(true), batchNorm, groupNorm];
