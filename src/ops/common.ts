/**
 * What every op family shares: the datatype sets, shape/datatype/attribute errors that name the node, op and shapes
 * (and point at the input or attribute at fault), axis normalization, the broadcasting rule, the attribute schemas
 * several families use, and the derivative-graph idioms the VJP/JVP rules lean on: `unbroadcast` (a cotangent summed
 * back to an input's shape), `fitTo` (a tangent broadcast out to the output's shape), `scaleBy`, re-inserting reduced
 * axes, counting reduced elements and the loss reductions. The idioms emit shape-polymorphic internal ops where a dim
 * is unknown (null), so derivative graphs stay valid for every concrete shape.
 */
import { z } from 'zod';
import { GradserveError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { broadcastShapes, fmtSymShape, isConcrete, normalizeAxis, sameShape, symNumel, type Dim, type SymShape } from '../tensor/shape.js';
import type { Emitter, InferContext, Ref, ValueMeta } from './types.js';

export const FP: readonly DType[] = ['FP32', 'FP64'];
export const NUMERIC: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64'];
export const ANY: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];
export const INDEX: readonly DType[] = ['INT32', 'INT64'];

// ---- errors ----

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

// ---- datatypes and shapes ----

/**
 * The datatype shared by `inputs` (no implicit promotion), checked against `allowed`. `names` are the op's input names
 * so the message can say which operand is off (the last name stands for the rest of a variadic list).
 */
export function sameDtype(inputs: readonly ValueMeta[], names: readonly string[], allowed: readonly DType[], ctx: InferContext): DType {
  const d = inputs[0]!.dtype;
  for (let i = 1; i < inputs.length; i++) {
    if (inputs[i]!.dtype !== d) {
      failNode('DATATYPE_MISMATCH', ctx,
        `${names[0]} is ${d} but ${names[Math.min(i, names.length - 1)]} is ${inputs[i]!.dtype}; inputs must share a datatype (no implicit promotion, use cast)`);
    }
  }
  needDtype(d, names[0]!, allowed, ctx);
  return d;
}

export function needDtype(d: DType, name: string, allowed: readonly DType[], ctx: InferContext): void {
  if (!allowed.includes(d)) failNode('DATATYPE_MISMATCH', ctx, `${name} is ${d}; ${ctx.op} accepts ${allowed.join(', ')} (use cast)`);
}

/** NumPy broadcast shape of `inputs`; an unknown (null) dim only fails against a known one when both are known. */
export function broadcastOrFail(inputs: readonly ValueMeta[], ctx: InferContext): SymShape {
  const out = broadcastShapes(...inputs.map((v) => v.shape));
  if (out === undefined) {
    // the first operand that does not broadcast against the ones before it is the one to point at
    let bad = inputs.length - 1;
    for (let i = 1; i < inputs.length; i++) {
      if (broadcastShapes(...inputs.slice(0, i + 1).map((v) => v.shape)) === undefined) {
        bad = i;
        break;
      }
    }
    failNode('SHAPE_MISMATCH', ctx, `shapes ${inputs.map((v) => fmt(v.shape)).join(', ')} do not broadcast`, inputAt(bad));
  }
  return out;
}

/** Whether two shapes can be the same: equal ranks, and equal dims wherever both are known. */
export function shapesAgree(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === null || b[i] === null || d === b[i]);
}

/**
 * `actual` must be `expected` (an unknown dim on either side agrees with anything): internal ops take shapes from
 * their inputs, and are as callable as public ones, so each checks what it relies on.
 */
export function shapeOrFail(actual: readonly Dim[], expected: readonly Dim[], ctx: InferContext, what: string, at?: string): void {
  if (!shapesAgree(actual, expected)) failNode('SHAPE_MISMATCH', ctx, `${what} has shape ${fmt(actual)}, expected ${fmt(expected)}`, at);
}

/** Elements of a value, 0 while a dim is unknown (cost estimates only run on concrete shapes). */
export function elements(v: ValueMeta): number {
  return symNumel(v.shape) ?? 0;
}

/** Statically the same concrete shape, so no reshaping node is needed. */
export function provablySame(a: ValueMeta, b: ValueMeta): boolean {
  return isConcrete(a.shape) && isConcrete(b.shape) && sameShape(a.shape, b.shape);
}

// ---- axes ----

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

// ---- attribute schemas ----

export const intSchema = z.number().int();
/** Any integer (slice bounds may be INT64_MAX-like sentinels that exceed 2^53). */
export const bigIntSchema = z.number().refine(Number.isInteger, { message: 'must be an integer' });
export const axesSchema = z.union([intSchema, z.array(intSchema), z.null()]).default(null)
  .describe('axis or axes to reduce (negative counts from the end); null or omitted = all, [] = none');

export type Reduction = 'mean' | 'sum' | 'none';
export const reductionSchema = z.enum(['mean', 'sum', 'none']).default('mean')
  .describe('mean (over every element of the per-example loss), sum, or none');

// ---- derivative-graph idioms ----

/** Sum a cotangent (with the broadcast output's shape) back to the shape of the input `x` it came from. */
export function unbroadcast(e: Emitter, g: Ref, x: Ref): Ref {
  return provablySame(g, x) ? g : e.op('sum_to_like', [g, x]);
}

/** Broadcast a tangent (with an input's shape) to the shape of the op's output `like`. */
export function fitTo(e: Emitter, t: Ref, like: Ref): Ref {
  return provablySame(t, like) ? t : e.op('broadcast_like', [t, like]);
}

/** Sum of the non-null terms, broadcast to `like` (null when every term is null: a zero tangent). */
export function sumTerms(e: Emitter, terms: readonly (Ref | null)[], like: Ref): Ref | null {
  let acc: Ref | null = null;
  for (const t of terms) {
    if (t === null) continue;
    acc = acc === null ? t : e.op('add', [acc, t]);
  }
  return acc === null ? null : fitTo(e, acc, like);
}

/**
 * Cotangent/tangent times a local derivative. `mul_no_nan` keeps a zero cotangent from turning a non-finite local
 * derivative (sqrt'(0), log'(0), the untaken branch of a `where`) into NaN (OPS.md "Numerics that tests must pin").
 */
export function scaleBy(e: Emitter, g: Ref, local: Ref): Ref {
  return e.op('mul_no_nan', [g, local]);
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
