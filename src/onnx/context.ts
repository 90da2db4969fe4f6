/**
 * The state of one import: every ONNX value as what gradserve knows of it, and the graph being written.
 *
 * A value is `static` when its contents are known at import (initializers of integer type, Constant nodes, and what
 * is folded from them and from `Shape`): those drive shapes and attributes. Small static values are folded in plain
 * JS numbers, where NaN stands for an entry that depends on a symbolic dimension (a `Shape` of a `[batch, 3]` input is
 * `[NaN, 3]`); such an entry can still be carried along, and only a consumer that needs it fails. Everything else is
 * `dynamic`: a value of the gradserve graph, with its shape (null for a symbolic dimension) and datatype inferred by
 * the op registry's own shape rules, exactly as the engine will.
 */
import { GradserveError } from '../errors.js';
import type { Graph, NodeSpec, WireTensor } from '../graph/types.js';
import { inferNode } from '../graph/infer.js';
import { getOp } from '../ops/registry.js';
import type { ValueMeta } from '../ops/types.js';
import { allocArray, isFloat, type DType, type TypedArray } from '../tensor/dtype.js';
import type { SymShape } from '../tensor/shape.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { encodeTensor } from '../tensor/wire.js';
import { int64, type AttributeProto, type NodeProto } from './decode.js';
import { tensorFromProto, TensorImportError } from './tensors.js';

export interface StaticVal {
  kind: 'static';
  dtype: DType;
  shape: number[];
  /** Row-major values; NaN marks an entry that depends on a symbolic dimension. Set for small values. */
  values?: number[];
  /** The exact tensor (big or float constants); absent when `values` holds a NaN. */
  tensor?: Tensor;
  /** The name it keeps as a graph constant (an initializer's). */
  wireName?: string;
}

export interface DynVal {
  kind: 'dynamic';
  name: string;
  dtype: DType;
  shape: SymShape;
}

export type Val = StaticVal | DynVal;

/** Why a node cannot be imported; collected for every node, then reported together (UNSUPPORTED_MODEL). */
export class Unsupported extends Error {}

/** A value that stands for the output of a node that could not be imported: its consumers are not judged again. */
export class Poisoned extends Error {}

/** Static values up to this many elements are folded in JS; larger ones stay tensors. */
export const FOLD_LIMIT = 1 << 16;

export function unsupported(why: string): never {
  throw new Unsupported(why);
}

/** The node being imported, with typed access to its attributes. */
export class OnnxNode {
  readonly attrs = new Map<string, AttributeProto>();

  constructor(readonly proto: NodeProto, readonly index: number, readonly opset: number) {
    for (const a of proto.attribute ?? []) if (a.name !== undefined) this.attrs.set(a.name, a);
  }

  get op(): string { return this.proto.op_type ?? ''; }
  get name(): string { return this.proto.name ?? ''; }
  get inputs(): string[] { return this.proto.input ?? []; }
  get outputs(): string[] { return this.proto.output ?? []; }

  int(name: string, dflt: number): number;
  int(name: string): number | undefined;
  int(name: string, dflt?: number): number | undefined {
    const a = this.attrs.get(name);
    return a === undefined ? dflt : int64(a.i);
  }
  float(name: string, dflt: number): number {
    const a = this.attrs.get(name);
    return a === undefined ? dflt : a.f ?? 0;
  }
  ints(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    return a === undefined ? undefined : (a.ints ?? []).map(int64);
  }
  floats(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    return a === undefined ? undefined : (a.floats ?? []).slice();
  }
  string(name: string, dflt: string): string {
    const a = this.attrs.get(name);
    return a === undefined || a.s === undefined ? dflt : Buffer.from(a.s).toString('utf8');
  }
  has(name: string): boolean { return this.attrs.has(name); }
}

function isInteger(d: DType): boolean {
  return d === 'INT32' || d === 'INT64' || d === 'BOOL';
}

function toNumbers(t: Tensor): number[] {
  const out = new Array<number>(t.data.length);
  const d = t.data;
  if (d instanceof BigInt64Array) for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  else for (let i = 0; i < d.length; i++) out[i] = d[i] as number;
  return out;
}

export function staticFromTensor(t: Tensor): StaticVal {
  const v: StaticVal = { kind: 'static', dtype: t.dtype, shape: [...t.shape], tensor: t };
  if (t.data.length <= FOLD_LIMIT) v.values = toNumbers(t);
  return v;
}

export function staticFromValues(dtype: DType, shape: number[], values: number[]): StaticVal {
  return { kind: 'static', dtype, shape, values };
}

/** The tensor of a static value (built from its values when needed); undefined if some entry is symbolic. */
export function tensorOf(v: StaticVal): Tensor | undefined {
  if (v.tensor !== undefined) return v.tensor;
  const vals = v.values!;
  if (vals.some((x) => Number.isNaN(x))) return undefined;
  const data: TypedArray = allocArray(v.dtype, vals.length);
  if (data instanceof BigInt64Array) vals.forEach((x, i) => { data[i] = BigInt(Math.trunc(x)); });
  else if (v.dtype === 'BOOL') vals.forEach((x, i) => { data[i] = x !== 0 ? 1 : 0; });
  else vals.forEach((x, i) => { (data as Float64Array)[i] = x; });
  v.tensor = { dtype: v.dtype, shape: [...v.shape], data };
  return v.tensor;
}

export interface ImportOptions {
  /** Sizes for symbolic dimensions (`?dims=batch:8`). */
  dims?: Record<string, number>;
  /**
   * Values of graph inputs known at import: such an input becomes a constant (and can drive shapes, as an exporter's
   * initializer would). The ONNX backend tests pass e.g. Reshape's shape as an input.
   */
  staticInputs?: Record<string, Tensor>;
}

export class ImportContext {
  readonly values = new Map<string, Val>();
  readonly nodes: NodeSpec[] = [];
  readonly constants: Record<string, WireTensor> = {};
  readonly used = new Set<string>();
  private counter = 0;
  /** The node being imported (names its intermediate values). */
  current: OnnxNode | undefined;

  constructor(readonly opset: number) {}

  /** A name no value of the gradserve graph has yet. */
  fresh(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  claim(name: string): void {
    this.used.add(name);
  }

  /** The value of a node input; undefined for an omitted optional input (''). */
  get(name: string | undefined): Val | undefined {
    if (name === undefined || name === '') return undefined;
    const v = this.values.get(name);
    if (v === undefined) {
      if (this.poisoned.has(name)) throw new Poisoned(name);
      unsupported(`input "${name}" is produced by no node, initializer or graph input before it`);
    }
    return v;
  }

  readonly poisoned = new Set<string>();

  /** The input at position i, which must be given. */
  input(node: OnnxNode, i: number): Val {
    const v = this.get(node.inputs[i]);
    if (v === undefined) unsupported(`input ${i} is missing`);
    return v;
  }

  /** A static input's values (NaN for symbolic entries), or a refusal saying why it must be static. */
  staticInput(node: OnnxNode, i: number, what: string): number[] {
    const v = this.input(node, i);
    if (v.kind !== 'static' || v.values === undefined) {
      unsupported(`its ${what} (input ${i}, "${node.inputs[i]}") is computed at run time; gradserve needs it known at import (a constant, an initializer, or folded from Shape)`);
    }
    return v.values;
  }

  /** Static integers with every entry known; `what` names them in the refusal. */
  knownInts(node: OnnxNode, values: number[], what: string): number[] {
    if (values.some((x) => Number.isNaN(x))) {
      unsupported(`its ${what} [${values.map((x) => (Number.isNaN(x) ? '?' : x)).join(', ')}] depends on a symbolic dimension of an input; fix it with ?dims=<name>:<size>`);
    }
    return values;
  }

  /** A static value as a constant of the gradserve graph (materialized once per value). */
  materialize(v: Val, hint = 'const'): DynVal {
    if (v.kind === 'dynamic') return v;
    const cached = this.materialized.get(v);
    if (cached !== undefined) return cached;
    const t = tensorOf(v);
    if (t === undefined) {
      unsupported(`a value [${v.values!.map((x) => (Number.isNaN(x) ? '?' : x)).join(', ')}] depends on a symbolic dimension of an input; fix it with ?dims=<name>:<size>`);
    }
    const name = v.wireName ?? this.fresh(hint);
    this.constants[name] = encodeTensor(t, 'b64') as WireTensor;
    const d: DynVal = { kind: 'dynamic', name, dtype: t.dtype, shape: [...t.shape] };
    this.materialized.set(v, d);
    return d;
  }

  private readonly materialized = new WeakMap<StaticVal, DynVal>();

  /** Appends a gradserve node, its output shape and datatype inferred by the op's own rule. */
  emit(op: string, inputs: Val[], attrs: Record<string, unknown> = {}, name?: string): DynVal {
    const def = getOp(op);
    if (def === undefined) throw new Error(`the importer emits unknown op ${op}`);
    const ins = inputs.map((v) => this.materialize(v));
    // The node's own ONNX output name when given (ONNX names are unique, and all of them are claimed up front).
    const nodeName = name !== undefined && name !== '' ? name : this.fresh(`${this.current?.outputs[0] || op}:${op}`);
    const path = `graph.nodes[${this.nodes.length}]`;
    const parsed = def.attrs.safeParse(attrs);
    if (!parsed.success) unsupported(`gradserve's ${op} refuses its attributes ${JSON.stringify(attrs)}: ${parsed.error.issues[0]?.message}`);
    let meta: ValueMeta;
    try {
      def.check?.(parsed.data, { node: nodeName, op, path });
      meta = inferNode({ name: nodeName, op: def, attrs: parsed.data, path }, ins.map((v) => ({ shape: v.shape, dtype: v.dtype })));
    } catch (e) {
      if (e instanceof GradserveError) unsupported(`gradserve's ${op} refuses it: ${e.detail}`);
      throw e;
    }
    const spec: NodeSpec = { name: nodeName, op, inputs: ins.map((v) => v.name) };
    if (Object.keys(attrs).length > 0) spec.attrs = attrs;
    this.nodes.push(spec);
    return { kind: 'dynamic', name: nodeName, dtype: meta.dtype, shape: [...meta.shape] };
  }

  /** A scalar constant of a datatype (broadcasts against anything). */
  scalar(value: number, dtype: DType): StaticVal {
    return staticFromValues(dtype, [], [value]);
  }

  /** A tensor attribute (Constant's `value`, ConstantOfShape's `value`) as a static value. */
  tensorAttr(node: OnnxNode, name: string): StaticVal | undefined {
    const a = node.attrs.get(name);
    if (a?.t === undefined) return undefined;
    try {
      return staticFromTensor(tensorFromProto(a.t).tensor);
    } catch (e) {
      if (e instanceof TensorImportError) unsupported(e.message);
      throw e;
    }
  }
}

/** Shape of a value as far as it is known (static values are fully known). */
export function shapeOf(v: Val): SymShape {
  return v.shape;
}

export function rankOf(v: Val): number {
  return v.shape.length;
}

export function isFloatVal(v: Val): boolean {
  return isFloat(v.dtype);
}

export { isInteger, numel };
