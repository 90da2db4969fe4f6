/**
 * Indexing shape ops: slice (NumPy clamping, negative steps) with its internal gradient `slice_grad`, gather (np.take)
 * with its internal gradient `scatter_add_like`, and one_hot. Each internal gradient op has its own VJP (the forward
 * op again), so gradients of gradients work.
 */
import { z } from 'zod';
import type { IndexArray } from '../kernels.types.js';
import { DTYPE_ALIASES, parseDType, type DType } from '../tensor/dtype.js';
import type { Dim, SymShape } from '../tensor/shape.js';
import type { BatchedValue, Batcher, InferContext, OpDef, VmapArgs } from './types.js';
import {
  ANY, attrAt, axisOrFail, bigIntSchema, failNode, fmt, FP, INDEX, indexError, inputAt, intSchema, needDtype, normAxis,
  sameDtype, shapeOrFail,
} from './common.js';

interface SliceAttrs {
  starts: number[];
  ends: number[];
  axes: number[] | null;
  steps: number[] | null;
}

const sliceSchema = z.strictObject({
  starts: z.array(bigIntSchema).describe('start per sliced axis (negative counts from the end; clamped)'),
  ends: z.array(bigIntSchema).describe('exclusive end per sliced axis (negative counts from the end; clamped)'),
  axes: z.union([z.array(intSchema), z.null()]).default(null).describe('sliced axes; null = the first len(starts) axes'),
  steps: z.union([z.array(bigIntSchema), z.null()]).default(null).describe('step per sliced axis (non-zero; negative walks backwards); null = 1'),
});

/** Python's slice(start, end, step).indices(n) and the resulting length. */
export function sliceIndices(start: number, end: number, step: number, n: number): { start: number; len: number } {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s: number, t: number, len: number;
  if (step > 0) {
    s = clamp(start < 0 ? start + n : start, 0, n);
    t = clamp(end < 0 ? end + n : end, 0, n);
    len = t > s ? Math.ceil((t - s) / step) : 0;
  } else {
    s = clamp(start < 0 ? start + n : start, -1, n - 1);
    t = clamp(end < 0 ? end + n : end, -1, n - 1);
    len = s > t ? Math.ceil((s - t) / -step) : 0;
  }
  return { start: len === 0 ? 0 : s, len };
}

function checkSlice(rank: number, a: SliceAttrs, ctx: InferContext): number[] {
  const n = a.starts.length;
  if (a.ends.length !== n) failNode('INVALID_ATTRS', ctx, `starts has ${n} entries but ends has ${a.ends.length}`, attrAt('ends'));
  if (a.steps !== null && a.steps.length !== n) failNode('INVALID_ATTRS', ctx, `starts has ${n} entries but steps has ${a.steps.length}`, attrAt('steps'));
  if (a.axes !== null && a.axes.length !== n) failNode('INVALID_ATTRS', ctx, `starts has ${n} entries but axes has ${a.axes.length}`, attrAt('axes'));
  if (a.axes === null && n > rank) failNode('INVALID_ATTRS', ctx, `${n} starts for rank ${rank}`, attrAt('starts'));
  const zero = a.steps?.findIndex((s) => s === 0) ?? -1;
  if (zero >= 0) failNode('INVALID_ATTRS', ctx, `steps[${zero}] is 0; a slice step must be non-zero`, attrAt(`steps[${zero}]`));
  const axes: number[] = [];
  for (const ax of a.axes ?? Array.from({ length: n }, (_, i) => i)) {
    const m = axisOrFail(ax, rank, ctx, 'axis', 'axes');
    if (axes.includes(m)) failNode('INVALID_ATTRS', ctx, `axis ${ax} is repeated in axes (rank ${rank})`, attrAt('axes'));
    axes.push(m);
  }
  return axes;
}

interface SlicePlan { starts: number[]; steps: number[]; shape: Dim[] }

/** The sliced axes of slice/slice_grad attrs as written, normalized against `rank` and moved past the batch axis. */
function batchedSliceAxes(b: Batcher, attrs: Record<string, unknown>, rank: number): number[] {
  const axes = (attrs.axes as number[] | undefined | null) ?? (attrs.starts as number[]).map((_, i) => i);
  return axes.map((a) => b.axis(a, rank, 0) + 1);
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/**
 * Batched indices [K, ...is] into an axis of size n, made absolute in that axis flattened with the batch (K * n):
 * each index is normalized by gathering from 0..n-1 (which also checks its range against n, with the same error as
 * the op itself), then member k adds k * n.
 */
function flatIndices(b: Batcher, ind: BatchedValue, n: number): string {
  const positions = b.constant(ind.dtype, [n], range(0, n));
  const normalized = b.tmp('gather', [positions, ind.name], { axis: 0 });
  const offsets = b.constant(ind.dtype, [b.K, ...ind.shape.map(() => 1)], range(0, b.K).map((k) => k * n));
  return b.tmp('add', [normalized, offsets]);
}

/**
 * Batching rule of the gradient ops whose last input only carries the output shape (slice_grad, scatter_add_like):
 * with g batched, that shape gains the batch axis in front; `batchAttrs` moves the op's axes past it. With g and the
 * indices unbatched the result is the same for every member, whatever the carrier.
 */
function batchScatter(op: string, batchAttrs: (b: Batcher, attrs: Record<string, unknown>, rank: number) => Record<string, unknown>) {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    const g = inputs[0]!;
    const like = inputs[inputs.length - 1]!;
    const mid = inputs.slice(1, -1);
    if (mid.some((v) => v.batched)) return batchScatterIndices(b, g, mid[0]!, like, attrs);
    if (!g.batched) {
      b.out(op, [g.name, ...mid.map((v) => v.name), b.zeros(like.dtype, like.shape)], attrs);
      return false;
    }
    const carrier = like.batched ? like.name : b.zeros(like.dtype, [b.K, ...like.shape]);
    b.out(op, [g.name, ...mid.map((v) => v.name), carrier], batchAttrs(b, attrs, like.shape.length));
    return true;
  };
}

/**
 * scatter_add_like with batched indices: g [K, pre, is, post] as [K, is, pre, post] scattered along the first axis of
 * zeros [K * n, pre, post] at the absolute indices, then the batch axis split off and n put back in its place.
 */
function batchScatterIndices(b: Batcher, g: BatchedValue, ind: BatchedValue, like: BatchedValue, attrs: Record<string, unknown>): boolean {
  const rank = like.shape.length;
  const axis = b.axis(attrs.axis, rank, 0);
  const n = like.shape[axis]!;
  const ir = ind.shape.length;
  const pre = like.shape.slice(0, axis);
  const post = like.shape.slice(axis + 1);
  const gb = b.tile(g);
  const gt = axis === 0 ? gb : b.tmp('transpose', [gb], { perm: [0, ...range(1 + axis, 1 + axis + ir), ...range(1, 1 + axis), ...range(1 + axis + ir, 1 + rank - 1 + ir)] });
  const carrier = b.zeros(g.dtype, [b.K * n, ...pre, ...post]);
  const flat = b.tmp('scatter_add_like', [gt, flatIndices(b, ind, n), carrier], { axis: 0 });
  const shape = [b.K, n, ...pre, ...post];
  if (axis === 0) {
    b.out('reshape', [flat], { shape });
    return true;
  }
  const split = b.tmp('reshape', [flat], { shape });
  b.out('transpose', [split], { perm: [0, ...range(2, 2 + axis), 1, ...range(2 + axis, 1 + rank)] });
  return true;
}

/**
 * gather with batched indices. Into an unbatched x, take(x, [K, ...is]) puts the batch axis where `axis` was, so it
 * only moves to the front. Into a batched x [K, pre, n, post], x is viewed as [K * n, pre, post] and gathered at
 * absolute indices, giving [K, is, pre, post].
 */
function batchGatherIndices(b: Batcher, x: BatchedValue, ind: BatchedValue, axis: number): void {
  const rank = x.shape.length;
  const ir = ind.shape.length;
  if (!x.batched) {
    if (axis === 0) {
      b.out('gather', [x.name, ind.name], { axis: 0 });
      return;
    }
    const y = b.tmp('gather', [x.name, ind.name], { axis });
    b.out('transpose', [y], { perm: [axis, ...range(0, axis), ...range(axis + 1, rank + ir)] });
    return;
  }
  const n = x.shape[axis]!;
  const pre = x.shape.slice(0, axis);
  const post = x.shape.slice(axis + 1);
  const xt = axis === 0 ? x.name : b.tmp('transpose', [x.name], { perm: [0, axis + 1, ...range(1, axis + 1), ...range(axis + 2, rank + 1)] });
  const flat = b.tmp('reshape', [xt], { shape: [b.K * n, ...pre, ...post] });
  const idx = flatIndices(b, ind, n);
  if (axis === 0) {
    b.out('gather', [flat, idx], { axis: 0 });
    return;
  }
  const y = b.tmp('gather', [flat, idx], { axis: 0 });
  b.out('transpose', [y], { perm: [0, ...range(1 + ir, 1 + ir + axis), ...range(1, 1 + ir), ...range(1 + ir + axis, rank + ir)] });
}

function planSlice(shape: readonly Dim[], a: SliceAttrs): SlicePlan {
  const rank = shape.length;
  const starts = new Array<number>(rank).fill(0);
  const steps = new Array<number>(rank).fill(1);
  const out: Dim[] = [...shape];
  a.starts.forEach((s, i) => {
    const ax = normAxis(a.axes?.[i] ?? i, rank);
    const step = a.steps?.[i] ?? 1;
    const d = shape[ax];
    // A step of at least the axis size selects one element whatever its size, and the kernels take only safe
    // integers: so |step| is capped at max(d, 1) (same positions, no 2^53+ step reaching the native boundary).
    steps[ax] = d === null || d === undefined ? step : Math.sign(step) * Math.min(Math.abs(step), Math.max(d, 1));
    if (d === null || d === undefined) { out[ax] = null; return; }
    const r = sliceIndices(s, a.ends[i]!, step, d);
    starts[ax] = r.start;
    out[ax] = r.len;
  });
  return { starts, steps, shape: out };
}

const slice: OpDef<SliceAttrs> = {
  name: 'slice',
  inputs: ['x'],
  attrs: sliceSchema,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Strided slice x[start:end:step] per axis with NumPy clamping; steps may be negative.',
  conventions: ['bounds are clamped like Python slices', 'a step of 0 is INVALID_ATTRS'],
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], ANY, ctx);
    checkSlice(x!.shape.length, attrs, ctx);
    return { shape: planSlice(x!.shape, attrs).shape, dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const p = planSlice(x!.shape, attrs);
    const shape = p.shape as number[];
    const data = await k.slice(x!.data, [...x!.shape], p.starts, p.steps, shape);
    return { dtype: x!.dtype, shape, data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x], g, attrs }) => [e.op('slice_grad', [g, x!], { ...attrs })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('slice', [t!], { ...attrs }),
  vmap({ b, inputs, attrs }) {
    if (inputs.length !== 1) b.refuse('slice takes one input');
    const x = inputs[0]!;
    b.out('slice', [x.name], { ...attrs, axes: batchedSliceAxes(b, attrs, x.shape.length) });
    return true;
  },
  samples: [
    { inputs: [{ shape: [4, 5] }], attrs: { starts: [1, -1], ends: [3, -6], axes: null, steps: [1, -2] }, note: 'negative step from the end' },
    { inputs: [{ shape: [3, 4] }], attrs: { starts: [-10], ends: [100], axes: [-1], steps: null }, note: 'clamped bounds' },
    { inputs: [{ shape: [5] }], attrs: { starts: [4], ends: [-100], axes: null, steps: [-1] }, note: 'full reversal' },
  ],
};

/** Cotangent of slice: zeros shaped like x with g added at the sliced positions. */
const sliceGrad: OpDef<SliceAttrs> = {
  name: 'slice_grad',
  inputs: ['g', 'x'],
  internal: true,
  attrs: sliceSchema,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: 'Scatters g into zeros shaped like x at the positions slice(x, attrs) reads (the VJP of slice).',
  infer([g, x], attrs, ctx) {
    needDtype(g!.dtype, 'g', FP, ctx);
    checkSlice(x!.shape.length, attrs, ctx);
    shapeOrFail(g!.shape, planSlice(x!.shape, attrs).shape, ctx, `g (the slice of x ${fmt(x!.shape)})`, inputAt(0));
    return { shape: [...x!.shape], dtype: g!.dtype };
  },
  async run([g, x], attrs, k) {
    const p = planSlice(x!.shape, attrs);
    const data = await k.sliceBackward(g!.data, [...g!.shape], p.starts, p.steps, [...x!.shape]);
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: (_i, out) => out.shape.reduce<number>((p, d) => p * (d ?? 0), 1),
  vjp: ({ e, g, attrs }) => [e.op('slice', [g], { ...attrs }), null],
  jvp: ({ e, inputs: [, x], tangents: [t], attrs }) => (t ? e.op('slice_grad', [t, x!], { ...attrs }) : null),
  vmap: batchScatter('slice_grad', (b, attrs, rank) => ({ ...attrs, axes: batchedSliceAxes(b, attrs, rank) })),
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [4, 5] }], attrs: { starts: [1, -1], ends: [3, -6], axes: null, steps: [1, -2] }, note: 'negative step' },
  ],
};

interface GatherAttrs { axis: number }

function gatherShape(x: readonly Dim[], ind: readonly Dim[], axis: number): SymShape {
  return [...x.slice(0, axis), ...ind, ...x.slice(axis + 1)];
}

/** Message-quality check before the kernel (which defends again): names the index, the axis and its size. */
const gather: OpDef<GatherAttrs> = {
  name: 'gather',
  inputs: ['x', 'indices'],
  attrs: z.strictObject({ axis: intSchema.default(0) }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'np.take(x, indices, axis): output shape x.shape[:axis] + indices.shape + x.shape[axis+1:].',
  conventions: [
    'negative indices count from the end; outside [-n, n) is INDEX_OUT_OF_RANGE',
    'the gradient scatter-adds, so duplicate indices accumulate',
  ],
  infer([x, ind], attrs, ctx) {
    needDtype(x!.dtype, 'x', ANY, ctx);
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    if (x!.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `cannot gather from rank-0 x ${fmt(x!.shape)}`);
    const axis = axisOrFail(attrs.axis, x!.shape.length, ctx);
    return { shape: gatherShape(x!.shape, ind!.shape, axis), dtype: x!.dtype };
  },
  async run([x, ind], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.gather(x!.data, [...x!.shape], ind!.data as IndexArray, [...ind!.shape], axis);
    return { dtype: x!.dtype, shape: gatherShape(x!.shape, ind!.shape, axis) as number[], data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x, ind], g, attrs }) => [e.op('scatter_add_like', [g, ind!, x!], { axis: normAxis(attrs.axis, x!.shape.length) }), null],
  jvp: ({ e, inputs: [, ind], tangents: [t], attrs }) => (t ? e.op('gather', [t, ind!], { axis: attrs.axis }) : null),
  vmap({ b, inputs: [x, ind], attrs }) {
    const axis = b.axis(attrs.axis, x!.shape.length, 0);
    if (ind!.batched) batchGatherIndices(b, x!, ind!, axis);
    else b.out('gather', [x!.name, ind!.name], { ...attrs, axis: axis + 1 });
    return true;
  },
  samples: [
    {
      inputs: [{ shape: [4, 3] }, { shape: [2, 2], dtype: 'INT64', values: [1, -1, 1, 0] }],
      attrs: { axis: 0 }, note: 'duplicates and a negative index',
    },
    {
      inputs: [{ shape: [2, 3, 2] }, { shape: [4], dtype: 'INT32', values: [2, 0, -3, 2] }],
      attrs: { axis: -2 }, note: 'INT32 indices on a middle axis',
    },
  ],
};

/** Zeros shaped like x with g (gather's output) scatter-added: the VJP of gather; x supplies only its shape. */
const scatterAddLike: OpDef<GatherAttrs> = {
  name: 'scatter_add_like',
  inputs: ['g', 'indices', 'x'],
  internal: true,
  attrs: z.strictObject({ axis: intSchema.default(0) }),
  outputDatatype: 'same as g',
  differentiable: true,
  doc: 'Zeros shaped like x, then g scatter-added at indices along axis (duplicates accumulate).',
  infer([g, ind, x], attrs, ctx) {
    needDtype(g!.dtype, 'g', FP, ctx);
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    if (x!.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `cannot scatter into rank-0 x ${fmt(x!.shape)}`, inputAt(2));
    const axis = axisOrFail(attrs.axis, x!.shape.length, ctx);
    // g is what gather(x, indices) gives
    shapeOrFail(g!.shape, gatherShape(x!.shape, ind!.shape, axis), ctx, `g (gather of x ${fmt(x!.shape)} at indices ${fmt(ind!.shape)})`, inputAt(0));
    return { shape: [...x!.shape], dtype: g!.dtype };
  },
  async run([g, ind, x], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.scatterAdd(g!.data as Float32Array | Float64Array, ind!.data as IndexArray, [...ind!.shape], axis, [...x!.shape]);
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g]) => g!.shape.reduce<number>((p, d) => p * (d ?? 0), 1),
  vjp: ({ e, inputs: [, ind], g, attrs }) => [e.op('gather', [g, ind!], { axis: attrs.axis }), null, null],
  jvp: ({ e, inputs: [, ind, x], tangents: [t], attrs }) => (t ? e.op('scatter_add_like', [t, ind!, x!], { axis: attrs.axis }) : null),
  vmap: batchScatter('scatter_add_like', (b, attrs, rank) => ({ ...attrs, axis: b.axis(attrs.axis, rank, 0) + 1 })),
  samples: [
    {
      inputs: [{ shape: [2, 2, 3] }, { shape: [2, 2], dtype: 'INT64', values: [1, -1, 1, 0] }, { shape: [4, 3] }],
      attrs: { axis: 0 }, note: 'duplicates accumulate',
    },
  ],
};

interface OneHotAttrs { depth: number; axis: number; datatype: string }

const dtypeNames = Object.keys(DTYPE_ALIASES) as [string, ...string[]];

const oneHot: OpDef<OneHotAttrs> = {
  name: 'one_hot',
  inputs: ['indices'],
  attrs: z.strictObject({
    depth: intSchema.min(0).describe('number of classes'),
    axis: intSchema.default(-1).describe('position of the new class axis in the output'),
    datatype: z.enum(dtypeNames).default('FP32').describe('output datatype'),
  }),
  outputDatatype: 'attrs.datatype (FP32 by default)',
  differentiable: false,
  doc: 'One-hot encoding of integer indices along a new axis.',
  conventions: ['indices outside [0, depth) give an all-zero row (TensorFlow)'],
  infer([ind], attrs, ctx) {
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    const axis = axisOrFail(attrs.axis, ind!.shape.length + 1, ctx);
    const shape = [...ind!.shape];
    shape.splice(axis, 0, attrs.depth);
    return { shape, dtype: parseDType(attrs.datatype) as DType };
  },
  async run([ind], attrs, k) {
    const axis = normAxis(attrs.axis, ind!.shape.length + 1);
    const dtype = parseDType(attrs.datatype) as DType;
    const data = await k.oneHot(ind!.data as IndexArray, [...ind!.shape], attrs.depth, axis, dtype);
    const shape = [...ind!.shape];
    shape.splice(axis, 0, attrs.depth);
    return { dtype, shape, data };
  },
  flops: (_i, out) => out.shape.reduce<number>((p, d) => p * (d ?? 0), 1),
  datatypeAttr: { name: 'datatype', default: 'FP32' },
  vmap({ b, inputs: [ind], attrs }) {
    b.out('one_hot', [ind!.name], { ...attrs, axis: b.axis(attrs.axis, ind!.shape.length + 1, -1) + 1 });
    return true;
  },
  samples: [
    { inputs: [{ shape: [3], dtype: 'INT64', values: [0, 2, 5] }], attrs: { depth: 4, axis: -1, datatype: 'FP64' }, note: 'out of range row' },
  ],
};

export const ops: OpDef[] = [slice, gather, oneHot, sliceGrad, scatterAddLike];
