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
  const attrs: Record<string, unknown> = {};
  if (o.strides !== undefined) attrs.strides = o.strides;
  if (o.pads !== undefined) attrs.pads = o.pads;
  if (o.dilations !== undefined) attrs.dilations = o.dilations;
  if (o.groups !== undefined) attrs.groups = o.groups;
  if (o.outputPadding !== undefined) attrs.output_padding = o.outputPadding;
  return Object.keys(attrs).length > 0 ? attrs : undefined;
}

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
  /** Convolution of this (N, C, *spatial) with w (O, C/groups, *kernel), 1-3 spatial axes. */
  conv(w: Value, opts: ConvOptions = {}): Value {
    return this.b.op('conv', opts.bias ? [this, w, opts.bias] : [this, w], convAttrs(opts));
  }
  /** Transposed convolution of this (N, C, *spatial) with w (C, O/groups, *kernel), as ONNX ConvTranspose. */
  convTranspose(w: Value, opts: ConvTransposeOptions = {}): Value {
    return this.b.op('conv_transpose', opts.bias ? [this, w, opts.bias] : [this, w], convAttrs(opts));
  }

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
