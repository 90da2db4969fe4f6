/**
 * The op registry's one definition per op (STYLE.md "Declare an op once"): attrs schema, shape/datatype rule, the
 * kernel call, the VJP and JVP rules written with other ops, sample inputs for the generic tests, and the catalogue
 * text. Ops live in one file per family under src/ops/ and are collected by src/ops/registry.ts.
 */
import type { z } from 'zod';
import type { DType } from '../tensor/dtype.js';
import type { SymShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KernelFns } from '../kernels.types.js';

/** Shape and datatype of a value; dims may be null (unknown size) only while building symbolic transforms. */
export interface ValueMeta {
  shape: SymShape;
  dtype: DType;
}

/** A value of the graph being built by a derivative rule. */
export interface Ref extends ValueMeta {
  readonly name: string;
}

/**
 * What a VJP/JVP rule builds with. Every call appends a node to the derivative graph (shape/datatype inferred by the
 * op's own `infer`, so a rule that builds an ill-typed node fails loudly at transform time).
 */
export interface Emitter {
  op(op: string, inputs: Ref[], attrs?: Record<string, unknown>): Ref;
  /** A scalar constant of the given datatype (broadcasts against anything). */
  scalar(value: number, dtype: DType): Ref;
}

/** Context handed to `infer`, used to name the node in errors. */
export interface InferContext {
  /** node name */
  node: string;
  op: string;
  /** path of the node in the request, e.g. `graph.nodes[3]` */
  path: string;
}

/** Kernels as ops call them: each returns a Promise; the executor runs small work synchronously, big work async. */
export type OpKernels = { [K in keyof KernelFns]: (...args: Parameters<KernelFns[K]>) => Promise<ReturnType<KernelFns[K]>> };

export interface VjpArgs<A> {
  e: Emitter;
  inputs: Ref[];
  output: Ref;
  /** cotangent of the output: same shape and datatype as `output` */
  g: Ref;
  attrs: A;
}

export interface JvpArgs<A> {
  e: Emitter;
  inputs: Ref[];
  output: Ref;
  /** tangent per input, null where the input has zero tangent (at least one is non-null) */
  tangents: (Ref | null)[];
  attrs: A;
}

export interface SampleInput {
  shape: number[];
  dtype?: DType; // default FP64 in gradient checks
  /** uniform range for random values (default [-2, 2]); avoid kinks and poles so finite differences are valid */
  range?: [number, number];
  /** exact values instead of random ones (row-major) */
  values?: number[];
}

export interface OpSample<A = Record<string, unknown>> {
  inputs: SampleInput[];
  attrs?: A;
  /** what the sample exercises, e.g. "broadcast [2, 1] x [3]" */
  note?: string;
}

export interface OpDef<A = any> {
  name: string;
  /**
   * input names in order, or a variadic list (concat, stack). A name ending in `?` is optional: optional inputs come
   * last, and a node may leave out any number of them from the end (conv's bias `b?`).
   */
  inputs: string[] | { variadic: string; min: number };
  /** zod schema of the attrs object (defaults applied by parse); feeds validation, OpenAPI and GET /v1/ops */
  attrs: z.ZodType<A>;
  /** catalogue text for the output datatype, e.g. "same as x" or "BOOL" */
  outputDatatype: string;
  /** false: no gradient flows through (comparisons, argmax, sign, ...); VJP gives zeros, JVP gives zero tangent */
  differentiable: boolean;
  /** subgradient and numerics conventions, shown in the catalogue */
  conventions?: string[];
  /** internal ops (used by derivative rules, e.g. `sum_to_like`) are executable but not listed in the catalogue */
  internal?: boolean;
  /** One-line description for the catalogue. */
  doc: string;

  /** Extra attribute constraints beyond the schema (e.g. clip min <= max): throw INVALID_ATTRS. */
  check?(attrs: A, ctx: InferContext): void;
  /** Output shape and datatype; throws SHAPE_MISMATCH / DATATYPE_MISMATCH naming ctx.node, ctx.op and the shapes. */
  infer(inputs: ValueMeta[], attrs: A, ctx: InferContext): ValueMeta;
  /** Runs the op. Inputs are never mutated; the output may alias an input's data (reshape, identity). */
  run(inputs: Tensor[], attrs: A, k: OpKernels): Promise<Tensor>;
  /** Forward flops estimate (default: number of output elements). */
  flops?(inputs: ValueMeta[], output: ValueMeta, attrs: A): number;
  /** Cotangent per input (null = zero). Written with ops, so it can be differentiated again. */
  vjp?(args: VjpArgs<A>): (Ref | null)[];
  /** Tangent of the output (null = zero). Written with ops. */
  jvp?(args: JvpArgs<A>): Ref | null;
  /** Inputs for the generic registry tests (gradcheck, <u, Jv> = <J^T u, v>, shapes, second order). */
  samples: OpSample<A>[];
  /** false when the op is only once differentiable (skip the second-order generic test). Default true. */
  twiceDifferentiable?: boolean;
}

/** Fewest and most inputs a node of `op` may have. */
export function inputArity(op: Pick<OpDef, 'inputs'>): { min: number; max: number } {
  if (!Array.isArray(op.inputs)) return { min: op.inputs.min, max: Infinity };
  return { min: op.inputs.filter((n) => !n.endsWith('?')).length, max: op.inputs.length };
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}
