/**
 * Shape and datatype inference: input metas from tensors (checked against the declarations) or from declarations alone
 * (symbolic transforms, null dims), then every node's meta from its op's `infer`, dependencies first.
 */
import { GradserveError, fail, fmtShape } from '../errors.js';
import type { InferContext, ValueMeta } from '../ops/types.js';
import type { DType } from '../tensor/dtype.js';
import { MAX_DIM, fmtSymShape } from '../tensor/shape.js';
import type { CompiledGraph, CompiledNode } from './validate.js';

export type Metas = Map<string, ValueMeta>;

export interface TensorLike {
  dtype: DType;
  shape: readonly number[];
}

/** Checks one tensor against an input declaration: DATATYPE_MISMATCH / SHAPE_MISMATCH at `path`. */
export function checkAgainstDeclaration(name: string, t: TensorLike, decl: { dtype?: DType; shape?: (number | null)[] }, path: string): void {
  if (decl.dtype !== undefined && t.dtype !== decl.dtype) {
    fail('DATATYPE_MISMATCH', `input "${name}" is ${t.dtype}, the graph declares ${decl.dtype}`, path);
  }
  if (decl.shape !== undefined) {
    const s = decl.shape;
    const ok = s.length === t.shape.length && s.every((d, i) => d === null || d === t.shape[i]);
    if (!ok) fail('SHAPE_MISMATCH', `input "${name}" has shape ${fmtShape(t.shape)}, the graph declares ${fmtSymShape(s)}`, path);
  }
}

/** Metas of the graph inputs from the request's tensors (`inputs.x` paths). Extra tensors are UNKNOWN_VALUE. */
export function inputMetasFromTensors(c: CompiledGraph, tensors: Record<string, TensorLike>, prefix = 'inputs'): Metas {
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    fail('INVALID_REQUEST', `${prefix} must be an object {name: tensor}`, prefix);
  }
  const metas: Metas = new Map();
  for (const name of Object.keys(tensors)) {
    if (!c.inputs.has(name)) {
      const what = c.kinds.has(name) ? `is a ${c.kinds.get(name)}, not a graph input` : 'names no graph input';
      fail('UNKNOWN_VALUE', `${prefix}.${name}: "${name}" ${what}`, `${prefix}.${name}`);
    }
  }
  for (const [name, decl] of c.inputs) {
    const t = Object.hasOwn(tensors, name) ? tensors[name] : undefined;
    if (t === undefined) fail('MISSING_INPUT', `graph input "${name}" has no tensor`, `${prefix}.${name}`);
    if (typeof t !== 'object' || t === null || typeof t.dtype !== 'string' || !Array.isArray(t.shape)) {
      fail('INVALID_TENSOR', `${prefix}.${name}: expected a tensor {dtype, shape, data}`, `${prefix}.${name}`);
    }
    checkAgainstDeclaration(name, t, decl, `${prefix}.${name}`);
    metas.set(name, { shape: [...t.shape], dtype: t.dtype });
  }
  return metas;
}

/**
 * Metas of the graph inputs from their declarations only (symbolic transforms). An undeclared datatype is FP32, the
 * wire format's default; an undeclared shape is resolved by the caller (src/autodiff/rank_free.ts) before this runs.
 */
export function inputMetasFromDeclarations(c: CompiledGraph): Metas {
  const metas: Metas = new Map();
  for (const [name, decl] of c.inputs) {
    if (decl.shape === undefined) {
      fail('SHAPE_MISMATCH', `input "${name}" declares no shape; declare its shape (null for unknown sizes) to transform this graph`, decl.path);
    }
    metas.set(name, { shape: [...decl.shape], dtype: decl.dtype ?? 'FP32' });
  }
  return metas;
}

/** Runs an op's infer, making sure a failure names the node and points at it. */
export function inferNode(n: Pick<CompiledNode, 'name' | 'op' | 'attrs' | 'path'>, ins: ValueMeta[]): ValueMeta {
  const ctx: InferContext = { node: n.name, op: n.op.name, path: n.path };
  let meta: ValueMeta;
  try {
    meta = n.op.infer(ins, n.attrs, ctx);
  } catch (e) {
    if (e instanceof GradserveError) {
      if (e.errors !== undefined) throw e;
      throw new GradserveError(e.code, e.message, { errors: [{ path: n.path, message: e.message }], cause: e });
    }
    const shapes = ins.map((m) => `${fmtSymShape(m.shape)} ${m.dtype}`).join(', ');
    throw new GradserveError('INTERNAL', `node "${n.name}" (${n.op.name}): shape rule failed on ${shapes}: ${(e as Error).message}`, { cause: e });
  }
  // A computed dimension (a product of dims, a zero-size tensor's huge sibling dim) must stay an exact integer: past
  // 2^53 - 1 neither the element counts nor the attrs of derivative rules built from it are exact.
  const big = meta.shape.find((d) => d !== null && !(d <= MAX_DIM));
  if (big !== undefined) {
    fail('TOO_LARGE', `node "${n.name}" (${n.op.name}): its value would have shape ${fmtSymShape(meta.shape)}, with a dimension over the largest, 2^53 - 1`, n.path);
  }
  return meta;
}

/** Metas of every value: inputs (given), constants and nodes. */
export function inferAll(c: CompiledGraph, inputMetas: Metas): Metas {
  const metas: Metas = new Map(inputMetas);
  for (const [name, t] of c.constants) metas.set(name, { shape: [...t.shape], dtype: t.dtype });
  for (const n of c.order) {
    metas.set(n.name, inferNode(n, n.inputs.map((i) => metas.get(i)!)));
  }
  return metas;
}
