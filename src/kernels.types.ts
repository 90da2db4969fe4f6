/**
 * The typed contract of the native kernel addon (build/Release/gradserve.node). `src/kernels.ts` is the only file
 * that loads the addon and exports `kernels: Kernels`. Every shape is a plain number[] (row-major, C order); every
 * array argument is a TypedArray whose length must equal the product of its shape and whose element type matches the
 * datatype (FP32 Float32Array, FP64 Float64Array, INT32 Int32Array, INT64 BigInt64Array, BOOL Uint8Array of 0/1).
 *
 * Every function validates its arguments again in C++ and throws a JS Error with a stable `code`:
 *   'INVALID_ARGUMENT'   wrong types / lengths / shapes / axes (a caller bug: the engine validates first)
 *   'INDEX_OUT_OF_RANGE' gather index or label outside its axis (message names the offending index and axis size)
 *   'INVALID_CAST'       cast of NaN / out-of-range value to an integer type
 * No input can crash the process. Outputs are freshly allocated, JS-owned typed arrays.
 *
 * `kernels.async` has the same functions returning Promises; the work runs on the libuv thread pool (an AsyncWorker
 * that holds references to its input buffers until it finishes). The executor uses it above ASYNC_THRESHOLD elements
 * of work so the event loop stays free, and the synchronous form below it. A reference keeps a buffer from being
 * collected, not from being detached: until the promise settles, an input's ArrayBuffer must not be transferred
 * (postMessage / structuredClone transfer lists), or the worker reads freed memory. Inputs backed by a resizable
 * ArrayBuffer are refused by the async form (INVALID_ARGUMENT), since shrinking one would do the same.
 */
import type { DType, TypedArray } from './tensor/dtype.js';

export type FloatArray = Float32Array | Float64Array;
export type IndexArray = Int32Array | BigInt64Array;

/** Elementwise unary ops. The `*_grad` entries are local derivatives f'(x) evaluated at x (not multiplied by g). */
export const UNARY_OPS = [
  'neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'square', 'reciprocal', 'abs', 'sign',
  'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'softplus', 'erf', 'gelu', 'gelu_tanh',
  // local derivatives used by VJP/JVP rules:
  'sigmoid_grad', // s(x)(1 - s(x)), stable for |x| large
  'tanh_grad', // 1 - tanh(x)^2
  'relu_grad', // x > 0 ? 1 : 0  (relu'(0) = 0)
  'gelu_grad', // d/dx of exact gelu
  'gelu_tanh_grad', // d/dx of tanh-approximated gelu
  'erf_grad', // 2/sqrt(pi) * exp(-x^2)
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];
/** neg, abs, sign, square, relu, relu_grad also accept INT32/INT64; everything else is FP only. */

export const BINARY_OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum',
  // comparisons: output BOOL (Uint8Array)
  'equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal',
  // a * b, but exactly 0 where a == 0 (even if b is Inf/NaN): TensorFlow's multiply_no_nan with the zero on `a`
  'mul_no_nan',
] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];
/** Integer semantics (ONNX): `div` on INT32/INT64 truncates toward zero, and x / 0 gives 0; `pow` on ints is an
 *  integer power where a negative exponent gives 0 (except for bases 1 and -1). */

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'logsumexp';
export type ArgReduceOp = 'argmax' | 'argmin';

export interface Shaped<T extends TypedArray = TypedArray> {
  data: T;
  shape: number[];
}

export interface KernelInfo {
  /** e.g. "OpenBLAS 0.3.21 (cblas)" or "portable gemm (no CBLAS found: slow)" */
  blas: string;
  /** true when a real CBLAS is linked */
  cblas: boolean;
  /** e.g. "avx2+fma" or "sse2": which elementwise path runtime dispatch chose */
  simd: string;
  threads: number;
  version: string;
}

export interface KernelFns {
  /** Elementwise unary on any shape; output has the input's type. */
  unary(op: UnaryOp, x: TypedArray): TypedArray;

  /** NumPy broadcasting binary op; output shape is the broadcast shape; comparisons output Uint8Array. */
  binary(op: BinaryOp, a: TypedArray, aShape: number[], b: TypedArray, bShape: number[]): Shaped;

  /** where(cond, a, b) with 3-way broadcasting; cond is BOOL (Uint8Array). */
  where(cond: Uint8Array, condShape: number[], a: TypedArray, aShape: number[], b: TypedArray, bShape: number[]): Shaped;

  /** clip to [min, max], either bound may be null; any numeric type. NaN stays NaN. */
  clip(x: TypedArray, min: number | null, max: number | null): TypedArray;

  /**
   * Reduce over `axes` (normalized: non-negative, unique, sorted; [] means none reduced = copy). The output has the
   * input's shape with the reduced axes removed (the caller reshapes for keepdims). sum is accurate in float32
   * (pairwise/blocked); mean of a zero-size axis is NaN; max/min of a zero-size axis throws INVALID_ARGUMENT;
   * logsumexp is max-shifted and all -Inf gives -Inf. max/min propagate NaN. FP for mean/logsumexp; sum/prod/max/min
   * also INT32/INT64.
   */
  reduce(op: ReduceOp, x: TypedArray, shape: number[], axes: number[]): TypedArray;

  /** Index of the first max/min along `axis` (normalized), or into the flattened tensor when axis is null. NaN wins. */
  argReduce(op: ArgReduceOp, x: TypedArray, shape: number[], axis: number | null): BigInt64Array;

  /** softmax / log_softmax along `axis` (normalized), fused and max-shifted. FP only. */
  softmax(x: FloatArray, shape: number[], axis: number, log: boolean): FloatArray;

  /**
   * np.matmul for operands of rank >= 2 (the engine promotes 1-D operands and squeezes back). Batch dimensions
   * broadcast. transA/transB transpose the last two dims of a/b before multiplying. FP via cblas_?gemm; INT32/INT64
   * via a plain loop. Output shape: broadcast(batchA, batchB) ++ [m, n].
   */
  matmul(a: TypedArray, aShape: number[], b: TypedArray, bShape: number[], transA: boolean, transB: boolean): Shaped;

  /**
   * Convolution of x (N, C, *S) with w (O, C/groups, *K) and an optional bias b (O), 1-3 spatial axes; `strides`,
   * `dilations` (>= 1) and `pads` ([before, after], >= 0) have one entry per spatial axis. vol2col + gemm per image,
   * in tiles of output positions so each worker's column buffer stays under 16 MiB; a large batch is split across
   * the BLAS threads by image (each product then single-threaded). FP only. Output (N, O, *out) with
   * out = floor((S + before + after - dilation * (K - 1) - 1) / stride) + 1, which must be >= 1.
   */
  conv(x: FloatArray, xShape: number[], w: FloatArray, wShape: number[], b: FloatArray | null, strides: number[], pads: [number, number][], dilations: number[], groups: number): Shaped<FloatArray>;

  /**
   * ONNX ConvTranspose / torch conv_transposeNd: x (N, C, *S), w (C, O/groups, *K), b (O) or null. Output
   * (N, O, *out) with out = (S - 1) * stride - before - after + dilation * (K - 1) + 1 + outputPadding (>= 1);
   * 0 <= outputPadding < max(stride, dilation). The adjoint of `conv` in x: gemm + col2vol per image.
   */
  convTranspose(x: FloatArray, xShape: number[], w: FloatArray, wShape: number[], b: FloatArray | null, strides: number[], pads: [number, number][], dilations: number[], groups: number, outputPadding: number[]): Shaped<FloatArray>;

  /** d<g, conv(x, w)>/dw: the weight gradient of shape wShape for g of conv(x, w)'s shape (summed over images). */
  convWeightGrad(x: FloatArray, xShape: number[], g: FloatArray, gShape: number[], wShape: number[], strides: number[], pads: [number, number][], dilations: number[], groups: number): FloatArray;

  /** n-d permute (cache-blocked); output shape is shape permuted by `perm`. */
  transpose(x: TypedArray, shape: number[], perm: number[]): TypedArray;

  /** Materialize NumPy broadcasting of x (shape) to outShape. */
  broadcastTo(x: TypedArray, shape: number[], outShape: number[]): TypedArray;

  /**
   * Strided slice: along axis k, output index i reads input index starts[k] + i * steps[k] (already clamped and
   * normalized by the caller; steps may be negative, never 0), for i < outShape[k].
   */
  slice(x: TypedArray, shape: number[], starts: number[], steps: number[], outShape: number[]): TypedArray;

  /** Inverse of slice for gradients: zeros of `shape` with `g` (outShape) added at the sliced positions. */
  sliceBackward(g: TypedArray, outShape: number[], starts: number[], steps: number[], shape: number[]): TypedArray;

  /** Constant pad: pads[k] = [before, after] (non-negative). */
  pad(x: TypedArray, shape: number[], pads: [number, number][], value: number): TypedArray;

  /** Concatenate along `axis` (normalized); all shapes equal except on that axis; all the same type. */
  concat(xs: TypedArray[], shapes: number[][], axis: number): TypedArray;

  /**
   * np.take(x, indices, axis): output shape = shape[:axis] ++ indicesShape ++ shape[axis+1:]. Negative indices count
   * from the end; anything outside [-n, n) throws INDEX_OUT_OF_RANGE.
   */
  gather(x: TypedArray, shape: number[], indices: IndexArray, indicesShape: number[], axis: number): TypedArray;

  /**
   * np.take_along_axis / ONNX GatherElements: indices have x's rank (every dim but `axis` at most x's); the output
   * has the indices' shape. Negative indices count from the end when `allowNegative`, else they are out of range;
   * out-of-range indices throw INDEX_OUT_OF_RANGE with `what` naming them ("index", "class label").
   */
  gatherElements(x: TypedArray, shape: number[], indices: IndexArray, indicesShape: number[], axis: number, allowNegative: boolean, what: string): TypedArray;

  /** Gradient of gather: zeros of `shape`, then g (gather's output shape) scatter-added (duplicates accumulate). */
  scatterAdd(g: FloatArray, indices: IndexArray, indicesShape: number[], axis: number, shape: number[]): FloatArray;

  /** one_hot(indices, depth) inserted at `axis` (normalized for the output rank); out-of-range rows are all zero. */
  oneHot(indices: IndexArray, indicesShape: number[], depth: number, axis: number, dtype: DType): TypedArray;

  /** Cast between all datatypes. FP -> INT truncates toward zero; NaN or out-of-range throws INVALID_CAST. */
  cast(x: TypedArray, to: DType): TypedArray;
}

/** A value of a program being traced: its buffer slot and element count (stands in for a typed array). */
export interface SlotRef {
  readonly slot: number;
  readonly length: number;
}

/** Static figures of a finished program. */
export interface ProgramFigures {
  steps: number;
  /** elements read and written by all steps (picks the inline or thread-pool run) */
  work: number;
  /** bytes of every value the program makes */
  bytes: number;
  /** peak of live bytes (leaves included) under free-at-last-use */
  peakBytes: number;
}

/**
 * A native program (binding/program.h): traced once with `input`/`step`/`call`, closed with `finish`, then run
 * as a whole. `call(kernel, args)` takes the same arguments as the kernel of that name, with SlotRefs where arrays
 * go, and returns what the kernel would (SlotRefs in place of the output arrays). `run` returns one typed array per
 * finish() output (null where the output is a leaf: the caller has it). Not re-entrant: one run at a time.
 */
export interface NativeProgram {
  input(dtype: DType, n: number): SlotRef;
  step(node: number): void;
  call(kernel: keyof KernelFns, args: unknown[]): unknown;
  finish(outputs: number[]): ProgramFigures;
  /** `cancel[0] != 0` stops the run between steps (error code CANCELLED). Errors carry `step` and `node`. */
  run(inputs: TypedArray[], cancel: Int32Array | null): (TypedArray | null)[];
  runAsync(inputs: TypedArray[], cancel: Int32Array | null): Promise<(TypedArray | null)[]>;
}

export interface PoolStats {
  liveBytes: number;
  cachedBytes: number;
  capBytes: number;
  hits: number;
  misses: number;
}

export interface Kernels extends KernelFns {
  info(): KernelInfo;
  /** Native programs; absent in a Kernels implementation that only has the per-call kernels. */
  Program?: new () => NativeProgram;
  /** The native buffer pool of program intermediates (GRADSERVE_POOL_BYTES caps what it keeps free). */
  poolStats?(): PoolStats;
  /** Frees the pool's cached buffers and returns free heap pages to the system. */
  trimPool?(): void;
  setPoolCap?(bytes: number): void;
  /** Same functions, run on the libuv thread pool; resolve with the same results. */
  async: { [K in keyof KernelFns]: (...args: Parameters<KernelFns[K]>) => Promise<ReturnType<KernelFns[K]>> };
}

/** Elements of work above which the executor uses `kernels.async` (measured: the thread-pool hop costs ~20-40 µs). */
export const ASYNC_THRESHOLD = 1 << 15;
