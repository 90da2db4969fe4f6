/**
 * The op registry's one definition per op (STYLE.md "Declare an op once"): attrs schema, shape/datatype rule, the
 * kernel call, the VJP, JVP and batching (vmap) rules written with other ops, the facts transforms and planning need
 * (elementwise, aliasing, rank-free), sample inputs for the generic tests, and the catalogue text. Ops live in one
 * file per family under src/ops/ and are collected by src/ops/registry.ts.
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
  /**
   * The values (given or random) stand for m, and the input is m·mᵀ + n·I over the last two axes: symmetric positive
   * definite whatever values a test draws (cholesky's samples; tests batching an op draw fresh members).
   */
  spd?: boolean;
}

export interface OpSample<A = Record<string, unknown>> {
  inputs: SampleInput[];
  attrs?: A;
  /** what the sample exercises, e.g. "broadcast [2, 1] x [3]" */
  note?: string;
}

/**
 * A value of a graph being batched (src/autodiff/vmap.ts). A batched value is [K, ...shape]: a leading batch axis in
 * front of `shape`; an unbatched one is `shape` itself, shared by every member of the batch. Shapes are concrete.
 */
export interface BatchedValue {
  readonly name: string;
  readonly batched: boolean;
  /** the unbatched shape */
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/**
 * What a batching rule builds with: the machinery shared by every rule, implemented by src/autodiff/vmap.ts. Each
 * call appends nodes to the batched graph and returns the name of the value it made. A `Batcher` is bound to the node
 * being rewritten: `out` and `same` write the node's own name (which the rule must produce), the others fresh names.
 */
export interface Batcher {
  /** the batch size */
  readonly K: number;
  /** Appends `op(inputs; attrs)` under the rewritten node's own name. */
  out(op: string, inputs: readonly string[], attrs?: Record<string, unknown>): string;
  /** The rewritten node itself (same op, same attrs as written) on other inputs, under its own name. */
  same(inputs: readonly string[]): string;
  /** Appends `op(inputs; attrs)` under a fresh name. */
  tmp(op: string, inputs: readonly string[], attrs?: Record<string, unknown>): string;
  /** `v` reshaped to `shape` (a fresh node). */
  reshape(v: BatchedValue, shape: readonly number[]): string;
  /** A batched value lifted to `rank` unbatched dims by inserting 1s after the batch axis (itself if it has them). */
  lift(v: BatchedValue, rank: number): string;
  /** Any value as a batched one: an unbatched value is copied K times. */
  tile(v: BatchedValue): string;
  /** Zeros of `shape`: a carrier of that shape for ops that read only the shape of an input. */
  zeros(dtype: DType, shape: readonly number[]): string;
  /** A scalar constant (shape []). */
  scalar(value: number, dtype: DType): string;
  /** A constant of `shape` holding `values` (row-major). */
  constant(dtype: DType, shape: readonly number[], values: readonly number[]): string;
  /** `axis` (null or undefined: `dflt`) normalized against `rank`; out of range refuses. */
  axis(axis: unknown, rank: number, dflt: number): number;
  /** `axes` (int, list, or null/undefined for all) normalized against `rank`; out of range refuses. */
  axes(axes: unknown, rank: number): number[];
  /** No batching rule for this case: the caller falls back to one pass per batch member. */
  refuse(reason: string): never;
}

export interface VmapArgs {
  b: Batcher;
  /** the node's inputs; at least one is batched */
  inputs: readonly BatchedValue[];
  /** unbatched shape and datatype of the node's output */
  output: { shape: readonly number[]; dtype: DType };
  /** the node's attrs as written in the graph (schema defaults not applied; {} when it has none) */
  attrs: Record<string, unknown>;
}

/** How an op meets an operand whose rank is unknown (src/autodiff/rank_free.ts), when it needs no rank. */
export interface RankFreeUse {
  /** The output's rank follows the operand's (unknown too); false: the output's rank is known (a scalar). */
  keepsRank: boolean;
  /**
   * The op reduces its whole operand (a whole-tensor reduction, a loss). When a transform does need the rank, such
   * an op is named as the likelier culprit than the elementwise ops around it.
   */
  reducesAll?: boolean;
}

export interface OpDef<A = any> {
  name: string;
  /**
   * Input names in order, or a variadic list (concat, stack). A name ending in `?` is optional: a node may leave
   * optional inputs off from the end (`['x', 'scale?', 'bias?']` takes 1 to 3 inputs), and `infer`, `run` and the
   * rules then see only the inputs the node gives.
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

  /**
   * Applied elementwise with NumPy broadcasting and no shape-dependent attributes. Such an op batches by lifting its
   * batched operands to a common rank (the generic vmap rule, used when `vmap` is absent) and needs no rank of its
   * operands (rank-free).
   */
  elementwise?: boolean;
  /**
   * Batching rule (JAX's batching rule beside the JVP and transpose rules): rewrites the node for inputs of which at
   * least one carries a leading batch axis, emitting its result under the node's name; returns whether that result
   * carries the batch axis. `b.refuse(...)` (or no rule at all) makes the caller fall back to one pass per member.
   */
  vmap?(args: VmapArgs): boolean;
  /**
   * The output shares its first input's buffer (`run` returns the input's data): 'always', or 'same-shape' only when
   * the output's shape equals that input's. The cost estimate (src/graph/cost.ts) then counts no new allocation.
   */
  aliases?: 'always' | 'same-shape';
  /**
   * Needs no rank of its operands (src/autodiff/rank_free.ts): true for an op whose output has its operands' rank
   * (implied by `elementwise`), or a function of the parsed attrs saying how (undefined: the rank is needed).
   */
  rankFree?: true | ((attrs: A) => RankFreeUse | undefined);
  /**
   * The attribute naming the output datatype (with its schema default, if any), for ops whose output datatype is
   * chosen rather than inferred: gradcheck reruns an FP32 graph in FP64 by rewriting it.
   */
  datatypeAttr?: { name: string; default?: DType };
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}

/** Whether an input name of `OpDef.inputs` marks an optional input (`scale?`). */
export function isOptionalInput(name: string): boolean {
  return name.endsWith('?');
}

/** How many inputs a node of `op` may have: every fixed input, less the optional ones at the end; variadic: min..∞. */
export function inputArity(op: Pick<OpDef, 'inputs'>): { min: number; max: number } {
  if (!Array.isArray(op.inputs)) return { min: op.inputs.min, max: Infinity };
  let min = op.inputs.length;
  while (min > 0 && isOptionalInput(op.inputs[min - 1]!)) min--;
  return { min, max: op.inputs.length };
}
