/**
 * Shape-polymorphic ops that derivative rules are written with. Each takes its target shape from a second input
 * instead of an attribute, so a derivative graph built for symbolic shapes (null dims) stays valid for every concrete
 * shape, and each has its own VJP/JVP so derivatives of derivatives work.
 *
 *   sum_to_like(g, x)     sum g down to x's shape: the one "unbroadcast" helper of every broadcasting VJP
 *   broadcast_like(x, y)  broadcast x up to y's shape
 *   reshape_like(x, y)    x with y's shape (same element count)
 *   zeros_like(x)         zeros of x's shape and datatype
 *   ones_like(x)          ones of x's shape and datatype
 */
import { z } from 'zod';
import { fail } from '../errors.js';
import { scalarArray } from '../tensor/dtype.js';
import { broadcastShapes, fmtSymShape, sameShape, symNumel, type SymShape } from '../tensor/shape.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { defineOp, type InferContext, type OpKernels, type ValueMeta, type VmapArgs } from './types.js';

const noAttrs = z.object({}).strict();
type NoAttrs = z.infer<typeof noAttrs>;

function where(ctx: InferContext): string {
  return `node "${ctx.node}" (${ctx.op})`;
}

/** True when `small` broadcasts to exactly `big` (unknown dims are given the benefit of the doubt). */
function broadcastsTo(small: SymShape, big: SymShape): boolean {
  if (small.length > big.length) return false;
  const b = broadcastShapes(small, big);
  if (b === undefined || b.length !== big.length) return false;
  return b.every((d, i) => d === big[i] || d === null || big[i] === null);
}

/** Axes of `from` that summing down to `to` must reduce: the extra leading ones and those where `to` has 1. */
export function unbroadcastAxes(from: readonly number[], to: readonly number[]): number[] {
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
  }
  return axes;
}

function reshaped(t: Tensor, shape: readonly number[]): Tensor {
  return { dtype: t.dtype, shape: [...shape], data: t.data };
}

/** A tensor of meta's shape and datatype filled with `value`: a kernel call, so native programs can run it too. */
async function filled(meta: Tensor, value: number, k: OpKernels): Promise<Tensor> {
  const data = await k.broadcastTo(scalarArray(meta.dtype, value), [], [...meta.shape]);
  return { dtype: meta.dtype, shape: [...meta.shape], data };
}

/** zeros_like / ones_like batched: the same constant for every batch member (only the shape is read). */
function filledVmap(value: number) {
  return ({ b, output }: VmapArgs): boolean => {
    b.out('broadcast_to', [b.scalar(value, output.dtype)], { shape: [...output.shape] });
    return false;
  };
}

export const sum_to_like = defineOp<NoAttrs>({
  name: 'sum_to_like',
  inputs: ['g', 'x'],
  attrs: noAttrs,
  outputDatatype: 'same as g',
  differentiable: true,
  internal: true,
  doc: "Sums g over the axes that broadcasting added, down to x's shape.",
  infer([g, x], _a, ctx): ValueMeta {
    if (!broadcastsTo(x!.shape, g!.shape)) {
      fail('SHAPE_MISMATCH', `${where(ctx)}: cannot sum ${fmtSymShape(g!.shape)} down to ${fmtSymShape(x!.shape)}`, ctx.path);
    }
    return { shape: [...x!.shape], dtype: g!.dtype };
  },
  async run([g, x], _a, k) {
    if (sameShape(g!.shape, x!.shape)) return g!;
    const axes = unbroadcastAxes(g!.shape, x!.shape);
    const data = await k.reduce('sum', g!.data, [...g!.shape], axes);
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g]) => symNumel(g!.shape) ?? 0,
  vjp: ({ e, inputs: [g], g: gg }) => [e.op('broadcast_like', [gg, g!]), null],
  jvp: ({ e, inputs: [, x], tangents: [tg] }) => (tg ? e.op('sum_to_like', [tg, x!]) : null),
  // x only supplies its shape, which every batch member shares; g keeps its batch axis, if it has one.
  vmap({ b, inputs: [g], output }) {
    const axes = unbroadcastAxes(g!.shape, output.shape);
    const off = g!.batched ? 1 : 0;
    const target = g!.batched ? [b.K, ...output.shape] : [...output.shape];
    const summed = axes.length === 0 ? g!.name : b.tmp('sum', [g!.name], { axes: axes.map((a) => a + off), keepdims: true });
    b.out('reshape', [summed], { shape: target });
    return g!.batched;
  },
  aliases: 'same-shape',
  rankFree: true,
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [3] }], note: 'leading axis' },
    { inputs: [{ shape: [2, 3] }, { shape: [2, 1] }], note: 'kept axis of size 1' },
    { inputs: [{ shape: [4, 2, 3] }, { shape: [1, 3] }], note: 'both' },
  ],
});

export const broadcast_like = defineOp<NoAttrs>({
  name: 'broadcast_like',
  inputs: ['x', 'y'],
  attrs: noAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  internal: true,
  doc: "Broadcasts x to y's shape.",
  infer([x, y], _a, ctx): ValueMeta {
    if (!broadcastsTo(x!.shape, y!.shape)) {
      fail('SHAPE_MISMATCH', `${where(ctx)}: cannot broadcast ${fmtSymShape(x!.shape)} to ${fmtSymShape(y!.shape)}`, ctx.path);
    }
    return { shape: [...y!.shape], dtype: x!.dtype };
  },
  async run([x, y], _a, k) {
    if (sameShape(x!.shape, y!.shape)) return x!;
    if (numel(x!.shape) === numel(y!.shape)) return reshaped(x!, y!.shape);
    const data = await k.broadcastTo(x!.data, [...x!.shape], [...y!.shape]);
    return { dtype: x!.dtype, shape: [...y!.shape], data };
  },
  flops: (_i, out) => symNumel(out.shape) ?? 0,
  vjp: ({ e, inputs: [x], g }) => [e.op('sum_to_like', [g, x!]), null],
  jvp: ({ e, inputs: [, y], tangents: [tx] }) => (tx ? e.op('broadcast_like', [tx, y!]) : null),
  vmap({ b, inputs: [x], output }) {
    if (!x!.batched) b.out('broadcast_to', [x!.name], { shape: [...output.shape] });
    else b.out('broadcast_to', [b.lift(x!, output.shape.length)], { shape: [b.K, ...output.shape] });
    return x!.batched;
  },
  aliases: 'same-shape',
  rankFree: true,
  samples: [
    { inputs: [{ shape: [3] }, { shape: [2, 3] }] },
    { inputs: [{ shape: [2, 1] }, { shape: [2, 3] }] },
  ],
});

export const reshape_like = defineOp<NoAttrs>({
  name: 'reshape_like',
  inputs: ['x', 'y'],
  attrs: noAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  internal: true,
  doc: "x with y's shape (same element count).",
  infer([x, y], _a, ctx): ValueMeta {
    const nx = symNumel(x!.shape);
    const ny = symNumel(y!.shape);
    if (nx !== null && ny !== null && nx !== ny) {
      fail('SHAPE_MISMATCH', `${where(ctx)}: cannot reshape ${fmtSymShape(x!.shape)} to ${fmtSymShape(y!.shape)}`, ctx.path);
    }
    return { shape: [...y!.shape], dtype: x!.dtype };
  },
  async run([x, y]) {
    if (numel(x!.shape) !== numel(y!.shape)) {
      fail('SHAPE_MISMATCH', `reshape_like: cannot reshape [${x!.shape.join(', ')}] to [${y!.shape.join(', ')}]`);
    }
    return reshaped(x!, y!.shape);
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x], g }) => [e.op('reshape_like', [g, x!]), null],
  jvp: ({ e, inputs: [, y], tangents: [tx] }) => (tx ? e.op('reshape_like', [tx, y!]) : null),
  vmap({ b, inputs: [x], output }) {
    b.out('reshape', [x!.name], { shape: x!.batched ? [b.K, ...output.shape] : [...output.shape] });
    return x!.batched;
  },
  aliases: 'always',
  rankFree: true,
  samples: [{ inputs: [{ shape: [2, 3] }, { shape: [3, 2] }] }, { inputs: [{ shape: [6] }, { shape: [1, 2, 3] }] }],
});

export const zeros_like = defineOp<NoAttrs>({
  name: 'zeros_like',
  inputs: ['x'],
  attrs: noAttrs,
  outputDatatype: 'same as x',
  differentiable: false,
  internal: true,
  doc: "Zeros of x's shape and datatype.",
  infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
  run: async ([x], _a, k) => filled(x!, 0, k),
  vmap: filledVmap(0),
  rankFree: true,
  samples: [{ inputs: [{ shape: [2, 3] }] }],
});

export const ones_like = defineOp<NoAttrs>({
  name: 'ones_like',
  inputs: ['x'],
  attrs: noAttrs,
  outputDatatype: 'same as x',
  differentiable: false,
  internal: true,
  doc: "Ones of x's shape and datatype.",
  infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
  run: async ([x], _a, k) => filled(x!, 1, k),
  vmap: filledVmap(1),
  rankFree: true,
  samples: [{ inputs: [{ shape: [2, 3] }] }],
});
