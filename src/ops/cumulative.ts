/**
 * Cumulative ops along one axis: `cumsum` and `cumprod` (inclusive or `exclusive`, forward or `reverse`), on the
 * native scan kernel, and the internal `linear_scan` (h[t] = b[t] + a[t] h[t-1], or backwards) that cumprod's
 * derivatives are written with.
 *
 * cumprod's gradient never divides by the input, so it is exact at zeros, and so are its higher derivatives: with E
 * the exclusive cumprod, dL/dx[j] = E[j] · S[j] where S[j] = Σ_{i≥j} g[i] Π_{j<k≤i} x[k] obeys S[j] = g[j] + x[j+1]
 * S[j+1], a linear recurrence run backwards. Every piece is a polynomial in x and g built from ops with their own
 * derivatives (linear_scan's are linear_scan again), so the derivative graph can be differentiated again.
 */
import { z } from 'zod';
import type { FloatArray } from '../kernels.types.js';
import { kernelTensor } from '../tensor/tensor.js';
import type { Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';
import { attrAt, axisOrFail, elements, failNode, fmt, FP, inputAt, intSchema, normAxis, NUMERIC, sameDtype } from './common.js';

interface CumAttrs {
  axis: number;
  exclusive: boolean;
  reverse: boolean;
}

interface ScanAttrs {
  axis: number;
  reverse: boolean;
}

const cumAttrs = z.strictObject({
  axis: intSchema.describe('the axis to scan along (required; negative counts from the end)'),
  exclusive: z.boolean().default(false).describe('each position gets the combination of the ones before it (the first gets 0 for cumsum, 1 for cumprod)'),
  reverse: z.boolean().default(false).describe('scan from the end of the axis'),
});

const scanAttrs = z.strictObject({
  axis: intSchema.describe('the axis to scan along'),
  reverse: z.boolean().default(false).describe('scan from the end of the axis'),
});

function axisOf(x: ValueMeta, axis: number, ctx: InferContext): number {
  if (x.shape.length === 0) failNode('INVALID_ATTRS', ctx, `axis ${axis} is out of range for rank 0 (x is a scalar; reshape it to [1])`, attrAt('axis'));
  return axisOrFail(axis, x.shape.length, ctx);
}

/** A huge end for slices that run to the end of an axis of unknown size. */
const TO_END = Number.MAX_SAFE_INTEGER;

/**
 * v moved one position along `axis` (toward higher indices when `up`), the vacated end filled with 0. With the axis
 * size unknown the filler is cut from zeros_like(v), so an axis that turns out empty stays empty.
 */
function shift(e: Emitter, v: Ref, axis: number, up: boolean): Ref {
  const n = v.shape[axis];
  if (n === 0) return v;
  const kept = up
    ? e.op('slice', [v], { starts: [0], ends: [-1], axes: [axis], steps: null })
    : e.op('slice', [v], { starts: [1], ends: [TO_END], axes: [axis], steps: null });
  if (n === null) {
    const fill = e.op('slice', [e.op('zeros_like', [v])], { starts: [0], ends: [1], axes: [axis], steps: null });
    return e.op('concat', up ? [fill, kept] : [kept, fill], { axis });
  }
  const pads = v.shape.map((_, i) => (i === axis ? (up ? [1, 0] : [0, 1]) : [0, 0]));
  return e.op('pad', [kept], { pads, value: 0 });
}

const linearScan = (e: Emitter, a: Ref, b: Ref, axis: number, reverse: boolean): Ref =>
  e.op('linear_scan', [a, b], { axis, reverse });

function cumSamples(op: 'cumsum' | 'cumprod'): OpDef<CumAttrs>['samples'] {
  const range: [number, number] | undefined = op === 'cumprod' ? [0.5, 1.5] : undefined;
  const s = (shape: number[], axis: number, exclusive: boolean, reverse: boolean, note: string) =>
    ({ inputs: [{ shape, ...(range ? { range } : {}) }], attrs: { axis, exclusive, reverse }, note });
  const common = [
    s([2, 4], 1, false, false, 'last axis'),
    s([3, 2, 2], 0, false, true, 'first axis, reverse'),
    s([2, 3, 4], -2, true, false, 'negative axis, exclusive'),
    s([2, 5], -1, true, true, 'exclusive and reverse'),
  ];
  if (op === 'cumsum') return [...common, { inputs: [{ shape: [6], dtype: 'INT32' }], attrs: { axis: 0, exclusive: false, reverse: false }, note: 'INT32' }];
  // Zeros: the gradient is a polynomial in x, so finite differences (and second derivatives) are exact there too.
  const zeros = [0.5, 0, 1.2, -0.7, 0, 0.9, 0, 1.3, -1.1, 0.6, 0.8, 1.4];
  return [
    ...common,
    { inputs: [{ shape: [3, 4], values: zeros }], attrs: { axis: 1, exclusive: false, reverse: false }, note: 'zeros: one, two per row' },
    { inputs: [{ shape: [3, 4], values: zeros }], attrs: { axis: 1, exclusive: false, reverse: true }, note: 'zeros, reverse' },
    { inputs: [{ shape: [4, 3], values: zeros }], attrs: { axis: 0, exclusive: true, reverse: false }, note: 'zeros, exclusive' },
    { inputs: [{ shape: [4, 3], values: zeros }], attrs: { axis: 0, exclusive: true, reverse: true }, note: 'zeros, exclusive and reverse' },
  ];
}

function cumOp(op: 'cumsum' | 'cumprod'): OpDef<CumAttrs> {
  const isSum = op === 'cumsum';
  return {
    name: op,
    inputs: ['x'],
    attrs: cumAttrs,
    outputDatatype: 'same as x',
    differentiable: true,
    doc: isSum
      ? 'Running sum along axis (np.cumsum); exclusive shifts it by one (the first is 0), reverse runs from the end.'
      : 'Running product along axis (np.cumprod); exclusive shifts it by one (the first is 1), reverse runs from the end.',
    conventions: [
      'axis is required',
      isSum
        ? 'the VJP is a cumsum of the cotangent in the other direction'
        : 'the gradient is exact at zeros (no division by x: exclusive products times a reverse linear recurrence), and so are higher derivatives',
      'FP accumulates in double; integers wrap on overflow',
    ],
    infer([x], attrs, ctx) {
      const dtype = sameDtype([x!], ['x'], NUMERIC, ctx);
      axisOf(x!, attrs.axis, ctx);
      return { shape: [...x!.shape], dtype };
    },
    async run([x], attrs, k) {
      const axis = normAxis(attrs.axis, x!.shape.length);
      const data = await k.cumulative(op, x!.data, [...x!.shape], axis, attrs.exclusive, attrs.reverse);
      return kernelTensor(x!.dtype, x!.shape, data);
    },
    flops: ([x]) => elements(x!),
    vjp({ e, inputs: [x], g, attrs }) {
      const axis = normAxis(attrs.axis, x!.shape.length);
      const rev = attrs.reverse;
      if (isSum) return [e.op('cumsum', [g], { axis, exclusive: attrs.exclusive, reverse: !rev })];
      const E = e.op('cumprod', [x!], { axis, exclusive: true, reverse: rev });
      // the coefficient linking a position to its neighbour: x[j+1] scanning backwards, x[j-1] forwards
      const a = rev ? shift(e, x!, axis, true) : x!;
      // exclusive: position i's output does not involve x[i]'s own cotangent slot
      const b = attrs.exclusive ? shift(e, g, axis, rev) : g;
      return [e.op('mul', [E, linearScan(e, a, b, axis, !rev)])];
    },
    jvp({ e, inputs: [x], tangents: [t], attrs }) {
      const axis = normAxis(attrs.axis, x!.shape.length);
      if (isSum) return e.op('cumsum', [t!], { axis, exclusive: attrs.exclusive, reverse: attrs.reverse });
      const rev = attrs.reverse;
      // the transpose of the VJP's linear map
      const E = e.op('cumprod', [x!], { axis, exclusive: true, reverse: rev });
      const a = rev ? shift(e, x!, axis, true) : x!;
      const h = linearScan(e, a, e.op('mul', [E, t!]), axis, rev);
      return attrs.exclusive ? shift(e, h, axis, !rev) : h;
    },
    vmap({ b, inputs, attrs }) {
      if (inputs.length !== 1) b.refuse(`${op} takes one input`);
      const x = inputs[0]!;
      b.out(op, [x.name], { ...attrs, axis: b.axis(attrs.axis, x.shape.length, 0) + 1 });
      return true;
    },
    samples: cumSamples(op),
  };
}

const linear_scan: OpDef<ScanAttrs> = {
  name: 'linear_scan',
  inputs: ['a', 'b'],
  attrs: scanAttrs,
  outputDatatype: 'same as b',
  differentiable: true,
  internal: true,
  doc: 'Linear recurrence along axis: h[t] = b[t] + a[t]·h[t-1] (h[-1] = 0), or with reverse h[t] = b[t] + a[t+1]·h[t+1]; a[t] links positions t-1 and t, so a\'s entry at the first scanned position is unused.',
  infer([a, b], attrs, ctx) {
    const dtype = sameDtype([a!, b!], ['a', 'b'], FP, ctx);
    const same = a!.shape.length === b!.shape.length && a!.shape.every((d, i) => d === null || b!.shape[i] === null || d === b!.shape[i]);
    if (!same) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a!.shape)} and b ${fmt(b!.shape)} must have the same shape`, inputAt(1));
    axisOf(b!, attrs.axis, ctx);
    return { shape: b!.shape.map((d, i) => d ?? a!.shape[i]!), dtype };
  },
  async run([a, b], attrs, k) {
    const axis = normAxis(attrs.axis, b!.shape.length);
    const data = await k.linearScan(a!.data as FloatArray, b!.data as FloatArray, [...b!.shape], axis, attrs.reverse);
    return kernelTensor(b!.dtype, b!.shape, data);
  },
  flops: ([, b]) => 2 * elements(b!),
  vjp({ e, inputs: [a], output: h, g, attrs }) {
    const axis = normAxis(attrs.axis, h.shape.length);
    // the two directions are each other's transpose in b; a[t] multiplies the h one step back in scan order
    const lambda = linearScan(e, a!, g, axis, !attrs.reverse);
    const da = attrs.reverse
      ? e.op('mul', [shift(e, lambda, axis, true), h])
      : e.op('mul', [lambda, shift(e, h, axis, true)]);
    return [da, lambda];
  },
  jvp({ e, inputs: [a], output: h, tangents: [ta, tb], attrs }) {
    const axis = normAxis(attrs.axis, h.shape.length);
    let rhs: Ref | null = tb ?? null;
    if (ta) {
      const term = attrs.reverse ? shift(e, e.op('mul', [ta, h]), axis, false) : e.op('mul', [ta, shift(e, h, axis, true)]);
      rhs = rhs === null ? term : e.op('add', [rhs, term]);
    }
    return linearScan(e, a!, rhs!, axis, attrs.reverse);
  },
  vmap({ b, inputs: [a, c], attrs }) {
    const rank = (a!.batched ? c! : a!).shape.length;
    b.out('linear_scan', [b.tile(a!), b.tile(c!)], { ...attrs, axis: b.axis(attrs.axis, rank, 0) + 1 });
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 4] }, { shape: [3, 4] }], attrs: { axis: 1, reverse: false }, note: 'forward' },
    { inputs: [{ shape: [4, 2] }, { shape: [4, 2] }], attrs: { axis: 0, reverse: true }, note: 'reverse' },
    { inputs: [{ shape: [2, 3, 2] }, { shape: [2, 3, 2] }], attrs: { axis: -2, reverse: true }, note: 'middle axis' },
  ],
};

export const ops: OpDef[] = [cumOp('cumsum'), cumOp('cumprod'), linear_scan];
