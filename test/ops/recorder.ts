/**
 * What the op-family tests share: a Recorder that implements the Emitter of derivative rules by appending wire-graph
 * nodes, so an op and its VJP/JVP rules run through the engine's own `evaluate` (on the native kernels) instead of a
 * test-only interpreter, plus the tensor constructors the family tests build inputs with.
 */
import { evaluate } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { getOp } from '../../src/ops/registry.js';
import type { Emitter, OpDef, Ref } from '../../src/ops/types.js';
import type { DType } from '../../src/tensor/dtype.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';

export function opDef(name: string): OpDef {
  const d = getOp(name);
  if (d === undefined) throw new Error(`op ${name} is not registered`);
  return d;
}

export class Recorder implements Emitter {
  readonly graph: Required<Pick<Graph, 'inputs' | 'constants' | 'nodes'>> = { inputs: {}, constants: {}, nodes: [] };
  readonly feeds: Record<string, Tensor> = {};
  private n = 0;

  /** A graph input fed with `t`; `declared` (null = unknown dim) makes the rules see a symbolic shape. */
  input(t: Tensor, declared?: (number | null)[]): Ref {
    const name = `in${this.n++}`;
    const shape = declared ?? [...t.shape];
    this.graph.inputs[name] = { shape, datatype: t.dtype };
    this.feeds[name] = t;
    return { name, shape, dtype: t.dtype };
  }

  scalar(value: number, dtype: DType): Ref {
    const name = `c${this.n++}`;
    this.graph.constants[name] = { shape: [], datatype: dtype, data: [value] };
    return { name, shape: [], dtype };
  }

  op(op: string, inputs: Ref[], attrs: Record<string, unknown> = {}): Ref {
    const def = opDef(op);
    const name = `n${this.n++}`;
    const ctx = { node: name, op, path: `graph.nodes[${this.graph.nodes.length}]` };
    const parsed = def.attrs.parse(attrs);
    def.check?.(parsed, ctx);
    const meta = def.infer(inputs, parsed, ctx);
    this.graph.nodes.push({ name, op, inputs: inputs.map((r) => r.name), attrs });
    return { name, ...meta };
  }

  /** Runs the recorded graph; null refs (zero derivatives) come back as null, fed inputs as themselves. */
  async run(refs: (Ref | null)[]): Promise<(Tensor | null)[]> {
    const live = refs.filter((r): r is Ref => r !== null).map((r) => r.name).filter((n) => !(n in this.feeds));
    const r = live.length ? await evaluate({ ...this.graph, outputs: [...new Set(live)] }, this.feeds) : { outputs: {} };
    return refs.map((ref) => (ref === null ? null : (this.feeds[ref.name] ?? r.outputs[ref.name]!)));
  }
}

/** Value of `op` on `inputs`, run by the engine. */
export async function runOp(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Promise<Tensor> {
  const rec = new Recorder();
  const y = rec.op(op, inputs.map((t) => rec.input(t)), attrs);
  return (await rec.run([y]))[0]!;
}

/** The op's VJP rule applied to cotangent `g` (default ones), run by the engine: one gradient per input (null = 0). */
export async function vjpOf(op: string, inputs: Tensor[], g?: Tensor, attrs: Record<string, unknown> = {}): Promise<(Tensor | null)[]> {
  const def = opDef(op);
  const rec = new Recorder();
  const xs = inputs.map((t) => rec.input(t));
  const y = rec.op(op, xs, attrs);
  const cot = rec.input(g ?? ones(y.dtype, y.shape as number[]));
  return rec.run(def.vjp!({ e: rec, inputs: xs, output: y, g: cot, attrs: def.attrs.parse(attrs) }));
}

/** The op's JVP rule applied to `tangents` (null = zero), run by the engine. */
export async function jvpOf(op: string, inputs: Tensor[], tangents: (Tensor | null)[], attrs: Record<string, unknown> = {}): Promise<Tensor | null> {
  const def = opDef(op);
  const rec = new Recorder();
  const xs = inputs.map((t) => rec.input(t));
  const y = rec.op(op, xs, attrs);
  const ts = tangents.map((t) => (t === null ? null : rec.input(t)));
  return (await rec.run([def.jvp!({ e: rec, inputs: xs, output: y, tangents: ts, attrs: def.attrs.parse(attrs) })]))[0]!;
}

export const f64 = (shape: number[], data: number[]): Tensor => tensor('FP64', shape, data);
export const f32 = (shape: number[], data: number[]): Tensor => tensor('FP32', shape, data);
export const i32 = (shape: number[], data: number[]): Tensor => tensor('INT32', shape, data);
export const i64 = (shape: number[], data: number[]): Tensor => tensor('INT64', shape, data.map(BigInt));
export const ones = (dtype: DType, shape: number[]): Tensor => tensor(dtype, shape, new Array(shape.reduce((a, b) => a * b, 1)).fill(1));
