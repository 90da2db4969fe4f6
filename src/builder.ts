/**
 * GraphBuilder: writes the API.md graph JSON fluently, so TypeScript users never hand-write it.
 *
 *   const b = new GraphBuilder();
 *   const x = b.input('x', [null, 784]);
 *   const w = b.input('w', [784, 10]);
 *   const loss = x.matmul(w).add(b.input('b', [10])).relu().sum().as('loss');
 *   const graph = b.output(loss).build();
 *
 * Each value tracks its shape and datatype when they can be inferred (the ops' own shape rules), so a bare number
 * operand becomes a scalar constant of the other operand's datatype and mistakes surface at build time.
 */
import type { Graph, InputSpec, NodeSpec, WireTensor } from './graph/types.js';
import { getOp } from './ops/registry.js';
import type { ValueMeta } from './ops/types.js';
import { parseDType, type DType } from './tensor/dtype.js';
import type { Tensor } from './tensor/tensor.js';
import { encodeTensor } from './tensor/wire.js';

export type Operand = Value | number;
type Axes = number | number[] | null;
type Reduction = 'mean' | 'sum' | 'none';

export class Value {
  /** @internal */
  constructor(private readonly b: GraphBuilder, public name: string, readonly meta: ValueMeta | undefined) {}

  get shape(): (number | null)[] | undefined {
    return this.meta?.shape;
  }

  get dtype(): DType | undefined {
    return this.meta?.dtype;
  }

  /** Renames this value (a node made by this builder). */
  as(name: string): this {
    this.b.rename(this, name);
    return this;
  }

  private u(op: string, attrs?: Record<string, unknown>): Value {
    return this.b.op(op, [this], attrs);
  }

  private bin(op: string, other: Operand): Value {
    return this.b.op(op, [this, this.b.lift(other, this)]);
  }

  add(o: Operand): Value { return this.bin('add', o); }
  sub(o: Operand): Value { return this.bin('sub', o); }
  mul(o: Operand): Value { return this.bin('mul', o); }
  div(o: Operand): Value { return this.bin('div', o); }
  pow(o: Operand): Value { return this.bin('pow', o); }
  maximum(o: Operand): Value { return this.bin('maximum', o); }
  minimum(o: Operand): Value { return this.bin('minimum', o); }
  equal(o: Operand): Value { return this.bin('equal', o); }
  notEqual(o: Operand): Value { return this.bin('not_equal', o); }
  less(o: Operand): Value { return this.bin('less', o); }
  lessEqual(o: Operand): Value { return this.bin('less_equal', o); }
  greater(o: Operand): Value { return this.bin('greater', o); }
  greaterEqual(o: Operand): Value { return this.bin('greater_equal', o); }
  matmul(o: Value): Value { return this.b.op('matmul', [this, o]); }
  /** atan2(this, x): the angle of the point (x, this). */
  atan2(x: Operand): Value { return this.bin('atan2', x); }
  /** Remainder with the divisor's sign (NumPy mod, Python %). */
  mod(o: Operand): Value { return this.bin('mod', o); }
  /** Remainder with the dividend's sign (C fmod). */
  fmod(o: Operand): Value { return this.bin('fmod', o); }
  logaddexp(o: Operand): Value { return this.bin('logaddexp', o); }
  hypot(o: Operand): Value { return this.bin('hypot', o); }
  logicalAnd(o: Value): Value { return this.b.op('logical_and', [this, o]); }
  logicalOr(o: Value): Value { return this.b.op('logical_or', [this, o]); }
  logicalXor(o: Value): Value { return this.b.op('logical_xor', [this, o]); }
  logicalNot(): Value { return this.u('logical_not'); }
  isnan(): Value { return this.u('isnan'); }
  isinf(): Value { return this.u('isinf'); }
  isfinite(): Value { return this.u('isfinite'); }

  neg(): Value { return this.u('neg'); }
  exp(): Value { return this.u('exp'); }
  log(): Value { return this.u('log'); }
  log1p(): Value { return this.u('log1p'); }
  expm1(): Value { return this.u('expm1'); }
  sqrt(): Value { return this.u('sqrt'); }
  square(): Value { return this.u('square'); }
  reciprocal(): Value { return this.u('reciprocal'); }
  abs(): Value { return this.u('abs'); }
  sign(): Value { return this.u('sign'); }
  sin(): Value { return this.u('sin'); }
  cos(): Value { return this.u('cos'); }
  tanh(): Value { return this.u('tanh'); }
  sigmoid(): Value { return this.u('sigmoid'); }
  relu(): Value { return this.u('relu'); }
  softplus(): Value { return this.u('softplus'); }
  erf(): Value { return this.u('erf'); }
  gelu(approximate: 'none' | 'tanh' = 'none'): Value { return this.u('gelu', approximate === 'none' ? undefined : { approximate }); }
  tan(): Value { return this.u('tan'); }
  asin(): Value { return this.u('asin'); }
  acos(): Value { return this.u('acos'); }
  atan(): Value { return this.u('atan'); }
  sinh(): Value { return this.u('sinh'); }
  cosh(): Value { return this.u('cosh'); }
  asinh(): Value { return this.u('asinh'); }
  acosh(): Value { return this.u('acosh'); }
  atanh(): Value { return this.u('atanh'); }
  log2(): Value { return this.u('log2'); }
  log10(): Value { return this.u('log10'); }
  exp2(): Value { return this.u('exp2'); }
  rsqrt(): Value { return this.u('rsqrt'); }
  floor(): Value { return this.u('floor'); }
  ceil(): Value { return this.u('ceil'); }
  /** Rounds halves to even. */
  round(): Value { return this.u('round'); }
  trunc(): Value { return this.u('trunc'); }
  silu(): Value { return this.u('silu'); }
  mish(): Value { return this.u('mish'); }
  selu(): Value { return this.u('selu'); }
  hardsigmoid(): Value { return this.u('hardsigmoid'); }
  hardswish(): Value { return this.u('hardswish'); }
  softsign(): Value { return this.u('softsign'); }
  leakyRelu(alpha = 0.01): Value { return this.u('leaky_relu', { alpha }); }
  elu(alpha = 1.0): Value { return this.u('elu', { alpha }); }
  celu(alpha = 1.0): Value { return this.u('celu', { alpha }); }
  clip(min: number | null, max: number | null): Value { return this.u('clip', { min, max }); }
  identity(): Value { return this.u('identity'); }
  stopGradient(): Value { return this.u('stop_gradient'); }
  cast(to: DType): Value { return this.u('cast', { to }); }

  transpose(perm?: number[]): Value { return this.u('transpose', perm ? { perm } : undefined); }
  sum(axes: Axes = null, keepdims = false): Value { return this.u('sum', { axes, keepdims }); }
  mean(axes: Axes = null, keepdims = false): Value { return this.u('mean', { axes, keepdims }); }
  max(axes: Axes = null, keepdims = false): Value { return this.u('max', { axes, keepdims }); }
  min(axes: Axes = null, keepdims = false): Value { return this.u('min', { axes, keepdims }); }
  prod(axes: Axes = null, keepdims = false): Value { return this.u('prod', { axes, keepdims }); }
  logsumexp(axes: Axes = null, keepdims = false): Value { return this.u('logsumexp', { axes, keepdims }); }
  argmax(axis: number | null = null, keepdims = false): Value { return this.u('argmax', { axis, keepdims }); }
  argmin(axis: number | null = null, keepdims = false): Value { return this.u('argmin', { axis, keepdims }); }
  /** Variance over axes; `correction` is NumPy's ddof (1: unbiased). */
  var(axes: Axes = null, opts: { keepdims?: boolean; correction?: number } = {}): Value {
    return this.u('var', { axes, keepdims: opts.keepdims ?? false, correction: opts.correction ?? 0 });
  }
  /** Standard deviation over axes; `correction` is NumPy's ddof (1: unbiased). */
  std(axes: Axes = null, opts: { keepdims?: boolean; correction?: number } = {}): Value {
    return this.u('std', { axes, keepdims: opts.keepdims ?? false, correction: opts.correction ?? 0 });
  }
  /** Vector norm over axes (all by default): ord 1, 2 or 'inf'. */
  norm(ord: 1 | 2 | 'inf' = 2, axes: Axes = null, keepdims = false): Value { return this.u('norm', { ord, axes, keepdims }); }
  cumsum(axis: number, opts: { exclusive?: boolean; reverse?: boolean } = {}): Value {
    return this.u('cumsum', { axis, exclusive: opts.exclusive ?? false, reverse: opts.reverse ?? false });
  }
  cumprod(axis: number, opts: { exclusive?: boolean; reverse?: boolean } = {}): Value {
    return this.u('cumprod', { axis, exclusive: opts.exclusive ?? false, reverse: opts.reverse ?? false });
  }

  reshape(shape: number[]): Value { return this.u('reshape', { shape }); }
  broadcastTo(shape: number[]): Value { return this.u('broadcast_to', { shape }); }
  squeeze(axes: Axes = null): Value { return this.u('squeeze', { axes }); }
  unsqueeze(axes: number | number[]): Value { return this.u('unsqueeze', { axes }); }
  slice(starts: number[], ends: number[], axes?: number[], steps?: number[]): Value {
    return this.u('slice', { starts, ends, axes: axes ?? null, steps: steps ?? null });
  }
  pad(pads: [number, number][], value = 0): Value { return this.u('pad', { pads, value }); }
  gather(indices: Value, axis = 0): Value { return this.b.op('gather', [this, indices], { axis }); }
  oneHot(depth: number, axis = -1, datatype: DType = 'FP32'): Value { return this.u('one_hot', { depth, axis, datatype }); }
  /** np.take_along_axis / torch.gather: indices have this value's rank and, off `axis`, its sizes. */
  takeAlongAxis(indices: Value, axis = 0): Value { return this.b.op('take_along_axis', [this, indices], { axis }); }
  /** This value with updates (shaped like indices) added at the indices along `axis` (torch.scatter_add). */
  scatterAdd(indices: Value, updates: Value, axis = 0): Value { return this.b.op('scatter_add', [this, indices, updates], { axis }); }
  /** One repeat per axis. */
  tile(repeats: number[]): Value { return this.u('tile', { repeats }); }
  /** Reverses the given axes (default: every axis). */
  flip(axes: Axes = null): Value { return this.u('flip', { axes }); }
  /** Cyclic shift along `axes`, one shift each; without axes, the flattened tensor by one shift. */
  roll(shifts: number | number[], axes: Axes = null): Value { return this.u('roll', { shifts, axes }); }
  triu(k = 0): Value { return this.u('triu', { k }); }
  tril(k = 0): Value { return this.u('tril', { k }); }
  // ---- linear algebra: solves and factorizations ----
  /** x with this·x = b (left) or x·this = b, this triangular (only its lower / upper triangle is read). */
  triangularSolve(b: Value, opts: { lower?: boolean; unitDiagonal?: boolean; left?: boolean } = {}): Value {
    return this.b.op('triangular_solve', [this, b], defined({ lower: opts.lower, unit_diagonal: opts.unitDiagonal, left: opts.left }));
  }
  /** x with this·x = b; b is a (batch of) vector(s) when b.ndim == 1 or b.shape == this.shape[:-1]. */
  solve(b: Value): Value { return this.b.op('solve', [this, b]); }
  /** The minimum-norm least-squares x of this·x ≈ b (derivatives assume full column rank). */
  lstsq(b: Value): Value { return this.b.op('lstsq', [this, b]); }
  inv(): Value { return this.u('inv'); }
  /** The lower Cholesky factor of this (taken as symmetric: the factor of (a + aᵀ) / 2). */
  cholesky(): Value { return this.u('cholesky'); }
  det(): Value { return this.u('det'); }
  /** log |det| per matrix. */
  logabsdet(): Value { return this.u('logabsdet'); }
  /** Eigenvalues of the symmetric part of the matrices (last two axes), ascending. */
  eighValues(): Value { return this.u('eigh_values'); }
  /** Singular values of the matrices (last two axes), descending. */
  svdValues(): Value { return this.u('svd_values'); }
  /** Q of the reduced QR of the matrices (m >= n): orthonormal columns, LAPACK's signs. */
  qrQ(): Value { return this.u('qr_q'); }
  /** R of the reduced QR of the matrices (m >= n): upper triangular, LAPACK's signs (the diagonal may be negative). */
  qrR(): Value { return this.u('qr_r'); }
  /** Stable sort along `axis`; NaN sorts as the largest value. */
  sort(axis = -1, descending = false): Value { return this.u('sort', { axis, descending }); }
  argsort(axis = -1, descending = false): Value { return this.u('argsort', { axis, descending }); }
  /** The k largest (or smallest) values along `axis`, sorted. */
  topK(k: number, axis = -1, largest = true): Value { return this.u('top_k', { k, axis, largest }); }
  topKIndices(k: number, axis = -1, largest = true): Value { return this.u('top_k_indices', { k, axis, largest }); }

  softmax(axis = -1): Value { return this.u('softmax', { axis }); }
  logSoftmax(axis = -1): Value { return this.u('log_softmax', { axis }); }
  softmaxCrossEntropy(labels: Value, opts: { axis?: number; reduction?: Reduction } = {}): Value {
    return this.b.op('softmax_cross_entropy', [this, labels], { axis: opts.axis ?? -1, reduction: opts.reduction ?? 'mean' });
  }
  mse(target: Operand, reduction: Reduction = 'mean'): Value {
    return this.b.op('mse', [this, this.b.lift(target, this)], { reduction });
  }
  binaryCrossEntropyWithLogits(targets: Value, reduction: Reduction = 'mean'): Value {
    return this.b.op('binary_cross_entropy_with_logits', [this, targets], { reduction });
  }

  /** Convolution of this (N, C, *spatial) with w (O, C/groups, *kernel), 1-3 spatial axes. */
  conv(w: Value, opts: ConvOptions = {}): Value {
    return this.b.op('conv', opts.bias ? [this, w, opts.bias] : [this, w], convAttrs(opts));
  }
  /** Transposed convolution of this (N, C, *spatial) with w (C, O/groups, *kernel), as ONNX ConvTranspose. */
  convTranspose(w: Value, opts: ConvTransposeOptions = {}): Value {
    return this.b.op('conv_transpose', opts.bias ? [this, w, opts.bias] : [this, w], convAttrs(opts));
  }
  /** Max pooling of this (N, C, *spatial) value; strides default to the kernel. */
  maxPool(kernelShape: number[], opts: PoolOptions & { dilations?: number[] } = {}): Value {
    return this.u('max_pool', poolAttrs(kernelShape, opts, { dilations: opts.dilations }));
  }
  /** Average pooling of this (N, C, *spatial) value; strides default to the kernel. */
  avgPool(kernelShape: number[], opts: PoolOptions & { countIncludePad?: boolean } = {}): Value {
    return this.u('avg_pool', poolAttrs(kernelShape, opts, { count_include_pad: opts.countIncludePad }));
  }
  /** Layer norm over the axes from `axis` (default -1) to the last; scale and bias have shape x.shape[axis:]. */
  layerNorm(opts: { scale?: Value; bias?: Value; axis?: number; epsilon?: number } = {}): Value {
    if (opts.bias !== undefined && opts.scale === undefined) throw new Error('GraphBuilder: layerNorm takes a bias only with a scale (optional inputs are left off from the end)');
    const params = [opts.scale, opts.bias].filter((v): v is Value => v !== undefined);
    return this.b.op('layer_norm', [this, ...params], defined({ axis: opts.axis, epsilon: opts.epsilon }));
  }
  /** x * rsqrt(mean(x²) + epsilon) * scale over the axes from `axis` (default -1) to the last. */
  rmsNorm(opts: { scale?: Value; axis?: number; epsilon?: number } = {}): Value {
    return this.b.op('rms_norm', opts.scale ? [this, opts.scale] : [this], defined({ axis: opts.axis, epsilon: opts.epsilon }));
  }
  /** Batch norm of this (N, C, *spatial) value with (C,) parameters; `training` uses the batch statistics. */
  batchNorm(scale: Value, bias: Value, mean: Value, variance: Value, opts: { epsilon?: number; training?: boolean } = {}): Value {
    return this.b.op('batch_norm', [this, scale, bias, mean, variance], defined({ epsilon: opts.epsilon, training: opts.training }));
  }
  /** Group norm of this (N, C, *spatial) value over `groups` groups of contiguous channels; (C,) scale and bias. */
  groupNorm(groups: number, scale: Value, bias: Value, opts: { epsilon?: number } = {}): Value {
    return this.b.op('group_norm', [this, scale, bias], defined({ groups, epsilon: opts.epsilon }));
  }
}

export interface PoolOptions {
  strides?: number[];
  /** [[before, after], ...] per spatial axis */
  pads?: [number, number][];
  ceilMode?: boolean;
}

/** attrs without the options left undefined (the op's defaults apply) */
function defined(attrs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined));
}

/**
 * Options of `conv`: per-spatial-axis lists or one int for every axis, pads as [[before, after], ...]; omitted ones
 * take the op's defaults (stride 1, no padding, dilation 1, one group).
 */
export interface ConvOptions {
  bias?: Value;
  strides?: number | number[];
  pads?: number | [number, number][];
  dilations?: number | number[];
  groups?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  /** extra output size at the high end (< max(stride, dilation) per axis) */
  outputPadding?: number | number[];
}

/** The attrs of a conv node: only those given, so the graph carries no defaults (none at all: no attrs). */
function convAttrs(o: ConvTransposeOptions): Record<string, unknown> | undefined {
  const attrs = defined({ strides: o.strides, pads: o.pads, dilations: o.dilations, groups: o.groups, output_padding: o.outputPadding });
  return Object.keys(attrs).length > 0 ? attrs : undefined;
}

function poolAttrs(kernelShape: number[], opts: PoolOptions, extra: Record<string, unknown>): Record<string, unknown> {
  return defined({ kernel_shape: kernelShape, strides: opts.strides, pads: opts.pads, ceil_mode: opts.ceilMode, ...extra });
}

export class GraphBuilder {
  private readonly inputs: Record<string, InputSpec> = {};
  private readonly constants: Record<string, WireTensor> = {};
  private readonly nodes: NodeSpec[] = [];
  private readonly outputs: string[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  private fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}${this.counter++}`;
    while (this.names.has(n));
    return n;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`GraphBuilder: the name "${name}" is already used`);
    this.names.add(name);
  }

  /** A graph input; `null` dims accept any size, an omitted shape any rank. */
  input(name: string, shape?: (number | null)[], datatype: DType | string = 'FP32'): Value {
    const dtype = parseDType(datatype);
    if (dtype === undefined) throw new Error(`GraphBuilder: unknown datatype "${datatype}"`);
    this.claim(name);
    this.inputs[name] = shape === undefined ? { datatype: dtype } : { shape: [...shape], datatype: dtype };
    return new Value(this, name, shape === undefined ? undefined : { shape: [...shape], dtype });
  }

  /** A constant from a number (scalar), a flat list with a shape, or a Tensor. */
  constant(value: number | number[] | Tensor, opts: { name?: string; shape?: number[]; datatype?: DType } = {}): Value {
    const name = opts.name ?? this.fresh('const');
    this.claim(name);
    let wire: WireTensor;
    let meta: ValueMeta;
    if (typeof value === 'number' || Array.isArray(value)) {
      const data = typeof value === 'number' ? [value] : value;
      const shape = opts.shape ?? (typeof value === 'number' ? [] : [value.length]);
      const datatype = opts.datatype ?? 'FP32';
      wire = { shape, datatype, data: data.map((v) => (Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity')) };
      meta = { shape: [...shape], dtype: datatype };
    } else {
      wire = encodeTensor(value, 'b64') as WireTensor;
      meta = { shape: [...value.shape], dtype: value.dtype };
    }
    this.constants[name] = wire;
    return new Value(this, name, meta);
  }

  /** @internal a number operand becomes a scalar constant of the other operand's datatype */
  lift(v: Operand, like: Value): Value {
    return typeof v === 'number' ? this.constant(v, { datatype: like.dtype ?? 'FP32' }) : v;
  }

  /** Any op of the catalogue by name. */
  op(op: string, inputs: Value[], attrs?: Record<string, unknown>, name?: string): Value {
    const def = getOp(op);
    if (def === undefined) throw new Error(`GraphBuilder: unknown op "${op}"`);
    const nodeName = name ?? this.fresh(`${op}_`);
    this.claim(nodeName);
    const spec: NodeSpec = { name: nodeName, op, inputs: inputs.map((v) => v.name) };
    if (attrs !== undefined) spec.attrs = attrs;
    this.nodes.push(spec);
    let meta: ValueMeta | undefined;
    if (inputs.every((v) => v.meta !== undefined)) {
      const parsed = def.attrs.safeParse(attrs ?? {});
      if (!parsed.success) throw new Error(`GraphBuilder: ${op}: invalid attrs: ${parsed.error.message}`);
      // builder-time inference is a convenience; the engine checks again, so unknowable shapes just stay unknown
      try {
        meta = def.infer(inputs.map((v) => v.meta!), parsed.data, { node: nodeName, op, path: nodeName });
      } catch (e) {
        if ((e as { code?: string }).code === 'SHAPE_MISMATCH' || (e as { code?: string }).code === 'DATATYPE_MISMATCH') throw e;
        meta = undefined;
      }
    }
    return new Value(this, nodeName, meta);
  }

  where(cond: Value, a: Operand, b: Operand): Value {
    const like = a instanceof Value ? a : b instanceof Value ? b : undefined;
    const lift = (v: Operand): Value => (typeof v === 'number' ? this.constant(v, { datatype: like?.dtype ?? 'FP32' }) : v);
    return this.op('where', [cond, lift(a), lift(b)]);
  }

  concat(values: Value[], axis = 0): Value {
    return this.op('concat', values, { axis });
  }

  stack(values: Value[], axis = 0): Value {
    return this.op('stack', values, { axis });
  }

  /** Einstein summation with an explicit output, e.g. `b.einsum('bij,bjk->bik', x, w)`. */
  einsum(equation: string, ...operands: Value[]): Value {
    return this.op('einsum', operands, { equation });
  }

  /** @internal */
  rename(v: Value, name: string): void {
    if (v.name === name) return;
    const node = this.nodes.find((n) => n.name === v.name);
    if (node === undefined) throw new Error(`GraphBuilder: only nodes can be renamed ("${v.name}" is an input or constant)`);
    this.claim(name);
    this.names.delete(v.name);
    const old = v.name;
    node.name = name;
    for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === old ? name : i));
    for (let i = 0; i < this.outputs.length; i++) if (this.outputs[i] === old) this.outputs[i] = name;
    v.name = name;
  }

  /** Marks values as graph outputs (in order). */
  output(...values: Value[]): this {
    for (const v of values) if (!this.outputs.includes(v.name)) this.outputs.push(v.name);
    return this;
  }

  build(): Graph {
    const g: Graph = { inputs: structuredClone(this.inputs), nodes: structuredClone(this.nodes), outputs: [...this.outputs] };
    if (Object.keys(this.constants).length > 0) g.constants = structuredClone(this.constants);
    return g;
  }
}
