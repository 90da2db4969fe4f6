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
 *   'SINGULAR_MATRIX'    an exactly zero pivot in an LU (solve, inv); the message names the batch index
 *   'NOT_POSITIVE_DEFINITE' cholesky of a matrix with a non-positive leading minor; the message names the batch index
 *   'UNSUPPORTED'        a linear-algebra kernel in a build without LAPACK (`info().lapack` is false)
 *   'NO_CONVERGENCE'     LAPACK's iteration did not converge on a matrix (eigh, svd); the message names the batch index
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

/**
 * Kernels selected by name: the names are the native op tables (native/op_tables.h, one X-macro list per family),
 * which `info().ops` lists; an unknown name throws INVALID_ARGUMENT. test/native/op_tables.test.ts checks that every
 * name the op registry uses is there.
 *
 * Unary: the `*_grad` entries are local derivatives f'(x) evaluated at x (not multiplied by g); the ops the table marks
 * `ints` (neg, abs, sign, square, relu, relu_grad) also accept INT32/INT64, everything else is FP only. `round` rounds
 * half to even; `leaky_relu`, `elu` and `celu` take their `alpha` as the kernel's scalar parameter.
 */
export type UnaryOp = string;
/**
 * Binary: comparisons and the logical ops (`logical_and`/`or`/`xor`, a nonzero operand is true) output BOOL
 * (Uint8Array) and accept BOOL; `atan2`, `logaddexp` and `hypot` are FP only; `mul_no_nan` is a * b, but exactly 0
 * where a == 0 (even if b is Inf/NaN). Integer semantics (ONNX): `div` on INT32/INT64 truncates toward zero, and
 * x / 0 gives 0; `pow` on ints is an integer power where a negative exponent gives 0 (except for bases 1 and -1).
 * `mod` has the divisor's sign (NumPy), `fmod` the dividend's (C); for integers x mod 0 = x fmod 0 = 0 (NumPy).
 */
export type BinaryOp = string;
export type ReduceOp = string;
export type ArgReduceOp = string;
/** Cumulative scans along one axis: `cumsum`, `cumprod`. */
export type CumulativeOp = string;
/** Spectral decompositions and QR: `eigh_values`, `eigh_vectors`, `svd_values`, `svd_vectors`, `qr_q`, `qr_r`. */
export type SpectralOp = string;

/** The names of each family of kernels selected by name, in native table order. */
export interface KernelOpNames {
  unary: string[];
  binary: string[];
  reduce: string[];
  argReduce: string[];
  cumulative: string[];
  /** one square matrix in (native/op_tables.h GS_MATRIX_OPS): inv, cholesky, det, logabsdet, cofactor, sym_tril(_adjoint) */
  matrixOp: string[];
  spectral: string[];
}

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
  /** true when LAPACK is linked (the linear-algebra kernels work; else they throw UNSUPPORTED) */
  lapack: boolean;
  /** the op names the name-selected kernels accept */
  ops: KernelOpNames;
}

export interface KernelFns {
  /** Elementwise unary on any shape; output has the input's type. `param`: the op's scalar parameter, if it has one. */
  unary(op: UnaryOp, x: TypedArray, param?: number): TypedArray;

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

  /**
   * Scan along `axis` (normalized): `cumsum` or `cumprod`, inclusive or `exclusive` (each position gets the
   * combination of the ones before it; the first gets 0 or 1), forward or `reverse` (from the end). Any datatype but
   * BOOL; the output has the input's shape and type. Accumulates in double for FP32 and FP64; integers wrap.
   */
  cumulative(op: CumulativeOp, x: TypedArray, shape: number[], axis: number, exclusive: boolean, reverse: boolean): TypedArray;

  /**
   * First-order linear recurrence along `axis` (normalized): h[t] = b[t] + a[t] * h[t-1] with h[-1] = 0, or with
   * `reverse` h[t] = b[t] + a[t+1] * h[t+1] with h[n] = 0 (a's entry at the first scanned position is never read). a
   * and b have `shape` and one FP datatype; the output is like b. The two directions are each other's transpose as
   * linear maps of b, which is what cumprod's derivatives are built from.
   */
  linearScan(a: FloatArray, b: FloatArray, shape: number[], axis: number, reverse: boolean): FloatArray;

  /**
   * LAPACK on each matrix of x (..., m, n), FP32 or FP64: `eigh_values` (ascending, (..., n)) and `eigh_vectors`
   * (columns, (..., n, n)) of the symmetric part (x + xᵀ) / 2 (syevd; m == n); `svd_values` (descending, (..., k),
   * k = min(m, n)) and `svd_vectors`, the reduced U (m, k) stacked over V (n, k) as (..., m + n, k) (gesdd); `qr_q`
   * (..., m, n) and `qr_r` (..., n, n) of the reduced QR with LAPACK's Householder signs (geqrf, orgqr; m >= n). A
   * matrix with a non-finite entry gives NaN; LAPACK's failure to converge throws NO_CONVERGENCE naming the batch
   * index. Without LAPACK in the build every op throws UNSUPPORTED.
   */
  spectral(op: SpectralOp, x: FloatArray, shape: number[]): Shaped<FloatArray>;

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

  /**
   * ONNX ScatterElements with reduction add: x (zeros of `shape` in the updates' datatype when x is null), then
   * updates[p] added at p with p[axis] replaced by indices[p], for every position p of the indices (updates have the
   * indices' shape; indices have x's rank, every dim but `axis` at most x's). Duplicates accumulate; negative indices
   * count from the end; outside [-n, n) throws INDEX_OUT_OF_RANGE. FP32, FP64, INT32, INT64.
   */
  scatterAddElements(x: TypedArray | null, shape: number[], indices: IndexArray, indicesShape: number[], updates: TypedArray, axis: number): TypedArray;

  /** one_hot(indices, depth) inserted at `axis` (normalized for the output rank); out-of-range rows are all zero. */
  oneHot(indices: IndexArray, indicesShape: number[], depth: number, axis: number, dtype: DType): TypedArray;

  /** np.roll with one shift per axis (any safe integer, taken modulo the axis size). */
  roll(x: TypedArray, shape: number[], shifts: number[]): TypedArray;

  /**
   * triu (`upper`) / tril on the last two axes (rank >= 2), batched over the others: keeps row i, column j where
   * j - i >= k (upper) or j - i <= k (lower), zeros elsewhere.
   */
  triangle(x: TypedArray, shape: number[], k: number, upper: boolean): TypedArray;

  /**
   * Indices of the first k entries of a stable sort of x along `axis` (normalized), ascending or descending: NaN is
   * larger than every number, equal values keep their original order in both directions. Output shape: x's with k on
   * `axis` (0 <= k <= its size). FP32, FP64, INT32, INT64.
   */
  sortIndices(x: TypedArray, shape: number[], axis: number, descending: boolean, k: number): BigInt64Array;

  /** Cast between all datatypes. FP -> INT truncates toward zero; NaN or out-of-range throws INVALID_CAST. */
  cast(x: TypedArray, to: DType): TypedArray;

  /**
   * Max pooling of x (N, C, *spatial) with 1-3 spatial axes (one entry per spatial axis in kernel, strides, pads,
   * dilations). Output length per axis: floor (ceil with ceilMode) of (in + before + after - dilated kernel) / stride,
   * plus 1; with ceilMode a last window that would start in the right padding is dropped. Each output is the first
   * maximum of its window in row-major window order (a NaN wins), -Infinity for a window of padding only.
   */
  maxPool(x: FloatArray, shape: number[], kernel: number[], strides: number[], pads: [number, number][], dilations: number[], ceilMode: boolean): FloatArray;
  /** h (x's shape) read at the position of x that max pooling picks in each window (0 for padding only): pooled shape. */
  maxPoolGather(h: FloatArray, x: FloatArray, shape: number[], kernel: number[], strides: number[], pads: [number, number][], dilations: number[], ceilMode: boolean): FloatArray;
  /** The transpose of maxPoolGather: zeros of x's shape with g (pooled shape) added at the picked positions. */
  maxPoolScatter(g: FloatArray, x: FloatArray, shape: number[], kernel: number[], strides: number[], pads: [number, number][], dilations: number[], ceilMode: boolean): FloatArray;
  /**
   * Average pooling (no dilation). The divisor counts the window's input positions, or with countIncludePad every
   * position up to the declared pads (never the positions ceilMode adds beyond them).
   */
  avgPool(x: FloatArray, shape: number[], kernel: number[], strides: number[], pads: [number, number][], ceilMode: boolean, countIncludePad: boolean): FloatArray;
  /** The transpose of avgPool: zeros of `shape` (the input's) with each window's g / divisor added over the window. */
  avgPoolBackward(g: FloatArray, shape: number[], kernel: number[], strides: number[], pads: [number, number][], ceilMode: boolean, countIncludePad: boolean): FloatArray;

  /**
   * Each row (the axes before `axis`) normalized over the axes from `axis` on: (x - mean) / sqrt(var + epsilon)
   * with the biased variance when `center`, else x / sqrt(mean(x^2) + epsilon). Statistics in double. FP only.
   */
  normalize(x: FloatArray, shape: number[], axis: number, epsilon: number, center: boolean): FloatArray;

  /**
   * batch_norm with batch statistics of x (N, C, *spatial): (x - mean) / sqrt(var + epsilon) * scale + bias per
   * channel (mean and biased variance over N and the spatial axes, in double); scale and bias (C,). FP only.
   */
  batchNormTrain(x: FloatArray, shape: number[], scale: FloatArray, bias: FloatArray, epsilon: number): FloatArray;
  /** Its gradient w.r.t. x for the output cotangent g: scale r (g - mean(g) - xhat mean(g xhat)), r = 1 / sqrt(var + epsilon). */
  batchNormGrad(x: FloatArray, shape: number[], scale: FloatArray, g: FloatArray, epsilon: number): FloatArray;
  /** Its gradient w.r.t. scale: Σ g xhat per channel, shape (C,). */
  batchNormScaleGrad(x: FloatArray, shape: number[], g: FloatArray, epsilon: number): FloatArray;

  // ---- linear algebra: solves and factorizations (native/linalg_solve.cpp, LAPACK), FP32 and FP64 ----
  // Batched over leading axes, which broadcast between a and b. SINGULAR_MATRIX / NOT_POSITIVE_DEFINITE name the
  // batch index of the matrix at fault.
  /**
   * One square matrix a (..., n, n) in: `inv`, `cholesky` (lower factor of (a + a^T) / 2), `cofactor` (det(a) inv(a)^T,
   * exact at singular matrices), `sym_tril` ((tril(a) + tril(a, -1)^T) / 2) and `sym_tril_adjoint` ((tril(a) +
   * triu(a, 1)^T) / 2) give (..., n, n); `det`, `logabsdet` (log |det|, -Infinity when singular) give (...).
   */
  matrixOp(op: string, a: FloatArray, shape: number[]): Shaped<FloatArray>;
  /** x with a x = b (left; b (..., n, k)) or x a = b (b (..., k, n)), reading a's lower (or upper) triangle only. */
  triangularSolve(a: FloatArray, aShape: number[], b: FloatArray, bShape: number[], lower: boolean, unitDiagonal: boolean, left: boolean): Shaped<FloatArray>;
  /** x with a x = b (a^T x = b with transA), b (..., n, k), through an LU with partial pivoting. */
  solve(a: FloatArray, aShape: number[], b: FloatArray, bShape: number[], transA: boolean): Shaped<FloatArray>;
  /** The minimum-norm least-squares x (..., n, k) of a (..., m, n) x = b (..., m, k) (SVD; rcond eps * max(m, n)). */
  lstsq(a: FloatArray, aShape: number[], b: FloatArray, bShape: number[]): Shaped<FloatArray>;
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
  /** `outputs`: typed arrays to write some outputs into (by output index; null: allocated by the run). */
  run(inputs: TypedArray[], cancel: Int32Array | null, outputs?: (TypedArray | null)[]): (TypedArray | null)[];
  runAsync(inputs: TypedArray[], cancel: Int32Array | null, outputs?: (TypedArray | null)[]): Promise<(TypedArray | null)[]>;
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
  /** `[v0,v1,...]` exactly as JSON.stringify writes these values (non-finite ones as "NaN"/"Infinity" strings). */
  formatJson?(data: Float32Array | Float64Array): Buffer;
  /** Writes the bytes of `src` as padded base64 into `dst` (at least 4 * ceil(bytes / 3) long); the characters written. */
  encodeBase64?(src: ArrayBufferView, dst: Uint8Array): number;
  /**
   * Decodes base64 characters of the standard alphabet without padding (`src`) into `dst`; the bytes written, or -1
   * when a character is outside the alphabet or the length is impossible (the caller then decodes another way).
   */
  decodeBase64?(src: Uint8Array, dst: Uint8Array): number;
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

/**
 * A native program with fewer elements of work than this and fewer estimated flops than INLINE_PROGRAM_FLOPS runs on
 * the calling thread even above ASYNC_THRESHOLD: such a run takes up to ~0.2 ms, about what the two thread hops of a
 * pooled run cost on a busy 2-core VM (inv n = 64 forward + backward, 4096-element matrices: 0.29-0.37 ms pooled,
 * 0.14-0.22 ms inline).
 */
export const INLINE_PROGRAM_WORK = 1 << 17;
export const INLINE_PROGRAM_FLOPS = 1 << 21;
