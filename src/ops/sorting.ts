/**
 * Sorting along one axis: sort (values) / argsort (INT64 indices), top_k (values) / top_k_indices. One native kernel
 * gives the indices of a stable sort (NaN larger than every number; ties keep their order in both directions), or of
 * its first k entries; values are take_along_axis of x by those indices. So the derivative of sort and top_k is the
 * derivative of take_along_axis at indices recomputed from x (an index op has no gradient): the cotangent is scattered
 * back to the positions it came from, and second order works through take_along_axis_grad.
 */
import { z } from 'zod';
import type { OpDef, OpKernels, Ref, ValueMeta, VmapArgs, InferContext, Emitter } from './types.js';
import type { Tensor } from '../tensor/tensor.js';
import { axisOrFail, elements, failNode, fmt, intSchema, needDtype, normAxis, NUMERIC } from './common.js';

interface SortAttrs { axis: number; descending: boolean }
interface TopKAttrs { k: number; axis: number; largest: boolean }

const sortAttrs = z.strictObject({
  axis: intSchema.default(-1).describe('the axis to sort along (negative counts from the end)'),
  descending: z.boolean().default(false).describe('largest first'),
});

const topKAttrs = z.strictObject({
  k: intSchema.min(0).describe('how many entries to keep (at most the size of the axis)'),
  axis: intSchema.default(-1).describe('the axis to select along (negative counts from the end)'),
  largest: z.boolean().default(true).describe('the k largest (true) or the k smallest (false)'),
});

const SORT_CONVENTIONS = [
  'stable: equal values keep their original order, also when descending',
  'NaN is larger than every number: last ascending, first descending',
];

function sortAxis(x: ValueMeta, axis: number, ctx: InferContext): number {
  if (x.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} has no axis to sort along`);
  return axisOrFail(axis, x.shape.length, ctx);
}

/** Indices of the sort (k = the axis size) or of its first k entries, and the shape they have. */
async function indicesOf(x: Tensor, axis: number, descending: boolean, k: number | null, ops: OpKernels): Promise<Tensor> {
  const shape = [...x.shape];
  const n = normAxis(axis, shape.length);
  const kk = k ?? shape[n]!;
  const data = await ops.sortIndices(x.data, shape, n, descending, kk);
  shape[n] = kk;
  return { dtype: 'INT64', shape, data };
}

/** The values at those indices: a take_along_axis on the same axis. */
async function valuesAt(x: Tensor, ind: Tensor, axis: number, ops: OpKernels): Promise<Tensor> {
  const n = normAxis(axis, x.shape.length);
  const data = await ops.gatherElements(x.data, [...x.shape], ind.data as BigInt64Array, [...ind.shape], n, false, 'index');
  return { dtype: x.dtype, shape: [...ind.shape], data };
}

const sortFlops = ([x]: ValueMeta[], _o: ValueMeta, a: { axis: number }): number => {
  const n = x!.shape[normAxis(a.axis, x!.shape.length)] ?? 0;
  return elements(x!) * Math.max(1, Math.ceil(Math.log2(Math.max(n, 1))));
};

/** Batching rule of the whole family: the axis (as written) moved past the batch axis. */
function batchAlongAxis(op: string) {
  return ({ b, inputs: [x], attrs }: VmapArgs): boolean => {
    b.out(op, [x!.name], { ...attrs, axis: b.axis(attrs.axis, x!.shape.length, -1) + 1 });
    return true;
  };
}

/** The derivative rules of a value op: its values are take_along_axis(x, indices) with indices from `indexOp`. */
function throughIndices(indexOp: string) {
  const indices = (e: Emitter, x: Ref, attrs: object): Ref => e.op(indexOp, [x], { ...attrs });
  return {
    vjp: ({ e, inputs: [x], g, attrs }: { e: Emitter; inputs: Ref[]; g: Ref; attrs: { axis: number } }) =>
      [e.op('take_along_axis_grad', [g, indices(e, x!, attrs), x!], { axis: normAxis(attrs.axis, x!.shape.length) })],
    jvp: ({ e, inputs: [x], tangents: [t], attrs }: { e: Emitter; inputs: Ref[]; tangents: (Ref | null)[]; attrs: { axis: number } }) =>
      e.op('take_along_axis', [t!, indices(e, x!, attrs)], { axis: normAxis(attrs.axis, x!.shape.length) }),
  };
}

const sort: OpDef<SortAttrs> = {
  name: 'sort',
  inputs: ['x'],
  attrs: sortAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'The values of x sorted along axis (torch.sort(stable=True).values, np.sort).',
  conventions: [...SORT_CONVENTIONS, 'the gradient goes back to the position each value came from'],
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', NUMERIC, ctx);
    sortAxis(x!, attrs.axis, ctx);
    return { shape: [...x!.shape], dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    return valuesAt(x!, await indicesOf(x!, attrs.axis, attrs.descending, null, k), attrs.axis, k);
  },
  flops: sortFlops,
  ...throughIndices('argsort'),
  vmap: batchAlongAxis('sort'),
  samples: [
    { inputs: [{ shape: [3, 5] }], attrs: { axis: -1, descending: false }, note: 'last axis' },
    { inputs: [{ shape: [4, 2, 3] }], attrs: { axis: 0, descending: true }, note: 'leading axis, descending' },
    { inputs: [{ shape: [6], dtype: 'INT32', values: [3, -1, 3, 0, 7, -1] }], attrs: {} as SortAttrs, note: 'INT32 with ties, default attrs' },
  ],
};

const argsort: OpDef<SortAttrs> = {
  name: 'argsort',
  inputs: ['x'],
  attrs: sortAttrs,
  outputDatatype: 'INT64',
  differentiable: false,
  doc: 'The indices that sort x along axis (torch.argsort(stable=True), np.argsort(kind="stable")).',
  conventions: SORT_CONVENTIONS,
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', NUMERIC, ctx);
    sortAxis(x!, attrs.axis, ctx);
    return { shape: [...x!.shape], dtype: 'INT64' };
  },
  run: async ([x], attrs, k) => indicesOf(x!, attrs.axis, attrs.descending, null, k),
  flops: sortFlops,
  vmap: batchAlongAxis('argsort'),
  samples: [
    { inputs: [{ shape: [3, 4] }], attrs: { axis: 1, descending: true } },
    { inputs: [{ shape: [5], dtype: 'INT64', values: [2, 0, 2, -4, 0] }], attrs: { axis: 0, descending: false }, note: 'INT64 with ties' },
  ],
};

function topKShape(x: ValueMeta, attrs: TopKAttrs, ctx: InferContext): ValueMeta['shape'] {
  if (x.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} has no axis to select along`);
  const axis = axisOrFail(attrs.axis, x.shape.length, ctx);
  const n = x.shape[axis];
  if (n !== null && n !== undefined && attrs.k > n) {
    failNode('SHAPE_MISMATCH', ctx, `k ${attrs.k} is more than the ${n} entries of axis ${axis} of x ${fmt(x.shape)}`);
  }
  const shape = [...x.shape];
  shape[axis] = attrs.k;
  return shape;
}

const TOPK_CONVENTIONS = [
  'k beyond the size of the axis is SHAPE_MISMATCH',
  'the values come sorted: largest first (largest: true) or smallest first',
  'ties go to the earlier position; NaN is larger than every number',
];

const topK: OpDef<TopKAttrs> = {
  name: 'top_k',
  inputs: ['x'],
  attrs: topKAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'The k largest (or smallest) values of x along axis, sorted (torch.topk(...).values).',
  conventions: [...TOPK_CONVENTIONS, 'the gradient goes to the selected positions, zero elsewhere'],
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', NUMERIC, ctx);
    return { shape: topKShape(x!, attrs, ctx), dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    return valuesAt(x!, await indicesOf(x!, attrs.axis, attrs.largest, attrs.k, k), attrs.axis, k);
  },
  flops: sortFlops,
  ...throughIndices('top_k_indices'),
  vmap: batchAlongAxis('top_k'),
  samples: [
    { inputs: [{ shape: [3, 5] }], attrs: { k: 2, axis: -1, largest: true }, note: 'two largest' },
    { inputs: [{ shape: [4, 3] }], attrs: { k: 3, axis: 0, largest: false }, note: 'three smallest on the leading axis' },
    { inputs: [{ shape: [2, 3] }], attrs: { k: 3, axis: 1, largest: true }, note: 'k = the axis size' },
    { inputs: [{ shape: [5], dtype: 'INT32', values: [4, 9, -2, 9, 0] }], attrs: { k: 3 } as TopKAttrs, note: 'INT32 with ties, default axis and largest' },
  ],
};

const topKIndices: OpDef<TopKAttrs> = {
  name: 'top_k_indices',
  inputs: ['x'],
  attrs: topKAttrs,
  outputDatatype: 'INT64',
  differentiable: false,
  doc: 'The positions of the k largest (or smallest) values of x along axis, in the order top_k gives the values (torch.topk(...).indices).',
  conventions: TOPK_CONVENTIONS,
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', NUMERIC, ctx);
    return { shape: topKShape(x!, attrs, ctx), dtype: 'INT64' };
  },
  run: async ([x], attrs, k) => indicesOf(x!, attrs.axis, attrs.largest, attrs.k, k),
  flops: sortFlops,
  vmap: batchAlongAxis('top_k_indices'),
  samples: [
    { inputs: [{ shape: [3, 5] }], attrs: { k: 2, axis: -1, largest: false } },
    { inputs: [{ shape: [2, 4, 2] }], attrs: { k: 0, axis: 1, largest: true }, note: 'k = 0' },
  ],
};

export const ops: OpDef[] = [sort, argsort, topK, topKIndices];
