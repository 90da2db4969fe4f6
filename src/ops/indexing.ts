/**
 * Element-wise indexing along one axis: take_along_axis (torch.gather, ONNX GatherElements) and scatter_add (ONNX
 * ScatterElements with reduction add), plus the internal `take_along_axis_grad` (zeros shaped like x with g
 * scatter-added at the indices: take_along_axis's VJP, whose own VJP is take_along_axis again). Indices have the
 * data's rank and, off `axis`, its sizes; negative indices count from the end; an index outside its axis is
 * INDEX_OUT_OF_RANGE, found by the native kernel. The rearranging ops (rearrange.ts) and the sorting ops (sorting.ts)
 * are exported from here too, so the registry collects the family from one module.
 */
import { z } from 'zod';
import type { IndexArray } from '../kernels.types.js';
import type { SymShape } from '../tensor/shape.js';
import type { BatchedValue, InferContext, OpDef, ValueMeta, VmapArgs } from './types.js';
import {
  ANY, axisOrFail, elements, failNode, fmt, FP, INDEX, inputAt, intSchema, needDtype, normAxis, NUMERIC, sameDtype,
} from './common.js';
import { ops as rearrangeOps } from './rearrange.js';
import { ops as sortingOps } from './sorting.js';

interface AxisAttrs { axis: number }

const axisAttrs = z.strictObject({
  axis: intSchema.default(0).describe('the axis the indices run along (negative counts from the end)'),
});

const INDEX_CONVENTIONS = [
  'indices have the rank of x and, on every axis but `axis`, its sizes',
  'negative indices count from the end; outside [-n, n) is INDEX_OUT_OF_RANGE',
];

/**
 * The axis (normalized) after checking that `ind` (input `at` of the node) has x's rank and, off the axis, x's sizes.
 * Returns the index shape with x's known sizes filled in where the indices' are unknown.
 */
function checkIndices(x: ValueMeta, ind: ValueMeta, axisAttr: number, ctx: InferContext, at: number, what = 'x'): { axis: number; shape: SymShape } {
  if (x.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `cannot index along an axis of rank-0 ${what} ${fmt(x.shape)}`);
  const axis = axisOrFail(axisAttr, x.shape.length, ctx);
  if (ind.shape.length !== x.shape.length) {
    failNode('SHAPE_MISMATCH', ctx, `indices ${fmt(ind.shape)} must have the rank of ${what} ${fmt(x.shape)} (${x.shape.length})`, inputAt(at));
  }
  const shape = ind.shape.map((d, i) => {
    const xd = x.shape[i]!;
    if (i === axis) return d;
    if (d !== null && xd !== null && d !== xd) {
      failNode('SHAPE_MISMATCH', ctx,
        `indices ${fmt(ind.shape)} must match ${what} ${fmt(x.shape)} on every axis but axis ${axis}; they differ on axis ${i}`, inputAt(at));
    }
    return d ?? xd;
  });
  return { axis, shape };
}

/** Axis attrs of a batched node: the axis (as written) moved past the batch axis. */
const batchedAxis = (b: VmapArgs['b'], attrs: Record<string, unknown>, rank: number) => ({ ...attrs, axis: b.axis(attrs.axis, rank, 0) + 1 });

const takeAlongAxis: OpDef<AxisAttrs> = {
  name: 'take_along_axis',
  inputs: ['x', 'indices'],
  attrs: axisAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'np.take_along_axis(x, indices, axis) (torch.gather, ONNX GatherElements): out[p] = x[p with p[axis] = indices[p]]; the output has the shape of indices.',
  conventions: [...INDEX_CONVENTIONS, 'the gradient scatter-adds, so duplicate indices accumulate'],
  infer([x, ind], attrs, ctx) {
    needDtype(x!.dtype, 'x', ANY, ctx);
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    return { shape: checkIndices(x!, ind!, attrs.axis, ctx, 1).shape, dtype: x!.dtype };
  },
  async run([x, ind], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.gatherElements(x!.data, [...x!.shape], ind!.data as IndexArray, [...ind!.shape], axis, true, 'index');
    return { dtype: x!.dtype, shape: [...ind!.shape], data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x, ind], g, attrs }) => [e.op('take_along_axis_grad', [g, ind!, x!], { axis: normAxis(attrs.axis, x!.shape.length) }), null],
  jvp: ({ e, inputs: [, ind], tangents: [t], attrs }) => (t ? e.op('take_along_axis', [t, ind!], { axis: attrs.axis }) : null),
  vmap({ b, inputs: [x, ind], attrs }) {
    b.out('take_along_axis', [b.tile(x!), b.tile(ind!)], batchedAxis(b, attrs, x!.shape.length));
    return true;
  },
  samples: [
    {
      inputs: [{ shape: [3, 4] }, { shape: [3, 2], dtype: 'INT64', values: [0, 3, -1, 1, 2, 2] }],
      attrs: { axis: 1 }, note: 'a negative index and a duplicate',
    },
    {
      inputs: [{ shape: [3, 2, 2] }, { shape: [4, 2, 2], dtype: 'INT32', values: [0, 1, 2, 0, -3, 2, 1, 1, 0, 0, 2, 1, 1, 2, 0, 2] }],
      attrs: { axis: 0 }, note: 'INT32 indices, more indices than the axis has',
    },
    {
      inputs: [{ shape: [2, 3, 1] }, { shape: [2, 3, 3], dtype: 'INT64', values: Array<number>(18).fill(0) }],
      attrs: { axis: -1 }, note: 'broadcasting a size-1 axis out by index',
    },
  ],
};

/** Zeros shaped like x with g scatter-added at indices along axis: the VJP of take_along_axis; x supplies its shape. */
const takeAlongAxisGrad: OpDef<AxisAttrs> = {
  name: 'take_along_axis_grad',
  inputs: ['g', 'indices', 'x'],
  internal: true,
  attrs: axisAttrs,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: 'Zeros shaped like x, then g (shaped like indices) scatter-added at indices along axis (duplicates accumulate).',
  infer([g, ind, x], attrs, ctx) {
    needDtype(g!.dtype, 'g', FP, ctx);
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    const { shape } = checkIndices(x!, ind!, attrs.axis, ctx, 1);
    const ok = g!.shape.length === shape.length && g!.shape.every((d, i) => d === null || shape[i] === null || d === shape[i]);
    if (!ok) failNode('SHAPE_MISMATCH', ctx, `g ${fmt(g!.shape)} must have the shape of indices ${fmt(ind!.shape)}`, inputAt(0));
    return { shape: [...x!.shape], dtype: g!.dtype };
  },
  async run([g, ind, x], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.scatterAddElements(null, [...x!.shape], ind!.data as IndexArray, [...ind!.shape], g!.data, axis);
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g]) => elements(g!),
  vjp: ({ e, inputs: [, ind], g, attrs }) => [e.op('take_along_axis', [g, ind!], { axis: attrs.axis }), null, null],
  jvp: ({ e, inputs: [, ind, x], tangents: [t], attrs }) => (t ? e.op('take_along_axis_grad', [t, ind!, x!], { axis: attrs.axis }) : null),
  vmap: batchScatter('take_along_axis_grad'),
  samples: [
    {
      inputs: [{ shape: [3, 2] }, { shape: [3, 2], dtype: 'INT64', values: [0, 3, -1, 3, 2, 2] }, { shape: [3, 4] }],
      attrs: { axis: 1 }, note: 'duplicates accumulate',
    },
  ],
};

/**
 * Batching rule of the scatters whose last input only carries the output shape: when g and the indices are
 * unbatched so is the result (on a zero carrier); else every operand gains the batch axis and the axis moves past it.
 */
function batchScatter(op: string) {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    const [g, ind, like] = inputs as [BatchedValue, BatchedValue, BatchedValue];
    if (!g.batched && !ind.batched) {
      b.out(op, [g.name, ind.name, b.zeros(like.dtype, like.shape)], attrs);
      return false;
    }
    const carrier = like.batched ? like.name : b.zeros(like.dtype, [b.K, ...like.shape]);
    b.out(op, [b.tile(g), b.tile(ind), carrier], batchedAxis(b, attrs, like.shape.length));
    return true;
  };
}

const scatterAdd: OpDef<AxisAttrs> = {
  name: 'scatter_add',
  inputs: ['x', 'indices', 'updates'],
  attrs: axisAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'ONNX ScatterElements with reduction add (torch.scatter_add): x with updates[p] added at p with p[axis] = indices[p]; updates have the shape of indices.',
  conventions: [
    ...INDEX_CONVENTIONS,
    'duplicate indices accumulate',
    'the gradient of x is g; that of updates is take_along_axis(g, indices)',
  ],
  infer([x, ind, upd], attrs, ctx) {
    const dtype = sameDtype([x!, upd!], ['x', 'updates'], NUMERIC, ctx);
    needDtype(ind!.dtype, 'indices', INDEX, ctx);
    const { shape } = checkIndices(x!, ind!, attrs.axis, ctx, 1);
    const ok = upd!.shape.length === shape.length && upd!.shape.every((d, i) => d === null || shape[i] === null || d === shape[i]);
    if (!ok) failNode('SHAPE_MISMATCH', ctx, `updates ${fmt(upd!.shape)} must have the shape of indices ${fmt(ind!.shape)}`, inputAt(2));
    return { shape: [...x!.shape], dtype };
  },
  async run([x, ind, upd], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.scatterAddElements(x!.data, [...x!.shape], ind!.data as IndexArray, [...ind!.shape], upd!.data, axis);
    return { dtype: x!.dtype, shape: [...x!.shape], data };
  },
  flops: ([x, , upd]) => elements(x!) + elements(upd!),
  vjp: ({ e, inputs: [, ind], g, attrs }) => [g, null, e.op('take_along_axis', [g, ind!], { axis: attrs.axis })],
  jvp({ e, inputs: [x, ind], tangents: [tx, , tu], attrs }) {
    if (!tu) return tx!;
    if (!tx) return e.op('take_along_axis_grad', [tu, ind!, x!], { axis: attrs.axis });
    return e.op('scatter_add', [tx, ind!, tu], { axis: attrs.axis });
  },
  vmap({ b, inputs: [x, ind, upd], attrs }) {
    b.out('scatter_add', [b.tile(x!), b.tile(ind!), b.tile(upd!)], batchedAxis(b, attrs, x!.shape.length));
    return true;
  },
  samples: [
    {
      inputs: [{ shape: [3, 4] }, { shape: [3, 2], dtype: 'INT64', values: [0, 3, -1, 1, 2, 2] }, { shape: [3, 2] }],
      attrs: { axis: 1 }, note: 'a negative index and a duplicate',
    },
    {
      inputs: [{ shape: [2, 3] }, { shape: [4, 3], dtype: 'INT32', values: [0, 1, 1, 1, -2, 0, 0, 0, 1, 1, 1, 0] }, { shape: [4, 3] }],
      attrs: { axis: -2 }, note: 'INT32 indices, more updates than the axis has',
    },
    {
      inputs: [
        { shape: [2, 3], dtype: 'INT32', values: [1, 2, 3, 4, 5, 6] },
        { shape: [2, 2], dtype: 'INT64', values: [2, 2, 0, -1] },
        { shape: [2, 2], dtype: 'INT32', values: [10, 20, 30, 40] },
      ],
      attrs: { axis: 1 }, note: 'INT32 data',
    },
  ],
};

export const ops: OpDef[] = [takeAlongAxis, scatterAdd, takeAlongAxisGrad, ...rearrangeOps, ...sortingOps];
