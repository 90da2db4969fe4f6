/**
 * Datatype and broadcasting rules shared by the elementwise families (unary, binary, select, misc), and the two
 * helpers their derivative rules lean on: `unbroadcast` (cotangent back to an input's shape) and `fitTo` (tangent out
 * to the output's shape). Both emit internal ops so derivative graphs stay valid when dims are unknown (null).
 */
import { GradserveError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { broadcastShapes, fmtSymShape, isConcrete, sameShape, symNumel, type SymShape } from '../tensor/shape.js';
import type { Emitter, InferContext, Ref, ValueMeta } from './types.js';

export const FLOAT_DTYPES: readonly DType[] = ['FP32', 'FP64'];
export const NUMERIC_DTYPES: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64'];
export const ANY_DTYPE: readonly DType[] = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];

export function nodeLabel(ctx: InferContext): string {
  return `node "${ctx.node}" (${ctx.op})`;
}

function failAt(code: 'DATATYPE_MISMATCH' | 'SHAPE_MISMATCH' | 'INVALID_ATTRS', ctx: InferContext, message: string, path = ctx.path): never {
  const detail = `${nodeLabel(ctx)}: ${message}`;
  throw new GradserveError(code, detail, { errors: [{ path, message: detail }] });
}

/** An attribute constraint beyond the schema: points at `attr` when given, else at the node's attrs. */
export function failAttrs(ctx: InferContext, message: string, attr?: string): never {
  failAt('INVALID_ATTRS', ctx, message, attr === undefined ? `${ctx.path}.attrs` : `${ctx.path}.attrs.${attr}`);
}

/**
 * The datatype shared by `inputs` (no implicit promotion), checked against `allowed`. `names` are the op's input names
 * so the message can say which operand is off.
 */
export function commonDtype(inputs: readonly ValueMeta[], names: readonly string[], allowed: readonly DType[], ctx: InferContext): DType {
  const first = inputs[0]!;
  for (let i = 1; i < inputs.length; i++) {
    const v = inputs[i]!;
    if (v.dtype !== first.dtype) {
      failAt('DATATYPE_MISMATCH', ctx,
        `${names[0]} is ${first.dtype} but ${names[i]} is ${v.dtype}; inputs must share a datatype (no implicit promotion, use cast)`);
    }
  }
  requireDtype(first.dtype, names[0]!, allowed, ctx);
  return first.dtype;
}

export function requireDtype(dtype: DType, name: string, allowed: readonly DType[], ctx: InferContext): void {
  if (!allowed.includes(dtype)) {
    failAt('DATATYPE_MISMATCH', ctx, `${name} is ${dtype}; ${ctx.op} accepts ${allowed.join(', ')} (use cast)`);
  }
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
    failAt('SHAPE_MISMATCH', ctx, `shapes ${inputs.map((v) => fmtSymShape(v.shape)).join(', ')} do not broadcast`, `${ctx.path}.inputs[${bad}]`);
  }
  return out;
}

/** Elements of a value, 0 while a dim is unknown (cost estimates only run on concrete shapes). */
export function elements(v: ValueMeta): number {
  return symNumel(v.shape) ?? 0;
}

/** Statically the same concrete shape, so no reshaping node is needed. */
function provablySameShape(a: Ref, b: Ref): boolean {
  return isConcrete(a.shape) && isConcrete(b.shape) && sameShape(a.shape, b.shape);
}

/** Sum a cotangent (with the broadcast output's shape) back to the shape of the input `x` it came from. */
export function unbroadcast(e: Emitter, g: Ref, x: Ref): Ref {
  return provablySameShape(g, x) ? g : e.op('sum_to_like', [g, x]);
}

/** Broadcast a tangent (with an input's shape) to the shape of the op's output `like`. */
export function fitTo(e: Emitter, t: Ref, like: Ref): Ref {
  return provablySameShape(t, like) ? t : e.op('broadcast_like', [t, like]);
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
