/**
 * Helpers shared by the structural op families (reductions, linear algebra, shape, neural-net losses): error
 * messages that name the node, op and shapes; axis normalization that says which axis is wrong; and the small
 * derivative-graph idioms (re-inserting reduced axes, counting reduced elements) that keep rules shape-polymorphic.
 */
import { z } from 'zod';
import { GradserveError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { fmtSymShape, isConcrete, normalizeAxis, sameShape } from '../tensor/shape.js';
import type { Emitter, InferContext, Ref, ValueMeta } from './types.js';

export const FP: readonly DType[] = ['FP32', 'FP64'];
export const NUMERIC: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64'];
export const ANY: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];
export const INDEX: readonly DType[] = ['INT32', 'INT64'];

type ShapeCode = 'DATATYPE_MISMATCH' | 'SHAPE_MISMATCH' | 'INVALID_ATTRS';

export function label(ctx: InferContext): string {
  return `node "${ctx.node}" (${ctx.op})`;
}

/**
 * A shape/datatype/attrs error of a node. `at` is where in the node the fault is, when the rule can tell:
 * `inputs[1]` (use inputAt) or `attrs.axes` (use attrAt); else the node itself, or its attrs for INVALID_ATTRS.
 */
export function failNode(code: ShapeCode, ctx: InferContext, message: string, at?: string): never {
  const detail = `${label(ctx)}: ${message}`;
  const path = at !== undefined ? `${ctx.path}.${at}` : code === 'INVALID_ATTRS' ? `${ctx.path}.attrs` : ctx.path;
  throw new GradserveError(code, detail, { errors: [{ path, message: detail }] });
}

export const fmt = fmtSymShape;

/** Path suffix of a node's i-th input, for failNode. */
export const inputAt = (i: number): string => `inputs[${i}]`;
/** Path suffix of a node's attribute, for failNode. */
export const attrAt = (name: string): string => `attrs.${name}`;

/** The shared datatype of `inputs`, which must be one of `allowed` (no implicit promotion). */
export function sameDtype(inputs: readonly ValueMeta[], names: readonly string[], allowed: readonly DType[], ctx: InferContext): DType {
  const d = inputs[0]!.dtype;
  for (let i = 1; i < inputs.length; i++) {
    if (inputs[i]!.dtype !== d) {
      failNode('DATATYPE_MISMATCH', ctx,
        `${names[0]} is ${d} but ${names[Math.min(i, names.length - 1)]} is ${inputs[i]!.dtype}; inputs must share a datatype (use cast)`);
    }
  }
  needDtype(d, names[0]!, allowed, ctx);
  return d;
}

export function needDtype(d: DType, name: string, allowed: readonly DType[], ctx: InferContext): void {
  if (!allowed.includes(d)) failNode('DATATYPE_MISMATCH', ctx, `${name} is ${d}; ${ctx.op} accepts ${allowed.join(', ')} (use cast)`);
}

/** One axis normalized against `rank`, or INVALID_ATTRS naming the axis and the rank. */
export function axisOrFail(axis: number, rank: number, ctx: InferContext, what = 'axis', attr = what): number {
  const a = normalizeAxis(axis, rank);
  if (a === undefined) failNode('INVALID_ATTRS', ctx, `${what} ${axis} is out of range for rank ${rank}`, attrAt(attr));
  return a;
}

/** `axes` (int, list or null = all) as a sorted unique list; out of range or repeated axes are INVALID_ATTRS. */
export function axesOrFail(axes: number | number[] | null | undefined, rank: number, ctx: InferContext): number[] {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out: number[] = [];
  for (const a of list) {
    const n = axisOrFail(a, rank, ctx, 'axis', 'axes');
    if (out.includes(n)) failNode('INVALID_ATTRS', ctx, `axis ${a} is repeated in axes [${list.join(', ')}] (rank ${rank})`, attrAt('axes'));
    out.push(n);
  }
  return out.sort((x, y) => x - y);
}

/** Axes normalized without a context: for run() and derivative rules, where infer has already validated them. */
export function normAxes(axes: number | number[] | null | undefined, rank: number): number[] {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((x, y) => x - y);
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Shape after reducing `axes`: removed, or kept as 1. */
export function reducedShape<D>(shape: readonly D[], axes: readonly number[], keepdims: boolean): (D | 1)[] {
  const out: (D | 1)[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

export const intSchema = z.number().int();
/** Any integer (slice bounds may be INT64_MAX-like sentinels that exceed 2^53). */
export const bigIntSchema = z.number().refine(Number.isInteger, { message: 'must be an integer' });
export const axesSchema = z.union([intSchema, z.array(intSchema), z.null()]).default(null)
  .describe('axis or axes to reduce (negative counts from the end); null or omitted = all, [] = none');

export function provablySame(a: ValueMeta, b: ValueMeta): boolean {
  return isConcrete(a.shape) && isConcrete(b.shape) && sameShape(a.shape, b.shape);
}

/** Cotangent summed back to the shape of `x` (undoes broadcasting). */
export function sumTo(e: Emitter, g: Ref, x: Ref): Ref {
  return provablySame(g, x) ? g : e.op('sum_to_like', [g, x]);
}

/** Broadcast v to x's shape: a constant-shape node when x's shape is known, else the shape-polymorphic internal op. */
export function broadcastToLike(e: Emitter, v: Ref, x: Ref): Ref {
  if (isConcrete(x.shape)) return e.op('broadcast_to', [v], { shape: [...x.shape] });
  return e.op('broadcast_like', [v, x]);
}

/** Reshape v to x's shape (same element count). */
export function reshapeToLike(e: Emitter, v: Ref, x: Ref): Ref {
  if (isConcrete(x.shape)) return e.op('reshape', [v], { shape: [...x.shape] });
  return e.op('reshape_like', [v, x]);
}

/**
 * A reduced value with its reduced axes re-inserted as size 1, so it broadcasts against the input. A 0-d value
 * broadcasts as it is, and leaving it alone keeps the rule free of the input's rank.
 */
export function keepDims(e: Emitter, v: Ref, axes: readonly number[], keepdims: boolean): Ref {
  if (keepdims || axes.length === 0 || v.shape.length === 0) return v;
  return e.op('unsqueeze', [v], { axes: [...axes] });
}

/** Scalar count of the elements of `x` along `axes` (as x's datatype), a constant when those dims are known. */
export function countOf(e: Emitter, x: Ref, axes: readonly number[]): Ref {
  let n = 1;
  for (const a of axes) {
    const d = x.shape[a];
    // every axis: null, so the count is right whatever rank x turns out to have
    if (d === null || d === undefined) return e.op('numel_like', [x], { axes: axes.length === x.shape.length ? null : [...axes] });
    n *= d;
  }
  return e.scalar(n, x.dtype);
}

/** Tangent or zero of `like`'s shape, for variadic JVPs where some inputs have no tangent. */
export function orZeros(e: Emitter, t: Ref | null, like: Ref): Ref {
  return t ?? e.op('zeros_like', [like]);
}

/** Apply a loss reduction to a per-example value (mean over every element). */
export function reduceLoss(e: Emitter, v: Ref, reduction: Reduction): Ref {
  if (reduction === 'none') return v;
  return e.op(reduction, [v], { axes: null, keepdims: false });
}

export type Reduction = 'mean' | 'sum' | 'none';
export const reductionSchema = z.enum(['mean', 'sum', 'none']).default('mean')
  .describe('mean (over every element of the per-example loss), sum, or none');

/** Cotangent of a loss output turned into one that broadcasts against the per-example loss of shape `perEx`. */
export function lossCotangent(e: Emitter, g: Ref, reduction: Reduction, countFrom: Ref, countAxes: readonly number[]): Ref {
  if (reduction !== 'mean') return g;
  return e.op('div', [g, countOf(e, countFrom, countAxes)]);
}

/**
 * A run-time index error as a coded Error (like the kernels throw), so the executor names the node, op and path.
 */
export function indexError(message: string): Error {
  return Object.assign(new Error(message), { code: 'INDEX_OUT_OF_RANGE' as const });
}
