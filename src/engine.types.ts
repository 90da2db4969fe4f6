/**
 * The engine's public surface, shared by the library entry (`src/index.ts`), the HTTP layer (`src/server/`) and the
 * client. The engine takes decoded tensors (src/tensor/wire.ts decodes the wire format) and a wire Graph; it throws
 * GradserveError (src/errors.ts) whose `errors[].path` are paths into the HTTP request body (`graph.nodes[2].inputs[1]`,
 * `inputs.x`, `wrt[0]`, `cotangents.y`), so the server can pass them through unchanged.
 */
import type { Graph, ValueInfo } from './graph/types.js';
import type { Tensor } from './tensor/tensor.js';

export interface RunOptions {
  /** Aborts execution between nodes (client disconnect, timeout): rejects with CANCELLED or DEADLINE_EXCEEDED. */
  signal?: AbortSignal;
  /** Per-request memory budget in bytes, checked against the cost estimate before anything runs (TOO_LARGE). */
  memoryBudgetBytes?: number;
  /** Max elements of any one tensor (TOO_LARGE). */
  maxTensorElements?: number;
  /** Max nodes in a graph (TOO_LARGE), checked before validation work. */
  maxNodes?: number;
  /** Called with the cost estimate after planning and before execution (admission control hooks in here). */
  onPlan?: (cost: CostEstimate) => void | Promise<void>;
  /** Called after execution with what ran (metrics). */
  onExecuted?: (stats: ExecStats) => void;
  /**
   * Memory for the results of a native program run: an ArrayBuffer of at least `bytes` that stays untouched by
   * anything else until the caller is done with the results (a server recycles it after the response is sent).
   * Returns undefined to let the run allocate as usual. Only large results ask.
   */
  allocResult?: (bytes: number) => ArrayBuffer | undefined;
  /**
   * Runs the kernels on the calling thread instead of the libuv thread pool, whatever their size. A pooled run hands
   * the work to a pool thread and its end back to the event loop: two thread wake-ups, ~80 us a call on a 2-core VM
   * (the batch-64 MLP step, forward and backward: 0.85 -> 0.77 ms). Worth it for a caller with nothing else to do
   * meanwhile (a training loop, a script); the event loop is blocked for the whole run, and `signal` cannot fire
   * during it. Small runs go inline anyway. The server never sets it.
   */
  inline?: boolean;
}

export interface CostEstimate {
  flops: number;
  /** Peak of live bytes under the executor's free-at-last-use policy (inputs included). */
  peakBytes: number;
  /** Sum of the bytes of every value. */
  totalBytes: number;
  /**
   * The tensors the call will return (named as the run names them: graph values, `grad:<wrt>`, `tangent:<output>`,
   * `jacobian:<of>:<wrt>`), so a caller can refuse an answer too large to send before anything runs.
   */
  outputs?: { name: string; shape: readonly number[]; datatype: ValueInfo['datatype'] }[];
}

export interface ExecStats {
  nodes: number;
  flops: number;
  bytes: number;
  /** Measured peak of live tensor bytes during the run (distinct buffers, inputs included). */
  peakBytes?: number;
}

export type Tensors = Record<string, Tensor>;

/**
 * Options of vjp, jvp and hvp. `batched`: every cotangent / tangent / vector carries one extra leading axis of size B
 * (the same B for all), and so does every result (gradients, tangents, hvp); `outputs`, and a batched hvp's
 * `gradients`, stay plain. The B products run as one vectorized pass (chunked when the memory budget asks for it).
 */
export interface BatchOptions extends RunOptions {
  batched?: boolean;
  /** Most batch members per vectorized pass (tests and benchmarks; default: as many as the budget allows). */
  batchChunk?: number;
  /** false: one pass per batch member, as when some op cannot be vectorized (tests and benchmarks). */
  vectorize?: boolean;
}

/**
 * Per-example gradients: the gradient of `of` for each slice of the graph inputs `inputs` along `axis`, as if the graph
 * ran on that slice alone with the axis kept at size 1. A sliced input's gradient has that input's shape (slice i holds
 * example i's gradient); any other `wrt` value's gets a new leading axis of size N.
 */
export interface PerExample {
  axis: number;
  inputs: string[];
}

export interface GradOptions extends RunOptions {
  per_example?: PerExample;
  /** As for BatchOptions: most examples per vectorized pass (tests and benchmarks). */
  batchChunk?: number;
  /** As for BatchOptions: false runs one gradient per example (tests and benchmarks). */
  vectorize?: boolean;
}

/** How a batched call ran: vectorized (vmap) in `passes` passes of up to `chunk` members, or one pass per member. */
export interface BatchingReport {
  /** B (products) or N (examples) */
  size: number;
  vectorized: boolean;
  chunk: number;
  passes: number;
  /** Why a batch ran as a loop: the op without a batching rule, or the rule's error. */
  reason?: string;
}

export interface EvaluateResult { outputs: Tensors }
export interface GradResult { outputs: Tensors; gradients: Tensors; batching?: BatchingReport }
export interface JvpResult { outputs: Tensors; tangents: Tensors; batching?: BatchingReport }
export type JacobianMode = 'auto' | 'forward' | 'reverse';
export interface JacobianResult { outputs: Tensors; jacobians: Record<string, Tensors>; mode: 'forward' | 'reverse' }
export interface HvpResult { outputs: Tensors; gradients: Tensors; hvp: Tensors; batching?: BatchingReport }
export interface HessianResult { outputs: Tensors; hessians: Record<string, Tensors> }
export interface GradcheckFigures { ok: boolean; maxAbsError: number; maxRelError: number }
export interface GradcheckResult extends GradcheckFigures { perInput: Record<string, GradcheckFigures> }
export interface GradcheckOptions { eps?: number; atol?: number; rtol?: number }
/** A bare input spec for `shapes`: like ValueInfo, but `datatype` may be any wire spelling (API.md aliases, `float32`). */
export interface ShapeSpec { shape: number[]; datatype: string }
export interface ShapesResult { values: Record<string, ValueInfo>; flops: number; peakBytes: number }

export type TransformSpec =
  | { transform: 'grad'; of: string; wrt: string[] }
  | { transform: 'vjp'; of: string[]; wrt: string[] }
  | { transform: 'jvp'; wrt: string[]; of?: string[] };

export interface OpCatalogueEntry {
  name: string;
  /** input names (a name ending in `?` is optional: a node may leave it off from the end), or a variadic list */
  inputs: string[] | { variadic: string; min: number };
  attrs: Record<string, unknown>; // JSON Schema
  outputDatatype: string;
  differentiable: boolean;
  conventions: string[];
  doc: string;
  /** true for the ops derivative rules emit (they appear in /v1/transform output); false for the OPS.md op set */
  internal: boolean;
}

/** Implemented by src/index.ts (re-exported from src/autodiff/ and src/graph/). */
export interface Engine {
  evaluate(graph: Graph, inputs: Tensors, outputs?: string[], opts?: RunOptions): Promise<EvaluateResult>;
  grad(graph: Graph, inputs: Tensors, of: string, wrt: string[], opts?: GradOptions): Promise<GradResult>;
  vjp(graph: Graph, inputs: Tensors, cotangents: Tensors, wrt: string[], opts?: BatchOptions): Promise<GradResult>;
  jvp(graph: Graph, inputs: Tensors, tangents: Tensors, of?: string[], opts?: BatchOptions): Promise<JvpResult>;
  jacobian(graph: Graph, inputs: Tensors, of: string[], wrt: string[], mode?: JacobianMode, opts?: RunOptions): Promise<JacobianResult>;
  hvp(graph: Graph, inputs: Tensors, of: string, vectors: Tensors, opts?: BatchOptions): Promise<HvpResult>;
  hessian(graph: Graph, inputs: Tensors, of: string, wrt: string[], opts?: RunOptions): Promise<HessianResult>;
  gradcheck(graph: Graph, inputs: Tensors, of: string, wrt: string[], check?: GradcheckOptions, opts?: RunOptions): Promise<GradcheckResult>;
  transform(graph: Graph, spec: TransformSpec): Graph;
  /**
   * `inputs` may be decoded tensors or bare {shape, datatype} specs. With `opts`, maxNodes and maxTensorElements
   * (on every value) apply as for evaluate (TOO_LARGE).
   */
  shapes(graph: Graph, inputs: Record<string, Tensor | ValueInfo | ShapeSpec>, opts?: RunOptions): ShapesResult;
  ops(): OpCatalogueEntry[];
}
